"""The order in which a search lists its picks: the order it believes in them."""

from __future__ import annotations

import json
import re

import numpy as np
import pytest

from hwdiffnas.cli import main


def _result(acc: float | None, src: str, flagged: bool = False, lat: float = 1.0):
    from hwdiffnas.search import SearchResult

    return SearchResult("a", lat, "estimate", acc, src, 0, may_exceed_budget=flagged)


def test_result_rank_orders_by_belief() -> None:
    from hwdiffnas.result_order import result_rank

    picks = [_result(60.2, "surrogate"), _result(64.8, "surrogate"), _result(70.0, "surrogate", flagged=True),
             _result(58.0, "benchmark:nats"), _result(None, "none"), _result(64.8, "surrogate", lat=0.5),
             _result(59.0, "label")]
    ranked = sorted(picks, key=result_rank)
    assert [(r.accuracy, r.accuracy_source, r.latency_ms) for r in ranked] == [
        (59.0, "label", 1.0), (58.0, "benchmark:nats", 1.0), (64.8, "surrogate", 0.5), (64.8, "surrogate", 1.0),
        (60.2, "surrogate", 1.0), (None, "none", 1.0), (70.0, "surrogate", 1.0)]


@pytest.mark.parametrize("argv", [["--queries", "0"], []])
def test_search_lists_picks_in_the_order_it_believes(argv: list[str], capsys: pytest.CaptureFixture) -> None:
    """Human table and --json list the same picks in the same order: sure before flagged, exact accuracies
    before estimates, each by accuracy (before, surrogate estimates were listed in query-plan order)."""
    base = ["search", "--device", "jetson-nano-fp16", "--budget", "p25", "--samples", "200", *argv]
    assert main([*base, "--json"]) == 0
    res = json.loads(capsys.readouterr().out)["results"]
    assert len(res) == 5
    keys = [(r["may_exceed_budget"], r["accuracy_source"] in ("none", "surrogate"), -(r["accuracy"] or -1e9))
            for r in res]
    assert keys == sorted(keys)
    assert all(r["origin"] and r["latency_source"] for r in res)
    assert main(base) == 0
    table = [line.split() for line in capsys.readouterr().out.splitlines() if re.match(r"\d+\s+\|", line)]
    assert [row[1] for row in table] == [r["arch_str"] for r in res]


def test_run_search_without_lookups_lists_picks_by_surrogate_not_plan_order() -> None:
    """Without accuracy look-ups the picks used to come in query-plan order (the generator's most-sampled cell
    first, whatever the surrogate said); now sure picks come first, each group by the surrogate's accuracy."""
    from hwdiffnas.search import DeviceLatency, SearchSettings, run_search
    from hwdiffnas.space import all_cells

    cells = [c for c in all_cells() if c.is_connected]
    lat = {c: 1.0 + sum((0.0, 0.1, 1.0, 3.0, 0.4)[o] for o in c.ops) for c in all_cells()}

    def estimate(cs, delta):  # noqa: ANN001, ANN202 - point = truth, upper 20 % above it
        p = np.array([lat[c] for c in cs])
        return p, p * 1.2

    dev = DeviceLatency("synthetic", np.zeros(11, np.float32), np.sort([lat[c] for c in cells]), {}, "rows", estimate,
                        "estimate")
    budget = 4.0
    fitting = sorted((c for c in cells if lat[c] <= budget), key=lambda c: c.arch_str)
    score = {c: 50.0 + 0.1 * i for i, c in enumerate(fitting)}
    # the most-sampled cells are the surrogate's worst: plan order and belief disagree
    sampled = [c for c in fitting[:6] for _ in range(6 - fitting.index(c))]

    class Sampler:
        from types import SimpleNamespace

        meta = SimpleNamespace(datasets=["cifar100"], training={})

        def sample(self, cond, n, steps=20, guidance=None, seed=0):  # noqa: ANN001, ANN201
            return np.array([sampled[i % len(sampled)].ops for i in range(n)])

    settings = SearchSettings(samples=len(sampled), queries=6, top=8, refine_radius=0, global_share=0.5)
    rep = run_search(Sampler(), dev, budget, "cifar100", settings,
                     surrogate=lambda cs: np.array([score.get(c, 0.0) for c in cs]))
    assert len(rep.results) == 8 and {r.accuracy_source for r in rep.results} == {"surrogate"}
    keys = [(r.may_exceed_budget, -r.accuracy) for r in rep.results]
    assert keys == sorted(keys)
    assert not rep.results[0].may_exceed_budget
