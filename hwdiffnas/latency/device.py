"""`DeviceLatency`: what is known about one device's latency, and the device resolution every command shares.

Sources, best first: a benchmark table (exact for (almost) every connected cell), rows (a ``--device-table`` file
or a campaign's measurements: exact where measured) and an estimate with a one-sided upper bound (a latency
predictor fitted on the rows, with the other devices' tables as a transfer basis) for the other cells; a training
device of a generator checkpoint without a store is known from its stored quantiles and the shipped estimator.

The budget quantile: ``connected_sorted_ms`` holds one latency per connected cell, each from the best source
(exact where known, else the point estimate); ``pNN`` is its NN-th percentile and `budget_quantile` the fraction
of it at or under a budget. A stored table covering at least `TABLE_COVERAGE` of the connected cells is a table
device: its own rows make the distribution (no estimate is fitted for the few cells it lacks).
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from hwdiffnas.errors import UserError
from hwdiffnas.latency.reference import (
    HELP_REFERENCE_ARCHS,
    LatencyQuantiles,
    budget_quantile,
    device_representation,
)
from hwdiffnas.space import Cell

TABLE_COVERAGE = 0.9
"""A stored device whose table covers at least this share of the connected cells is a table device; below it, a
measured device (its rows exact, the other cells estimated)."""
MIN_ROWS = 8
"""Connected rows a device known from rows needs (20 or more spread over the latency range recommended)."""

Estimate = Callable[[Sequence[Cell], float], tuple[np.ndarray, np.ndarray]]


@dataclass
class DeviceLatency:
    """What is known about a device's latency.

    ``table``: exact latency per cell (a benchmark table, imported or measured rows) labelled ``table_source``;
    ``estimate``: a callable giving (point_ms, upper_ms) for cells not in the table, the upper bound one-sided
    at miss rate ``delta``, labelled ``estimate_source``; ``connected_sorted_ms``: one latency per connected cell
    (exact where known, else the estimate), sorted — the distribution of the budget quantile and ``pNN``;
    ``rep``: the generator's device representation (None when the reference cells' latencies are unknown).
    """

    name: str
    rep: np.ndarray | None
    connected_sorted_ms: np.ndarray
    table: dict[Cell, float] = field(default_factory=dict)
    table_source: str = "table"
    estimate: Estimate | None = None
    estimate_source: str = "estimate"

    @property
    def fastest_ms(self) -> float:
        return float(self.connected_sorted_ms[0])

    def budget_quantile(self, budget_ms: float) -> float:
        """Fraction of connected cells that fit ``budget_ms`` (from the exact or estimated distribution)."""
        return budget_quantile(budget_ms, self.connected_sorted_ms)

    def parse_budget(self, text: str) -> float:
        """Budget in ms from ``10ms``/``800us``/… or ``pNN`` (the NN-th percentile of `connected_sorted_ms`)."""
        from hwdiffnas.benchmark import parse_budget

        return parse_budget(text, self.connected_sorted_ms)

    def condition_rep(self) -> np.ndarray:
        """The device representation, or a `UserError` when the reference cells' latencies are unknown."""
        if self.rep is None:
            raise UserError(f"device {self.name!r} lacks latencies of HELP's reference cells; cannot condition on it")
        return self.rep

    def latencies(self, cells: Sequence[Cell], delta: float = 0.05) -> tuple[np.ndarray, np.ndarray, list[str]]:
        """(point_ms, upper_ms, source) per cell; exact rows have upper = point; an estimate's upper bound is
        exceeded with probability at most ``delta``."""
        point = np.full(len(cells), np.nan)
        upper = np.full(len(cells), np.nan)
        source = ["none"] * len(cells)
        missing = []
        for i, c in enumerate(cells):
            v = self.table.get(c)
            if v is not None and math.isfinite(v):
                point[i] = upper[i] = v
                source[i] = self.table_source
            else:
                missing.append(i)
        if missing and self.estimate is not None:
            p, u = self.estimate([cells[i] for i in missing], delta)
            for j, i in enumerate(missing):
                point[i], upper[i], source[i] = p[j], u[j], self.estimate_source
        return point, upper, source


