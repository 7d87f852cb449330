"""Latency measurements during a search: the ledger of what was measured (the cap, the near-budget rule, failures,
progress), the plan of what to measure (`plan_measurements`) and the measure callables of a profiler plug-in
(`profiler_measure`) with the store as a resume cache (`StoredMeasure`).

The plan: measurements follow the accuracy-query plan. Each round measures the first cell of the next
``queries`` look-ups (and of the cells whose accuracy is known for free that would rank among them,
`with_free_accuracies`) that is not settled yet (settled: sure to fit — an exact latency, a certified estimate or a
measurement within the budget — or, with ``verify``, measured within the budget by this search); a cell measured
over the budget, or whose measurement failed, leaves the candidates, so the next plan takes another cell (its
class-mates included: the same function with other dead-edge ops, another latency — unless the member's
measured/estimated ratio puts them beyond the widest slack, `drop_far_class_mates`). When every planned look-up is
settled and measurements are left, cells estimated further over the budget join (`SearchSettings.widen_slack`, in
steps of 0.1 × the budget): an accurate cell the estimate misjudges gets its chance, and a wider slack never costs
a measurement the planned look-ups needed. The search stops measuring when nothing planned is unsettled at the
widest slack, or at the cap. All measurements come before the look-ups: a look-up costs a training run, a
measurement seconds.

With ``verify`` only cells measured within the budget are looked up and returned (`VERIFY_RULE`); when one
measurement is left and none fits yet, it goes to the best-ranked candidate sure to fit (an exact row or a
certified estimate), so that a cap too small for the plan still verifies a pick where one is sure.
"""

from __future__ import annotations

import math
import signal
import sys
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any

from hwdiffnas.errors import UserError
from hwdiffnas.search.pool import Candidate, CandidatePool
from hwdiffnas.space import Cell

Refit = Callable[[dict[Cell, float]], Any]
"""Measured medians (cell → ms) → the device with its latency estimate refitted on its rows and them."""
NEAR_BUDGET = 0.02
"""A measured median within this fraction under the budget is measured a second time (with ``verify``)."""
VERIFY_RULE = ("a pick is verified when its measured median latency is within the budget; one measured within "
               f"{NEAR_BUDGET:.0%} under the budget is measured a second time and fits only if both medians do "
               "(its latency is then the larger one)")
SEARCH_RUN = "search"
"""Run id prefix of a search's measurements in the store (``search:RUNTIME``, ``search:RUNTIME:2`` for repeats)."""


@dataclass
class MeasureLedger:
    """Every measurement of one search: at most ``cap`` calls of ``measure`` (cell → median ms; any exception
    is a failed measurement: recorded, counted, and the cell skipped), each reported through ``progress``.

    ``medians``: the medians of each measured cell; ``failed``: the reason per failed cell; ``spent``: calls made
    (failed ones included); ``verify``: apply the near-budget rule (`VERIFY_RULE`)."""

    measure: Callable[[Cell], float]
    cap: int
    budget_ms: float
    verify: bool = False
    progress: Callable[[str], None] | None = None
    spent: int = 0
    medians: dict[Cell, list[float]] = field(default_factory=dict)
    failed: dict[Cell, str] = field(default_factory=dict)

    @property
    def left(self) -> int:
        return self.cap - self.spent

    def _say(self, text: str) -> None:
        if self.progress is not None:
            self.progress(f"measurement {self.spent}/{self.cap}: {text}")

    def _once(self, cell: Cell) -> float | None:
        self.spent += 1
        try:
            ms = float(self.measure(cell))
            if not (math.isfinite(ms) and ms > 0):
                raise ValueError(f"not a positive latency: {ms!r}")
        except (KeyboardInterrupt, SystemExit):
            raise
        except Exception as exc:  # one bad cell must not end the search: its reason is kept, the cell skipped
            reason = f"{type(exc).__name__}: {exc}".strip()[:500]
            self.failed[cell] = reason
            self._say(f"{cell.arch_str} failed ({reason}); skipped")
            return None
        self.medians.setdefault(cell, []).append(ms)
        verdict = "fits" if ms <= self.budget_ms else "over"
        self._say(f"{cell.arch_str} {ms:.4g} ms ({verdict} the {self.budget_ms:.4g} ms budget)")
        return ms

    def check(self, cell: Cell) -> float | None:
        """Measure ``cell`` (twice when ``verify`` and its first median is within `NEAR_BUDGET` under the budget):
        the latency to use (the larger median), or None when a measurement failed or the cap ran out before the
        second one."""
        ms = self._once(cell)
        if ms is None:
            return None
        if self.verify and ms <= self.budget_ms and ms > self.budget_ms * (1 - NEAR_BUDGET):
            if self.left <= 0:
                return None
            second = self._once(cell)
            if second is None:
                return None
            ms = max(ms, second)
        return ms

    def fits(self, cell: Cell) -> bool:
        """Whether ``cell`` was measured (completely, by the rule) within the budget."""
        m = self.medians.get(cell, [])
        if not m or max(m) > self.budget_ms:
            return False
        near = m[0] > self.budget_ms * (1 - NEAR_BUDGET)
        return not (self.verify and near and len(m) < 2)


