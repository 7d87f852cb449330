"""Read the FBNet-space tables (HELP's 5,000 architectures and their per-device latencies) from CSV."""

from __future__ import annotations

import csv
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from hwdiffnas.errors import UserError
from hwdiffnas.spaces.fbnet.arch import NUM_BLOCKS, NUM_LAYERS

ARCH_FILE = "arch_index.csv"
LATENCY_FILE = "latency_help_ms.csv"

HELP_REFERENCE_IDX: tuple[int, ...] = (3328, 3790, 3313, 890, 3052, 2538, 1640, 2514, 457, 2100)
"""HELP's ten reference architectures for a device representation in this space (``idx`` rows)."""

LUT_DEVICES: tuple[str, ...] = ("fpga", "eyeriss", "raspi4", "pixel3")
"""HW-NAS-Bench's devices, whose FBNet-space latencies are sums of lookup-table entries (additive)."""


@dataclass(frozen=True)
class FBNetTables:
    """The 5,000 architectures (``ops``: (n, 22) block ids, row i = ``idx`` i) and latency columns in ms."""

    ops: np.ndarray
    latency_ms: dict[str, np.ndarray]

    def op_string(self, idx: int) -> str:
        return "".join(str(int(o)) for o in self.ops[idx])


def read_fbnet_tables(folder: str | Path) -> FBNetTables:
    """Read ``arch_index.csv`` and ``latency_help_ms.csv`` from an FBNet data folder, checking their shape."""
    folder = Path(folder)
    arch_path, lat_path = folder / ARCH_FILE, folder / LATENCY_FILE
    for p in (arch_path, lat_path):
        if not p.is_file():
            raise UserError(f"FBNet data file not found: {p} (expected {ARCH_FILE} and {LATENCY_FILE})")
    with arch_path.open(newline="") as fh:
        reader = csv.DictReader(fh)
        if reader.fieldnames is None or set(reader.fieldnames) != {"idx", "ops"}:
            raise UserError(f"{arch_path}: wrong columns {reader.fieldnames} for an FBNet index (want idx,ops)")
        rows = list(reader)
    ops = np.zeros((len(rows), NUM_LAYERS), dtype=np.int64)
    for i, row in enumerate(rows):
        text = row["ops"].strip()
        if row["idx"] != str(i) or len(text) != NUM_LAYERS or not text.isdigit():
            raise UserError(f"{arch_path}: row {i + 2} is not 'idx,<{NUM_LAYERS} op ids>': {row}")
        ops[i] = [int(c) for c in text]
    if ops.max(initial=0) >= NUM_BLOCKS:
        raise UserError(f"{arch_path}: op id {int(ops.max())} out of range 0..{NUM_BLOCKS - 1}")
    with lat_path.open(newline="") as fh:
        reader = csv.DictReader(fh)
        if reader.fieldnames is None or reader.fieldnames[0] != "idx":
            raise UserError(f"{lat_path}: first column must be idx, got {reader.fieldnames}")
        devices = reader.fieldnames[1:]
        cols: dict[str, list[float]] = {d: [] for d in devices}
        for i, row in enumerate(reader):
            if row["idx"] != str(i):
                raise UserError(f"{lat_path}: row {i + 2} has idx {row['idx']!r}, expected {i}")
            for d in devices:
                try:
                    cols[d].append(float(row[d]) if row[d] not in ("", None) else float("nan"))
                except ValueError as exc:
                    raise UserError(f"{lat_path}: row {i + 2}, column {d}: {row[d]!r} is not a number") from exc
    latency = {d: np.asarray(v, dtype=np.float64) for d, v in cols.items()}
    for d, v in latency.items():
        if len(v) != len(ops):
            raise UserError(f"{lat_path}: {len(v)} rows for {d}, but {arch_path.name} has {len(ops)}")
    return FBNetTables(ops, latency)


def is_fbnet_folder(path: str | Path) -> bool:
    """Whether ``path`` is an FBNet data folder (its ``arch_index.csv`` has the columns ``idx,ops``)."""
    index = Path(path) / ARCH_FILE
    if not index.is_file():
        return False
    with index.open(newline="") as fh:
        return fh.readline().strip().replace(" ", "") == "idx,ops"

