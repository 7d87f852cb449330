"""Budgeted architecture search with the conditional generator.

Steps: resolve the device (benchmark table, ``--device-table`` rows, or what the checkpoint knows), turn the
budget into the latency condition (its quantile among the device's connected cells), sample cells conditioned on
"the most accurate cell that fits this budget on this device", decode and dedupe them, check the budget (table
latency where known, else an estimate — each result says which), rank the fitting cells by how often the generator
proposed them (its belief that a cell is the best fit; an accuracy surrogate breaks ties where one is given),
spend at most Q accuracy queries on the top of that ranking when a benchmark store is present, and return the best.
"""

from __future__ import annotations

import math
import time
from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from hwdiffnas.baselines.base import SearchMethod
from hwdiffnas.errors import UserError
from hwdiffnas.generator.conditions import HELP_REFERENCE_ARCHS, build_conditions, device_representation
from hwdiffnas.space import Cell


# --- latency sources ----------------------------------------------------------------------------------
@dataclass
class DeviceLatency:
    """What the search knows about a device's latency.

    ``table``: exact latency per cell (a benchmark table or imported rows); ``estimate``: a callable giving
    (point_ms, upper_ms) for cells not in the table; ``connected_sorted_ms``: the connected-cell latency
    distribution (exact or estimated) used for the budget quantile; ``rep``: the device representation.
    """

    name: str
    rep: np.ndarray
    connected_sorted_ms: np.ndarray
    table: dict[Cell, float] = field(default_factory=dict)
    table_source: str = "table"
    estimate: Callable[[Sequence[Cell]], tuple[np.ndarray, np.ndarray]] | None = None
    estimate_source: str = "estimate"

    @property
    def fastest_ms(self) -> float:
        return float(self.connected_sorted_ms[0])

    def budget_quantile(self, budget_ms: float) -> float:
        """Fraction of connected cells that fit ``budget_ms`` (from the exact or estimated distribution)."""
        n = int(np.searchsorted(self.connected_sorted_ms, budget_ms, side="right"))
        return n / self.connected_sorted_ms.size

    def latencies(self, cells: Sequence[Cell]) -> tuple[np.ndarray, np.ndarray, list[str]]:
        """(point_ms, upper_ms, source) per cell; exact rows have upper = point."""
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
            p, u = self.estimate([cells[i] for i in missing])
            for j, i in enumerate(missing):
                point[i], upper[i], source[i] = p[j], u[j], self.estimate_source
        return point, upper, source


def _ref_latencies(lookup: Callable[[Cell], float]) -> np.ndarray:
    return np.array([lookup(Cell.from_str(a)) for a in HELP_REFERENCE_ARCHS], dtype=np.float64)


def device_from_table(name: str, cells: Sequence[Cell], latency_ms: np.ndarray, connected: np.ndarray,
                      source: str, fallback_rep: np.ndarray | None = None) -> DeviceLatency:
    """A device whose latency is known for (almost) every cell: arrays aligned with ``cells``."""
    lat = np.asarray(latency_ms, dtype=np.float64)
    ok = np.asarray(connected, dtype=bool) & np.isfinite(lat) & (lat > 0)
    if not ok.any():
        raise UserError(f"device {name!r} has no latency for any connected cell")
    table = {c: float(v) for c, v, k in zip(cells, lat, ok) if k}
    ref = _ref_latencies(lambda c: table.get(c, math.nan))
    if np.all(np.isfinite(ref)):
        rep = device_representation(ref)
    elif fallback_rep is not None:
        rep = fallback_rep
    else:
        raise UserError(f"device {name!r} lacks latencies of HELP's reference cells; cannot condition on it")
    return DeviceLatency(name, rep, np.sort(lat[ok]), table, source)


