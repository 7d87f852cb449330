"""HELP's FBNet-space latency tables shipped in the package: 5,000 architectures × 24 device settings, exactly.

``hwdiffnas/assets/fbnet_help_tables.safetensors`` (built by ``benchmarks/build_fbnet_lut.py`` from the data
folder's CSVs; HELP repository ``data/fbnet``, MIT — see ``assets/FBNET_TABLES_LICENSE.md``) holds ``ops`` (5000, 22)
uint8 and ``latency/<device>`` (5000,) float64, the CSV values as parsed (bit for bit).
"""

from __future__ import annotations

from functools import lru_cache
from pathlib import Path

import numpy as np

from hwdiffnas import ASSETS_DIR
from hwdiffnas.errors import UserError
from hwdiffnas.spaces.fbnet.data import FBNetTables, read_fbnet_tables

HELP_TABLES_ASSET = ASSETS_DIR / "fbnet_help_tables.safetensors"


def write_help_tables(tables: FBNetTables, path: str | Path = HELP_TABLES_ASSET) -> None:
    """Write ``tables`` as the shipped asset."""
    from safetensors.numpy import save_file

    arrays = {"ops": np.ascontiguousarray(tables.ops, dtype=np.uint8)}
    arrays.update({f"latency/{d}": np.ascontiguousarray(v, dtype=np.float64) for d, v in tables.latency_ms.items()})
    save_file(arrays, str(path), metadata={"format": "hwdiffnas-fbnet-help/1",
                                           "source": "HELP repository data/fbnet (MIT), CIFAR-100 setting"})


@lru_cache(maxsize=2)
def load_help_tables(path: str | Path = HELP_TABLES_ASSET) -> FBNetTables:
    """The shipped tables; a missing or damaged file is a `UserError` saying how to rebuild it."""
    from safetensors.numpy import load_file

    fix = "rebuild with python benchmarks/build_fbnet_lut.py --data-dir ../shared/data/fbnet"
    try:
        arrays = load_file(str(path))
    except FileNotFoundError as exc:
        raise UserError(f"FBNet HELP tables not found at {path}; {fix}") from exc
    except Exception as exc:  # safetensors raises its own error types for damaged files
        raise UserError(f"FBNet HELP tables at {path} are damaged ({exc}); {fix}") from exc
    ops = arrays.get("ops")
    if ops is None or ops.ndim != 2 or ops.shape[1] != 22:
        raise UserError(f"FBNet HELP tables at {path} lack a (n, 22) 'ops' array; {fix}")
    latency = {k.removeprefix("latency/"): v for k, v in arrays.items() if k.startswith("latency/")}
    return FBNetTables(ops.astype(np.int64), latency)


def check_against_shipped(path: str | Path) -> str:
    """Compare an FBNet data folder with the tables shipped in the package: a note when they are the same;
    `UserError` naming the difference otherwise."""
    given, shipped = read_fbnet_tables(path), load_help_tables()
    if given.ops.shape != shipped.ops.shape or not np.array_equal(given.ops, shipped.ops):
        raise UserError(f"{path}: an FBNet folder whose architectures differ from HELP's 5,000 shipped in the "
                        "package; FBNet rows of your own device go in with --device-table FILE.csv (arch,latency_ms) "
                        "or a campaign")
    differ = [d for d, v in given.latency_ms.items()
              if d not in shipped.latency_ms or not np.array_equal(v, shipped.latency_ms[d], equal_nan=True)]
    if differ:
        raise UserError(f"{path}: FBNet latency columns {', '.join(differ[:5])} differ from the tables shipped in the "
                        "package; give your own rows with --device-table FILE.csv or measure with a campaign")
    return (f"FBNet-space tables ({len(given.ops):,} architectures x {len(given.latency_ms)} device settings) are "
            "identical to the copy shipped in the package, which every FBNet command reads: nothing to import")
