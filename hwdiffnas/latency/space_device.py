"""A device of any search space as a vectorized latency model over op-code matrices (what an open-space search
and its training data score by the thousand): exact where the space tabulates the device (lookup tables: source
``lut``; shipped or measured rows: their source), else the rows predictor's point estimate with its one-sided
bound (source ``estimate``); the device's representation (its reference architectures' latencies) and its budget
quantiles over the space's quantile sample (`hwdiffnas.latency.lookup.quantile_sample`)."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from hwdiffnas.errors import UserError
from hwdiffnas.latency.lookup import (
    device_from_rows,
    no_latency_data,
    quantile_sample,
    read_rows_file,
    rows_predictor,
    store_rows,
)
from hwdiffnas.latency.reference import device_representation
from hwdiffnas.spaces.base import MeasuredRows, SearchSpace

ESTIMATE = "estimate"


@dataclass
class SpaceDevice:
    """One device in one space and dataset setting. ``table``: an exact model of every architecture (codes →
    ms); else ``rows`` (exact, keyed by code bytes) and ``predictor`` on ``featurize(codes)`` for the rest."""

    name: str
    space: SearchSpace[Any]
    dataset: str
    exact_source: str
    table: Callable[[np.ndarray], np.ndarray] | None = None
    rows: dict[bytes, float] = field(default_factory=dict)
    predictor: Any | None = None
    featurize: Callable[[np.ndarray], np.ndarray] | None = None
    reference_sorted_ms: np.ndarray = field(default_factory=lambda: np.zeros(0))
    rep: np.ndarray = field(default_factory=lambda: np.zeros(0))
    fastest_ms: float = float("nan")

    def latencies(self, ops: np.ndarray, delta: float = 0.05) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """(point ms, upper ms, exact) of an (n, positions) code matrix; ``upper`` is exceeded with probability
        at most ``delta`` (equal to ``point`` where exact; ``inf`` where the rows cannot certify a bound)."""
        ops = np.asarray(ops, dtype=np.int64).reshape(-1, self.space.encoding.positions)
        if self.table is not None:
            point = np.asarray(self.table(ops), dtype=np.float64)
            return point, point.copy(), np.ones(len(ops), dtype=bool)
        point = np.full(len(ops), np.nan)
        exact = np.zeros(len(ops), dtype=bool)
        if self.rows:
            for i, row in enumerate(ops):
                v = self.rows.get(row.tobytes())
                if v is not None:
                    point[i], exact[i] = v, True
        upper = point.copy()
        rest = np.flatnonzero(~exact)
        if rest.size:
            assert self.predictor is not None and self.featurize is not None
            p, u = self.predictor.point_and_upper(self.featurize(ops[rest]), delta)
            point[rest], upper[rest] = p, u
        return point, upper, exact

    def bound_ratio(self, delta: float = 0.05, n: int = 500) -> float:
        """The median ratio of the upper bound to the point estimate over ``n`` seeded uniform architectures the
        device does not tabulate (1 for an exact table): how far below a budget an estimate must lie to fit it
        surely."""
        if self.table is not None or self.predictor is None:
            return 1.0
        codes = np.array([self.space.encode(a) for a in self.space.sample(n, seed=11)], dtype=np.int64)
        point, upper, exact = self.latencies(codes, delta)
        ratio = upper[~exact] / point[~exact]
        ratio = ratio[np.isfinite(ratio)]
        return float(np.median(ratio)) if ratio.size else 1.0

    def sources(self, exact: np.ndarray) -> list[str]:
        """The latency source of each answer (`latencies`' ``exact`` mask)."""
        return [self.exact_source if e else ESTIMATE for e in exact]

    def budget_quantile(self, budget_ms: float) -> float:
        """``u``: the fraction of the space's quantile sample whose latency on the device is within the budget."""
        n = int(np.searchsorted(self.reference_sorted_ms, budget_ms, side="right"))
        return n / max(1, self.reference_sorted_ms.size)

    def parse_budget(self, text: str) -> float:
        """A budget in ms (``12ms``, ``800us``) or ``pNN`` over the quantile sample (as every command reads it)."""
        from hwdiffnas.benchmark import parse_budget

        return parse_budget(text, self.reference_sorted_ms)


def _code_key(space: SearchSpace[Any], arch_text: str) -> bytes:
    return np.asarray(space.encode(space.parse(arch_text)), dtype=np.int64).tobytes()


def _rows_index(space: SearchSpace[Any], rows: MeasuredRows) -> dict[bytes, float]:
    return {_code_key(space, a): float(v) for a, v in zip(rows.archs, rows.latency_ms)}


def _fastest(dev: SpaceDevice, sample_codes: np.ndarray) -> float:
    """The smallest point latency found: coordinate descent (three sweeps over the positions) from the fastest
    architecture of the quantile sample (exact for a table that is a sum over positions)."""
    point, _u, _e = dev.latencies(sample_codes)
    best = sample_codes[int(np.argmin(point))].copy()
    best_ms = float(np.min(point))
    n_choices = len(dev.space.encoding.choices)
    for _ in range(3):
        moved = False
        for pos in range(best.size):
            cand = np.repeat(best[None, :], n_choices, axis=0)
            cand[:, pos] = np.arange(n_choices)
            lat = dev.latencies(cand)[0]
            j = int(np.argmin(lat))
            if lat[j] < best_ms - 1e-12:
                best, best_ms, moved = cand[j].copy(), float(lat[j]), True
        if not moved:
            break
    return best_ms


def space_device(space: SearchSpace[Any], device: str | None, dataset: str, store: Any | None = None,
                 device_table: str | Path | None = None) -> SpaceDevice:
    """The device of ``--device`` / ``--device-table`` in ``space`` (``dataset``'s setting): a lookup table, a
    device with shipped measured rows, a user's table of rows (the file wins), or the device's campaign
    measurements in the store. A device without data is a one-line error naming those with data."""
    dataset = space.dataset(dataset).name
    enc_pos = space.encoding.positions

    def decode_all(codes: np.ndarray) -> list[Any]:
        return [space.decode(r) for r in np.asarray(codes).reshape(-1, enc_pos)]

    if device_table is not None:
        rows = read_rows_file(space, device_table)
        name = device or Path(device_table).stem
        rd = device_from_rows(space, name, rows, dataset)
        dev = SpaceDevice(name, space, dataset, rows.source, rows=_rows_index(space, rows), predictor=rd.predictor,
                          featurize=lambda c: rd.featurize(decode_all(c)))
    else:
        if not device:
            raise UserError("give a device name (--device) or a table of measured rows (--device-table FILE.csv)")
        tables = space.latency_tables(dataset)
        measured = space.measured_rows(dataset)
        if device in tables:
            model = tables[device]
            batch = getattr(model, "latency_batch_ms", None)
            table = batch if batch is not None else (
                lambda c: np.array([model.latency_ms(a) for a in decode_all(c)], dtype=np.float64))
            dev = SpaceDevice(device, space, dataset, "lut", table=table)
        elif device in measured:
            rows = measured[device]
            dev = SpaceDevice(device, space, dataset, rows.source, rows=_rows_index(space, rows),
                              predictor=rows_predictor(space, device, dataset, rows), featurize=space.code_features)
        else:
            stored = store_rows(space, device, dataset, store)
            if stored is None:
                raise no_latency_data(space, device, dataset)
            rd = device_from_rows(space, device, stored, dataset)
            dev = SpaceDevice(device, space, dataset, stored.source, rows=_rows_index(space, stored),
                              predictor=rd.predictor, featurize=lambda c: rd.featurize(decode_all(c)))
    sample = np.array([space.encode(a) for a in quantile_sample(space, dataset)], dtype=np.int64)
    dev.reference_sorted_ms = np.sort(dev.latencies(sample)[0])
    refs = space.reference_archs()
    if len(refs) >= 2:
        ref_ms = dev.latencies(np.array([space.encode(a) for a in refs], dtype=np.int64))[0]
        dev.rep = device_representation(ref_ms, len(refs))
    dev.fastest_ms = _fastest(dev, sample)
    return dev



def served_devices(space: SearchSpace[Any], dataset: str) -> list[str]:
    """The devices the space itself serves latency for in ``dataset``'s setting (tables, then measured rows)."""
    return sorted(space.latency_tables(dataset)) + sorted(space.measured_rows(dataset))
