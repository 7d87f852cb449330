"""Campaign cell picking, resumable measuring (including a SIGKILL mid-run) and estimates for unmeasured cells."""

from __future__ import annotations

import os
import signal
import sqlite3
import subprocess
import time
from pathlib import Path

import numpy as np
import pytest
from remote_helpers import CLI

from hwdiffnas.campaign import (
    CampaignSpec,
    candidate_cells,
    estimate_device,
    held_out_quality,
    macs_of,
    measured_medians,
    pick_spanning,
    plan_cells,
    proxy_values,
    run_campaign,
    write_measured_table,
)
from hwdiffnas.errors import UserError
from hwdiffnas.interfaces import LatencyStats, ProfileSettings
from hwdiffnas.space import CONV1, CONV3, POOL, Cell, all_cells
from hwdiffnas.store import Store


def test_candidates_are_connected_iso_representatives() -> None:
    cands = candidate_cells()
    assert all(c.is_connected for c in cands)
    assert len({c.isomorphism_key for c in cands}) == len(cands)
    connected_classes = {c.isomorphism_key for c in all_cells() if c.is_connected}
    assert len(cands) == len(connected_classes)


def test_macs_proxy_matches_the_materialized_network() -> None:
    from hwdiffnas.materialize import network_info

    rng = np.random.default_rng(3)
    cells = [Cell(tuple(int(x) for x in rng.integers(0, 5, 6))) for _ in range(2)]
    assert list(macs_of(cells)) == [network_info(c).macs for c in cells]


def test_picks_span_the_proxy_range() -> None:
    cands = candidate_cells()
    values = proxy_values(cands, "flops")
    picks = pick_spanning(values, 200, seed=0)
    assert len(set(picks.tolist())) == 200
    got = values[picks]
    assert got.min() == values.min() and got.max() == values.max()
    edges = np.linspace(values.min(), values.max(), 11)
    for lo, hi in zip(edges[:-1], edges[1:]):
        if ((values >= lo) & (values <= hi)).any():
            assert ((got >= lo) & (got <= hi)).any(), f"no pick in proxy bin [{lo:.3g}, {hi:.3g}]"
    # spread: the picks' proxy quartiles are far apart (not clustered where most candidates are)
    q1, q3 = np.quantile(got, [0.25, 0.75])
    assert (q3 - q1) > 0.3 * (values.max() - values.min())
    assert np.array_equal(picks, pick_spanning(values, 200, seed=0))
    assert not np.array_equal(picks, pick_spanning(values, 200, seed=1))


def test_picks_on_a_continuous_proxy_cover_it_evenly() -> None:
    values = np.random.default_rng(0).lognormal(0.0, 1.0, 5000)
    values[::7] = np.nan
    picks = pick_spanning(values, 50, seed=0)
    got = np.sort(values[picks])
    assert np.isfinite(got).all()
    assert got[0] == np.nanmin(values) and got[-1] == np.nanmax(values)
    counts, _ = np.histogram(got, bins=5, range=(np.nanmin(values), np.nanmax(values)))
    assert counts.min() >= 1
    with pytest.raises(UserError):
        pick_spanning(values, 10_000)


def test_device_proxy_from_a_table(nb201_store) -> None:  # noqa: ANN001
    device = next(d for d in nb201_store.latency_devices() if d != "local-cpu")
    spec = CampaignSpec(device="local-cpu", runtime="onnxruntime", settings=ProfileSettings(), n=40, proxy=device)
    cells = plan_cells(spec, nb201_store)
    lat = nb201_store.latency(device)
    vals = np.array([lat[nb201_store.index_of(c)] for c in cells])
    cand_vals = proxy_values(candidate_cells(), device, store=nb201_store)
    assert np.nanmin(cand_vals) == vals.min() and np.nanmax(cand_vals) == vals.max()


def _fake_stats(cell: Cell) -> LatencyStats:
    ops = np.array(cell.ops)
    ms = 1.0 + 0.3 * (ops == CONV1).sum() + 1.1 * (ops == CONV3).sum() + 0.2 * (ops == POOL).sum()
    return LatencyStats.from_samples([ms * 0.99, ms, ms * 1.01], warmup=0, threads=1, runtime="fake",
                                     runtime_version="0", host="test")


