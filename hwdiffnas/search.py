"""Budgeted architecture search with the conditional generator.

Steps: resolve the device (benchmark table, ``--device-table`` rows, or what the checkpoint knows), turn the
budget into the latency condition (its quantile among the device's connected cells), sample cells conditioned on
"the most accurate cell that fits this budget on this device" (part of them on slightly lower budgets), decode and
dedupe them, check the budget (table latency where known, else an estimate with an upper bound — each result says
which), gather candidates (the fitting samples, their 2-edit neighbourhoods, cells whose accuracy is already known,
the accuracy surrogate's best fitting cells), optionally measure the most promising unsure ones, spend at most Q
accuracy queries (one per NATS class; with a generator trained on every label half go to its own proposals and half
to the surrogate's ranking, with one trained on a fraction all go to the surrogate's ranking) when a benchmark store
is present, and return the best.
"""

from __future__ import annotations

import hashlib
import math
import os
import time
from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from hwdiffnas.baselines.base import SearchMethod
from hwdiffnas.errors import UserError
from hwdiffnas.generator.conditions import HELP_REFERENCE_ARCHS, build_conditions, device_representation
from hwdiffnas.result_order import result_rank
from hwdiffnas.space import Cell


# --- latency sources ----------------------------------------------------------------------------------
@dataclass
class DeviceLatency:
    """What the search knows about a device's latency.

    ``table``: exact latency per cell (a benchmark table or imported rows); ``estimate``: a callable giving
    (point_ms, upper_ms) for cells not in the table, the upper bound one-sided at miss rate ``delta``;
    ``connected_sorted_ms``: the connected-cell latency
    distribution (exact or estimated) used for the budget quantile; ``rep``: the device representation.
    """

    name: str
    rep: np.ndarray
    connected_sorted_ms: np.ndarray
    table: dict[Cell, float] = field(default_factory=dict)
    table_source: str = "table"
    estimate: Callable[[Sequence[Cell], float], tuple[np.ndarray, np.ndarray]] | None = None
    estimate_source: str = "estimate"

    @property
    def fastest_ms(self) -> float:
        return float(self.connected_sorted_ms[0])

    def budget_quantile(self, budget_ms: float) -> float:
        """Fraction of connected cells that fit ``budget_ms`` (from the exact or estimated distribution)."""
        n = int(np.searchsorted(self.connected_sorted_ms, budget_ms, side="right"))
        return n / self.connected_sorted_ms.size

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
                     row_source: str = "imported", basis: Any | None = None) -> DeviceLatency:
    """A device known from a few measured rows (``--device-table``): the rows are exact, the rest estimated.

    The estimate is the latency predictor fitted on the rows (with the other devices' tables as a transfer basis
    when a benchmark store is present); its predicted latencies give the reference-cell representation and the
    connected-cell distribution that turns a budget into a quantile. ``row_source`` labels the rows' latencies;
    ``basis`` (a `TransferBasis`) replaces the one built from the store or shipped in the bundle (e.g. one built
    once, without more devices, when measuring how well unseen devices are handled).
    """
    from hwdiffnas.predictors.latency import build_transfer_basis, connected_mask, fit_latency_predictor

    bad = [c.arch_str for c, v in rows.items() if not (math.isfinite(v) and v > 0)]
    if bad:
        raise UserError(f"device table for {name!r}: latency must be a positive number of ms (cell {bad[0]})")
    conn_rows = {c: v for c, v in rows.items() if c.is_connected}
    if len(conn_rows) < 8:
        raise UserError(f"device table for {name!r} has {len(conn_rows)} connected cells; at least 8 are needed "
                        "(20 or more spread over the latency range recommended)")
    if basis is None and store is not None:
        tables = {d: store.latency(d) for d in store.latency_devices() if d != name}
        basis = build_transfer_basis(store.cells(), tables)
    elif basis is None:
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
    return DeviceLatency(name, device_representation(ref), dist, dict(rows), row_source, pred.point_and_upper,
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


def shipped_surrogate(dataset: str, column: str = "nats") -> Callable[[Sequence[Cell]], np.ndarray] | None:
    """The shipped accuracy surrogate for ``dataset`` (None when the bundle, the dataset or the column is missing)."""
    bundle = shipped_predictors()
    if bundle is None or dataset not in bundle.accuracy or bundle.accuracy[dataset].column != column:
        return None
    return bundle.accuracy_surrogate(dataset).predict


def label_fraction(gen: Any) -> float:
    """The fraction of accuracy labels ``gen`` was trained with (1.0: every label)."""
    return float(gen.meta.training.get("label_fraction", 1.0))


def label_seed(gen: Any) -> int:
    """The training seed that drew ``gen``'s label subset (it also seeds the surrogate fitted on it)."""
    return int(gen.meta.training.get("seed", 0))


def labelled_rows(gen: Any, connected: np.ndarray) -> np.ndarray:
    """Indices (into the store's cells) of the seeded label subset ``gen`` was trained with."""
    from hwdiffnas.generator.train import labelled_mask

    return np.flatnonzero(labelled_mask(connected, label_fraction(gen), label_seed(gen)))


@dataclass
class TrainingLabels:
    """What a generator's training labels give the search: which cells were labelled, their accuracies (free to
    reuse when only a fraction was labelled) and an accuracy surrogate fitted on the same labels."""

    labelled: set[Cell]
    known: dict[Cell, float]
    surrogate: Callable[[Sequence[Cell]], np.ndarray] | None
    surrogate_source: str


def training_labels(gen: Any, store: Any, dataset: str) -> TrainingLabels:
    """The labels ``gen`` was trained with (its seeded ``label_fraction`` subset of the store's cells).

    With every cell labelled (``label_fraction`` 1) the labels are not re-read at search time — each look-up is
    a counted query — and the surrogate is the shipped one (trained on all labels of the same column); with a
    fraction, the labelled accuracies are known for free and a surrogate is fitted on exactly those labels (once:
    it is cached in the data directory's ``cache/`` folder, keyed by a hash of the labels).
    """
    from hwdiffnas.predictors.accuracy import fit_accuracy_surrogate

    frac = label_fraction(gen)
    cells = store.cells()
    rows = labelled_rows(gen, store.connected())
    labelled = {cells[i] for i in rows}
    column = gen.meta.accuracy_column
    if frac >= 1.0:
        shipped = shipped_surrogate(dataset, column)
        if shipped is not None:
            return TrainingLabels(labelled, {}, shipped, "shipped")
    acc = np.asarray(store.accuracy(dataset, column), dtype=np.float64)
    rows = rows[np.isfinite(acc[rows])]
    if rows.size < 4:
        return TrainingLabels(labelled, {}, None, "none")
    key = _labels_key(dataset, column, label_seed(gen), rows, acc[rows])
    cache = Path(store.path).parent / "cache" / f"surrogate-{key[:20]}.safetensors"
    sur = _cached_surrogate(cache, key, lambda: fit_accuracy_surrogate(
        [cells[i] for i in rows], acc[rows], dataset=dataset, column=column, seed=label_seed(gen)))
    known = {cells[i]: float(acc[i]) for i in rows} if frac < 1.0 else {}
    return TrainingLabels(labelled, known, sur.predict, f"fitted on {rows.size} labels")


def _labels_key(dataset: str, column: str, seed: int, rows: np.ndarray, accuracy: np.ndarray) -> str:
    """A hash of everything a surrogate fitted on these labels depends on: the labels (a re-imported store with
    other accuracies gets another key), the seed, and the surrogate's features, file format and package version."""
    from hwdiffnas import __version__
    from hwdiffnas.predictors.accuracy import SURROGATE_FEATURES
    from hwdiffnas.predictors.serialize import FORMAT_VERSION

    h = hashlib.sha256(f"{dataset}|{column}|{seed}|{SURROGATE_FEATURES}|{FORMAT_VERSION}|{__version__}|".encode())
    h.update(np.asarray(rows, dtype=np.int64).tobytes())
    h.update(np.asarray(accuracy, dtype=np.float64).tobytes())
    return h.hexdigest()


def _cached_surrogate(path: Path, key: str, fit: Callable[[], Any]) -> Any:
    """The accuracy surrogate cached at ``path`` for ``key``, or a fresh ``fit()`` written there (the fit takes
    ~10 s at 10 % labels; a search reuses it). The file holds the forest exactly, so a cached surrogate ranks like
    the fresh one. A corrupt or stale file is refitted; an unwritable folder, or a forest the format cannot hold,
    is not cached."""
    from hwdiffnas.predictors.serialize import load_accuracy_surrogate, save_accuracy_surrogate

    if path.is_file():
        try:
            return load_accuracy_surrogate(path, key)
        except UserError:
            pass  # corrupt, foreign or stale: refit and overwrite
    sur = fit()
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        save_accuracy_surrogate(sur, tmp, key)
        os.replace(tmp, path)
    except (OSError, UserError):
        tmp.unlink(missing_ok=True)
    return sur


def device_from_checkpoint(name: str, gen: Any, estimators: dict[str, Any]) -> DeviceLatency:
    """A training device of the checkpoint, without a benchmark store: latencies from the shipped estimator."""
    q = gen.device_quantiles_ms(name)
    dist = np.interp(np.linspace(0, 1, 2001), np.linspace(0, 1, q.size), q)  # (2001,) quantile function
    est = estimators.get(name)
    if est is None:
        raise UserError(f"no latency data for {name!r}: no benchmark store and no shipped latency predictor for it; "
                        "import the benchmark data (hwdiffnas data import) or give --device-table FILE.csv")
    return DeviceLatency(name, gen.device_rep(name), dist, {}, "table", est.point_and_upper, "estimate")


# --- the search -----------------------------------------------------------------------------------------
@dataclass
class SearchResult:
    """One returned cell. ``origin``: how it became a candidate — ``sample`` (the generator proposed it),
    ``neighbour`` (within a few edits of a most-sampled cell), ``surrogate`` (the surrogate's ranking of every
    fitting cell) or ``label`` (a cell whose accuracy was already known, e.g. a training label)."""

    arch_str: str
    latency_ms: float
    latency_source: str
    accuracy: float | None
    accuracy_source: str
    samples: int
    latency_upper_ms: float | None = None
    may_exceed_budget: bool = False
    index: int | None = None
    origin: str = "sample"


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
    candidates: int = 0
    known_labels: int = 0
    measurements: int = 0

    def to_dict(self) -> dict[str, Any]:
        d = dict(self.__dict__)
        d["results"] = [dict(r.__dict__) for r in self.results]
        return d


@dataclass(frozen=True)
class SearchSettings:
    """Sampling, candidate and query settings of one search.

    ``quantile_margin``/``sweep_share``: that share of the samples asks for budgets spread over the quantiles
    [u·(1 − margin), u] below the asked one u (safer on the budget), the rest for u itself.
    ``refine_top``/``refine_radius``: the cells within ``refine_radius`` op changes of the ``refine_top``
    most-sampled fitting cells join the candidates (local refinement around the generator's proposals).
    ``global_share``: with an accuracy surrogate, the share of the queries spent on the surrogate's ranking of
    every cell that fits (the rest go to the generator's candidates, ranked by the surrogate); None: see
    `default_global_share`.
    ``measure_slack``: with ``measurements``, cells whose *estimated* latency exceeds the budget by at most this
    factor are still candidates for a measurement (an estimate from few rows can overrate the latency of an accurate
    cell near the budget); a cell is returned only when its measurement or its estimate fits.
    """

    samples: int = 500
    queries: int = 10
    top: int = 5
    seed: int = 0
    steps: int = 20
    guidance: str = "joint"
    scale: float = 1.0
    adaptive_fraction: float = 0.0
    quantile_margin: float = 0.5
    sweep_share: float = 0.6
    refine_top: int = 5
    refine_radius: int = 2
    global_share: float | None = None
    upper_delta: float = 0.05
    measurements: int = 0
    measure_slack: float = 1.2


def default_global_share(gen: Any) -> float:
    """The query split when none is given: half the queries to the generator's proposals when it was trained with
    every accuracy label, none when it saw only a fraction of them.

    Measured on the protocol grid (docs/benchmarks.md, issue 5): with all labels the generator's most-sampled cells
    find oracles the shipped surrogate misses (mean regret 0.000 at half vs 0.015 with every query on the
    surrogate's ranking); with 10 % labels its proposals are worse than the surrogate's ranking (0.144 vs 0.102),
    with 1 % level (0.648 vs 0.662 on three label subsets).
    """
    return 0.5 if label_fraction(gen) >= 1.0 else 1.0


@dataclass
class _Candidate:
    cell: Cell
    point: float
    upper: float
    source: str
    count: int
    origin: str
    score: float = math.nan


def _sample_cells(gen: Any, device: DeviceLatency, u: float, dataset: str, settings: SearchSettings,
                  budget_ms: float, notes: list[str]) -> list[Cell]:
    """Raw generator samples for budget quantile ``u`` (one resample over lower quantiles if none fits)."""
    from hwdiffnas.generator.model import Guidance

    guidance = Guidance(mode=settings.guidance, scale=settings.scale, adaptive_fraction=settings.adaptive_fraction)
    # budget sweep: samples are spread over the quantiles [u·(1 − margin), u], i.e. "the best cell under a budget a
    # little below the asked one" — safer on the budget and more diverse where the model is unsure of the boundary
    margin = settings.quantile_margin
    cells: list[Cell] = []
    for attempt in range(2):
        u_lo = max(1.0 / device.connected_sorted_ms.size, u * (1.0 - margin))
        share = settings.sweep_share if attempt == 0 else 1.0
        n_sweep = int(round(share * settings.samples)) if margin > 0 else 0
        u_cond = np.concatenate([np.full(settings.samples - n_sweep, u), np.linspace(u, u_lo, n_sweep)])
        cond = build_conditions(gen.meta.datasets, dataset, 1.0, device.rep, u_cond)
        ops = gen.sample(cond, settings.samples, steps=settings.steps, guidance=guidance,
                         seed=settings.seed + attempt)
        cells = [Cell(tuple(int(x) for x in row)) for row in ops]
        uniq = list(dict.fromkeys(cells))
        point, _up, _src = device.latencies(uniq)
        if attempt == 1 or any(c.is_connected and np.isfinite(p) and p <= budget_ms for c, p in zip(uniq, point)):
            break
        # nothing fits (typically a device known only from a few rows, whose representation is an estimate):
        # sample again over the budget quantiles [u/2, u]
        margin = 0.5
        notes.append("no sample fitted the budget; resampled over budget quantiles down to half the asked one")
    return cells


def _fitting(device: DeviceLatency, cells: Sequence[Cell], budget_ms: float, counts: Counter[Cell],
             origin: str, delta: float, slack: float = 1.0) -> list[_Candidate]:
    """Connected cells of ``cells`` whose (exact or estimated) latency fits the budget (an estimate may exceed it
    by the factor ``slack``: such cells are measurement candidates)."""
    point, upper, source = device.latencies(cells, delta)
    return [_Candidate(c, float(p), float(up), src, counts.get(c, 0), origin)
            for c, p, up, src in zip(cells, point, upper, source)
            if c.is_connected and np.isfinite(p) and p <= (budget_ms * slack if src != device.table_source
                                                           else budget_ms)]


def run_search(gen: Any, device: DeviceLatency, budget_ms: float, dataset: str, settings: SearchSettings,
               accuracy_lookup: Callable[[Cell], float] | None = None, accuracy_source: str = "",
               surrogate: Callable[[Sequence[Cell]], np.ndarray] | None = None,
               labelled: set[Cell] | None = None,
               known_accuracy: dict[Cell, float] | None = None,
               measure: Callable[[Cell], float] | None = None, measure_source: str = "measured") -> SearchReport:
    """Sample, decode, dedupe, check the budget, rank, query at most ``settings.queries`` accuracies.

    Candidates: the fitting samples, the cells near the most-sampled ones, every fitting cell whose accuracy is
    already known (``known_accuracy``: labels paid for in training; no query spent) and — with a ``surrogate`` —
    the surrogate's best fitting cells. Queries (``accuracy_lookup``, a counted benchmark look-up; None: no store)
    go to the best-ranked candidates, at most one per NATS class and none to a class whose accuracy is known from
    a cell sure to fit.
    ``labelled`` (the generator's training cells) defines novelty. ``measure`` (cell → ms on the device) lets
    the search replace up to ``settings.measurements`` uncertain estimates by measurements.
    """
    from hwdiffnas.space import all_cells, neighbourhood

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
    notes: list[str] = []
    ts = time.perf_counter()
    cells = _sample_cells(gen, device, u, dataset, settings, budget_ms, notes)
    sample_seconds = time.perf_counter() - ts
    counts = Counter(cells)
    uniq = list(counts)
    n = max(1, len(cells))
    delta = settings.upper_delta
    global_share = default_global_share(gen) if settings.global_share is None else settings.global_share
    # with measurements to spend, estimates a little over the budget stay candidates until measured
    slack = settings.measure_slack if measure is not None and settings.measurements > 0 else 1.0
    sampled = sorted(_fitting(device, uniq, budget_ms, counts, "sample", delta, slack), key=lambda c: -c.count)
    feasible_fraction = sum(c.count for c in sampled if c.point <= budget_ms) / n
    novelty = None
    if labelled is not None and uniq:
        novelty = sum(1 for c in uniq if c not in labelled) / len(uniq)

    # candidates: samples, then neighbours of the most-sampled fitting cells, then known labels
    pool: dict[Cell, _Candidate] = {c.cell: c for c in sampled}
    near: list[Cell] = []
    for c in sampled[: settings.refine_top]:
        near += [x for x in neighbourhood(c.cell, settings.refine_radius) if x not in pool]
    for c in _fitting(device, list(dict.fromkeys(near)), budget_ms, counts, "neighbour", delta, slack):
        pool[c.cell] = c
    known = known_accuracy or {}
    for c in _fitting(device, [x for x in known if x not in pool], budget_ms, counts, "label", delta, slack):
        pool[c.cell] = c
    glob: list[_Candidate] = []
    if surrogate is not None:
        if global_share > 0:
            rest = [x for x in all_cells() if x not in pool]
            glob = _fitting(device, rest, budget_ms, counts, "surrogate", delta, slack)
        everyone = list(pool.values()) + glob
        if everyone:
            for c, s in zip(everyone, surrogate([c.cell for c in everyone])):
                c.score = float(s)

    def may_exceed(c: _Candidate) -> bool:
        """An estimated latency whose upper bound exceeds the budget or cannot be certified (an infinite bound:
        too few rows for the asked risk); exact latencies never do."""
        return bool(c.source != device.table_source and not c.upper <= budget_ms)

    def plan_queries(n: int, sure_first: bool, measuring: bool = False) -> tuple[list[_Candidate], list[_Candidate]]:
        """(the ``n`` candidates to look up, every candidate in plan order). Look-ups: at most one per NATS
        class, never a class whose accuracy is known from a cell sure to fit; the generator's share alternates its
        most-sampled cells (its own belief) with the surrogate's ranking of its candidates, the rest follows the
        surrogate's ranking of every fitting cell. ``sure_first``: cells sure to fit come before cells that only
        probably fit. ``measuring``: the plan is for latency measurements, so a labelled cell is planned too (its
        accuracy is known for free; only its latency is unsure)."""
        def key(c: _Candidate) -> tuple[float, ...]:
            score = c.score if math.isfinite(c.score) else -math.inf
            first = (-score, -c.count) if surrogate is not None else (-c.count, -score)
            return (float(sure_first and may_exceed(c)), *first, c.point)

        gen_order = sorted(pool.values(), key=key)
        glob_order = sorted([*pool.values(), *glob], key=key)  # every fitting candidate, the generator's included
        freq_order = sorted(sampled, key=lambda c: (float(sure_first and may_exceed(c)), -c.count, c.point))
        taken = set(known_sure_classes)
        n_glob = int(round(global_share * n)) if surrogate is not None else 0
        plan: list[_Candidate] = []

        def take(order: list[_Candidate], k: int) -> None:
            for c in order:
                if k <= 0:
                    return
                if (c.cell in known and not measuring) or c.cell.nats_unique_str in taken:
                    continue
                taken.add(c.cell.nats_unique_str)
                plan.append(c)
                k -= 1

        for i in range(n - n_glob):
            take(freq_order if i % 2 == 0 else gen_order, 1)
        take(gen_order, n - n_glob - len(plan))
        take(glob_order, n - len(plan))
        take(gen_order, n - len(plan))
        planned = {c.cell for c in plan}
        rest = {c.cell: c for c in gen_order + glob_order if c.cell not in planned}
        return plan, plan + list(rest.values())

    def sure_known_classes() -> set[str]:
        """Classes whose accuracy is known from a cell sure to fit: no query or measurement is spent on their other
        members (a known class member over the budget, or only estimated within it, does not count: its class-mates
        that fit stay queryable, and one of them sure to fit is a sure pick once looked up)."""
        return {c.cell.nats_unique_str for c in pool.values()
                if c.cell in known and c.point <= budget_ms and not may_exceed(c)}

    known_sure_classes = sure_known_classes()
    n_measured = 0
    if measure is not None and settings.measurements > 0:
        # measure the cells the queries would go to if every estimate were right (labelled cells included: their
        # accuracy is free, their latency is not), where the estimate is unsure; a cell measured over the budget
        # leaves the candidates at once, so its NATS class-mates (same function, other dead-edge ops, other
        # latency) take its place in the next plan
        while n_measured < settings.measurements:
            plan = plan_queries(settings.queries + settings.measurements, sure_first=False, measuring=True)[0]
            c = next((c for c in plan if may_exceed(c)), None)
            if c is None:
                break
            c.point = c.upper = float(measure(c.cell))
            c.source = measure_source
            n_measured += 1
            if c.point > budget_ms:
                pool.pop(c.cell, None)
                glob = [g for g in glob if g.cell != c.cell]
                sampled = [g for g in sampled if g.cell != c.cell]
        pool = {k: c for k, c in pool.items() if c.point <= budget_ms}
        glob = [c for c in glob if c.point <= budget_ms]
        sampled = [c for c in sampled if c.point <= budget_ms]
        known_sure_classes = sure_known_classes()  # a labelled cell measured within the budget closes its class
    plan, ordered = plan_queries(settings.queries, sure_first=True)
    planned = {c.cell for c in plan}
    if any(c.source != device.table_source and not math.isfinite(c.upper) for c in ordered):
        notes.append(f"the latency estimate cannot bound a miss rate of {delta:g} (that takes at least "
                     f"{math.ceil(1 / delta - 1e-9) - 1} measured rows): its picks are flagged; add rows, raise --risk "
                     "or --measure candidates")

    results: list[SearchResult] = []
    used = 0
    for c in ordered:
        acc, acc_src = None, "none"
        if c.cell in known:
            acc, acc_src = float(known[c.cell]), "label"
        elif accuracy_lookup is not None and c.cell in planned:
            acc, acc_src = float(accuracy_lookup(c.cell)), accuracy_source or "benchmark"
            used += 1
        elif math.isfinite(c.score):
            acc, acc_src = c.score, "surrogate"
        exact = c.source == device.table_source
        results.append(SearchResult(c.cell.arch_str, c.point, c.source, acc, acc_src, c.count,
                                    None if exact else c.upper, may_exceed(c), origin=c.origin))
    known_acc = [r for r in results if r.accuracy_source not in ("none", "surrogate")]
    rest_r = [r for r in results if r.accuracy_source in ("none", "surrogate")]
    # known accuracies (queried or labelled) first, safe picks before possibly-over-budget ones
    known_acc.sort(key=lambda r: (r.may_exceed_budget, -(r.accuracy or 0.0), r.latency_ms))
    # not looked up: safe picks first, each group in query-plan order (the generator's and the surrogate's best
    # alternate, as the queries would)
    rest_r.sort(key=lambda r: r.may_exceed_budget)
    top = sorted((known_acc + rest_r)[: settings.top], key=result_rank)  # the same picks, in the order believed
    if not results:
        notes.append("no sampled cell fits the budget; try more --samples or a larger budget")
    return SearchReport(
        device=device.name, budget_ms=float(budget_ms), dataset=dataset, budget_quantile=u, queries=used,
        samples=len(cells), feasible_fraction=feasible_fraction, validity=1.0 if cells else 0.0,
        connected_fraction=sum(counts[c] for c in uniq if c.is_connected) / n,
        uniqueness=len(uniq) / n, novelty=novelty, seconds=time.perf_counter() - t0,
        sample_seconds=sample_seconds, results=top, notes=notes,
        candidates=len(pool) + len(glob), known_labels=len(known), measurements=n_measured)


# --- harness method -------------------------------------------------------------------------------------
class DiffusionSearch(SearchMethod):
    """``hwdiffnas bench --method diffusion``: the generator proposes, the table checks, Q queries decide.

    A checkpoint trained on a fraction of the labels pays for those labels here (``label_queries``): their
    accuracies are read through the query oracle, known to the search, and fit its accuracy surrogate.
    """

    name = "diffusion"

    def __init__(self, checkpoint: str | None = None, samples: int = 500, steps: int = 20,
                 guidance: str = "joint", scale: float = 1.0, adaptive_fraction: float = 0.0,
                 quantile_margin: float | None = None, sweep_share: float | None = None, refine_top: int = 5,
                 refine_radius: int = 2, global_share: float | None = None) -> None:
        from hwdiffnas.generator import default_checkpoint_path
        from hwdiffnas.generator.model import Generator

        self.checkpoint = str(checkpoint or default_checkpoint_path())
        self.gen = Generator.load(self.checkpoint)
        self.options = dict(samples=int(samples), steps=int(steps), guidance=guidance, scale=float(scale),
                            adaptive_fraction=float(adaptive_fraction),
                            quantile_margin=float(SearchSettings.quantile_margin if quantile_margin is None
                                                  else quantile_margin),
                            sweep_share=float(SearchSettings.sweep_share if sweep_share is None else sweep_share),
                            refine_top=int(refine_top), refine_radius=int(refine_radius),
                            global_share=default_global_share(self.gen) if global_share is None
                            else float(global_share))
        self._surrogates: dict[tuple[str, int], Callable[[Sequence[Cell]], np.ndarray]] = {}

    @property
    def label_fraction(self) -> float:
        return label_fraction(self.gen)

    def _labelled(self, task: Any) -> np.ndarray:
        return labelled_rows(self.gen, task.connected)

    def label_queries(self, task: Any) -> int:
        """Accuracy labels the checkpoint was trained with, when it used a fraction (all labels: 0, issue-4
        protocol — the full-label run is a correctness check, not a label-efficiency claim)."""
        return 0 if self.label_fraction >= 1.0 else int(self._labelled(task).size)

    def describe(self) -> dict[str, Any]:
        return {"method": self.name, "checkpoint": self.checkpoint, **self.options,
                "label_fraction": self.label_fraction}

    def _surrogate(self, task: Any, rows: np.ndarray, y: np.ndarray) -> Callable[[Sequence[Cell]], np.ndarray]:
        from hwdiffnas.predictors.accuracy import fit_accuracy_surrogate

        key = (task.dataset, hash(rows.tobytes()))
        if key not in self._surrogates:
            ok = np.isfinite(y)
            self._surrogates[key] = fit_accuracy_surrogate(
                [task.cells[i] for i in rows[ok]], y[ok], dataset=task.dataset, column=task.column,
                seed=label_seed(self.gen)).predict
        return self._surrogates[key]

    def run(self, task: Any, queries: Any, seed: int) -> list[Any]:
        from hwdiffnas.baselines.base import picks_from_history

        fallback = self.gen.device_rep(task.device) if task.device in self.gen.meta.devices else None
        dev = device_from_table(task.device, task.cells, task.latency_ms, task.connected, "table", fallback)
        index = task.index_of
        known: dict[Cell, float] = {}
        if self.label_fraction < 1.0:
            rows = self._labelled(task)
            y = queries.label(rows)
            known = {task.cells[i]: float(a) for i, a in zip(rows, y) if np.isfinite(a)}
            surrogate = self._surrogate(task, rows, y)
        else:
            surrogate = shipped_surrogate(task.dataset, task.column)
        settings = SearchSettings(queries=queries.remaining, top=queries.remaining, seed=int(seed),
                                  **self.options)
        run_search(self.gen, dev, task.budget_ms, task.dataset, settings,
                   accuracy_lookup=lambda c: queries.query(index[c]), accuracy_source="benchmark",
                   surrogate=surrogate, known_accuracy=known)
        return picks_from_history(task, queries)