def device_from_rows(name: str, rows: dict[Cell, float], store: Any | None = None,
                     row_source: str = "imported") -> DeviceLatency:
    """A device known from a few measured rows (``--device-table``): the rows are exact, the rest estimated.

    The estimate is the latency predictor fitted on the rows (with the other devices' tables as a transfer basis
    when a benchmark store is present); its predicted latencies give the reference-cell representation and the
    connected-cell distribution that turns a budget into a quantile. ``row_source`` labels the rows' latencies.
    """
    from hwdiffnas.predictors.latency import build_transfer_basis, connected_mask, fit_latency_predictor

    bad = [c.arch_str for c, v in rows.items() if not (math.isfinite(v) and v > 0)]
    if bad:
        raise UserError(f"device table for {name!r}: latency must be a positive number of ms (cell {bad[0]})")
    conn_rows = {c: v for c, v in rows.items() if c.is_connected}
    if len(conn_rows) < 8:
        raise UserError(f"device table for {name!r} has {len(conn_rows)} connected cells; at least 8 are needed "
                        "(20 or more spread over the latency range recommended)")
    basis = None
    if store is not None:
        tables = {d: store.latency(d) for d in store.latency_devices() if d != name}
        basis = build_transfer_basis(store.cells(), tables)
    else:
        bundle = shipped_predictors()
        basis = bundle.basis if bundle is not None else None
    cells = list(conn_rows)
    pred = fit_latency_predictor(cells, np.array([conn_rows[c] for c in cells]), basis=basis)
    log_all = pred.all_log_predictions()  # (15625,) by cell code
    dist = np.sort(np.exp(log_all[connected_mask()]))  # estimated connected-cell distribution
    ref = _ref_latencies(lambda c: conn_rows.get(c, math.nan))
    for i, a in enumerate(HELP_REFERENCE_ARCHS):
        if not math.isfinite(ref[i]):
            ref[i] = float(np.exp(pred.log_predict([Cell.from_str(a)])[0][0]))

    def estimate(cs: Sequence[Cell]) -> tuple[np.ndarray, np.ndarray]:
        point, _lo, hi = pred.predict(list(cs), alpha=0.1)
        return point, hi

    return DeviceLatency(name, device_representation(ref), dist, dict(rows), row_source, estimate,
                         "estimate" if basis is None else "estimate(transfer)")


# --- shipped predictors (no benchmark store) ----------------------------------------------------------
def shipped_predictors() -> Any | None:
    """The predictor bundle shipped in ``hwdiffnas/assets`` (`hwdiffnas.predictors.bundle`), or None if absent."""
    from hwdiffnas.predictors.bundle import assets_dir, default_bundle

    if not (assets_dir() / "predictors_meta.json").is_file():
        return None
    return default_bundle()


def shipped_latency_estimators() -> dict[str, Any]:
    """Latency predictors for store-less search, from the shipped predictor bundle (empty if it is absent)."""
    bundle = shipped_predictors()
    if bundle is None:
        return {}
    return {d: bundle.latency_predictor(d) for d in bundle.devices()}


def shipped_surrogate(dataset: str) -> Callable[[Sequence[Cell]], np.ndarray] | None:
    """The shipped accuracy surrogate for ``dataset`` (None when the bundle or the dataset is missing)."""
    bundle = shipped_predictors()
    if bundle is None or dataset not in bundle.accuracy:
        return None
    return bundle.accuracy_surrogate(dataset).predict


def device_from_checkpoint(name: str, gen: Any, estimators: dict[str, Any]) -> DeviceLatency:
    """A training device of the checkpoint, without a benchmark store: latencies from the shipped estimator."""
    q = gen.device_quantiles_ms(name)
    dist = np.interp(np.linspace(0, 1, 2001), np.linspace(0, 1, q.size), q)  # (2001,) quantile function
    est = estimators.get(name)
    if est is None:
        raise UserError(f"no latency data for {name!r}: no benchmark store and no shipped latency predictor for it; "
                        "import the benchmark data (hwdiffnas data import) or give --device-table FILE.csv")

    def estimate(cs: Sequence[Cell]) -> tuple[np.ndarray, np.ndarray]:
        point, _lo, hi = est.predict(list(cs), alpha=0.1)
        return point, hi

    return DeviceLatency(name, gen.device_rep(name), dist, {}, "table", estimate, "estimate")


# --- the search -----------------------------------------------------------------------------------------
@dataclass
class SearchResult:
    """One returned cell."""

    arch_str: str
    latency_ms: float
    latency_source: str
    accuracy: float | None
    accuracy_source: str
    samples: int
    latency_upper_ms: float | None = None
    may_exceed_budget: bool = False
    index: int | None = None