def test_failures_are_recorded_and_retried(tmp_path: Path) -> None:
    store = Store.create(tmp_path)
    spec = CampaignSpec(device="local-cpu", runtime="onnxruntime", settings=ProfileSettings(runs=3), n=10)
    cells = plan_cells(spec)
    bad = cells[3]

    def flaky(cell: Cell) -> LatencyStats:
        if cell == bad:
            raise RuntimeError("device went to sleep")
        return _fake_stats(cell)

    r1 = run_campaign(spec, store, cells, flaky, progress=False)
    assert (r1.measured_ok, r1.failed) == (9, 1) and r1.failures[0][0] == bad.arch_str
    failed = store.measured("local-cpu", spec.resolved_run_id(), status="failed")
    assert [m.cell for m in failed] == [bad] and "device went to sleep" in failed[0].error
    calls: list[Cell] = []

    def good(cell: Cell) -> LatencyStats:
        calls.append(cell)
        return _fake_stats(cell)

    r2 = run_campaign(spec, store, cells, good, progress=False)
    assert calls == [bad] and (r2.already_done, r2.measured_ok, r2.failed) == (9, 1, 0)
    rows = store.measured("local-cpu", spec.resolved_run_id())
    assert len(rows) == 10 and {m.status for m in rows} == {"ok"} and {m.cell for m in rows} == set(cells)
    mins = measured_medians(store, "local-cpu", statistic="min")
    assert mins[bad] == pytest.approx(0.99 * _fake_stats(bad).median_ms)
    assert measured_medians(store, "local-cpu")[bad] == pytest.approx(_fake_stats(bad).median_ms)
    out = tmp_path / "t.csv"
    assert write_measured_table(store, "local-cpu", out) == 10
    assert out.read_text().splitlines()[0] == "arch_str,latency_ms"
    with pytest.raises(UserError, match="statistic"):
        measured_medians(store, "local-cpu", statistic="max")
    store.close()


def _rows(db: Path) -> list[tuple]:
    conn = sqlite3.connect(db, timeout=30)
    try:
        return conn.execute("SELECT cell_key, status, created_at, median_ms FROM measurements "
                            "WHERE device = 'local-cpu' ORDER BY id").fetchall()
    except sqlite3.OperationalError:  # the schema is still being created
        return []
    finally:
        conn.close()


def test_campaign_survives_sigkill_and_resumes(tmp_path: Path) -> None:
    """Kill the campaign process mid-run, run it again: every planned cell once, earlier rows untouched."""
    n = 8
    argv = [*CLI, "--data-dir", str(tmp_path), "campaign", "--device", "local-cpu", "--n", str(n), "--warmup",
            "1", "--runs", "3", "--no-progress", "--json"]
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    proc = subprocess.Popen(argv, stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=env)
    db = tmp_path / "hwdiffnas.sqlite"
    deadline = time.monotonic() + 240
    try:
        while time.monotonic() < deadline and proc.poll() is None:
            if db.is_file() and len([r for r in _rows(db) if r[1] == "ok"]) >= 3:
                break
            time.sleep(0.2)
        assert proc.poll() is None, proc.communicate()[1].decode()[-2000:]
        proc.send_signal(signal.SIGKILL)
    finally:
        proc.wait(30)
    before = _rows(db)
    assert 3 <= len(before) < n
    r = subprocess.run(argv, capture_output=True, text=True, env=env, timeout=400)
    assert r.returncode == 0, r.stderr[-2000:]
    import json

    report = json.loads(r.stdout)
    assert report["already_done"] == len(before) and report["complete"] == n
    after = _rows(db)
    assert len(after) == n and len({row[0] for row in after}) == n
    assert after[: len(before)] == before  # rows written before the kill are unchanged
    assert all(row[1] == "ok" and row[3] > 0 for row in after)


