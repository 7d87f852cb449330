"""Campaigns outside NB201 (FBNet): planning, recording keyed by (space, architecture string), resuming after an
interruption and a SIGKILL, serving the measured device's latency afterwards, and refusals."""

from __future__ import annotations

import json
import os
import signal
import sqlite3
import subprocess
import time
from pathlib import Path

import numpy as np
import pytest
from remote_helpers import CLI

from hwdiffnas.campaign import CampaignSpec, check_format_space, local_measurer, remote_measurer, run_campaign
from hwdiffnas.campaign_space import ArchLedger, candidate_archs, plan_archs, space_proxy_values, write_arch_table
from hwdiffnas.errors import UserError
from hwdiffnas.interfaces import LatencyStats, ProfileSettings
from hwdiffnas.latency.lookup import read_rows_file
from hwdiffnas.latency.space_device import space_latencies
from hwdiffnas.plugins import get_space
from hwdiffnas.store import Store
from hwdiffnas.store_space import arch_measured, measured_arch_rows, record_arch_measurement

FBNET = get_space("fbnet")
SETTINGS = ProfileSettings(warmup=1, runs=3, threads=1)


def _spec(n: int, **kw: object) -> CampaignSpec:
    return CampaignSpec(device="local-cpu", runtime="onnxruntime", settings=SETTINGS, n=n, space="fbnet", **kw)


def test_plan_spans_macs_and_is_deterministic() -> None:
    spec = _spec(12)
    archs = plan_archs(spec, FBNET)
    assert archs == plan_archs(spec, FBNET) and len({FBNET.format(a) for a in archs}) == 12
    cands = candidate_archs(FBNET, "cifar100", 12, 0)
    assert len(cands) == 5000  # HELP's architectures in the CIFAR-100 setting
    macs = space_proxy_values(FBNET, cands, "flops", "cifar100")
    picked = space_proxy_values(FBNET, archs, "flops", "cifar100")
    assert picked.min() == macs.min() and picked.max() == macs.max()  # both ends of the range
    assert plan_archs(_spec(12, seed=1), FBNET) != archs
    assert spec.resolved_run_id().startswith("fbnet-onnxruntime-cifar100-flops-n12-s0-")
    on_lut = space_proxy_values(FBNET, plan_archs(_spec(6, proxy="raspi4"), FBNET), "raspi4", "cifar100")
    assert np.all(on_lut > 0)
    # a setting without shipped rows samples (seeded) instead
    c10 = plan_archs(_spec(4, dataset="cifar10"), FBNET)
    assert c10 == plan_archs(_spec(4, dataset="cifar10"), FBNET) and len(c10) == 4
    with pytest.raises(UserError, match="proxy 'nope' is neither 'flops' nor a device.*raspi4"):
        plan_archs(_spec(3, proxy="nope"), FBNET)
    for bad in (0, -2):
        with pytest.raises(UserError, match=f"got --n {bad}"):
            plan_archs(_spec(bad), FBNET)


def test_store_rows_are_keyed_by_space_and_arch(tmp_path: Path) -> None:
    store = Store.create(tmp_path)
    assert arch_measured(store, "fbnet") == []  # a store written before the table reads as holding none
    a = FBNET.format(FBNET.sample(1, seed=3)[0])
    first = record_arch_measurement(store, "fbnet", "dev", "r1", a, "cifar100", stats={"median_ms": 2.0})
    again = record_arch_measurement(store, "fbnet", "dev", "r1", a, "cifar100", stats={"median_ms": 3.0})
    record_arch_measurement(store, "fbnet", "dev", "r2", a, "cifar100", stats={"median_ms": 5.0})
    assert first == again and [m.median_ms for m in arch_measured(store, "fbnet", "dev")] == [3.0, 5.0]
    rows = measured_arch_rows(store, "fbnet", "dev", "cifar100")
    assert rows is not None and rows.archs == (a,) and rows.latency_ms == (4.0,) and rows.source == "measured:dev"
    assert measured_arch_rows(store, "fbnet", "dev", "cifar10") is None
    with pytest.raises(UserError, match="positive finite median_ms"):
        record_arch_measurement(store, "fbnet", "dev", "r1", a, "cifar100", stats={})
    assert store.measured("dev") == [] and store.counts()["cells"] == 15625  # NB201's tables untouched
    store.close()