@dataclass
class SearchReport:
    """Everything a search returns (the CLI prints it as a table or JSON)."""

    device: str
    budget_ms: float
    dataset: str
    budget_quantile: float
    queries: int
    samples: int
    feasible_fraction: float
    validity: float
    connected_fraction: float
    uniqueness: float
    novelty: float | None
    seconds: float
    sample_seconds: float
    results: list[SearchResult]
    checkpoint: str = ""
    notes: list[str] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        d = dict(self.__dict__)
        d["results"] = [dict(r.__dict__) for r in self.results]
        return d


@dataclass(frozen=True)
class SearchSettings:
    samples: int = 500
    queries: int = 10
    top: int = 5
    seed: int = 0
    steps: int = 20
    guidance: str = "joint"
    scale: float = 1.0
    adaptive_fraction: float = 0.0
    quantile_margin: float = 0.0


def run_search(gen: Any, device: DeviceLatency, budget_ms: float, dataset: str, settings: SearchSettings,
               accuracy_lookup: Callable[[Cell], float] | None = None, accuracy_source: str = "",
               surrogate: Callable[[Sequence[Cell]], np.ndarray] | None = None,
               labelled: set[Cell] | None = None) -> SearchReport:
    """Sample, decode, dedupe, check the budget, rank, query at most ``settings.queries`` accuracies.

    ``accuracy_lookup`` is a counted benchmark look-up (None: no store); ``surrogate`` predicts accuracy for
    ranking ties and display; ``labelled`` (the generator's training cells) defines novelty.
    """
    from hwdiffnas.generator.model import Guidance

    t0 = time.perf_counter()
    if dataset not in gen.meta.datasets:
        raise UserError(f"the generator was trained for dataset(s) {', '.join(gen.meta.datasets)}, not {dataset!r}; "
                        f"train one with: hwdiffnas train --dataset {dataset} -o CKPT")
    if not budget_ms > 0 or not math.isfinite(budget_ms):
        raise UserError(f"budget must be a positive number of ms, got {budget_ms}")
    if budget_ms < device.fastest_ms:
        raise UserError(f"budget {budget_ms:g} ms is below the fastest connected cell on {device.name} "
                        f"({device.fastest_ms:.4g} ms); no cell can fit it")
    u = device.budget_quantile(budget_ms)
    # budget sweep: samples are spread over the quantiles [u·(1 − margin), u], i.e. "the best cell under a budget a
    # little below the asked one" — safer on the budget and more diverse where the model is unsure of the boundary
    guidance = Guidance(mode=settings.guidance, scale=settings.scale,
                        adaptive_fraction=settings.adaptive_fraction)
    notes: list[str] = []
    ts = time.perf_counter()
    margin = settings.quantile_margin
    for attempt in range(2):
        u_lo = max(1.0 / device.connected_sorted_ms.size, u * (1.0 - margin))
        u_cond = np.linspace(u, u_lo, settings.samples) if margin > 0 else np.array([u])
        cond = build_conditions(gen.meta.datasets, dataset, 1.0, device.rep, u_cond)
        ops = gen.sample(cond, settings.samples, steps=settings.steps, guidance=guidance,
                         seed=settings.seed + attempt)
        cells = [Cell(tuple(int(x) for x in row)) for row in ops]
        counts = Counter(cells)
        uniq = list(counts)
        point, upper, source = device.latencies(uniq)
        connected = [c.is_connected for c in uniq]
        fits = np.array([conn and np.isfinite(p) and p <= budget_ms for conn, p in zip(connected, point)])
        if fits.any() or attempt == 1:
            break
        # nothing fits (typically a device known only from a few rows, whose representation is an estimate):
        # sample again over the budget quantiles [u/2, u]
        margin = 0.5
        notes.append("no sample fitted the budget; resampled over budget quantiles down to half the asked one")
    sample_seconds = time.perf_counter() - ts
    n = max(1, len(cells))
    feasible_fraction = sum(counts[c] for c, f in zip(uniq, fits) if f) / n
    novelty = None
    if labelled is not None and uniq:
        novelty = sum(1 for c in uniq if c not in labelled) / len(uniq)
    cand = [i for i in range(len(uniq)) if fits[i]]
    sur = surrogate([uniq[i] for i in cand]) if (surrogate is not None and cand) else None
    sur_of = {i: float(sur[j]) for j, i in enumerate(cand)} if sur is not None else {}
    # rank: generator frequency, then surrogate accuracy, then lower latency
    cand.sort(key=lambda i: (-counts[uniq[i]], -sur_of.get(i, 0.0), point[i]))
    results: list[SearchResult] = []
    used = 0
    for i in cand:
        c = uniq[i]
        acc, acc_src = None, "none"
        if accuracy_lookup is not None and used < settings.queries:
            acc, acc_src = float(accuracy_lookup(c)), accuracy_source or "benchmark"
            used += 1
        elif i in sur_of:
            acc, acc_src = sur_of[i], "surrogate"
        may_exceed = bool(source[i] != device.table_source and np.isfinite(upper[i]) and upper[i] > budget_ms)
        results.append(SearchResult(c.arch_str, float(point[i]), source[i], acc, acc_src, counts[c],
                                    float(upper[i]) if source[i] != device.table_source else None, may_exceed))
    queried = [r for r in results if r.accuracy_source not in ("none", "surrogate")]
    rest = [r for r in results if r.accuracy_source in ("none", "surrogate")]
    queried.sort(key=lambda r: (-(r.accuracy or 0.0), r.latency_ms))
    # not looked up: safe picks first, then by surrogate accuracy where there is one, else by generator frequency
    rest.sort(key=lambda r: (r.may_exceed_budget, -(r.accuracy if r.accuracy is not None else 0.0), -r.samples))
    if not results:
        notes.append("no sampled cell fits the budget; try more --samples or a larger budget")
    return SearchReport(
        device=device.name, budget_ms=float(budget_ms), dataset=dataset, budget_quantile=u, queries=used,
        samples=len(cells), feasible_fraction=feasible_fraction, validity=1.0 if cells else 0.0,
        connected_fraction=sum(counts[c] for c, k in zip(uniq, connected) if k) / n,
        uniqueness=len(uniq) / n, novelty=novelty, seconds=time.perf_counter() - t0,
        sample_seconds=sample_seconds, results=(queried + rest)[: settings.top], notes=notes)


