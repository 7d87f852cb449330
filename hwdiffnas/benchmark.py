"""The query API other parts of hwdiffnas code against: open the store, read accuracies and latencies as
arrays in NB201 index order, parse budgets, find the oracle cell, and count accuracy queries.

Conventions (DESIGN.md): a cell fits a budget when latency ≤ budget; the oracle breaks accuracy ties by
lower latency, then lower index; "fastest cell" and quantile budgets consider connected cells only.
"""

from __future__ import annotations

import math
import re
from collections.abc import Iterable, Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import numpy as np

from hwdiffnas.datadir import IMPORT_HINT, resolve_data_dir, store_path
from hwdiffnas.errors import UserError
from hwdiffnas.latency.reference import quantile_ms
from hwdiffnas.space import Cell
from hwdiffnas.store import Measurement, Store

__all__ = [
    "Measurement",
    "OracleResult",
    "QueryBudgetExhausted",
    "QueryOracle",
    "Store",
    "latency_for",
    "load_device_table",
    "open_store",
    "oracle",
    "parse_budget",
    "quantile_fraction",
    "pareto_front",
    "fastest_connected",
    "table_to_array",
]


def _check_space(store: Store, space: str) -> None:
    try:
        store.check_space(space)
    except UserError:
        store.close()
        raise


def open_store(data_dir: Path | str | None = None, require_accuracy: bool = True, packaged: bool = True,
               space: str = "nb201") -> Store:
    """Open the existing store in the data directory (``--data-dir``, ``$HWDIFFNAS_DATA``, per-user default)
    for architectures of ``space`` (a store without that space's tables is a `UserError` naming the ones it has).

    Without one, ``packaged`` opens a read-only store of the tables shipped in the package (`hwdiffnas.packaged`).
    Raises `UserError` naming what is missing, and the import command, when the store is absent or lacks the
    NB201 index or (with ``require_accuracy``) any accuracy table.
    """
    from hwdiffnas.plugins import get_space

    get_space(space)  # an unknown name lists the installed spaces
    path = store_path(data_dir)
    if not path.is_file() and packaged:
        from hwdiffnas.packaged import packaged_store, tables_path

        if tables_path().is_file():
            store = packaged_store(data_dir)
            _check_space(store, space)
            return store
    if not path.is_file():
        raise UserError(f"no benchmark store in {resolve_data_dir(data_dir)} (looked for {path}); "
                        f"import the NB201 data first: {IMPORT_HINT}")
    from hwdiffnas.devices import default_registry

    store = Store(path, devices=default_registry())
    _check_space(store, space)
    missing = []
    if not store.has_index():
        missing.append("the NB201 index (arch_index.csv)")
    if require_accuracy and not store.accuracy_series():
        missing.append("accuracies (accuracy.csv or nats_bench.csv)")
    if missing:
        store.close()
        raise UserError(f"benchmark store {path} is incomplete: missing {' and '.join(missing)}; "
                        f"import them: {IMPORT_HINT}")
    return store


# --- budgets -----------------------------------------------------------------------------------------
_UNITS = {"ms": 1.0, "us": 1e-3, "µs": 1e-3, "s": 1e3}
_BUDGET_RE = re.compile(r"^\s*([0-9]*\.?[0-9]+(?:[eE][-+]?[0-9]+)?)\s*([a-zµ]+)\s*$")
_QUANTILE_RE = re.compile(r"^\s*p([0-9]*\.?[0-9]+)\s*$", re.IGNORECASE)


def quantile_fraction(text: str) -> float | None:
    """``NN / 100`` for a quantile budget ``pNN`` (``p0 < pNN <= p100``), None for any other text."""
    q = _QUANTILE_RE.match(str(text).strip())
    if not q:
        return None
    pct = float(q.group(1))
    if not 0 < pct <= 100:
        raise UserError(f"quantile budget {text!r} must lie in p0 < pX <= p100")
    return pct / 100.0


