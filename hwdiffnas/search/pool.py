"""The candidate pool of a search and its query/measurement policy.

Cells are the architectures of the search's space (NB201 words below: "connected" is the space's validity, a
"NATS class" its equivalence key). Candidates: the fitting samples, the cells near the most-sampled ones, every
fitting cell whose accuracy is already known and — with a surrogate — the surrogate's ranking of every other
fitting cell. The policy
(`CandidatePool.plan_queries`) says which candidates get the accuracy look-ups (at most one per NATS class, none
to a class known from a cell sure to fit); `hwdiffnas.search.measure` plans the measurements on it.
"""

from __future__ import annotations

import math
from collections import Counter
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from hwdiffnas.latency.device import DeviceLatency
from hwdiffnas.plugins import get_space
from hwdiffnas.space import Cell
from hwdiffnas.spaces.base import SearchSpace


@dataclass
class Candidate:
    """A cell that fits the budget (exactly or by its estimate): ``point``/``upper`` latency (ms) and their
    ``source``, how often it was sampled, how it became a candidate (``origin``) and its surrogate ``score``."""

    cell: Cell
    point: float
    upper: float
    source: str
    count: int
    origin: str
    score: float = math.nan


def fitting(device: DeviceLatency, cells: Sequence[Cell], budget_ms: float, counts: Mapping[Cell, int],
            origin: str, delta: float, slack: float = 1.0, space: SearchSpace[Any] | None = None) -> list[Candidate]:
    """Valid (NB201: connected) cells of ``cells`` whose (exact or estimated) latency fits the budget (an
    estimate may exceed it by the factor ``slack``: such cells are measurement candidates)."""
    space = space or get_space()
    point, upper, source = device.latencies(cells, delta)
    return [Candidate(c, float(p), float(up), src, counts.get(c, 0), origin)
            for c, p, up, src in zip(cells, point, upper, source)
            if space.is_valid(c) and np.isfinite(p) and p <= (budget_ms * slack if src != device.table_source
                                                           else budget_ms)]


@dataclass
class CandidatePool:
    """The candidates of one search: ``sampled`` (fitting samples, most-sampled first), ``pool`` (those, their
    neighbours and the known labels, by cell), ``glob`` (the surrogate's other fitting cells); ``known``: the
    accuracies known for free; ``ranked``: whether a surrogate scored the candidates; ``global_share``: the
    queries' share on the surrogate's ranking of every fitting cell."""

    budget_ms: float
    table_source: str
    sampled: list[Candidate]
    pool: dict[Cell, Candidate]
    glob: list[Candidate]
    known: Mapping[Cell, float]
    ranked: bool
    global_share: float
    known_sure_classes: set[str] = field(default_factory=set)
    space: SearchSpace[Any] | None = None
    estimate_limit: float = math.inf
    """Candidates whose latency exceeds this (ms) are left out of the plans for now (measurement planning widens
    it step by step; `hwdiffnas.search.measure`)."""

    def __post_init__(self) -> None:
        self.space = self.space or get_space()
        self.known_sure_classes = self.sure_known_classes()

    def eq_key(self, cell: Cell) -> str:
        """The cell's equivalence class (NB201: its NATS class)."""
        assert self.space is not None
        return self.space.equivalence_key(cell)

    @property
    def size(self) -> int:
        return len(self.pool) + len(self.glob)

    def may_exceed(self, c: Candidate) -> bool:
        """An estimated latency whose upper bound exceeds the budget or cannot be certified (an infinite bound:
        too few rows for the asked risk); exact latencies never do."""
        return bool(c.source != self.table_source and not c.upper <= self.budget_ms)

    def sure_known_classes(self) -> set[str]:
        """Classes whose accuracy is known from a cell sure to fit: no query or measurement is spent on their other
        members (a known class member over the budget, or only estimated within it, does not count: its class-mates
        that fit stay queryable, and one of them sure to fit is a sure pick once looked up)."""
        return {self.eq_key(c.cell) for c in self.pool.values()
                if c.cell in self.known and c.point <= self.budget_ms and not self.may_exceed(c)}

    def plan_queries(self, n: int, sure_first: bool, measuring: bool = False) -> tuple[list[Candidate],
                                                                                       list[Candidate]]:
        """(the ``n`` candidates to look up, every candidate in plan order). Look-ups: at most one per NATS
        class, never a class whose accuracy is known from a cell sure to fit; the generator's share alternates its
        most-sampled cells (its own belief) with the surrogate's ranking of its candidates, the rest follows the
        surrogate's ranking of every fitting cell. ``sure_first``: cells sure to fit come before cells that only
        probably fit. ``measuring``: the plan is for latency measurements, so a labelled cell is planned too (its
        accuracy is known for free; only its latency is unsure)."""
        def key(c: Candidate) -> tuple[float, ...]:
            score = c.score if math.isfinite(c.score) else -math.inf
            first = (-score, -c.count) if self.ranked else (-c.count, -score)
            return (float(sure_first and self.may_exceed(c)), *first, c.point)

        lim = self.estimate_limit
        pool = [c for c in self.pool.values() if c.point <= lim]
        gen_order = sorted(pool, key=key)
        glob_order = sorted([*pool, *(c for c in self.glob if c.point <= lim)], key=key)  # every fitting candidate
        freq_order = sorted((c for c in self.sampled if c.point <= lim),
                            key=lambda c: (float(sure_first and self.may_exceed(c)), -c.count, c.point))
        taken = set(self.known_sure_classes)
        n_glob = int(round(self.global_share * n)) if self.ranked else 0
        plan: list[Candidate] = []

        def take(order: list[Candidate], k: int) -> None:
            for c in order:
                if k <= 0:
                    return
                key = self.eq_key(c.cell)
                if (c.cell in self.known and not measuring) or key in taken:
                    continue
                taken.add(key)
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

    def drop(self, cell: Cell) -> None:
        """Remove ``cell`` from every candidate list (e.g. measured over the budget)."""
        self.pool.pop(cell, None)
        self.glob = [g for g in self.glob if g.cell != cell]
        self.sampled = [g for g in self.sampled if g.cell != cell]

    def keep(self, wanted: Callable[[Candidate], bool]) -> None:
        """Keep only the candidates ``wanted`` accepts."""
        self.pool = {k: c for k, c in self.pool.items() if wanted(c)}
        self.glob = [c for c in self.glob if wanted(c)]
        self.sampled = [c for c in self.sampled if wanted(c)]

    def keep_fitting(self) -> None:
        """Keep only candidates whose (measured or estimated) point latency fits the budget."""
        self.keep(lambda c: c.point <= self.budget_ms)