def plan_measurements(pool: CandidatePool, ledger: MeasureLedger, plan_size: int, source: str,
                      slack: float, widest: float, refit: Refit | None = None, delta: float = 0.05) -> None:
    """Spend the ledger's measurements on the pool (module docstring): ``plan_size`` look-ups are planned;
    estimates up to ``slack`` × the budget are candidates at first, up to ``widest`` × once every planned
    look-up is settled. ``refit`` (the measured medians → a `DeviceLatency` whose estimate is fitted on the rows
    and them) re-estimates every unmeasured candidate after each measurement (bound at miss rate ``delta``).
    Afterwards only fitting candidates remain (with ``verify``: only measured ones)."""
    budget = pool.budget_ms

    def settled(c: Candidate) -> bool:
        if ledger.verify:
            return ledger.fits(c.cell)
        return c.cell in ledger.medians or not pool.may_exceed(c)

    limit = slack
    while True:
        pool.estimate_limit = budget * limit
        plan = with_free_accuracies(pool, pool.plan_queries(plan_size, sure_first=False)[0], settled)
        c = next((c for c in plan if not settled(c)), None)
        if ledger.verify and ledger.left == 1 and not any(map(ledger.fits, ledger.medians)):
            # the last measurement and nothing verified yet: the best candidate sure to fit, so that a pick exists
            c = next((c for c in pool.plan_queries(plan_size, sure_first=True)[1]
                      if not pool.may_exceed(c) and not settled(c)), c)
        if c is None:
            if limit >= widest - 1e-9 or ledger.left <= 0:
                break
            limit = min(widest, limit + 0.1)
            continue
        if ledger.left <= 0:
            break
        ms = ledger.check(c.cell)
        if ms is None:
            if c.cell in ledger.failed or ledger.left <= 0:
                pool.drop(c.cell)
            if ledger.left <= 0:
                break
            continue
        estimated = c.point if c.source != pool.table_source else math.nan
        c.point = c.upper = ms
        c.source = source
        if ms > budget:
            pool.drop(c.cell)
            drop_far_class_mates(pool, c.cell, ms / estimated, budget * widest, ledger)
        if refit is not None:
            reestimate(pool, refit({x: max(m) for x, m in ledger.medians.items()}), set(ledger.medians), delta)
    pool.estimate_limit = budget * limit
    pool.keep_fitting()
    if ledger.verify:
        pool.keep(lambda c: ledger.fits(c.cell))
    pool.known_sure_classes = pool.sure_known_classes()


def drop_far_class_mates(pool: CandidatePool, cell: Cell, ratio: float, far_ms: float,
                         ledger: MeasureLedger) -> None:
    """After ``cell`` was measured ``ratio`` × its estimate, over the budget: its unmeasured, estimated class-mates
    (the same function, other dead-edge ops) whose estimate × ``ratio`` exceeds ``far_ms`` (the widest slack) leave
    the candidates — an estimate that far off for one member is taken to hold for the class."""
    if not ratio > 1:
        return
    key = pool.eq_key(cell)
    pool.keep(lambda x: not (pool.eq_key(x.cell) == key and x.source != pool.table_source
                             and x.cell not in ledger.medians and x.point * ratio > far_ms))


def reestimate(pool: CandidatePool, device: Any, measured: set[Cell], delta: float) -> None:
    """Give every estimated, unmeasured candidate the (point, upper) latency of ``device``'s refitted
    estimate."""
    cands = {id(c): c for c in [*pool.pool.values(), *pool.glob, *pool.sampled]
             if c.source != pool.table_source and c.cell not in measured}
    todo = list(cands.values())
    if not todo:
        return
    point, upper, src = device.latencies([c.cell for c in todo], delta)
    for c, p, u, s in zip(todo, point, upper, src):
        c.point, c.upper, c.source = float(p), float(u), s