def _ref_latencies(lookup: Callable[[Cell], float]) -> np.ndarray:
    return np.array([lookup(Cell.from_str(a)) for a in HELP_REFERENCE_ARCHS], dtype=np.float64)


def from_table(name: str, cells: Sequence[Cell], latency_ms: np.ndarray, connected: np.ndarray,
               source: str, fallback_rep: np.ndarray | None = None, space: str = "nb201") -> DeviceLatency:
    """A device whose latency is known for (almost) every cell: arrays aligned with ``cells`` (architectures of
    ``space``; ``connected``: not degenerate); its representation comes from the space's reference
    architectures."""
    lat = np.asarray(latency_ms, dtype=np.float64)
    ok = np.asarray(connected, dtype=bool) & np.isfinite(lat) & (lat > 0)
    if not ok.any():
        raise UserError(f"device {name!r} has no latency for any connected cell")
    table = {c: float(v) for c, v, k in zip(cells, lat, ok) if k}
    if space == "nb201":
        ref = _ref_latencies(lambda c: table.get(c, math.nan))
    else:
        from hwdiffnas.plugins import get_space

        ref = np.array([table.get(a, math.nan) for a in get_space(space).reference_archs()], dtype=np.float64)
    rep = device_representation(ref, ref.size) if ref.size and np.all(np.isfinite(ref)) else fallback_rep
    return DeviceLatency(name, rep, np.sort(lat[ok]), table, source)


def shipped_predictors() -> Any | None:
    """The predictor bundle shipped in ``hwdiffnas/assets`` (`hwdiffnas.predictors.bundle`), or None if absent."""
    from hwdiffnas import ASSETS_DIR
    from hwdiffnas.predictors.bundle import default_bundle

    if not (ASSETS_DIR / "predictors_meta.json").is_file():
        return None
    return default_bundle()


def shipped_latency_estimators() -> dict[str, Any]:
    """Latency predictors for store-less search, from the shipped predictor bundle (empty if it is absent)."""
    bundle = shipped_predictors()
    if bundle is None:
        return {}
    return {d: bundle.latency_predictor(d) for d in bundle.devices()}


def store_basis(store: Any, exclude: str) -> Any:
    """The transfer basis of the store's latency tables, every device but ``exclude``."""
    from hwdiffnas.predictors.latency import build_transfer_basis

    tables = {d: store.latency(d) for d in store.latency_devices() if d != exclude}
    return build_transfer_basis(store.cells(), tables)


def from_rows(name: str, rows: Mapping[Cell, float], store: Any | None = None,
              row_source: str = "imported", basis: Any | None = None) -> DeviceLatency:
    """A device known from measured rows (``--device-table``, a campaign): the rows are exact, the rest estimated.

    The estimate is the latency predictor fitted on the connected rows (with the other devices' tables as a
    transfer basis when a benchmark store is present, else the shipped bundle's basis); it fills in the
    reference cells the rows lack (the device representation) and every connected cell without a row (the
    budget-quantile distribution). ``row_source`` labels the rows' latencies; ``basis`` (a `TransferBasis`)
    replaces the one built from the store or shipped in the bundle.
    """
    from hwdiffnas.predictors.latency import connected_mask, fit_latency_predictor
    from hwdiffnas.space import cell_codes

    bad = [c.arch_str for c, v in rows.items() if not (math.isfinite(v) and v > 0)]
    if bad:
        raise UserError(f"device table for {name!r}: latency must be a positive number of ms (cell {bad[0]})")
    conn_rows = {c: v for c, v in rows.items() if c.is_connected}
    if len(conn_rows) < MIN_ROWS:
        raise UserError(f"device table for {name!r} has {len(conn_rows)} connected cells; at least {MIN_ROWS} are "
                        "needed (20 or more spread over the latency range recommended)")
    if basis is None and store is not None:
        basis = store_basis(store, exclude=name)
    elif basis is None:
        bundle = shipped_predictors()
        basis = bundle.basis if bundle is not None else None
    cells = list(conn_rows)
    values = np.array([conn_rows[c] for c in cells])
    pred = fit_latency_predictor(cells, values, basis=basis)
    best = np.exp(pred.all_log_predictions())  # (15625,) by cell code: the estimate ...
    best[cell_codes(cells)] = values  # ... replaced by the exact rows where measured
    dist = np.sort(best[connected_mask()])
    ref = _ref_latencies(lambda c: conn_rows.get(c, math.nan))
    for i, a in enumerate(HELP_REFERENCE_ARCHS):
        if not math.isfinite(ref[i]):
            ref[i] = float(np.exp(pred.log_predict([Cell.from_str(a)])[0][0]))
    return DeviceLatency(name, device_representation(ref), dist, dict(rows), row_source, pred.point_and_upper,
                         "estimate" if basis is None else "estimate(transfer)")


