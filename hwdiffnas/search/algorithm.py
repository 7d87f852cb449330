"""The search algorithm: sample cells for a budget, gather the candidates, measure the unsure ones, spend the
accuracy queries, return the best (`run_search`)."""

from __future__ import annotations

import math
import time
from collections import Counter
from collections.abc import Callable, Sequence
from typing import Any

import numpy as np

from hwdiffnas.errors import UserError
from hwdiffnas.generator.conditions import build_conditions
from hwdiffnas.latency.device import DeviceLatency
from hwdiffnas.plugins import get_space
from hwdiffnas.result_order import result_rank
from hwdiffnas.search.measure import MeasureLedger, Refit, plan_measurements
from hwdiffnas.search.pool import build_pool
from hwdiffnas.search.report import SearchReport, SearchResult, SearchSettings, default_global_share
from hwdiffnas.space import Cell
from hwdiffnas.spaces.base import SearchSpace


def space_of(gen: Any) -> SearchSpace[Any]:
    """The search space of a generator (its checkpoint records it; a stand-in without one samples NB201)."""
    return getattr(gen, "space", None) or get_space()


def sample_cells(gen: Any, device: DeviceLatency, u: float, dataset: str, settings: SearchSettings,
                 budget_ms: float, notes: list[str]) -> list[Cell]:
    """Raw generator samples for budget quantile ``u`` (one resample over lower quantiles if none fits)."""
    from hwdiffnas.generator.model import Guidance

    guidance = Guidance(mode=settings.guidance, scale=settings.scale, adaptive_fraction=settings.adaptive_fraction)
    # budget sweep: samples are spread over the quantiles [u·(1 − margin), u], i.e. "the best cell under a budget a
    # little below the asked one" — safer on the budget and more diverse where the model is unsure of the boundary
    margin = settings.quantile_margin
    rep = device.condition_rep()
    space = space_of(gen)
    cells: list[Cell] = []
    for attempt in range(2):
        u_lo = max(1.0 / device.connected_sorted_ms.size, u * (1.0 - margin))
        share = settings.sweep_share if attempt == 0 else 1.0
        n_sweep = int(round(share * settings.samples)) if margin > 0 else 0
        u_cond = np.concatenate([np.full(settings.samples - n_sweep, u), np.linspace(u, u_lo, n_sweep)])
        cond = build_conditions(gen.meta.datasets, dataset, 1.0, rep, u_cond)
        ops = gen.sample(cond, settings.samples, steps=settings.steps, guidance=guidance,
                         seed=settings.seed + attempt)
        cells = [space.decode(row) for row in ops]
        uniq = list(dict.fromkeys(cells))
        point, _up, _src = device.latencies(uniq)
        if attempt == 1 or any(space.is_valid(c) and np.isfinite(p) and p <= budget_ms for c, p in zip(uniq, point)):
            break
        # nothing fits (typically a device known only from a few rows, whose representation is an estimate):
        # sample again over the budget quantiles [u/2, u]
        margin = 0.5
        notes.append("no sample fitted the budget; resampled over budget quantiles down to half the asked one")
    return cells