def test_estimates_fill_unmeasured_cells(tmp_path: Path, nb201_dir: Path) -> None:
    from hwdiffnas.importers import import_paths

    import_paths([nb201_dir / "arch_index.csv"], tmp_path)
    store = Store.create(tmp_path)
    spec = CampaignSpec(device="local-cpu", runtime="fake", settings=ProfileSettings(), n=60, run_id="syn")
    cells = plan_cells(spec)
    run_campaign(spec, store, cells, _fake_stats, progress=False)
    table, n_measured, quality = estimate_device(store, "local-cpu")
    assert table == "local-cpu+est" and n_measured == 60
    assert quality is not None and quality.spearman > 0.9 and quality.mape_pct < 10
    lat = store.latency("local-cpu+est")
    assert np.isfinite(lat).all()
    for c in cells[:5]:
        assert lat[store.index_of(c)] == pytest.approx(_fake_stats(c).median_ms)
    measured = set(cells)
    unmeasured = [c for c in candidate_cells() if c not in measured]
    est = np.array([lat[store.index_of(c)] for c in unmeasured])
    true = np.array([_fake_stats(c).median_ms for c in unmeasured])
    assert np.median(np.abs(est - true) / true) < 0.25
    from scipy.stats import spearmanr

    assert spearmanr(est, true).statistic > 0.7  # 60 rows, stratified on MACs (see docs/benchmarks.md)
    assert "local-cpu+est" in store.latency_devices()
    store.close()


def test_held_out_quality_checks_its_arguments() -> None:
    cells = plan_cells(CampaignSpec(device="x", runtime="x", settings=ProfileSettings(), n=20))
    y = [_fake_stats(c).median_ms for c in cells]
    with pytest.raises(UserError):
        held_out_quality(cells, y, 20)
    q = held_out_quality(cells, y, 10)
    assert q.n_train == 10 and q.n_test == 10


_HOLDER = """
import sys, time
from pathlib import Path
from hwdiffnas.campaign import CampaignSpec, plan_cells, run_campaign
from hwdiffnas.interfaces import LatencyStats, ProfileSettings
from hwdiffnas.store import Store

go = Path(sys.argv[2])
store = Store.create(sys.argv[1])
spec = CampaignSpec(device="local-cpu", runtime="onnxruntime", settings=ProfileSettings(runs=3), n=4)

def measure(cell):
    print("measuring", flush=True)
    while not go.exists():
        time.sleep(0.05)
    return LatencyStats.from_samples([2.0, 2.0, 2.0], warmup=0, threads=1, runtime="fake", runtime_version="0",
                                     host="first")

print(run_campaign(spec, store, plan_cells(spec), measure, progress=False).measured_ok, flush=True)
"""


def test_a_second_identical_campaign_is_refused(tmp_path: Path) -> None:
    """Two processes run the same campaign on one store: the second is refused and measures nothing."""
    import sys

    go = tmp_path / "go"
    first = subprocess.Popen([sys.executable, "-c", _HOLDER, str(tmp_path), str(go)], stdout=subprocess.PIPE,
                             text=True)
    try:
        assert first.stdout is not None and first.stdout.readline().strip() == "measuring"
        store = Store.create(tmp_path)
        spec = CampaignSpec(device="local-cpu", runtime="onnxruntime", settings=ProfileSettings(runs=3), n=4)
        calls: list[Cell] = []

        def measure(cell: Cell) -> LatencyStats:
            calls.append(cell)
            return _fake_stats(cell)

        with pytest.raises(UserError, match=f"already running .*pid {first.pid}") as exc:
            run_campaign(spec, store, plan_cells(spec), measure, progress=False)
        assert "--run-id" in str(exc.value) and calls == []
        other = CampaignSpec(device="local-cpu", runtime="onnxruntime", settings=ProfileSettings(runs=3), n=4,
                             run_id="other")
        assert run_campaign(other, store, plan_cells(other)[:1], measure, progress=False).measured_ok == 1
        go.touch()
        assert first.wait(60) == 0 and first.stdout.read().strip().splitlines()[-1] == "4"
        again = run_campaign(spec, store, plan_cells(spec), measure, progress=False)  # the lock was released
        assert again.already_done == 4 and len(calls) == 1
        assert {m.host for m in store.measured("local-cpu", spec.resolved_run_id())} == {"first"}
        store.close()
    finally:
        if first.poll() is None:
            first.kill()
            first.wait()
