"""The profiling agent's resource bounds as a real process: the worker's memory limit, the upload timeout, memory
while receiving an upload, and one answer for external-data references in subgraphs."""

from __future__ import annotations

import socket
import threading
import time
import urllib.parse
from collections.abc import Iterator
from pathlib import Path

import pytest
from remote_helpers import AgentProcess, onnx_model, onnx_weights_model, request, vm_kib, write_token

pytest.importorskip("starlette")
pytest.importorskip("uvicorn")

UPLOAD_TIMEOUT_S = 3


@pytest.fixture(scope="module")
def agent(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[AgentProcess, str, Path]]:
    root = tmp_path_factory.mktemp("agent_limits")
    token_file, token = write_token(root)
    proc = AgentProcess(root / "work", token_file, "--max-upload-mb", "48", "--job-timeout", "120",
                        "--upload-timeout", str(UPLOAD_TIMEOUT_S), "--job-memory-mb", "1024")
    yield proc, token, root
    proc.stop()


def _memory_bomb(n: int = 300_000_000) -> bytes:
    """A ~200-byte valid model whose ConstantOfShape fills ``n`` floats (1.2 GB) when run."""
    from onnx import TensorProto, helper

    x = helper.make_tensor_value_info("X", TensorProto.FLOAT, [1, 3, 32, 32])
    y = helper.make_tensor_value_info("Y", TensorProto.FLOAT, [1, 3, 32, 32])
    nodes = [helper.make_node("Constant", [], ["s"], value=helper.make_tensor("v", TensorProto.INT64, [1], [n])),
             helper.make_node("ConstantOfShape", ["s"], ["big"],
                              value=helper.make_tensor("f", TensorProto.FLOAT, [1], [1.0])),
             helper.make_node("ReduceSum", ["big"], ["r"], keepdims=0),
             helper.make_node("Add", ["X", "r"], ["Y"])]
    model = helper.make_model(helper.make_graph(nodes, "bomb", [x], [y]), opset_imports=[helper.make_opsetid("", 17)])
    model.ir_version = 8
    return model.SerializeToString()


def _external_in_subgraph(location: str) -> bytes:
    """A model whose If branch holds an initializer stored in the external file ``location``."""
    from onnx import TensorProto, helper

    ext = helper.make_tensor("w", TensorProto.FLOAT, [1], [0.0])
    ext.ClearField("float_data")
    ext.data_location = TensorProto.EXTERNAL
    for key, value in (("location", location), ("offset", "0"), ("length", "4")):
        entry = ext.external_data.add()
        entry.key, entry.value = key, value
    then = helper.make_graph([helper.make_node("Identity", ["w"], ["t"])], "then", [],
                             [helper.make_tensor_value_info("t", TensorProto.FLOAT, [1])], [ext])
    other = helper.make_graph([helper.make_node("Constant", [], ["e"],
                                                value=helper.make_tensor("z", TensorProto.FLOAT, [1], [1.0]))],
                              "else", [], [helper.make_tensor_value_info("e", TensorProto.FLOAT, [1])])
    nodes = [helper.make_node("ReduceSum", ["X"], ["s"], keepdims=0),
             helper.make_node("Greater", ["s", "zero"], ["c"]),
             helper.make_node("If", ["c"], ["Y"], then_branch=then, else_branch=other)]
    zero = helper.make_tensor("zero", TensorProto.FLOAT, [], [0.0])
    graph = helper.make_graph(nodes, "ext", [helper.make_tensor_value_info("X", TensorProto.FLOAT, [1, 3, 8, 8])],
                              [helper.make_tensor_value_info("Y", TensorProto.FLOAT, [1])], [zero])
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    model.ir_version = 8
    return model.SerializeToString()


def test_worker_memory_is_bounded(agent: tuple[AgentProcess, str, Path]) -> None:
    a, token, _ = agent
    health = request(a.url + "/health", token=token)[1]
    assert health["limits"]["job_memory_mb"] == 1024 and health["limits"]["upload_timeout_s"] == UPLOAD_TIMEOUT_S
    bomb = _memory_bomb()
    assert len(bomb) < 300
    status, body = request(a.url + "/profile?runs=1&warmup=0", "POST", bomb, token=token)
    assert status == 500 and "limited to 1024 MiB" in body["error"], body
    status, answer = request(a.url + "/profile?runs=2&warmup=0", "POST", onnx_model(), token=token)
    assert status == 200 and answer["stats"]["runs"] == 2  # the agent (and a worker) carry on