def with_free_accuracies(pool: CandidatePool, plan: list[Candidate],
                         settled: Callable[[Candidate], bool]) -> list[Candidate]:
    """The look-up ``plan`` with the cells whose accuracy is known for free (training labels) merged in by
    accuracy against the planned cells' surrogate scores: those at least as accurate as the least promising
    look-up, one per class not yet settled by a fitting member, best first."""
    known = pool.known
    if not known:
        return plan
    lim = pool.estimate_limit
    scores = [c.score for c in plan if math.isfinite(c.score)]
    floor = min(scores) if scores else -math.inf
    cands = [c for c in [*pool.pool.values(), *pool.glob] if c.cell in known and c.point <= lim]
    closed = {pool.eq_key(c.cell) for c in cands if settled(c) and c.point <= pool.budget_ms}
    free: dict[str, Candidate] = {}
    for c in sorted(cands, key=lambda c: -known[c.cell]):
        k = pool.eq_key(c.cell)
        if known[c.cell] >= floor and k not in closed and k not in free and not settled(c):
            free[k] = c
    out: list[Candidate] = []
    rest = list(free.values())
    for q in plan:
        while rest and known[rest[0].cell] >= (q.score if math.isfinite(q.score) else math.inf):
            out.append(rest.pop(0))
        out.append(q)
    return out + rest


@contextmanager
def time_limit(seconds: float | None) -> Iterator[None]:
    """Raise `TimeoutError` in the main thread after ``seconds`` (no limit for None/0 or off the main thread)."""
    import threading

    if not seconds or threading.current_thread() is not threading.main_thread():
        yield
        return

    def expire(signum: int, frame: Any) -> None:
        raise TimeoutError(f"no result within {seconds:g} s")

    old = signal.signal(signal.SIGALRM, expire)
    signal.setitimer(signal.ITIMER_REAL, seconds)
    try:
        yield
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, old)


def profiler_measure(runtime: str, dataset: str = "cifar100", timeout_s: float | None = None,
                     settings: Any | None = None) -> Callable[[Cell], float]:
    """Median latency (ms) of a cell's network timed by the profiler plug-in ``runtime`` (`hwdiffnas.deploy.
    profile_cell`), each measurement at most ``timeout_s`` seconds. The plug-in must be usable here."""
    from hwdiffnas.deploy import profile_cell
    from hwdiffnas.plugins import get_profiler

    ok, why = get_profiler(runtime).available()
    if not ok:
        raise UserError(f"runtime {runtime!r} cannot measure here: {why}")

    def measure(cell: Cell) -> float:
        with time_limit(timeout_s):
            return float(profile_cell(cell, runtime, settings, dataset=dataset).median_ms)

    return measure


class StoredMeasure:
    """``measure`` with the store's ``measurements`` table as its record and resume cache: the n-th measurement
    of a cell on ``device`` is stored under run id ``search:RUNTIME`` (``search:RUNTIME:n`` for n ≥ 2); one
    already stored ``ok`` is reused instead of measured again (``reused`` counts them); a failure is stored
    (status ``failed``, tried again by a later run) and raised."""

    def __init__(self, measure: Callable[[Cell], float], store: Any, device: str, runtime: str,
                 host: str = "") -> None:
        self.measure, self.store, self.device, self.runtime, self.host = measure, store, device, runtime, host
        self.calls: dict[Cell, int] = {}
        self.reused = 0

    def run_id(self, n: int) -> str:
        return f"{SEARCH_RUN}:{self.runtime}" + (f":{n}" if n > 1 else "")

    def __call__(self, cell: Cell) -> float:
        n = self.calls[cell] = self.calls.get(cell, 0) + 1
        run_id = self.run_id(n)
        old = [m for m in self.store.measured(self.device, run_id, status="ok") if m.cell == cell]
        if old and old[-1].median_ms is not None:
            self.reused += 1
            return float(old[-1].median_ms)
        try:
            ms = float(self.measure(cell))
        except (KeyboardInterrupt, SystemExit):
            raise
        except Exception as exc:
            self.store.record_measurement(self.device, run_id, cell, status="failed", runtime=self.runtime,
                                          error=f"{type(exc).__name__}: {exc}"[:2000], host=self.host)
            raise
        self.store.record_measurement(self.device, run_id, cell, median_ms=ms, runtime=self.runtime, host=self.host)
        return ms


def stderr_progress(text: str) -> None:
    """Progress lines on stderr (one per measurement)."""
    print(text, file=sys.stderr, flush=True)
