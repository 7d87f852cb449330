"""The profiling agent as a real process: authentication, upload limits, model validation, path safety,
one measurement at a time, per-job timeout, clean shutdown."""

from __future__ import annotations

import hashlib
import os
import pickle
import signal
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest
from remote_helpers import CLI, AgentProcess, onnx_model, request, write_token

from hwdiffnas.remote.client import AgentClient, RemoteError

pytest.importorskip("starlette")
pytest.importorskip("uvicorn")


def _snapshot(root: Path, skip: Path) -> dict[str, str]:
    """Every file under ``root`` outside ``skip`` with its content hash."""
    out = {}
    for p in root.rglob("*"):
        if p.is_file() and skip not in p.parents:
            out[str(p)] = hashlib.sha256(p.read_bytes()).hexdigest()
    return out


class _Evil:
    """Unpickling this would create a marker file."""

    def __init__(self, marker: Path) -> None:
        self.marker = marker

    def __reduce__(self):  # noqa: ANN204
        return (os.system, (f"touch {self.marker}",))


@pytest.fixture(scope="module")
def agent(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[AgentProcess, str, Path]]:
    root = tmp_path_factory.mktemp("agent")
    token_file, token = write_token(root)
    proc = AgentProcess(root / "work", token_file, "--max-upload-mb", "0.1", "--job-timeout", "60")
    yield proc, token, root
    proc.stop()


def test_token_is_required(agent: tuple[AgentProcess, str, Path]) -> None:
    a, token, _ = agent
    assert request(a.url + "/health")[0] == 401
    assert request(a.url + "/health", token="x" * len(token))[0] == 401
    assert request(a.url + "/health", token=token + "x")[0] == 401
    status, body = request(a.url + "/profile?runtime=onnxruntime", "POST", onnx_model())
    assert status == 401 and "token" in body["error"]
    status, health = request(a.url + "/health", token=token)
    assert status == 200 and health["status"] == "ok"
    ort = health["runtimes"]["onnxruntime"]
    assert ort["available"] and ort["version"] and ort["model_format"] == "onnx"
    assert "onnx" in health["formats"] and health["limits"]["max_upload_bytes"] == int(0.1 * 1024 * 1024)


def test_measures_a_valid_model(agent: tuple[AgentProcess, str, Path]) -> None:
    a, token, _ = agent
    client = AgentClient(a.url, token)
    answer = client.profile_bytes(onnx_model(), runtime="onnxruntime", name="tiny.onnx",
                                  settings=__import__("hwdiffnas.interfaces").interfaces.ProfileSettings(warmup=2,
                                                                                                        runs=7))
    stats = answer["stats"]
    assert stats["runs"] == 7 and stats["warmup"] == 2 and len(stats["samples_ms"]) == 7
    assert 0 < stats["min_ms"] <= stats["median_ms"] <= stats["p90_ms"]
    assert stats["runtime"] == "onnxruntime" and answer["name"] == "tiny.onnx"
    assert answer["job"]["finished"] >= answer["job"]["started"]
    assert list((a.workdir / "jobs").iterdir()) == []  # job folder removed afterwards


@pytest.mark.parametrize("case", ["pickle", "evil_pickle", "torch_zip", "truncated", "text", "empty_graph",
                                  "png"])
