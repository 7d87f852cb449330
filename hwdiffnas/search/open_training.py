"""Training data for a generator in a space without tables of accuracy (FBNet): produced by the project itself.

Rows: the space's quantile sample (FBNet: HELP's 5,000; it also holds the reference architectures), ``uniform``
seeded uniform samples and, for every device and objective, the frontier at ``budget_levels`` seeded budget
quantiles with ``near`` fitting neighbours of each frontier point. A frontier point is the exact optimum of the
models (a multiple-choice knapsack) where the objective's scorer and the device's latency (or log-latency) are
sums over positions — the lookup-table devices, and HELP's devices through their rows predictor (log-additive) —
and the final beam of a climb elsewhere (`hwdiffnas.search.frontier`).
Objectives: counts are exact; any other (a training-free proxy) is computed on ``labels`` seeded uniform
architectures (in parallel, appended to a JSONL cache as it goes, so an interrupted run resumes:
`hwdiffnas.objectives.compute.cached_objective`) and a ridge
surrogate fitted on them scores every row. Latencies: the device's point estimate (exact where tabulated).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from hwdiffnas.errors import UserError
from hwdiffnas.generator.train import TrainingTables
from hwdiffnas.latency.lookup import quantile_sample
from hwdiffnas.latency.space_device import SpaceDevice
from hwdiffnas.objectives.scorer import EXACT_COUNTS, ObjectiveScorer, exact_scorer, fit_surrogate
from hwdiffnas.search.frontier import Additive, additive_form, climb, knapsack_frontier, single_moves, unique_rows
from hwdiffnas.spaces.base import SearchSpace

Log = Callable[[str], None]


@dataclass(frozen=True)
class OpenDataConfig:
    """How the training rows are produced (recorded in the checkpoint)."""

    dataset: str = "cifar100"
    objectives: tuple[str, ...] = ("flops", "naswot")
    uniform: int = 10_000
    labels: int = 1_000
    budget_levels: int = 48
    near: int = 8
    seed: int = 0


@dataclass
class OpenTrainingData:
    """The tables to train on, the objective scorers, and what producing them cost."""

    tables: TrainingTables
    scorers: dict[str, ObjectiveScorer]
    stats: dict[str, Any] = field(default_factory=dict)


def objective_scorers(space: SearchSpace[Any], cfg: OpenDataConfig, cache_dir: Path | None,
                      workers: int | None = None, log: Log | None = None) -> tuple[dict[str, ObjectiveScorer],
                                                                                  dict[str, Any]]:
    """A scorer per objective: exact counts, else a surrogate fitted on ``cfg.labels`` computed values."""
    from hwdiffnas.objectives import get_objective
    from hwdiffnas.objectives.compute import cached_objective, space_network_builder

    scorers: dict[str, ObjectiveScorer] = {}
    stats: dict[str, Any] = {}
    labelled = space.sample(cfg.labels, seed=cfg.seed + 101)
    for name in cfg.objectives:
        get_objective(name)  # unknown names list the known ones
        if name in EXACT_COUNTS:
            scorers[name] = exact_scorer(name)
            continue
        import time

        t0 = time.perf_counter()
        cache = None if cache_dir is None else cache_dir / f"labels-{space.name}-{cfg.dataset}-{name}.jsonl"
        values, _secs = cached_objective(name, [space.format(a) for a in labelled],
                                         space_network_builder(space.name, cfg.dataset), cache, space=space.name,
                                         dataset=cfg.dataset, seed=cfg.seed, workers=workers, progress=log)
        scorers[name] = fit_surrogate(space, labelled, values, name)
        stats[f"label_seconds_{name}"] = round(time.perf_counter() - t0, 1)
        stats[f"surrogate_loo_spearman_{name}"] = round(scorers[name].loo_spearman, 4)
    return scorers, stats


def frontier_rows(space: SearchSpace[Any], dev: SpaceDevice, scorer: ObjectiveScorer, dataset: str,
                  uniform: np.ndarray, levels: np.ndarray, near: int, rng: np.random.Generator) -> tuple[np.ndarray,
                                                                                                        str]:
    """Frontier points of ``scorer`` on ``dev`` at the budget quantiles ``levels`` and ``near`` fitting
    neighbours of each; with the method used (``knapsack`` or ``climb``)."""
    enc = space.encoding
    n_choices = len(enc.choices)
    check = uniform[:256]

    def score(c: np.ndarray) -> np.ndarray:
        return scorer.score(space, c, dataset)

    def point(c: np.ndarray) -> np.ndarray:
        return dev.latencies(c)[0]

    s_add = additive_form(score, enc.positions, n_choices, check)
    cost: Additive | None = additive_form(point, enc.positions, n_choices, check)
    log_cost = cost is None
    if cost is None:
        cost = additive_form(lambda c: np.log(point(c)), enc.positions, n_choices, check)
    budgets = np.quantile(dev.reference_sorted_ms, levels)
    u_score, u_lat = score(uniform), point(uniform)
    out: list[np.ndarray] = []
    for b in budgets:
        def fits(c: np.ndarray, b: float = float(b)) -> np.ndarray:
            return point(c) <= b

        if s_add is not None and cost is not None:
            best = knapsack_frontier(s_add, cost, float(np.log(b) if log_cost else b))
            if best is None or not fits(best)[0]:
                continue
            beam = best
        else:
            ok = np.flatnonzero(u_lat <= b)
            start = uniform[ok[np.argsort(-u_score[ok], kind="stable")[:24]]]
            beam = climb(start, n_choices, fits, score, rng, rounds=15, full_pairs=0).codes
        out.append(beam)
        moves = single_moves(beam[:1], n_choices)
        moves = moves[fits(moves)]
        if len(moves) and near > 0:
            out.append(moves[np.argsort(-score(moves), kind="stable")[:near]])
    method = "knapsack" if s_add is not None and cost is not None else "climb"
    return (unique_rows(np.concatenate(out)) if out else np.zeros((0, enc.positions), dtype=np.int64)), method


def build_open_training_data(space: SearchSpace[Any], devices: Sequence[SpaceDevice], cfg: OpenDataConfig,
                             cache_dir: Path | None = None, workers: int | None = None,
                             log: Log | None = None) -> OpenTrainingData:
    """The rows, objective values and latencies a generator for ``space`` trains on (module docstring)."""
    import time

    log = log or (lambda _m: None)
    if not devices:
        raise UserError(f"no device with latency data in space {space.name!r} ({cfg.dataset}) to train on")
    t0 = time.perf_counter()
    scorers, stats = objective_scorers(space, cfg, cache_dir, workers, log)
    rng = np.random.default_rng([cfg.seed, 17])
    enc = space.encoding
    base = np.array([space.encode(a) for a in quantile_sample(space, cfg.dataset)], dtype=np.int64)
    uniform = np.array([space.encode(a) for a in space.sample(cfg.uniform, seed=cfg.seed + 202)], dtype=np.int64)
    parts = [base, uniform.reshape(-1, enc.positions)]
    methods: dict[str, str] = {}
    t1 = time.perf_counter()
    for dev in devices:
        for name, scorer in scorers.items():
            levels = np.sort(rng.uniform(0.005, 0.995, size=cfg.budget_levels))
            rows, method = frontier_rows(space, dev, scorer, cfg.dataset, uniform, levels, cfg.near, rng)
            parts.append(rows)
            methods[f"{dev.name}/{name}"] = method
        log(f"frontier of {dev.name}: {', '.join(sorted({methods[f'{dev.name}/{n}'] for n in scorers}))}")
    ops = unique_rows(np.concatenate(parts))
    accuracy = {name: sc.score(space, ops, cfg.dataset) for name, sc in scorers.items()}
    latency = {dev.name: dev.latencies(ops)[0] for dev in devices}
    tables = TrainingTables(ops, np.ones(len(ops), dtype=bool), accuracy, latency, accuracy_column="objective",
                            space=space.name, quantile_reference_ms={d.name: d.reference_sorted_ms for d in devices},
                            scorers={n: s.to_dict() for n, s in scorers.items()}, setting=cfg.dataset)
    stats.update(rows=int(len(ops)), frontier_seconds=round(time.perf_counter() - t1, 1),
                 data_seconds=round(time.perf_counter() - t0, 1), frontier_methods=methods,
                 config=dict(cfg.__dict__, objectives=list(cfg.objectives)))
    return OpenTrainingData(tables, scorers, stats)


def train_open_generator(space: SearchSpace[Any], out: Path, cfg: OpenDataConfig, train_cfg: Any,
                         devices: Sequence[str] | None = None, workers: int | None = None, log: Log | None = None,
                         progress: Any = None, cache_dir: Path | None = None) -> tuple[Any, dict[str, Any]]:
    """Produce the training data (computed objective values cached in ``cache_dir``, default ``<out>.labels/``)
    and train a generator for every device (default: every device the space serves) and objective of ``cfg``
    into ``out``."""
    from dataclasses import replace

    from hwdiffnas.generator.train import train
    from hwdiffnas.latency.space_device import served_devices, space_device

    names = list(devices) if devices else served_devices(space, cfg.dataset)
    devs = [space_device(space, d, cfg.dataset) for d in names]
    cache = cache_dir or out.with_name(out.name + ".labels")
    cache.mkdir(parents=True, exist_ok=True)
    data = build_open_training_data(space, devs, cfg, cache, workers, log)
    tcfg = replace(train_cfg, datasets=tuple(cfg.objectives), devices=tuple(sorted(names)))
    gen = train(data.tables, out, tcfg, log=log, progress=progress)
    return gen, data.stats
