"""A user's own labels of architectures (``--labels FILE.csv``): rows ``arch,accuracy`` (or ``arch,value``), at
least `MIN_LABELS`, in any space. Repeated architectures (e.g. several training seeds) are averaged."""

from __future__ import annotations

import csv
import math
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from hwdiffnas.errors import UserError
from hwdiffnas.objectives.scorer import MIN_LABELS
from hwdiffnas.spaces.base import SearchSpace

VALUE_COLUMNS = ("accuracy", "value")


@dataclass(frozen=True)
class Labels:
    """Labelled architectures of one space: exact string → value (higher is better), and where they came from."""

    space: str
    values: dict[str, float]
    column: str
    path: str

    @property
    def name(self) -> str:
        """The objective these labels stand for: ``labels:<file stem>``."""
        return f"labels:{Path(self.path).stem}"

    def archs(self, space: SearchSpace[Any]) -> list[Any]:
        return [space.parse(a) for a in self.values]


def read_labels(space: SearchSpace[Any], path: str | Path) -> Labels:
    """Read and check a labels file (one-line errors naming the line: a bad architecture — one of another space
    says which —, a value that is not a finite number, too few rows)."""
    from hwdiffnas.plugins import parse_arch

    p = Path(path)
    sums: dict[str, list[float]] = {}
    try:
        with p.open(newline="") as fh:
            reader = csv.DictReader(fh)
            fields = reader.fieldnames or []
            key = "arch" if "arch" in fields else "arch_str" if "arch_str" in fields else None
            column = next((c for c in VALUE_COLUMNS if c in fields), None)
            if key is None or column is None:
                raise UserError(f"{p}: needs the columns arch,accuracy (or arch,value); got "
                                f"{', '.join(fields) or 'none'}")
            for n, row in enumerate(reader, start=2):
                text = (row.get(key) or "").strip()
                try:
                    arch = parse_arch(space, text)
                except UserError as exc:
                    raise UserError(f"{p}: line {n}: {exc}") from None
                try:
                    value = float(row.get(column) or "")
                except ValueError:
                    raise UserError(f"{p}: line {n}: {column} {row.get(column)!r} is not a number") from None
                if not math.isfinite(value):
                    raise UserError(f"{p}: line {n}: {column} must be finite, got {value}")
                sums.setdefault(space.format(arch), []).append(value)
    except OSError as exc:
        raise UserError(f"cannot read {p}: {exc.strerror or exc}") from exc
    if len(sums) < MIN_LABELS:
        raise UserError(f"{p}: {len(sums)} labelled architectures; at least {MIN_LABELS} are needed to fit a "
                        "surrogate")
    return Labels(space.name, {a: sum(v) / len(v) for a, v in sums.items()}, column, str(p))
