"""SSH transport against a real asyncssh server on loopback, and adb command building with a fake ``adb``."""

from __future__ import annotations

import asyncio
import json
import os
import shlex
import stat
import subprocess
import sys
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest

from hwdiffnas.errors import UserError
from hwdiffnas.interfaces import ProfileSettings
from hwdiffnas.remote.transports import AdbTransport, SSHTransport, TransportError, TransportTarget, parse_transport_url

asyncssh = pytest.importorskip("asyncssh")
FIXTURES = Path(__file__).parent / "fixtures" / "benchmark_model"


def _fixture_text(name: str) -> str:
    return "\n".join(ln for ln in (FIXTURES / name).read_text().splitlines() if not ln.startswith("## ")) + "\n"


def _fake_benchmark_model(folder: Path, fixture: str) -> Path:
    """A stand-in for LiteRT's benchmark_model: checks its --graph file exists, prints a genuine output."""
    out = folder / "fixture.txt"
    out.write_text(_fixture_text(fixture))
    tool = folder / "benchmark_model"
    tool.write_text(f"""#!{sys.executable}
import sys, os, json
args = sys.argv[1:]
graph = [a.split('=', 1)[1] for a in args if a.startswith('--graph=')][0]
if not os.path.isfile(graph):
    print('Failed to load model ' + graph); sys.exit(1)
open({str(folder / 'calls.jsonl')!r}, 'a').write(json.dumps(args) + '\\n')
sys.stdout.write(open({str(out)!r}).read())
""")
    tool.chmod(0o755)
    return tool


# --- a loopback SSH server ------------------------------------------------------------------------------------
class _Server:
    """asyncssh server on 127.0.0.1 in a background thread; runs exec requests without a shell."""

    def __init__(self, root: Path) -> None:
        self.root = root
        self.host_key = asyncssh.generate_private_key("ssh-ed25519")
        self.client_key = asyncssh.generate_private_key("ssh-ed25519")
        self.commands: list[str] = []
        self.loop = asyncio.new_event_loop()
        self.thread = threading.Thread(target=self.loop.run_forever, daemon=True)
        self.thread.start()
        self.server = asyncio.run_coroutine_threadsafe(self._start(), self.loop).result(20)
        self.port = self.server.sockets[0].getsockname()[1]

    async def _handle(self, process: asyncssh.SSHServerProcess) -> None:
        self.commands.append(process.command)
        try:
            argv = shlex.split(process.command or "")
            proc = await asyncio.to_thread(subprocess.run, argv, capture_output=True, text=True, check=False)
            process.stdout.write(proc.stdout)
            process.stderr.write(proc.stderr)
            process.exit(proc.returncode or 0)
        except (OSError, ValueError) as exc:
            process.stderr.write(f"{exc}\n")
            process.exit(127)

    async def _start(self) -> asyncssh.SSHAcceptor:
        keys = asyncssh.import_authorized_keys(self.client_key.export_public_key().decode())
        return await asyncssh.listen("127.0.0.1", 0, server_host_keys=[self.host_key], authorized_client_keys=keys,
                                     process_factory=self._handle, sftp_factory=True, encoding="utf-8")

    def known_hosts(self, path: Path, key: asyncssh.SSHKey | None = None) -> Path:
        pub = (key or self.host_key).export_public_key().decode().strip()
        path.write_text(f"[127.0.0.1]:{self.port} {pub}\n")
        return path

    def client_key_file(self, path: Path) -> Path:
        self.client_key.write_private_key(str(path))
        path.chmod(0o600)
        return path

    async def _shutdown(self) -> None:
        self.server.close()
        tasks = [t for t in asyncio.all_tasks() if t is not asyncio.current_task()]
        for t in tasks:
            t.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)

    def close(self) -> None:
        asyncio.run_coroutine_threadsafe(self._shutdown(), self.loop).result(10)
        self.loop.call_soon_threadsafe(self.loop.stop)
        self.thread.join(5)
        self.loop.close()


@pytest.fixture(scope="module")
def ssh_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[_Server]:
    server = _Server(tmp_path_factory.mktemp("sshroot"))
    yield server
    server.close()


def _transport(server: _Server, tmp_path: Path, **kw: object) -> SSHTransport:
    return SSHTransport("127.0.0.1", port=server.port, username="hwdiffnas",
                        known_hosts=server.known_hosts(tmp_path / "known_hosts"),
                        client_keys=[server.client_key_file(tmp_path / "id_ed25519")],
                        remote_dir=str(tmp_path / "remote dir"), **kw)  # a space, to exercise quoting