def from_quantiles(name: str, quantiles_ms: np.ndarray, rep: np.ndarray | None,
                   estimator: Any | None) -> DeviceLatency:
    """A device summarised by its connected-cell latency quantiles (at evenly spaced levels, e.g. a generator
    checkpoint's training device) with a latency estimator for its cells (e.g. the shipped predictor)."""
    if estimator is None:
        raise UserError(f"no latency data for {name!r}: no benchmark store and no shipped latency predictor for it; "
                        "import the benchmark data (hwdiffnas data import) or give --device-table FILE.csv")
    q = np.asarray(quantiles_ms, dtype=np.float64)
    dist = LatencyQuantiles(np.linspace(0, 1, q.size), q).dense()  # (2001,) quantile function
    return DeviceLatency(name, rep, dist, {}, "table", estimator.point_and_upper, "estimate")


def stored_device(store: Any, name: str, setting: str | None = None,
                  fallback_rep: np.ndarray | None = None) -> DeviceLatency:
    """A device whose latencies the store holds: a table device (coverage ≥ `TABLE_COVERAGE` of the connected
    cells) or a measured one (campaign or partial table: its rows exact, the other cells estimated)."""
    lat = store.latency(name, setting)
    connected = store.connected()
    source = store.latency_source(name, setting)
    if np.count_nonzero(np.isfinite(lat) & connected) < TABLE_COVERAGE * np.count_nonzero(connected):
        rows = {c: float(v) for c, v in zip(store.cells(), lat) if math.isfinite(v)}
        # campaign rows are already labelled measured:DEVICE; a partial table gets the prefix once
        label = source if source.startswith("measured:") else f"measured:{source}"
        return from_rows(name, rows, store, row_source=label)
    return from_table(name, store.cells(), lat, connected, f"table:{source}", fallback_rep)


def device_latency(store: Any, device: str | None = None, device_table: Path | str | None = None,
                   setting: str | None = None, fallback_rep: np.ndarray | None = None) -> DeviceLatency:
    """The device of ``--device`` / ``--device-table`` (the file wins; it is named ``device`` or its stem) as the
    commands with a benchmark store see it: `from_rows` for a file, `stored_device` for a stored name."""
    if device_table:
        from hwdiffnas.benchmark import load_device_table

        p = Path(device_table)
        return from_rows(device or p.stem, load_device_table(p), store)
    if not device:
        raise UserError("give a device name (--device) or a latency table (--device-table FILE.csv)")
    return stored_device(store, device, setting, fallback_rep)


def budget_for(text: str, store: Any, device: str | None = None, device_table: Path | str | None = None,
               setting: str | None = None, resolved: dict[tuple[Any, ...], DeviceLatency] | None = None) -> float:
    """A budget in ms for a command with a benchmark store: a unit budget as written; ``pNN`` from the device's
    best-source distribution (`device_latency`; ``resolved`` caches the devices across calls)."""
    from hwdiffnas.benchmark import parse_budget, quantile_fraction

    if quantile_fraction(text) is None:
        return parse_budget(text)
    key = (device, str(device_table) if device_table else None, setting)
    dev = resolved.get(key) if resolved is not None else None
    if dev is None:
        dev = device_latency(store, device, device_table, setting)
        if resolved is not None:
            resolved[key] = dev
    return dev.parse_budget(text)
