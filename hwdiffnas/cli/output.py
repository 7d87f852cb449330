"""Printing helpers shared by the commands: JSON for scripts, aligned tables for people."""

from __future__ import annotations

import json
import sys
from collections.abc import Sequence
from typing import Any

from hwdiffnas.jsonable import to_jsonable


def print_json(obj: Any) -> None:
    """Write ``obj`` as JSON (NaN/inf become null) on stdout."""
    json.dump(to_jsonable(obj), sys.stdout, indent=2)
    sys.stdout.write("\n")


def format_table(headers: Sequence[str], rows: Sequence[Sequence[Any]]) -> str:
    """A plain aligned text table."""

    def cell(v: Any) -> str:
        if isinstance(v, float):
            return f"{v:.4g}" if abs(v) < 1e4 else f"{v:.0f}"
        return "-" if v is None else str(v)

    text_rows = [[cell(v) for v in r] for r in rows]
    widths = [max(len(h), *(len(r[i]) for r in text_rows)) if text_rows else len(h)
              for i, h in enumerate(headers)]
    lines = ["  ".join(h.ljust(w) for h, w in zip(headers, widths)).rstrip(),
             "  ".join("-" * w for w in widths)]
    lines += ["  ".join(v.ljust(w) for v, w in zip(r, widths)).rstrip() for r in text_rows]
    return "\n".join(lines)


def progress(iterable: Any, total: int | None = None, desc: str = "", enabled: bool = True) -> Any:
    """A tqdm progress bar on stderr when stderr is a terminal or ``enabled`` is forced; else the iterable."""
    if not enabled:
        return iterable
    try:
        from tqdm import tqdm
    except ImportError:  # pragma: no cover - tqdm is a core dependency
        return iterable
    return tqdm(iterable, total=total, desc=desc, file=sys.stderr, disable=not sys.stderr.isatty(),
                dynamic_ncols=True)