def test_interrupted_fbnet_campaign_resumes_and_serves_latency(tmp_path: Path) -> None:
    """Stop a real (onnxruntime) campaign after 3 networks, run it again: each network once, earlier rows kept;
    the device then answers latency queries in the space."""
    store = Store.create(tmp_path)
    spec = _spec(8)
    archs = plan_archs(spec, FBNET)
    ledger = ArchLedger(store, FBNET, "cifar100")
    measure = local_measurer(spec, tmp_path)
    calls: list[str] = []

    def stops_after_three(arch: object) -> LatencyStats:
        if len(calls) == 3:
            raise KeyboardInterrupt
        calls.append(FBNET.format(arch))
        return measure(arch)

    with pytest.raises(KeyboardInterrupt):
        run_campaign(spec, store, archs, stops_after_three, progress=False, ledger=ledger)
    before = arch_measured(store, "fbnet", "local-cpu", spec.resolved_run_id())
    assert [m.arch_str for m in before] == calls
    report = run_campaign(spec, store, archs, measure, progress=False, ledger=ledger)
    assert (report.already_done, report.measured_ok, report.failed, report.complete) == (3, 5, 0, 8)
    after = arch_measured(store, "fbnet", "local-cpu", spec.resolved_run_id())
    assert len(after) == 8 and {m.arch_str for m in after} == {FBNET.format(a) for a in archs}
    assert after[:3] == before and all(m.status == "ok" and m.median_ms > 0 for m in after)
    assert after[0].settings["dataset"] == "cifar100" and after[0].runtime == "onnxruntime"
    # serving: exact where measured, an estimate with a bound elsewhere
    other = FBNET.sample(1, seed=99)[0]
    answers = space_latencies(FBNET, "local-cpu", [archs[0], other], "cifar100", store)
    assert answers[0].source == "measured:local-cpu" and answers[0].latency_ms == after[
        [m.arch_str for m in after].index(FBNET.format(archs[0]))].median_ms
    assert answers[1].source == "estimate" and 0 < answers[1].latency_ms <= answers[1].upper_ms
    with pytest.raises(UserError, match="measured in space 'fbnet' in the cifar100 setting.*--dataset cifar100"):
        space_latencies(FBNET, "local-cpu", [other], "cifar10", store)
    with pytest.raises(UserError, match="device 'nowhere' has no latency data in space 'fbnet'"):
        space_latencies(FBNET, "nowhere", [other], "cifar100", store)
    out = tmp_path / "t.csv"
    assert write_arch_table(store, "fbnet", "local-cpu", "cifar100", out) == 8
    assert set(read_rows_file(FBNET, out).archs) == {FBNET.format(a) for a in archs}
    store.close()


class _FakeRemote:
    description = "fake remote"

    def __init__(self, fmt: str) -> None:
        self.fmt = fmt
        self.files: list[Path] = []

    def model_format(self, runtime: str) -> str:
        return self.fmt

    def profile(self, path: Path, fmt: str, runtime: str, settings: ProfileSettings) -> LatencyStats:
        self.files.append(Path(path))
        assert Path(path).is_file()
        return LatencyStats.from_samples([1.0, 1.1, 1.2], warmup=0, threads=1, runtime=runtime,
                                         runtime_version="0", host="remote")


def test_remote_route_exports_the_space_and_refuses_formats_that_cannot(tmp_path: Path) -> None:
    spec = _spec(2)
    remote = _FakeRemote("onnx")
    measure = remote_measurer(spec, remote, tmp_path)  # type: ignore[arg-type]
    stats = measure(plan_archs(spec, FBNET)[0])
    assert stats.median_ms == pytest.approx(1.1) and remote.files and remote.files[0].suffix == ".onnx"
    check_format_space("tflite", "fbnet")  # the direct TFLite writer knows FBNet networks
    with pytest.raises(UserError, match="format 'tflite' handles networks of search space"):
        check_format_space("tflite", "toychain")


def _rows(db: Path) -> list[tuple]:
    conn = sqlite3.connect(db, timeout=30)
    try:
        return conn.execute("SELECT arch_str, status, created_at, median_ms FROM space_measurements "
                            "WHERE space = 'fbnet' AND device = 'local-cpu' ORDER BY id").fetchall()
    except sqlite3.OperationalError:  # no table yet
        return []
    finally:
        conn.close()