def test_malformed_and_malicious_files_are_rejected(agent: tuple[AgentProcess, str, Path], case: str,
                                                    tmp_path: Path) -> None:
    a, token, root = agent
    marker = tmp_path / "pwned"
    import onnx

    bodies = {
        "pickle": pickle.dumps({"weights": list(range(100))}),
        "evil_pickle": pickle.dumps(_Evil(marker)),
        "torch_zip": b"PK\x03\x04" + bytes(200),
        "truncated": onnx_model()[: len(onnx_model()) // 2],
        "text": b"this is not a model, just some text\n" * 20,
        "empty_graph": onnx.helper.make_model(onnx.helper.make_graph([], "g", [], [])).SerializeToString() + b"\0" * 20,
        "png": b"\x89PNG\r\n\x1a\n" + bytes(100),
    }
    before = _snapshot(root, a.workdir)
    status, body = request(a.url + "/profile?format=onnx&runtime=onnxruntime", "POST", bodies[case], token=token)
    assert status == 422, body
    assert body["error"]
    assert not marker.exists()
    assert _snapshot(root, a.workdir) == before
    assert list((a.workdir / "jobs").iterdir()) == []


def test_oversized_upload_is_413(agent: tuple[AgentProcess, str, Path]) -> None:
    a, token, _ = agent
    big = onnx_model() + bytes(300_000)
    status, body = request(a.url + "/profile?runtime=onnxruntime", "POST", big, token=token)
    assert status == 413 and "limit" in body["error"]


def test_oversized_chunked_upload_is_413(agent: tuple[AgentProcess, str, Path]) -> None:
    """No Content-Length: the limit is enforced while streaming."""
    import http.client
    import json
    import urllib.parse

    a, token, _ = agent
    u = urllib.parse.urlsplit(a.url)
    conn = http.client.HTTPConnection(u.hostname, u.port, timeout=60)

    def chunks() -> Iterator[bytes]:
        for _ in range(40):
            yield bytes(8192)

    conn.request("POST", "/profile?runtime=onnxruntime", body=chunks(), encode_chunked=True,
                 headers={"Authorization": f"Bearer {token}", "Transfer-Encoding": "chunked"})
    resp = conn.getresponse()
    assert resp.status == 413, resp.read()
    assert "limit" in json.loads(resp.read())["error"]
    conn.close()


@pytest.mark.parametrize("name", ["../evil.onnx", "..", "/etc/passwd", "a/b.onnx", ".hidden", "x\\..\\y",
                                  "ok..onnx", "a" * 200, "name with space.onnx"])
def test_path_traversal_in_names_is_400(agent: tuple[AgentProcess, str, Path], name: str) -> None:
    import urllib.parse

    a, token, root = agent
    before = _snapshot(root, a.workdir)
    q = urllib.parse.urlencode({"runtime": "onnxruntime", "name": name})
    status, body = request(f"{a.url}/profile?{q}", "POST", onnx_model(), token=token)
    assert status == 400 and "name" in body["error"]
    assert _snapshot(root, a.workdir) == before
    assert not (root / "evil.onnx").exists() and not (a.workdir / "evil.onnx").exists()


@pytest.mark.parametrize(("query", "status"), [("format=pt", 415), ("format=tflite&runtime=onnxruntime", 415),
                                               ("runtime=nope", 400), ("runs=0", 400), ("runs=abc", 400),
                                               ("threads=100000", 400), ("precision=fp64", 400),
                                               ("precision=int8", 400), ("precision=fp16", 400)])
def test_bad_parameters(agent: tuple[AgentProcess, str, Path], query: str, status: int) -> None:
    a, token, _ = agent
    got, body = request(f"{a.url}/profile?{query}", "POST", onnx_model(), token=token)
    assert got == status, body


def test_measurements_never_overlap(agent: tuple[AgentProcess, str, Path]) -> None:
    """Concurrent clients: every job's [started, finished] interval (agent clock) is disjoint from the others."""
    a, token, _ = agent
    model = onnx_model(channels=16, size=32, layers=2)
    jobs: list[dict] = []
    errors: list[str] = []

    def client() -> None:
        c = AgentClient(a.url, token)
        from hwdiffnas.interfaces import ProfileSettings

        for _ in range(3):
            try:
                jobs.append(c.profile_bytes(model, settings=ProfileSettings(warmup=1, runs=20))["job"])
            except RemoteError as exc:
                errors.append(str(exc))

    threads = [threading.Thread(target=client) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(300)
    assert errors == [] and len(jobs) == 12
    spans = sorted((j["started"], j["finished"]) for j in jobs)
    for (_s0, e0), (s1, _e1) in zip(spans, spans[1:]):
        assert s1 >= e0, f"overlapping measurements: {spans}"
    assert max(j["queued_s"] for j in jobs) > 0  # some jobs really waited for others


def test_timeout_queue_limit_and_clean_shutdown(tmp_path: Path) -> None:
    token_file, token = write_token(tmp_path)
    a = AgentProcess(tmp_path / "work", token_file, "--job-timeout", "2", "--max-queue", "1")
    try:
        heavy = onnx_model(channels=32, size=64, layers=3)
        results: list[int] = []

        def slow() -> None:
            results.append(request(a.url + "/profile?runs=10000&warmup=0", "POST", heavy, token=token)[0])

        threads = [threading.Thread(target=slow) for _ in range(3)]
        for t in threads:
            t.start()
        for t in threads:
            t.join(120)
        assert sorted(results) == [503, 504, 504], results  # one queued job too many; the others time out
        status, answer = request(a.url + "/profile?runs=3&warmup=0", "POST", onnx_model(), token=token)
        assert status == 200 and answer["stats"]["runs"] == 3  # a fresh worker after the killed one
        health = request(a.url + "/health", token=token)[1]
        assert health["counts"]["timeout"] == 2
    finally:
        code = a.stop(signal.SIGTERM)
    assert code == 0
    assert not (tmp_path / "work" / "jobs").exists()


def test_token_file_must_be_private(tmp_path: Path) -> None:
    import subprocess

    token_file, _ = write_token(tmp_path)
    token_file.chmod(0o644)
    r = subprocess.run([*CLI, "agent", "serve", "--token-file", str(token_file),
                        "--port", "0"], capture_output=True, text=True, timeout=120)
    assert r.returncode == 2 and "chmod 600" in r.stderr


def test_client_refuses_uploads_over_the_agent_limit(agent: tuple[AgentProcess, str, Path]) -> None:
    a, token, _ = agent
    with pytest.raises(RemoteError, match="accepts at most") as info:
        AgentClient(a.url, token).profile_bytes(onnx_model() + bytes(200_000))
    assert info.value.status == 413


def test_profile_command_through_the_agent(tmp_path: Path) -> None:
    import json
    import subprocess

    token_file, _ = write_token(tmp_path)
    a = AgentProcess(tmp_path / "work", token_file)
    try:
        r = subprocess.run([*CLI, "profile", "--arch", "3,0,1,2,4,3", "--runtime", "onnxruntime", "--remote", a.url,
                            "--token-file", str(token_file), "--warmup", "1", "--runs", "4", "--json"],
                           capture_output=True, text=True, timeout=300)
    finally:
        a.stop()
    assert r.returncode == 0, r.stderr
    out = json.loads(r.stdout)
    assert out["runtime"] == "onnxruntime" and out["runs"] == 4 and out["median_ms"] > 0
    assert out["arch_str"] == "|nor_conv_3x3~0|+|none~0|skip_connect~1|+|nor_conv_1x1~0|avg_pool_3x3~1|nor_conv_3x3~2|"
    bad = subprocess.run([*CLI, "profile", "--arch", "3,0,1,2,4,3", "--runtime", "onnxruntime", "--remote",
                          "http://127.0.0.1:9"],
                         capture_output=True, text=True, timeout=300)
    assert bad.returncode == 2 and "--token-file" in bad.stderr


def test_campaign_refuses_a_precision_its_runtime_does_not_time(agent: tuple[AgentProcess, str, Path],
                                                                 tmp_path: Path) -> None:
    """An int8 device measured with onnxruntime (which times the fp32 file) is refused before measuring."""
    import sqlite3
    import subprocess

    a, token, root = agent
    health = request(a.url + "/health", token=token)[1]
    assert health["runtimes"]["onnxruntime"]["precisions"] == ["fp32"]
    r = subprocess.run([*CLI, "--data-dir", str(tmp_path), "campaign", "--device", "snapdragon855-cpu-int8",
                        "--runtime", "onnxruntime", "--remote", a.url, "--token-file", str(root / "token"), "--n", "2",
                        "--warmup", "0", "--runs", "2", "--no-progress"], capture_output=True, text=True, timeout=300)
    assert r.returncode == 2, r.stderr
    assert "precision 'int8'" in r.stderr and "times fp32 only" in r.stderr and "Traceback" not in r.stderr
    conn = sqlite3.connect(tmp_path / "hwdiffnas.sqlite")
    assert conn.execute("SELECT COUNT(*) FROM measurements").fetchone()[0] == 0
    conn.close()
