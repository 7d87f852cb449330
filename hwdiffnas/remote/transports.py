"""Transports for devices without the agent: SSH (asyncssh) and adb (Android platform-tools).

Both implement `hwdiffnas.interfaces.Transport`: ``push`` copies a model file into the transport's remote
folder, ``run`` executes an argument list there and returns its output. Arguments are quoted one by one with
`shlex.quote` (SSH and ``adb shell`` both hand the command line to a remote POSIX shell); nothing is built by
pasting strings. Every operation has a timeout. SSH host keys are checked against a known_hosts file, which
must exist; there is no option to skip the check.

Remote URLs (``--remote``):

* ``http://HOST:PORT`` / ``https://…`` — a profiling agent (`hwdiffnas.remote.client`).
* ``ssh://[USER@]HOST[:PORT][/REMOTE_DIR][?key=FILE&known_hosts=FILE&tool=CMD]`` — push over SFTP and run
  ``tool`` there: ``python3`` (default; runs ``python3 -m hwdiffnas.remote.worker --once``, needs hwdiffnas on
  the host) or a path ending in ``benchmark_model`` (LiteRT's tool; output parsed).
* ``adb://[SERIAL][/REMOTE_DIR][?tool=PATH&adb=ADB&delegate=NAME]`` — ``adb push`` and ``adb shell`` running
  LiteRT's ``benchmark_model`` (default ``/data/local/tmp/benchmark_model``).

With ``benchmark_model``, ``delegate=`` (``cpu``, ``xnnpack``, ``nnapi``, ``gpu``, ``hexagon``) adds that delegate's
flags; without it the device config's ``[measure] delegate`` applies (`open_remote`), else the tool's default.
"""

from __future__ import annotations

import asyncio
import json
import os
import shlex
import shutil
import subprocess
import urllib.parse
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path, PurePosixPath
from typing import Any

from hwdiffnas.delegates import benchmark_model_flags
from hwdiffnas.errors import MissingBackendError, UserError
from hwdiffnas.interfaces import LatencyStats, ProfileSettings, Transport
from hwdiffnas.remote.benchmark_model import BenchmarkOutputError, benchmark_model_argv, parse_benchmark_model
from hwdiffnas.remote.validate import check_name


class TransportError(UserError):
    """A remote command failed, timed out or the connection broke; the message carries the output's tail."""


def _tail(text: str, lines: int = 8) -> str:
    return "\n".join(text.strip().splitlines()[-lines:])


# --- SSH -------------------------------------------------------------------------------------------------
class SSHTransport(Transport):
    """SSH to one host (asyncssh), driven synchronously from its own event loop."""

    name = "ssh"

    def __init__(self, host: str, *, port: int = 22, username: str | None = None,
                 known_hosts: Path | str | None = None, client_keys: Sequence[Path | str] | None = None,
                 remote_dir: str = "/tmp/hwdiffnas", connect_timeout_s: float = 20.0) -> None:
        try:
            import asyncssh  # noqa: F401
        except ImportError as exc:
            raise MissingBackendError("asyncssh (SSH transport)", "ssh", str(exc)) from exc
        kh = Path(known_hosts).expanduser() if known_hosts else Path.home() / ".ssh" / "known_hosts"
        if not kh.is_file():
            raise UserError(f"known_hosts file {kh} not found: host keys are always checked; add the host's key "
                            f"first (ssh-keyscan -p {port} {host} >> {kh}, then verify its fingerprint)")
        self.host, self.port, self.username = host, port, username
        self.known_hosts = kh
        self.client_keys = [str(Path(k).expanduser()) for k in client_keys] if client_keys else None
        self.remote_dir = remote_dir
        self.connect_timeout_s = connect_timeout_s
        self._loop = asyncio.new_event_loop()
        self._conn: Any = None

    def _run(self, coro: Any, timeout_s: float, what: str) -> Any:
        try:
            return self._loop.run_until_complete(asyncio.wait_for(coro, timeout_s))
        except (asyncio.TimeoutError, TimeoutError) as exc:
            self._drop()
            raise TransportError(f"ssh {self.host}: {what} timed out after {timeout_s:g} s") from exc

    def _drop(self) -> None:
        if self._conn is not None:
            self._conn.abort()
            self._conn = None

    def _connection(self) -> Any:
        import asyncssh

        if self._conn is None:
            kwargs: dict[str, Any] = {"port": self.port, "known_hosts": str(self.known_hosts),
                                      "connect_timeout": self.connect_timeout_s}
            if self.username:
                kwargs["username"] = self.username
            if self.client_keys is not None:
                kwargs["client_keys"] = self.client_keys
            try:
                self._conn = self._run(asyncssh.connect(self.host, **kwargs), self.connect_timeout_s + 5,
                                       "connecting")
            except (OSError, asyncssh.Error) as exc:
                raise TransportError(f"ssh {self.host}:{self.port}: cannot connect: {exc}") from exc
        return self._conn

    def push(self, local: Path, remote_name: str, timeout_s: float = 120.0) -> str:
        """Copy ``local`` to ``REMOTE_DIR/remote_name`` over SFTP; returns the remote path."""
        import asyncssh

        check_name(remote_name)
        remote = str(PurePosixPath(self.remote_dir) / remote_name)
        conn = self._connection()

        async def put() -> None:
            async with conn.start_sftp_client() as sftp:
                await sftp.makedirs(self.remote_dir, exist_ok=True)
                await sftp.put(str(local), remote)

        try:
            self._run(put(), timeout_s, f"uploading {local.name}")
        except (OSError, asyncssh.Error) as exc:
            raise TransportError(f"ssh {self.host}: upload of {local} failed: {exc}") from exc
        return remote

    def run(self, argv: Sequence[str], timeout_s: float) -> str:
        """Run ``argv`` (quoted argument by argument); stdout+stderr, or `TransportError` on failure."""
        import asyncssh

        command = shlex.join(str(a) for a in argv)
        conn = self._connection()
        try:
            result = self._run(conn.run(command, check=False), timeout_s, f"running {argv[0]}")
        except (OSError, asyncssh.Error) as exc:
            raise TransportError(f"ssh {self.host}: {argv[0]} failed: {exc}") from exc
        out = f"{result.stdout or ''}{result.stderr or ''}"
        if result.exit_status != 0:
            raise TransportError(f"ssh {self.host}: {command} exited with status {result.exit_status}:\n"
                                 f"{_tail(out)}")
        return str(result.stdout or "")

    def close(self) -> None:
        if self._conn is not None:
            self._conn.close()
            self._loop.run_until_complete(self._conn.wait_closed())
            self._conn = None
        self._loop.close()