def test_fbnet_campaign_survives_sigkill_and_serves_latency(tmp_path: Path) -> None:
    """SIGKILL the campaign process mid-run, run it again: every planned network once, earlier rows untouched;
    then ``hwdiffnas latency`` answers from the measurements."""
    n = 8
    argv = [*CLI, "--data-dir", str(tmp_path), "campaign", "--space", "fbnet", "--device", "local-cpu", "--runtime",
            "onnxruntime", "--n", str(n), "--warmup", "1", "--runs", "3", "--no-progress", "--json"]
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    proc = subprocess.Popen(argv, stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=env)
    db = tmp_path / "hwdiffnas.sqlite"
    deadline = time.monotonic() + 240
    try:
        while time.monotonic() < deadline and proc.poll() is None:
            if db.is_file() and len(_rows(db)) >= 2:
                break
            time.sleep(0.05)
        assert proc.poll() is None, proc.communicate()[1].decode()[-2000:]
        proc.send_signal(signal.SIGKILL)
    finally:
        proc.wait(30)
    before = _rows(db)
    assert 2 <= len(before) < n
    r = subprocess.run(argv, capture_output=True, text=True, env=env, timeout=400)
    assert r.returncode == 0, r.stderr[-2000:]
    report = json.loads(r.stdout)
    assert report["space"] == "fbnet" and report["already_done"] == len(before) and report["complete"] == n
    after = _rows(db)
    assert len(after) == n and len({row[0] for row in after}) == n
    assert after[: len(before)] == before
    assert all(row[1] == "ok" and row[3] > 0 for row in after)
    conn = sqlite3.connect(db)
    assert conn.execute("SELECT COUNT(*) FROM measurements").fetchone()[0] == 0  # NB201's table untouched
    conn.close()
    q = subprocess.run([*CLI, "--data-dir", str(tmp_path), "latency", "--space", "fbnet", "--device", "local-cpu",
                        "--arch", after[0][0], "--arch", "0" * 22, "--json"], capture_output=True, text=True, env=env,
                       timeout=300)
    assert q.returncode == 0, q.stderr[-2000:]
    lat = json.loads(q.stdout)["latencies"]
    assert lat[0]["source"] == "measured:local-cpu" and lat[0]["latency_ms"] == pytest.approx(after[0][3])
    assert lat[1]["source"] == "estimate" and lat[1]["latency_ms"] > 0


@pytest.mark.parametrize(("extra", "message"), [
    (["--space", "nope"], "unknown search space 'nope'; known: "),
    (["--space", "fbnet", "--dataset", "ImageNet16-120"], "space 'fbnet' has no dataset setting 'ImageNet16-120'"),
    (["--space", "fbnet", "--n", "0"], "need at least one architecture to measure, got --n 0"),
    (["--space", "fbnet", "--estimate"], "in space 'fbnet' the measured device serves estimates directly"),
    (["--space", "fbnet", "--proxy", "nb201-dev"], "proxy 'nb201-dev' is neither 'flops' nor a device"),
])
def test_campaign_refuses_bad_input(tmp_path: Path, capsys: pytest.CaptureFixture[str], extra: list[str],
                                    message: str) -> None:
    from hwdiffnas.cli import main

    argv = ["--data-dir", str(tmp_path), "campaign", "--device", "local-cpu", "--runtime", "onnxruntime",
            "--n", "3", "--no-progress", *extra]
    assert main(argv) == 2
    assert message in capsys.readouterr().err
    assert _rows(tmp_path / "hwdiffnas.sqlite") == []  # refused before measuring


def test_dry_run_lists_the_plan(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    from hwdiffnas.cli import main

    assert main(["--data-dir", str(tmp_path), "campaign", "--space", "fbnet", "--device", "local-cpu", "--n", "5",
                 "--dry-run", "--json"]) == 0
    body = json.loads(capsys.readouterr().out)
    assert body["space"] == "fbnet" and [r["arch_str"] for r in body["cells"]] == [
        FBNET.format(a) for a in plan_archs(_spec(5), FBNET)]


def test_fbnet_campaign_through_an_agent(tmp_path: Path) -> None:
    """The agent route measures FBNet networks exported here; a rerun finds them all done."""
    pytest.importorskip("starlette")
    pytest.importorskip("uvicorn")
    from remote_helpers import AgentProcess, write_token

    token_file, _ = write_token(tmp_path)
    (tmp_path / "work").mkdir()
    agent = AgentProcess(tmp_path / "work", token_file)
    argv = [*CLI, "--data-dir", str(tmp_path / "data"), "campaign", "--space", "fbnet", "--device", "local-cpu",
            "--runtime", "onnxruntime", "--remote", agent.url, "--token-file", str(token_file), "--n", "2",
            "--warmup", "0", "--runs", "2", "--no-progress", "--json"]
    try:
        first = subprocess.run(argv, capture_output=True, text=True, timeout=300)
        again = subprocess.run(argv, capture_output=True, text=True, timeout=300)
    finally:
        agent.stop()
    assert first.returncode == 0, first.stderr[-2000:]
    assert json.loads(first.stdout)["measured_ok"] == 2 and json.loads(again.stdout)["already_done"] == 2
    rows = _rows(tmp_path / "data" / "hwdiffnas.sqlite")
    assert len(rows) == 2 and {r[0] for r in rows} == {FBNET.format(a) for a in plan_archs(_spec(2), FBNET)}