def parse_budget(text: str, latencies_ms: np.ndarray | None = None, connected: np.ndarray | None = None) -> float:
    """A latency budget in ms from ``10ms``, ``1.5ms``, ``800us``, ``0.01s`` or a quantile ``p50``.

    A quantile is the percentile of ``latencies_ms`` over the connected cells (``connected``; both in NB201 index
    order) with a known latency; `hwdiffnas.latency.device.DeviceLatency.parse_budget` gives it the device's
    best-source distribution (the ``pNN`` of every command). Bad units, missing units and non-positive budgets
    are `UserError`.
    """
    s = str(text).strip()
    frac = quantile_fraction(s)
    if frac is not None:
        if latencies_ms is None:
            raise UserError(f"quantile budget {text!r} needs a device's latency table")
        lat = np.asarray(latencies_ms, dtype=np.float64)
        mask = np.isfinite(lat)
        if connected is not None:
            mask &= np.asarray(connected, dtype=bool)
        if not mask.any():
            raise UserError(f"quantile budget {text!r}: the device has no latency for any connected cell")
        return quantile_ms(lat[mask], frac)
    m = _BUDGET_RE.match(s.lower())
    if not m:
        raise UserError(f"cannot read budget {text!r}: write a number with a unit ({', '.join(_UNITS)}), "
                        "e.g. 10ms, 1.5ms, 800us, 0.01s, or a quantile such as p50")
    value, unit = float(m.group(1)), m.group(2)
    if unit not in _UNITS:
        raise UserError(f"unknown budget unit {unit!r} in {text!r}; use one of: {', '.join(_UNITS)}")
    ms = value * _UNITS[unit]
    if not math.isfinite(ms) or ms <= 0:
        raise UserError(f"budget {text!r} must be positive")
    return ms


# --- custom device tables ------------------------------------------------------------------------------
def load_device_table(path: Path | str) -> dict[Cell, float]:
    """Read a ``arch_str,latency_ms`` CSV (header required, ≥ 1 row); errors name the file and line."""
    from hwdiffnas.importers import read_user_table

    return read_user_table(Path(path))


def table_to_array(table: dict[Cell, float], store: Store) -> np.ndarray:
    """(15625,) latency in NB201 index order from a cell → ms table, NaN for cells it does not list."""
    out = np.full(len(store.index_to_key()), np.nan)
    for cell, ms in table.items():
        out[store.index_of(cell)] = ms
    return out


def latency_for(store: Store, device: str | None = None, device_table: Path | str | None = None,
                setting: str | None = None) -> tuple[str, np.ndarray]:
    """(name, (15625,) latency ms) for a device name or a ``--device-table`` CSV (the file wins)."""
    if device_table:
        p = Path(device_table)
        return (device or p.stem), table_to_array(load_device_table(p), store)
    if not device:
        raise UserError("give a device name (--device) or a latency table (--device-table FILE.csv)")
    return device, store.latency(device, setting)


# --- oracle --------------------------------------------------------------------------------------------
@dataclass(frozen=True)
class OracleResult:
    """The best cell under a budget: NB201 index, arch string, accuracy (%), latency (ms), #feasible cells."""

    index: int
    arch_str: str
    accuracy: float
    latency_ms: float
    feasible: int

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def _feasible_mask(accuracy: np.ndarray, latency_ms: np.ndarray, budget_ms: float,
                   connected: np.ndarray) -> np.ndarray:
    acc = np.asarray(accuracy, dtype=np.float64)
    lat = np.asarray(latency_ms, dtype=np.float64)
    with np.errstate(invalid="ignore"):
        return np.asarray(connected, dtype=bool) & np.isfinite(acc) & np.isfinite(lat) & (lat <= budget_ms)


def fastest_connected(latency_ms: np.ndarray, connected: np.ndarray) -> tuple[int, float] | None:
    """(index, ms) of the fastest connected cell with a known latency, or None."""
    lat = np.where(np.asarray(connected, dtype=bool) & np.isfinite(latency_ms), latency_ms, np.inf)
    i = int(np.argmin(lat))
    return None if not np.isfinite(lat[i]) else (i, float(lat[i]))


