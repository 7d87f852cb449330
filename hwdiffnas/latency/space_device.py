"""A device of any search space as a vectorized latency model over op-code matrices (what the `latency` command
answers with, and what an open-space search and its training data score by the thousand): exact where the space
tabulates the device (lookup tables: source ``lut``; shipped rows, a user's rows or the device's campaign
measurements: their source), else the rows predictor's point estimate with its one-sided bound (source
``estimate``); the device's representation (its reference architectures' latencies) and its budget quantiles over
the space's quantile sample (`hwdiffnas.latency.lookup.quantile_sample`), computed when first asked for.
In the NB201 space the benchmark store answers (`hwdiffnas.latency.device`). A device without data is a one-line
error naming the devices that have some and how to measure."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from functools import cached_property
from pathlib import Path
from typing import Any

import numpy as np

from hwdiffnas.errors import UserError
from hwdiffnas.latency.lookup import (
    STORE_SPACES,
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

    @cached_property
    def _sample_codes(self) -> np.ndarray:
        return np.array([self.space.encode(a) for a in quantile_sample(self.space, self.dataset)], dtype=np.int64)

    @cached_property
    def reference_sorted_ms(self) -> np.ndarray:
        """The device's latencies of the space's quantile sample, sorted (what budget quantiles are taken over)."""
        return np.sort(self.latencies(self._sample_codes)[0])

    @cached_property
    def rep(self) -> np.ndarray:
        """The device representation from its reference architectures' latencies (empty without two of them)."""
        refs = self.space.reference_archs()
        if len(refs) < 2:
            return np.zeros(0, dtype=np.float32)
        ref_ms = self.latencies(np.array([self.space.encode(a) for a in refs], dtype=np.int64))[0]
        return device_representation(ref_ms, len(refs))

    @cached_property
    def fastest_ms(self) -> float:
        """The smallest point latency found: coordinate descent (three sweeps over the positions) from the fastest
        architecture of the quantile sample (exact for a table that is a sum over positions)."""
        point = self.latencies(self._sample_codes)[0]
        best = self._sample_codes[int(np.argmin(point))].copy()
        best_ms = float(np.min(point))
        n_choices = len(self.space.encoding.choices)
        for _ in range(3):
            moved = False
            for pos in range(best.size):
                cand = np.repeat(best[None, :], n_choices, axis=0)
                cand[:, pos] = np.arange(n_choices)
                lat = self.latencies(cand)[0]
                j = int(np.argmin(lat))
                if lat[j] < best_ms - 1e-12:
                    best, best_ms, moved = cand[j].copy(), float(lat[j]), True
            if not moved:
                break
        return best_ms

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
    return dev



def served_devices(space: SearchSpace[Any], dataset: str) -> list[str]:
    """The devices the space itself serves latency for in ``dataset``'s setting (tables, then measured rows)."""
    return sorted(space.latency_tables(dataset)) + sorted(space.measured_rows(dataset))


@dataclass(frozen=True)
class LatencyAnswer:
    """One architecture's latency on a device: point and one-sided upper bound (equal when exact), its source."""

    arch: str
    latency_ms: float
    upper_ms: float
    source: str

    def to_dict(self) -> dict[str, Any]:
        return {"arch": self.arch, "latency_ms": self.latency_ms, "upper_ms": self.upper_ms, "source": self.source}


def space_latencies(space: SearchSpace[Any], device: str | None, archs: Sequence[Any], dataset: str,
                    store: Any | None = None, delta: float = 0.05,
                    device_table: str | Path | None = None) -> list[LatencyAnswer]:
    """Latency of each of ``archs`` on ``device`` (or the device of a user's ``device_table`` of measured rows) in
    ``dataset``'s setting: `space_device`'s answers, or the benchmark store's in the NB201 space."""
    if space.name in STORE_SPACES:
        if device is None and device_table is None:
            raise UserError("give a device name (--device) or a table of measured rows (--device-table FILE.csv)")
        if store is None:
            raise UserError(f"no benchmark store: import the NB201 tables (hwdiffnas data import DIR) for {device!r}")
        from hwdiffnas.latency.device import device_latency

        nb = device_latency(store, device, device_table)
        point, upper, source = nb.latencies(list(archs), delta)
        return [LatencyAnswer(space.format(a), float(p), float(u), s)
                for a, p, u, s in zip(archs, point, upper, source)]
    dev = space_device(space, device, dataset, store, device_table)
    point, upper, exact = dev.latencies(np.array([space.encode(a) for a in archs], dtype=np.int64), delta)
    return [LatencyAnswer(space.format(a), float(p), float(u), s)
            for a, p, u, s in zip(archs, point, upper, dev.sources(exact))]


def space_budget_ms(space: SearchSpace[Any], device: str | None, text: str, dataset: str,
                    device_table: str | Path | None = None) -> float:
    """A budget in ms: a unit budget as written; ``pNN`` = the NN-th percentile of the device's latency over the
    space's quantile sample, each from the best source (exact where known, else the estimate)."""
    from hwdiffnas.benchmark import parse_budget, quantile_fraction

    if quantile_fraction(text) is None:
        return parse_budget(text)
    return space_device(space, device, dataset, device_table=device_table).parse_budget(text)