# --- adb -------------------------------------------------------------------------------------------------
class AdbTransport(Transport):
    """An Android device through ``adb`` (subprocess argument lists)."""

    name = "adb"

    def __init__(self, serial: str | None = None, *, adb: str = "adb",
                 remote_dir: str = "/data/local/tmp/hwdiffnas") -> None:
        exe = shutil.which(adb)
        if exe is None:
            raise UserError(f"{adb!r} not found on PATH; install Android platform-tools (e.g. apt-get install adb)")
        self.adb = exe
        self.serial = serial
        self.remote_dir = remote_dir
        self._made_dir = False

    def base_argv(self) -> list[str]:
        """``adb`` plus the device selector."""
        return [self.adb, "-s", self.serial] if self.serial else [self.adb]

    def shell_argv(self, argv: Sequence[str]) -> list[str]:
        """The argument list running ``argv`` in ``adb shell`` (each argument quoted for the device's sh)."""
        return [*self.base_argv(), "shell", shlex.join(str(a) for a in argv)]

    def _call(self, argv: list[str], timeout_s: float, what: str) -> str:
        try:
            proc = subprocess.run(argv, capture_output=True, text=True, timeout=timeout_s, check=False)
        except subprocess.TimeoutExpired as exc:
            raise TransportError(f"adb: {what} timed out after {timeout_s:g} s") from exc
        except OSError as exc:
            raise TransportError(f"adb: cannot run {argv[0]}: {exc}") from exc
        out = proc.stdout + proc.stderr
        if proc.returncode != 0:
            raise TransportError(f"adb: {what} failed with status {proc.returncode}:\n{_tail(out)}")
        return proc.stdout

    def push(self, local: Path, remote_name: str, timeout_s: float = 120.0) -> str:
        check_name(remote_name)
        if not self._made_dir:
            self.run(["mkdir", "-p", self.remote_dir], timeout_s=30)
            self._made_dir = True
        remote = str(PurePosixPath(self.remote_dir) / remote_name)
        self._call([*self.base_argv(), "push", str(local), remote], timeout_s, f"push {local.name}")
        return remote

    def run(self, argv: Sequence[str], timeout_s: float) -> str:
        return self._call(self.shell_argv(argv), timeout_s, f"shell {argv[0]}")


