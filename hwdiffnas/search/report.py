"""What a search is asked (`SearchSettings`) and what it returns (`SearchResult`, `SearchReport`)."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from hwdiffnas.search.labels import label_fraction


@dataclass
class SearchResult:
    """One returned cell. ``origin``: how it became a candidate — ``sample`` (the generator proposed it),
    ``neighbour`` (within a few edits of a most-sampled cell), ``surrogate`` (the surrogate's ranking of every
    fitting cell) or ``label`` (a cell whose accuracy was already known, e.g. a training label). ``measured_ms``: its
medians measured during the search; ``verified``: whether they fit the budget (None: nothing was measured)."""

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
    measured_ms: list[float] | None = None
    verified: bool | None = None


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
    verify: bool = False
    measurements_reused: int = 0
    measurement_failures: list[dict[str, str]] = field(default_factory=list)

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
    cell near the budget); a cell is returned only when its measurement or its estimate fits. ``widen_slack``: once
    every planned look-up is settled, the slack grows in steps of 0.1 up to this factor while measurements are left.
    ``verify``: only cells measured within the budget are looked up and returned
    (`hwdiffnas.search.measure.VERIFY_RULE`).
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
    measure_slack: float = 1.1
    widen_slack: float = 1.5
    verify: bool = False


def default_global_share(gen: Any) -> float:
    """The query split when none is given: half the queries to the generator's proposals when it was trained with
    every accuracy label, none when it saw only a fraction of them.

    Measured on the protocol grid (docs/benchmarks.md, issue 5): with all labels the generator's most-sampled cells
    find oracles the shipped surrogate misses (mean regret 0.000 at half vs 0.015 with every query on the
    surrogate's ranking); with 10 % labels its proposals are worse than the surrogate's ranking (0.144 vs 0.102),
    with 1 % level (0.648 vs 0.662 on three label subsets).
    """
    return 0.5 if label_fraction(gen) >= 1.0 else 1.0

