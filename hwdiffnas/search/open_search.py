"""Search in a space without accuracy tables (FBNet): the generator proposes, the objective ranks, the budget is
checked against the device's latency (exact where tabulated, else an estimate with its bound).

`run_open_search`: sample the generator for the device and budget (conditioned on the best objective rank, the
device representation and the budget quantile, spread a little below the asked quantile), keep the samples that
fit, climb from the best of them (`hwdiffnas.search.frontier.climb`: single- and two-position changes that keep
fitting, scored by the objective's scorer), optionally measure unsure candidates on the device, compute the
objective on the best candidates where it is not a count (``evaluations``, counted), and return the best.
A pick "fits" when its latency is exact (a table, measured rows, a measurement) and within the budget, or its
estimate's upper bound at ``risk`` is; estimates whose point fits but bound does not are flagged
``may_exceed_budget``.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import asdict, dataclass, field
from typing import Any

import numpy as np

from hwdiffnas.errors import UserError
from hwdiffnas.latency.space_device import SpaceDevice
from hwdiffnas.objectives.scorer import ObjectiveScorer
from hwdiffnas.search.frontier import climb, unique_rows


@dataclass(frozen=True)
class OpenSearchSettings:
    """Sampling, refinement and cost settings of an open-space search."""

    samples: int = 500
    top: int = 5
    seed: int = 0
    steps: int = 20
    guidance: str = "joint"
    scale: float = 1.0
    adaptive_fraction: float = 0.5
    risk: float = 0.05
    evaluations: int = 10
    refine: bool = True
    latency_margin: float = 0.2
    sweep_share: float = 1.0
    measurements: int = 0


@dataclass
class OpenPick:
    """One returned architecture."""

    arch: str
    latency_ms: float
    upper_ms: float
    latency_source: str
    objective: str
    value: float
    value_source: str
    may_exceed_budget: bool
    origin: str
    macs: int
    params: int

    def to_dict(self) -> dict[str, Any]:
        d = asdict(self)
        for k in ("latency_ms", "upper_ms", "value"):
            d[k] = None if not math.isfinite(d[k]) else d[k]
        return d


@dataclass
class OpenSearchReport:
    """What a search did and found."""

    space: str
    device: str
    setting: str
    objective: str
    budget_ms: float
    budget_quantile: float
    samples: int
    within_budget: float
    sure_within_budget: float
    uniqueness: float
    candidates: int
    evaluations: int
    known_labels: int
    measurements: int
    best_sample_value: float
    seconds: float
    sample_seconds: float
    results: list[OpenPick] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    checkpoint: str = ""

    def to_dict(self) -> dict[str, Any]:
        d = {k: v for k, v in self.__dict__.items() if k != "results"}
        d["best_sample_value"] = None if not math.isfinite(self.best_sample_value) else self.best_sample_value
        d["results"] = [r.to_dict() for r in self.results]
        return d


def sample_codes(gen: Any, device: SpaceDevice, budget_ms: float, objective: str,
                 settings: OpenSearchSettings) -> np.ndarray:
    """(samples, positions) raw generator samples for a budget: a ``sweep_share`` of them ask for the budgets
    spread over ``[budget·(1 − latency_margin), budget]`` (in ms: where the device's latency distribution is
    steep, a margin in quantiles would be a sliver of a millisecond), the rest for the budget itself."""
    from hwdiffnas.generator.conditions import build_conditions
    from hwdiffnas.generator.model import Guidance

    n = settings.samples
    n_sweep = int(round(settings.sweep_share * n))
    floor = 1.0 / max(1, device.reference_sorted_ms.size)
    u = max(floor, device.budget_quantile(budget_ms))
    u_lo = max(floor, device.budget_quantile(budget_ms * (1.0 - settings.latency_margin)))
    u_cond = np.concatenate([np.full(n - n_sweep, u), np.linspace(u, u_lo, n_sweep)])
    cond = build_conditions(gen.meta.datasets, objective, 1.0, device.rep, u_cond)
    guidance = Guidance(mode=settings.guidance, scale=settings.scale, adaptive_fraction=settings.adaptive_fraction)
    return np.asarray(gen.sample(cond, n, steps=settings.steps, guidance=guidance, seed=settings.seed),
                      dtype=np.int64)


def run_open_search(gen: Any, device: SpaceDevice, budget_ms: float, scorer: ObjectiveScorer,
                    settings: OpenSearchSettings, condition_on: str | None = None,
                    evaluate: Callable[[Sequence[Any]], np.ndarray] | None = None,
                    known: Mapping[str, float] | None = None,
                    measure: Callable[[Any], float] | None = None,
                    measure_source: str = "measured") -> OpenSearchReport:
    """Search ``device`` under ``budget_ms`` for the best architectures by ``scorer`` (module docstring).

    ``condition_on``: the checkpoint objective the generator is asked for (default ``scorer.name``).
    ``evaluate(archs)`` computes the objective where the scorer is a surrogate (at most ``settings.evaluations``
    architectures); ``known`` (exact string → value: a user's labels) counts as evaluated for free; ``measure``
    (arch → ms on the device) replaces up to ``settings.measurements`` unsure estimates by measurements.
    """
    t0 = time.perf_counter()
    space = device.space
    objective = condition_on or scorer.name
    if objective not in gen.meta.datasets:
        raise UserError(f"the generator was trained for objective(s) {', '.join(gen.meta.datasets)}, not "
                        f"{objective!r}")
    if not (budget_ms > 0 and math.isfinite(budget_ms)):
        raise UserError(f"budget must be a positive number of ms, got {budget_ms}")
    if budget_ms < device.fastest_ms:
        raise UserError(f"budget {budget_ms:g} ms is below the fastest {space.name} architecture found on "
                        f"{device.name} ({device.fastest_ms:.4g} ms); no architecture can fit it")
    u = device.budget_quantile(budget_ms)
    notes: list[str] = []
    ts = time.perf_counter()
    # estimates must fit by their bound: ask for the budget shrunk by the bound's typical margin
    raw = sample_codes(gen, device, budget_ms / device.bound_ratio(settings.risk), objective, settings)
    sample_seconds = time.perf_counter() - ts
    dataset = device.dataset
    uniq = unique_rows(raw)
    point, upper, exact = device.latencies(uniq, settings.risk)
    raw_point = device.latencies(raw, settings.risk)
    within = float(np.mean(raw_point[0] <= budget_ms))
    sure_raw = float(np.mean(np.where(raw_point[2], raw_point[0], raw_point[1]) <= budget_ms))

    def sure(p: np.ndarray, up: np.ndarray, ex: np.ndarray) -> np.ndarray:
        return np.where(ex, p, up) <= budget_ms

    fit_sure = sure(point, upper, exact)
    origin = {row.tobytes(): "sample" for row in uniq}
    best_sample = float(np.max(scorer.score(space, uniq[fit_sure], dataset))) if fit_sure.any() else math.nan
    cand = uniq[point <= budget_ms]
    if settings.refine and fit_sure.any():
        s = scorer.score(space, uniq[fit_sure], dataset)
        start = uniq[fit_sure][np.argsort(-s, kind="stable")[:24]]

        def fits(c: np.ndarray) -> np.ndarray:
            return sure(*device.latencies(c, settings.risk))

        rng = np.random.default_rng([settings.seed, 3])
        refined = climb(start, len(space.encoding.choices), fits, lambda c: scorer.score(space, c, dataset), rng,
                        rounds=15, full_pairs=1).codes
        for row in refined:
            origin.setdefault(row.tobytes(), "refined")
        cand = unique_rows(np.concatenate([cand, refined]))
    known = known or {}
    if known:  # labelled architectures are candidates too (their value is known for free)
        labelled = np.array([space.encode(space.parse(a)) for a in known], dtype=np.int64)
        for row in labelled:
            origin.setdefault(row.tobytes(), "label")
        cand = unique_rows(np.concatenate([cand, labelled[device.latencies(labelled, settings.risk)[0] <= budget_ms]]))
    if not len(cand):
        notes.append("no sample fits the budget; try more --samples or a larger budget")
        return OpenSearchReport(space.name, device.name, dataset, scorer.name, budget_ms, u, len(raw), within,
                                sure_raw, len(uniq) / max(1, len(raw)), 0, 0, 0, 0, best_sample,
                                time.perf_counter() - t0, sample_seconds, [], notes)
    point, upper, exact = device.latencies(cand, settings.risk)
    sources = device.sources(exact)
    score = scorer.score(space, cand, dataset)
    names = [space.format(space.decode(r)) for r in cand]
    order = np.argsort(-score, kind="stable")

    n_measured = 0
    if measure is not None and settings.measurements > 0:
        for i in order:
            if n_measured >= settings.measurements:
                break
            if exact[i] or upper[i] <= budget_ms:
                continue
            try:
                ms = float(measure(space.decode(cand[i])))
            except UserError as exc:
                notes.append(f"measuring {names[i]} failed: {exc}")
                continue
            n_measured += 1
            point[i] = upper[i] = ms
            exact[i] = True
            sources[i] = measure_source
    ok = point <= budget_ms
    fit_ok = np.where(exact, point, upper) <= budget_ms

    values: dict[int, tuple[float, str]] = {}
    for i, n in enumerate(names):
        if n in known:
            values[i] = (float(known[n]), "label")
    n_eval = 0
    if not scorer.exact and evaluate is not None and settings.evaluations > 0:
        pending = [int(i) for i in order if ok[i] and fit_ok[i] and int(i) not in values][:settings.evaluations]
        if pending:
            vals = evaluate([space.decode(cand[i]) for i in pending])
            n_eval = len(pending)
            for i, v in zip(pending, vals):
                values[i] = (float(v), f"objective:{scorer.name}")

    def rank_key(i: int) -> tuple[bool, bool, float, float]:
        # sure fits first; computed values before scores; a user's label ranks with the surrogate's predictions
        # of the same quantity (a label is a prediction without error), so the search can still beat the labels
        v = values.get(i)
        computed = v is not None and v[1] != "label"
        return (not fit_ok[i], not computed, -(v[0] if v is not None else score[i]), point[i])

    picks = sorted((int(i) for i in np.flatnonzero(ok)), key=rank_key)[: settings.top]
    results = []
    macs, params = space.size_counts_codes(cand[picks], dataset) if picks else (np.zeros(0), np.zeros(0))
    for j, i in enumerate(picks):
        v, src = values.get(i, (float(score[i]), scorer.source))
        results.append(OpenPick(names[i], float(point[i]), float(upper[i]), sources[i], scorer.name, v, src,
                                bool(not fit_ok[i]), origin.get(cand[i].tobytes(), "refined"), int(macs[j]),
                                int(params[j])))
    if any(r.may_exceed_budget for r in results):
        notes.append(f"estimated latencies whose upper bound at risk {settings.risk:g} exceeds the budget are "
                     "flagged: measure them (--measure N --profile RUNTIME) before use")
    return OpenSearchReport(space.name, device.name, dataset, scorer.name, budget_ms, u, len(raw), within, sure_raw,
                            len(uniq) / max(1, len(raw)), int(len(cand)), n_eval, len(known), n_measured,
                            best_sample, time.perf_counter() - t0, sample_seconds, results, notes)