# --- profiling through a transport -----------------------------------------------------------------------
@dataclass(frozen=True)
class TransportTarget:
    """A transport plus the benchmark tool it runs there."""

    transport: Transport
    tool: str  # "python3"-like interpreter, or a path to LiteRT's benchmark_model
    description: str
    delegate: str = ""  # LiteRT delegate for benchmark_model ("" = the tool's default)

    def __post_init__(self) -> None:
        self.check_delegate(self.tool, self.delegate)

    @staticmethod
    def check_delegate(tool: str, delegate: str) -> None:
        """An unknown delegate, or one for a tool other than ``benchmark_model``, fails before anything runs."""
        benchmark_model_flags(delegate)
        if delegate and not _is_benchmark_model(tool):
            raise UserError(f"delegate {delegate!r} applies to LiteRT's benchmark_model, not to {tool!r}")

    @property
    def uses_benchmark_model(self) -> bool:
        return _is_benchmark_model(self.tool)

    def model_format(self, runtime: str) -> str:
        """``tflite`` for LiteRT's benchmark_model; otherwise the remote hwdiffnas worker loads ONNX."""
        if self.uses_benchmark_model:
            return "tflite"
        if runtime not in ("onnxruntime",):
            raise UserError(f"over {self.transport.name} the hwdiffnas worker times ONNX models with onnxruntime; "
                            f"runtime {runtime!r} needs an agent on the device (hwdiffnas agent serve)")
        return "onnx"

    def profile(self, model: Path, *, fmt: str, runtime: str, settings: ProfileSettings,
                timeout_s: float = 600.0) -> LatencyStats:
        """Push ``model``, time it with the tool, remove it, and return the statistics."""
        suffix = model.suffix or f".{fmt}"
        remote_name = f"hwdiffnas-{os.getpid()}{suffix}"
        remote = self.transport.push(model, remote_name)
        try:
            if self.uses_benchmark_model:
                argv = benchmark_model_argv(self.tool, remote, threads=settings.threads, warmup=settings.warmup,
                                            runs=settings.runs, extra=benchmark_model_flags(self.delegate))
                out = self.transport.run(argv, timeout_s)
                try:
                    result = parse_benchmark_model(out)
                except BenchmarkOutputError as exc:
                    raise TransportError(f"{self.description}: {exc}") from exc
                return result.to_stats(threads=settings.threads,
                                       runtime=f"{runtime}-{self.delegate}" if self.delegate else runtime,
                                       host=self.description, precision=settings.precision)
            argv = [self.tool, "-m", "hwdiffnas.remote.worker", "--once", "--model", remote, "--format", fmt,
                    "--runtime", runtime, "--warmup", str(settings.warmup), "--runs", str(settings.runs),
                    "--threads", str(settings.threads), "--precision", settings.precision]
            try:
                out = self.transport.run(argv, timeout_s)
            except TransportError as exc:
                raise TransportError(f"{exc}\n(is hwdiffnas installed for {self.tool} on the device?)") from exc
            return _stats_from_worker_output(out, self.description)
        finally:
            try:
                self.transport.run(["rm", "-f", remote], timeout_s=30)
            except TransportError:
                pass

    def close(self) -> None:
        self.transport.close()


def _is_benchmark_model(tool: str) -> bool:
    """Whether ``tool`` is LiteRT's ``benchmark_model`` (its output is parsed) rather than a Python interpreter."""
    return PurePosixPath(tool).name.endswith("benchmark_model")


def _stats_from_worker_output(out: str, where: str) -> LatencyStats:
    from hwdiffnas.remote.client import stats_from_dict

    for line in reversed(out.strip().splitlines()):
        line = line.strip()
        if line.startswith("{"):
            answer = json.loads(line)
            if not answer.get("ok"):
                raise TransportError(f"{where}: measurement failed: {answer.get('error')}")
            return stats_from_dict(answer["stats"])
    raise TransportError(f"{where}: no JSON answer in the remote output:\n{_tail(out)}")


def parse_transport_url(url: str, delegate: str = "") -> TransportTarget:
    """Open the transport named by an ``ssh://`` or ``adb://`` URL (see the module doc); ``delegate`` applies when
    the URL names none."""
    parts = urllib.parse.urlsplit(url)
    opts = {k: v[-1] for k, v in urllib.parse.parse_qs(parts.query).items()}
    unknown = sorted(set(opts) - {"key", "known_hosts", "tool", "adb", "delegate"})
    if unknown:
        raise UserError(f"unknown option(s) {', '.join(unknown)} in {url!r}; known: key, known_hosts, tool, adb, "
                        "delegate")
    delegate = opts.get("delegate", delegate)
    if parts.scheme in ("ssh", "adb"):  # checked before a transport is opened
        default_tool = "python3" if parts.scheme == "ssh" else "/data/local/tmp/benchmark_model"
        TransportTarget.check_delegate(opts.get("tool", default_tool), delegate)
    if parts.scheme == "ssh":
        if not parts.hostname:
            raise UserError(f"ssh URL {url!r} needs a host: ssh://[USER@]HOST[:PORT][/REMOTE_DIR]")
        remote_dir = parts.path if parts.path not in ("", "/") else "/tmp/hwdiffnas"
        transport = SSHTransport(parts.hostname, port=parts.port or 22, username=parts.username,
                                 known_hosts=opts.get("known_hosts"),
                                 client_keys=[opts["key"]] if "key" in opts else None, remote_dir=remote_dir)
        return TransportTarget(transport, opts.get("tool", "python3"), f"ssh://{parts.hostname}:{parts.port or 22}",
                               delegate)
    if parts.scheme == "adb":
        remote_dir = parts.path if parts.path not in ("", "/") else "/data/local/tmp/hwdiffnas"
        transport = AdbTransport(parts.netloc or None, adb=opts.get("adb", "adb"), remote_dir=remote_dir)
        return TransportTarget(transport, opts.get("tool", "/data/local/tmp/benchmark_model"),
                               f"adb device {parts.netloc or '(default)'}", delegate)
    raise UserError(f"unsupported remote {url!r}: use http(s)://HOST:PORT (agent), ssh://… or adb://…")