def test_a_slow_upload_blocks_nobody_and_times_out(agent: tuple[AgentProcess, str, Path]) -> None:
    a, token, _ = agent
    host, port = urllib.parse.urlsplit(a.url).netloc.split(":")
    slow = socket.create_connection((host, int(port)), timeout=60)
    try:
        slow.sendall((f"POST /profile?runs=1 HTTP/1.1\r\nHost: {host}\r\nAuthorization: Bearer {token}\r\n"
                      "Content-Length: 100000\r\n\r\n").encode() + onnx_model()[:10])
        time.sleep(0.5)
        t0 = time.monotonic()
        status, answer = request(a.url + "/profile?runs=2&warmup=0", "POST", onnx_model(), token=token,
                                 timeout_s=UPLOAD_TIMEOUT_S * 4)
        assert status == 200 and answer["stats"]["runs"] == 2
        assert time.monotonic() - t0 < UPLOAD_TIMEOUT_S * 4, time.monotonic() - t0
        reply = ""
        while "upload not received" not in reply:
            chunk = slow.recv(4096).decode("latin-1")
            if not chunk:
                break
            reply += chunk
        assert reply.startswith("HTTP/1.1 408") and "upload not received within" in reply, reply
    finally:
        slow.close()


def test_upload_memory_stays_near_one_times_the_upload(agent: tuple[AgentProcess, str, Path]) -> None:
    """The agent's peak RSS grows by well under the upload's size while receiving and validating it."""
    a, token, _ = agent
    warm = request(a.url + "/profile?runs=1&warmup=0", "POST", onnx_weights_model(1), token=token)
    assert warm[0] == 200, warm
    model = onnx_weights_model(40)
    before = vm_kib(a.proc.pid, "VmHWM")
    status, answer = request(a.url + "/profile?runs=1&warmup=0", "POST", model, token=token)
    assert status == 200, answer
    grown_mib = (vm_kib(a.proc.pid, "VmHWM") - before) / 1024
    assert grown_mib < 0.5 * len(model) / 2**20, f"peak RSS grew {grown_mib:.0f} MiB for a 40 MiB upload"


def test_external_data_in_a_subgraph_has_one_answer(agent: tuple[AgentProcess, str, Path]) -> None:
    """A relative external-data name in an If branch is refused the same way whether or not a file of that
    name exists next to the agent."""
    a, token, root = agent
    answers = []
    for exists in (False, True):
        name = "weights.bin"
        for folder in (root, a.workdir):
            target = folder / name
            if exists:
                target.write_bytes(b"\0" * 4)
            else:
                target.unlink(missing_ok=True)
        answers.append(request(a.url + "/profile?runs=1&warmup=0", "POST", _external_in_subgraph(name),
                               token=token))
    assert answers[0] == answers[1], answers
    status, body = answers[0]
    assert status == 422 and "external data" in body["error"]


def test_parallel_uploads_are_received_concurrently(agent: tuple[AgentProcess, str, Path]) -> None:
    """Two clients upload at once; both are measured (the upload gate covers validation only)."""
    a, token, _ = agent
    results: list[int] = []

    def one() -> None:
        results.append(request(a.url + "/profile?runs=1&warmup=0", "POST", onnx_model(), token=token)[0])

    threads = [threading.Thread(target=one) for _ in range(3)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(120)
    assert results == [200, 200, 200]


def test_validation_skips_payloads_but_checks_their_size() -> None:
    """Large initializer payloads are not loaded for validation, but their length must match shape and type."""
    import onnx

    from hwdiffnas.remote.onnxwire import skeleton
    from hwdiffnas.remote.validate import ModelRejected, validate_model

    good = onnx_weights_model(2)
    import io

    assert len(skeleton(io.BytesIO(good), len(good))) < 1000
    assert validate_model(good, "onnx", 1 << 30).input_shape == (1, 3, 32, 32)
    model = onnx.ModelProto()
    model.ParseFromString(good)
    model.graph.initializer[0].raw_data = model.graph.initializer[0].raw_data[:-4]  # one float short
    with pytest.raises(ModelRejected, match="raw_data is .* bytes; its shape .* need") as exc:
        validate_model(model.SerializeToString(), "onnx", 1 << 30)
    assert exc.value.status == 422
    model.ParseFromString(good)
    model.graph.initializer[0].float_data.append(1.0)  # two value fields
    with pytest.raises(ModelRejected, match="values twice"):
        validate_model(model.SerializeToString(), "onnx", 1 << 30)