def test_ssh_push_run_and_parse_benchmark_model(ssh_server: _Server, tmp_path: Path) -> None:
    tool = _fake_benchmark_model(tmp_path, "linux_aarch64_peak_memory.txt")
    model = tmp_path / "m.tflite"
    model.write_bytes(b"\x1c\x00\x00\x00TFL3" + bytes(64))
    t = _transport(ssh_server, tmp_path)
    target = TransportTarget(t, str(tool), "loopback ssh")
    try:
        stats = target.profile(model, fmt="tflite", runtime="litert",
                               settings=ProfileSettings(warmup=3, runs=7, threads=2))
    finally:
        target.close()
    assert stats.median_ms == pytest.approx(211.509) and stats.runs == 50 and stats.threads == 2
    calls = [json.loads(x) for x in (tmp_path / "calls.jsonl").read_text().splitlines()]
    assert len(calls) == 1
    graph = calls[0][0].split("=", 1)[1]
    assert graph.startswith(str(tmp_path / "remote dir") + "/") and graph.endswith(".tflite")
    assert calls[0][1:] == ["--num_threads=2", "--warmup_runs=3", "--warmup_min_secs=0", "--num_runs=7",
                            "--min_secs=0"]
    assert not Path(graph).exists()  # the pushed model is removed afterwards


def test_ssh_arguments_arrive_intact(ssh_server: _Server, tmp_path: Path) -> None:
    t = _transport(ssh_server, tmp_path)
    tricky = ["a b", "c;d", "$(touch x)", "'q'", "*"]
    try:
        out = t.run([sys.executable, "-c", "import json, sys; print(json.dumps(sys.argv[1:]))", *tricky], 30)
    finally:
        t.close()
    assert json.loads(out) == tricky
    assert not (Path.cwd() / "x").exists()


def test_ssh_failure_and_timeout(ssh_server: _Server, tmp_path: Path) -> None:
    t = _transport(ssh_server, tmp_path)
    try:
        with pytest.raises(TransportError, match="status 3"):
            t.run([sys.executable, "-c", "import sys; print('boom'); sys.exit(3)"], 30)
        with pytest.raises(TransportError, match="timed out"):
            t.run([sys.executable, "-c", "import time; time.sleep(3)"], 0.5)
    finally:
        t.close()


def test_ssh_rejects_unknown_host_key(ssh_server: _Server, tmp_path: Path) -> None:
    other = asyncssh.generate_private_key("ssh-ed25519")
    t = SSHTransport("127.0.0.1", port=ssh_server.port, username="x",
                     known_hosts=ssh_server.known_hosts(tmp_path / "kh", key=other),
                     client_keys=[ssh_server.client_key_file(tmp_path / "id")], remote_dir=str(tmp_path))
    try:
        with pytest.raises(TransportError, match="cannot connect"):
            t.run(["true"], 10)
    finally:
        t.close()


def test_ssh_needs_a_known_hosts_file(tmp_path: Path) -> None:
    with pytest.raises(UserError, match="known_hosts"):
        SSHTransport("127.0.0.1", known_hosts=tmp_path / "missing")