def build_pool(device: DeviceLatency, samples: Sequence[Cell], counts: Counter[Cell], budget_ms: float,
               neighbours: Callable[[Cell], list[Cell]], refine_top: int, delta: float, slack: float,
               known: Mapping[Cell, float], surrogate: Callable[[Sequence[Cell]], np.ndarray] | None,
               global_share: float, every_cell: Callable[[], Sequence[Cell]],
               space: SearchSpace[Any] | None = None) -> CandidatePool:
    """The candidates of a search: the fitting ``samples`` (unique cells; ``counts`` how often each was
    sampled), the ``neighbours`` of the ``refine_top`` most-sampled of them, the fitting cells of ``known``, and
    — with a ``surrogate`` and a positive ``global_share`` — every other fitting cell of ``every_cell()``; all
    scored by the surrogate. ``space``: the cells' search space (default NB201)."""
    space = space or get_space()
    sampled = sorted(fitting(device, samples, budget_ms, counts, "sample", delta, slack, space),
                     key=lambda c: -c.count)
    pool: dict[Cell, Candidate] = {c.cell: c for c in sampled}
    near: list[Cell] = []
    for c in sampled[:refine_top]:
        near += [x for x in neighbours(c.cell) if x not in pool]
    for c in fitting(device, list(dict.fromkeys(near)), budget_ms, counts, "neighbour", delta, slack, space):
        pool[c.cell] = c
    for c in fitting(device, [x for x in known if x not in pool], budget_ms, counts, "label", delta, slack, space):
        pool[c.cell] = c
    glob: list[Candidate] = []
    if surrogate is not None:
        if global_share > 0:
            rest = [x for x in every_cell() if x not in pool]
            glob = fitting(device, rest, budget_ms, counts, "surrogate", delta, slack, space)
        everyone = list(pool.values()) + glob
        if everyone:
            for c, s in zip(everyone, surrogate([c.cell for c in everyone])):
                c.score = float(s)
    return CandidatePool(budget_ms, device.table_source, sampled, pool, glob, known, surrogate is not None,
                         global_share, space=space)