def oracle(accuracy: np.ndarray, latency_ms: np.ndarray, budget_ms: float, connected: np.ndarray,
           cells: Sequence[Cell], device: str = "") -> OracleResult:
    """The most accurate connected cell with latency ≤ ``budget_ms``; ties → lower latency → lower index.

    Raises `UserError` stating the fastest connected cell's latency when no cell fits.
    """
    acc = np.asarray(accuracy, dtype=np.float64)
    lat = np.asarray(latency_ms, dtype=np.float64)
    mask = _feasible_mask(acc, lat, budget_ms, connected)
    n = int(mask.sum())
    if n == 0:
        where = f" on {device}" if device else ""
        fast = fastest_connected(lat, connected)
        if fast is None:
            raise UserError(f"no connected cell has a known latency{where}")
        raise UserError(f"no cell fits the budget {budget_ms:g} ms{where}: the fastest connected cell "
                        f"(idx {fast[0]}, {cells[fast[0]].arch_str}) takes {fast[1]:g} ms")
    idx = np.flatnonzero(mask)
    # lexsort: last key is primary → highest accuracy, then lowest latency, then lowest index
    order = np.lexsort((idx, lat[idx], -acc[idx]))
    best = int(idx[order[0]])
    return OracleResult(best, cells[best].arch_str, float(acc[best]), float(lat[best]), n)


def pareto_front(accuracy: np.ndarray, latency_ms: np.ndarray, connected: np.ndarray) -> np.ndarray:
    """Indices of the connected cells on the accuracy-vs-latency Pareto front, by increasing latency."""
    acc = np.asarray(accuracy, dtype=np.float64)
    lat = np.asarray(latency_ms, dtype=np.float64)
    ok = np.flatnonzero(np.asarray(connected, dtype=bool) & np.isfinite(acc) & np.isfinite(lat))
    order = ok[np.lexsort((-acc[ok], lat[ok]))]
    front, best = [], -np.inf
    for i in order:
        if acc[i] > best:
            front.append(int(i))
            best = acc[i]
    return np.array(front, dtype=np.int64)


# --- counting accuracy queries -----------------------------------------------------------------------
class QueryBudgetExhausted(UserError):
    """A search method asked for more distinct accuracy look-ups than its budget allows."""


class QueryOracle:
    """Accuracy look-ups for search methods, counted: each distinct cell looked up costs one query.

    Training labels are look-ups too (`label`). Repeating a look-up is free. Asking for a new cell once
    ``budget`` distinct cells have been looked up raises `QueryBudgetExhausted`.
    """

    def __init__(self, accuracy: np.ndarray, budget: int) -> None:
        if budget < 0:
            raise UserError(f"query budget must be >= 0, got {budget}")
        self._accuracy = np.asarray(accuracy, dtype=np.float64)
        self.budget = int(budget)
        self._seen: dict[int, float] = {}

    @property
    def used(self) -> int:
        return len(self._seen)

    @property
    def remaining(self) -> int:
        return self.budget - len(self._seen)

    def seen(self, index: int) -> bool:
        return int(index) in self._seen

    @property
    def history(self) -> dict[int, float]:
        """Cells looked up so far (NB201 index → accuracy), in look-up order."""
        return dict(self._seen)

    def query(self, index: int) -> float:
        """Accuracy (%) of the cell at NB201 ``index``; costs one query the first time."""
        i = int(index)
        if i in self._seen:
            return self._seen[i]
        if len(self._seen) >= self.budget:
            raise QueryBudgetExhausted(f"accuracy query budget of {self.budget} exhausted")
        value = float(self._accuracy[i])
        self._seen[i] = value
        return value

    def label(self, indices: Iterable[int]) -> np.ndarray:
        """Accuracies of several cells (training labels); each new cell costs one query."""
        idx = [int(i) for i in indices]
        new = len({i for i in idx if i not in self._seen})
        if new > self.remaining:
            raise QueryBudgetExhausted(f"{new} new labels requested but only {self.remaining} of "
                                       f"{self.budget} accuracy queries remain")
        return np.array([self.query(i) for i in idx], dtype=np.float64)