# --- adb ------------------------------------------------------------------------------------------------------
@pytest.fixture()
def fake_adb(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """An ``adb`` on PATH that logs its argv; ``shell`` runs benchmark_model by printing a genuine output."""
    bindir = tmp_path / "bin"
    bindir.mkdir()
    (tmp_path / "fixture.txt").write_text(_fixture_text("android_adb_gpu.txt"))
    adb = bindir / "adb"
    adb.write_text(f"""#!{sys.executable}
import json, shlex, sys, time
args = sys.argv[1:]
open({str(tmp_path / 'adb.jsonl')!r}, 'a').write(json.dumps(args) + '\\n')
if args[:1] == ['-s']:
    args = args[2:]
if args[0] == 'push':
    print(args[1] + ': 1 file pushed.')
elif args[0] == 'shell':
    argv = shlex.split(args[1])
    if argv[0] == 'sleep':
        time.sleep(float(argv[1]))
    elif argv[0].endswith('benchmark_model'):
        sys.stdout.write(open({str(tmp_path / 'fixture.txt')!r}).read())
    elif argv[0] == 'false':
        sys.exit(1)
""")
    adb.chmod(adb.stat().st_mode | stat.S_IXUSR)
    monkeypatch.setenv("PATH", f"{bindir}{os.pathsep}{os.environ['PATH']}")
    return tmp_path / "adb.jsonl"


def test_adb_command_lists_and_parse(fake_adb: Path, tmp_path: Path) -> None:
    model = tmp_path / "m.tflite"
    model.write_bytes(b"x")
    target = parse_transport_url("adb://emulator-5554?tool=/data/local/tmp/benchmark_model")
    stats = target.profile(model, fmt="tflite", runtime="litert", settings=ProfileSettings(warmup=2, runs=9))
    assert stats.median_ms == pytest.approx(119.375) and stats.warmup == 4
    calls = [json.loads(x) for x in fake_adb.read_text().splitlines()]
    assert calls[0] == ["-s", "emulator-5554", "shell", "mkdir -p /data/local/tmp/hwdiffnas"]
    assert calls[1][:3] == ["-s", "emulator-5554", "push"] and calls[1][3] == str(model)
    remote = calls[1][4]
    assert remote.startswith("/data/local/tmp/hwdiffnas/hwdiffnas-") and remote.endswith(".tflite")
    assert calls[2][:3] == ["-s", "emulator-5554", "shell"]
    assert shlex.split(calls[2][3]) == ["/data/local/tmp/benchmark_model", f"--graph={remote}", "--num_threads=1",
                                        "--warmup_runs=2", "--warmup_min_secs=0", "--num_runs=9", "--min_secs=0"]
    assert shlex.split(calls[3][3]) == ["rm", "-f", remote]


def test_adb_delegate_from_url_or_device_config(fake_adb: Path, tmp_path: Path) -> None:
    """The LiteRT delegate reaches benchmark_model: from the URL's ``delegate=``, else from the device config's
    ``[measure] delegate`` (the campaign passes it), the URL winning; the stats name it."""
    from hwdiffnas.devices import get_device
    from hwdiffnas.remote.route import open_remote

    model = tmp_path / "m.tflite"
    model.write_bytes(b"x")
    settings = ProfileSettings(warmup=2, runs=9)

    def bench_argv() -> list[str]:
        calls = [json.loads(x) for x in fake_adb.read_text().splitlines()]
        return next(shlex.split(c[-1]) for c in reversed(calls) if "benchmark_model" in c[-1])

    stats = parse_transport_url("adb://R58M?delegate=gpu").profile(model, fmt="tflite", runtime="litert",
                                                                   settings=settings)
    assert bench_argv()[-1] == "--use_gpu=true" and stats.runtime == "litert-gpu"
    config_delegate = get_device("pixel-nnapi").measure.delegate
    open_remote("adb://R58M", delegate=config_delegate).profile(model, fmt="tflite", runtime="litert",
                                                               settings=settings)
    assert bench_argv()[-1] == "--use_nnapi=true"
    open_remote("adb://R58M?delegate=cpu", delegate=config_delegate).profile(model, fmt="tflite", runtime="litert",
                                                                            settings=settings)
    assert bench_argv()[-1] == "--use_xnnpack=false"
    parse_transport_url("adb://R58M").profile(model, fmt="tflite", runtime="litert", settings=settings)
    assert bench_argv()[-1] == "--min_secs=0"  # no delegate: the tool's default, no flag


def test_delegate_errors_come_before_any_transport(monkeypatch: pytest.MonkeyPatch) -> None:
    from hwdiffnas.remote import transports
    from hwdiffnas.remote.route import open_remote

    def no_transport(*a, **k):  # noqa: ANN002, ANN003, ANN202
        raise AssertionError("a transport was opened")

    monkeypatch.setattr(transports, "AdbTransport", no_transport)
    monkeypatch.setattr(transports, "SSHTransport", no_transport)
    with pytest.raises(UserError, match="unknown LiteRT delegate 'edgetpu'"):
        parse_transport_url("adb://R58M?delegate=edgetpu")
    with pytest.raises(UserError, match="applies to LiteRT's benchmark_model"):
        parse_transport_url("ssh://pi5?delegate=gpu")  # the default ssh tool is the python worker
    with pytest.raises(UserError, match="agent .* times LiteRT on its CPU"):
        open_remote("http://pi5:8765", token_file="t", delegate="nnapi")


def test_adb_quotes_each_argument(fake_adb: Path) -> None:
    t = AdbTransport("R58M")
    argv = t.shell_argv(["/data/local/tmp/x y/benchmark_model", "--graph=a;rm -rf /", "$(id)"])
    assert argv[1:4] == ["-s", "R58M", "shell"] and len(argv) == 5
    assert shlex.split(argv[4]) == ["/data/local/tmp/x y/benchmark_model", "--graph=a;rm -rf /", "$(id)"]


def test_adb_failures_and_timeouts(fake_adb: Path) -> None:
    t = AdbTransport(None)
    assert t.base_argv()[1:] == []
    with pytest.raises(TransportError, match="status 1"):
        t.run(["false"], 10)
    with pytest.raises(TransportError, match="timed out"):
        t.run(["sleep", "5"], 0.5)


def test_adb_missing(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv("PATH", str(tmp_path))
    with pytest.raises(UserError, match="platform-tools"):
        AdbTransport("x")


def test_remote_urls_are_checked() -> None:
    with pytest.raises(UserError, match="unknown option"):
        parse_transport_url("adb://x?evil=1")
    with pytest.raises(UserError, match="unsupported"):
        parse_transport_url("ftp://x")