# --- harness method -------------------------------------------------------------------------------------
class DiffusionSearch(SearchMethod):
    """``hwdiffnas bench --method diffusion``: the generator proposes, the table checks, Q queries decide."""

    name = "diffusion"

    def __init__(self, checkpoint: str | None = None, samples: int = 500, steps: int = 20,
                 guidance: str = "joint", scale: float = 1.0, adaptive_fraction: float = 0.0,
                 quantile_margin: float = 0.0) -> None:
        from hwdiffnas.generator import default_checkpoint_path
        from hwdiffnas.generator.model import Generator

        self.checkpoint = str(checkpoint or default_checkpoint_path())
        self.gen = Generator.load(self.checkpoint)
        self.options = dict(samples=int(samples), steps=int(steps), guidance=guidance, scale=float(scale),
                            adaptive_fraction=float(adaptive_fraction), quantile_margin=float(quantile_margin))

    def label_queries(self, task: Any) -> int:
        """Accuracy labels used to train the checkpoint (counted on top of the search queries)."""
        return 0

    def describe(self) -> dict[str, Any]:
        return {"method": self.name, "checkpoint": self.checkpoint, **self.options,
                "label_fraction": self.gen.meta.training.get("label_fraction")}

    def run(self, task: Any, queries: Any, seed: int) -> list[Any]:
        from hwdiffnas.baselines.base import picks_from_history

        fallback = self.gen.device_rep(task.device) if task.device in self.gen.meta.devices else None
        dev = device_from_table(task.device, task.cells, task.latency_ms, task.connected, "table", fallback)
        index = task.index_of
        settings = SearchSettings(queries=queries.remaining, top=queries.remaining, seed=int(seed),
                                  **self.options)
        run_search(self.gen, dev, task.budget_ms, task.dataset, settings,
                   accuracy_lookup=lambda c: queries.query(index[c]), accuracy_source="benchmark")
        return picks_from_history(task, queries)
