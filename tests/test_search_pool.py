"""The candidate pool and its query/measurement policy, tested on their own (no generator, no store)."""

from __future__ import annotations

import math

from hwdiffnas.search.measure import MeasureLedger, plan_measurements
from hwdiffnas.search.pool import Candidate, CandidatePool
from hwdiffnas.space import Cell

SKIP = Cell((0, 0, 0, 1, 0, 0))  # 0→3 skip only
SKIP_DEAD = Cell((2, 0, 0, 1, 0, 0))  # + a dead 0→1 conv: the same NATS class as SKIP
CONV3 = Cell((0, 0, 0, 3, 0, 0))
CONV1 = Cell((0, 0, 0, 2, 0, 0))
BUDGET = 10.0


def cand(cell: Cell, point: float, count: int = 1, source: str = "table", upper: float | None = None,
         score: float = math.nan, origin: str = "sample") -> Candidate:
    return Candidate(cell, point, point if upper is None else upper, source, count, origin, score)


def pool(cands: list[Candidate], known: dict[Cell, float] | None = None, ranked: bool = False,
         global_share: float = 0.0, glob: list[Candidate] | None = None) -> CandidatePool:
    sampled = sorted([c for c in cands if c.origin == "sample"], key=lambda c: -c.count)
    return CandidatePool(BUDGET, "table", sampled, {c.cell: c for c in cands}, glob or [], known or {}, ranked,
                         global_share)


def test_one_query_per_nats_class_most_sampled_first() -> None:
    p = pool([cand(SKIP, 1.0, count=9), cand(SKIP_DEAD, 2.0, count=5), cand(CONV3, 5.0, count=3)])
    plan, ordered = p.plan_queries(3, sure_first=True)
    assert [c.cell for c in plan] == [SKIP, CONV3]  # the class-mate is never a second query
    assert [c.cell for c in ordered] == [SKIP, CONV3, SKIP_DEAD]


def test_a_class_known_from_a_sure_cell_gets_no_query() -> None:
    p = pool([cand(SKIP, 1.0, count=9), cand(SKIP_DEAD, 2.0, count=5), cand(CONV3, 5.0, count=1)],
             known={SKIP: 70.0})
    assert p.known_sure_classes == {SKIP.nats_unique_str}
    assert [c.cell for c in p.plan_queries(3, sure_first=True)[0]] == [CONV3]
    # a known cell that only probably fits (an estimate) does not close its class
    unsure = pool([cand(SKIP, 1.0, source="estimate", upper=12.0), cand(SKIP_DEAD, 2.0)], known={SKIP: 70.0})
    assert unsure.known_sure_classes == set()
    assert [c.cell for c in unsure.plan_queries(2, sure_first=True)[0]] == [SKIP_DEAD]


def test_sure_cells_come_first_and_the_surrogate_ranks_when_present() -> None:
    risky = cand(CONV3, 9.0, count=9, source="estimate", upper=11.0, score=80.0)
    sure = cand(CONV1, 4.0, count=1, score=60.0)
    p = pool([risky, sure], ranked=True)
    assert p.may_exceed(risky) and not p.may_exceed(sure)
    assert [c.cell for c in p.plan_queries(1, sure_first=True)[0]] == [CONV1]
    assert [c.cell for c in p.plan_queries(1, sure_first=False)[0]] == [CONV3]
    # with the whole query budget on the surrogate's ranking, its best fitting cell outside the pool is asked first
    outside = cand(SKIP, 3.0, count=0, score=90.0, origin="surrogate")
    g = pool([risky, sure], ranked=True, global_share=1.0, glob=[outside])
    assert [c.cell for c in g.plan_queries(2, sure_first=True)[0]] == [SKIP, CONV1]


def test_measurements_replace_unsure_estimates_and_drop_cells_over_the_budget() -> None:
    over = cand(CONV3, 9.0, count=9, source="estimate", upper=12.0)
    fits = cand(CONV1, 9.5, count=5, source="estimate", upper=11.0)
    sure = cand(SKIP, 3.0, count=1)
    p = pool([over, fits, sure])
    truth = {CONV3: 10.5, CONV1: 8.0}
    asked: list[Cell] = []

    def measure(c: Cell) -> float:
        asked.append(c)
        return truth[c]

    ledger = MeasureLedger(measure, cap=5, budget_ms=BUDGET)
    plan_measurements(p, ledger, plan_size=3, source="measured:test", slack=1.2, widest=1.2)
    assert ledger.spent == 2
    assert asked == [CONV3, CONV1]  # most sampled unsure first; an exact latency is never measured
    assert CONV3 not in p.pool and all(c.cell != CONV3 for c in p.sampled)
    assert p.pool[CONV1].source == "measured:test" and p.pool[CONV1].upper == 8.0
    assert [c.cell for c in p.plan_queries(3, sure_first=True)[0]] == [CONV1, SKIP]