def run_search(gen: Any, device: DeviceLatency, budget_ms: float, dataset: str, settings: SearchSettings,
               accuracy_lookup: Callable[[Cell], float] | None = None, accuracy_source: str = "",
               surrogate: Callable[[Sequence[Cell]], np.ndarray] | None = None,
               labelled: set[Cell] | None = None,
               known_accuracy: dict[Cell, float] | None = None,
               measure: Callable[[Cell], float] | None = None, measure_source: str = "measured",
               progress: Callable[[str], None] | None = None, refit: Refit | None = None) -> SearchReport:
    """Sample, decode, dedupe, check the budget, rank, query at most ``settings.queries`` accuracies.

    Candidates (`hwdiffnas.search.pool`): the fitting samples, the cells near the most-sampled ones, every fitting
    cell whose accuracy is already known (``known_accuracy``: labels paid for in training; no query spent) and —
    with a ``surrogate`` — the surrogate's best fitting cells. Queries (``accuracy_lookup``, a counted benchmark
    look-up; None: no store) go to the best-ranked candidates, at most one per NATS class and none to a class
    whose accuracy is known from a cell sure to fit.
    ``labelled`` (the generator's training cells) defines novelty. ``measure`` (cell → median ms on the device;
    an exception is a failed measurement) lets the search make up to ``settings.measurements`` measurements
    before the queries (`hwdiffnas.search.measure`; ``progress`` gets a line per measurement); with
    ``settings.verify`` only cells measured within the budget are looked up and returned; ``refit`` (measured
    medians → the device with its estimate refitted on its rows and them, e.g. `device_from_rows`; off unless
    given) re-estimates the unmeasured candidates after each measurement.
    """
    space = space_of(gen)
    t0 = time.perf_counter()
    if dataset not in gen.meta.datasets:
        raise UserError(f"the generator was trained for dataset(s) {', '.join(gen.meta.datasets)}, not {dataset!r}; "
                        f"train one with: hwdiffnas train --dataset {dataset} -o CKPT")
    if not budget_ms > 0 or not math.isfinite(budget_ms):
        raise UserError(f"budget must be a positive number of ms, got {budget_ms}")
    if budget_ms < device.fastest_ms:
        raise UserError(f"budget {budget_ms:g} ms is below the fastest connected cell on {device.name} "
                        f"({device.fastest_ms:.4g} ms); no cell can fit it")
    measuring = measure is not None and settings.measurements > 0
    if settings.verify and not measuring:
        raise UserError("verifying the picks needs measurements: a way to measure and a positive measurement cap")
    u = device.budget_quantile(budget_ms)
    notes: list[str] = []
    ts = time.perf_counter()
    cells = sample_cells(gen, device, u, dataset, settings, budget_ms, notes)
    sample_seconds = time.perf_counter() - ts
    counts = Counter(cells)
    uniq = list(counts)
    n = max(1, len(cells))
    delta = settings.upper_delta
    global_share = default_global_share(gen) if settings.global_share is None else settings.global_share
    # with measurements to spend, estimates a little over the budget stay candidates until measured (the widest
    # slack once the planned look-ups are settled; `hwdiffnas.search.measure`)
    slack = max(settings.measure_slack, settings.widen_slack) if measuring else 1.0
    known = known_accuracy or {}
    pool = build_pool(device, uniq, counts, budget_ms, lambda c: space.neighbours(c, settings.refine_radius),
                      settings.refine_top, delta, slack, known, surrogate, global_share,
                      lambda: list(space.enumerate()), space=space)
    feasible_fraction = sum(c.count for c in pool.sampled if c.point <= budget_ms) / n
    novelty = None
    if labelled is not None and uniq:
        novelty = sum(1 for c in uniq if c not in labelled) / len(uniq)

    ledger = None
    if measuring:
        assert measure is not None
        ledger = MeasureLedger(measure, settings.measurements, float(budget_ms), settings.verify, progress)
        plan_measurements(pool, ledger, settings.queries or settings.top, measure_source, settings.measure_slack,
                          slack, refit, delta)
        if ledger.failed:
            notes.append(f"{len(ledger.failed)} measurement(s) failed; those cells were skipped")
        if settings.verify and not pool.size:
            notes.append(f"no verified pick: none of the {len(ledger.medians)} cell(s) measured fits the budget "
                         f"{budget_ms:g} ms ({ledger.spent} measurement(s) of {ledger.cap}); raise --measure, the "
                         "budget or --samples")
    plan, ordered = pool.plan_queries(settings.queries, sure_first=True)
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
        medians = ledger.medians.get(c.cell) if ledger is not None else None
        results.append(SearchResult(space.format(c.cell), c.point, c.source, acc, acc_src, c.count,
                                    None if exact else c.upper, pool.may_exceed(c), origin=c.origin,
                                    measured_ms=list(medians) if medians else None,
                                    verified=ledger.fits(c.cell) if ledger is not None else None))
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
        connected_fraction=sum(counts[c] for c in uniq if space.is_valid(c)) / n,
        uniqueness=len(uniq) / n, novelty=novelty, seconds=time.perf_counter() - t0,
        sample_seconds=sample_seconds, results=top, notes=notes,
        candidates=pool.size, known_labels=len(known), measurements=ledger.spent if ledger is not None else 0,
        verify=settings.verify,
        measurement_failures=[{"arch_str": space.format(c), "error": e} for c, e in ledger.failed.items()]
        if ledger is not None else [])
