"""The profiling agent: a small HTTP service (starlette + uvicorn) that times uploaded models on this host.

API (every endpoint needs ``Authorization: Bearer <token>``; the token is compared in constant time):

* ``GET /health`` → runtimes with versions, accepted formats, limits, queue state, resident memory.
* ``POST /profile?format=onnx&runtime=onnxruntime&warmup=10&runs=50&threads=1&name=model.onnx`` with the
  model file as the raw request body → ``{"stats": LatencyStats, "job": {id, queued_s, started, finished}}``.

Status codes: 400 bad parameter or name, 401 missing/wrong token, 408 upload not received within the upload
timeout, 413 upload over the size limit, 415 unknown format, 422 not a valid model (pickle, truncated, other
file, external data), 503 queue full or shutting down, 504 the measurement passed the per-job timeout, 500 the
runtime failed (including a model that needs more memory than the worker's limit).

Safety: uploads stream in chunks to a fresh job folder inside the work dir (size-checked on the way, never
whole in memory, within the upload timeout, so a slow client holds up nobody else), are validated
(`hwdiffnas.remote.validate`, structure only) before any runtime sees them, and are removed after the job.
Measurements run one at a time (an asyncio lock; waiting jobs queue) in a separate worker process with a
data-segment limit (``RLIMIT_DATA``, ``job_memory_mb``), which is killed when a job passes its timeout.
SIGTERM/SIGINT stop accepting, let the running job finish, stop the worker and clean up.
"""

from __future__ import annotations

import asyncio
import contextlib
import hmac
import itertools
import json
import os
import shutil
import signal
import socket
import stat
import sys
import time
import uuid
from collections import deque
from collections.abc import AsyncIterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from hwdiffnas import __version__
from hwdiffnas.errors import MissingBackendError, UserError
from hwdiffnas.remote.validate import FORMATS, SUFFIX, ModelRejected, check_name, safe_child, validate_file

MIN_TOKEN_CHARS = 16
UNAUTHENTICATED_DRAIN_BYTES = 1 << 20  # a request without a valid token is read no further than this
WORKER_ARGV = (sys.executable, "-m", "hwdiffnas.remote.worker")


@dataclass(frozen=True)
class AgentConfig:
    """Settings of one agent process."""

    token: str
    workdir: Path
    max_upload_bytes: int = 64 * 1024 * 1024
    job_timeout_s: float = 300.0
    upload_timeout_s: float = 120.0  # the whole request body must arrive within this
    job_memory_mb: int = 2048  # data-segment limit (RLIMIT_DATA) of the measurement worker; 0 = none
    max_queue: int = 16
    max_runs: int = 10_000
    max_warmup: int = 10_000


def read_token_file(path: Path | str) -> str:
    """Read a token file; refuses files others can read and tokens shorter than 16 characters."""
    p = Path(path)
    try:
        st = p.stat()
        token = p.read_text(encoding="utf-8").strip()
    except OSError as exc:
        raise UserError(f"cannot read token file {p}: {exc.strerror}") from exc
    if os.name == "posix" and st.st_mode & (stat.S_IRWXG | stat.S_IRWXO):
        raise UserError(f"token file {p} is readable by others (mode {stat.S_IMODE(st.st_mode):o}); "
                        f"run: chmod 600 {p}")
    if len(token) < MIN_TOKEN_CHARS or any(c.isspace() for c in token):
        raise UserError(f"token in {p} must be at least {MIN_TOKEN_CHARS} characters without spaces "
                        "(e.g. python -c 'import secrets; print(secrets.token_urlsafe(32))')")
    return token


def rss_mb(pid: int | str = "self") -> float | None:
    """Resident set size of a process in MiB (Linux ``/proc``), None where unavailable."""
    try:
        with open(f"/proc/{pid}/status", encoding="ascii") as fh:
            for line in fh:
                if line.startswith("VmRSS:"):
                    return int(line.split()[1]) / 1024.0
    except OSError:
        return None
    return None


class JobTimeout(Exception):
    """The worker did not answer within the job timeout (it has been killed)."""


class QueueFull(Exception):
    """``max_queue`` jobs are already waiting."""


class WorkerProcess:
    """One long-lived measurement worker (`hwdiffnas.remote.worker`), restarted after a crash or timeout."""

    def __init__(self, cwd: Path, memory_mb: int = 0) -> None:
        self.cwd = cwd
        self.memory_mb = memory_mb
        self.proc: asyncio.subprocess.Process | None = None

    async def _ensure(self) -> asyncio.subprocess.Process:
        if self.proc is None or self.proc.returncode is not None:
            limit = ("--memory-limit-mb", str(self.memory_mb)) if self.memory_mb > 0 else ()
            self.proc = await asyncio.create_subprocess_exec(
                *WORKER_ARGV, *limit, stdin=asyncio.subprocess.PIPE, stdout=asyncio.subprocess.PIPE, cwd=str(self.cwd),
                limit=16 * 1024 * 1024)
        return self.proc

    @property
    def pid(self) -> int | None:
        return self.proc.pid if self.proc is not None and self.proc.returncode is None else None

    async def call(self, request: dict[str, Any], timeout_s: float) -> dict[str, Any]:
        """Send one request and wait for its answer; kills the worker on timeout."""
        proc = await self._ensure()
        assert proc.stdin is not None and proc.stdout is not None
        try:
            proc.stdin.write((json.dumps(request) + "\n").encode())
            await proc.stdin.drain()
            line = await asyncio.wait_for(proc.stdout.readline(), timeout_s)
        except (asyncio.TimeoutError, TimeoutError) as exc:
            await self.stop(kill=True)
            raise JobTimeout(f"measurement took longer than {timeout_s:g} s; the worker was stopped") from exc
        except (BrokenPipeError, ConnectionResetError) as exc:
            await self.stop(kill=True)
            return {"ok": False, "error": f"worker process died: {exc}"}
        if not line:
            code = await proc.wait()
            self.proc = None
            return {"ok": False, "error": f"worker process exited with status {code} during the measurement"}
        return json.loads(line)

    async def stop(self, kill: bool = False) -> None:
        """End the worker (close its stdin, or kill it), waiting for it to exit."""
        proc, self.proc = self.proc, None
        if proc is None or proc.returncode is not None:
            return
        if kill:
            proc.kill()
        else:
            assert proc.stdin is not None
            proc.stdin.close()
        try:
            await asyncio.wait_for(proc.wait(), 10)
        except (asyncio.TimeoutError, TimeoutError):
            proc.kill()
            await proc.wait()


class Agent:
    """State shared by the request handlers: config, the worker, the one-at-a-time lock, the job log."""

    def __init__(self, config: AgentConfig) -> None:
        self.config = config
        self.jobs_dir = config.workdir / "jobs"
        self.worker = WorkerProcess(config.workdir, config.job_memory_mb)
        self.lock = asyncio.Lock()
        self.waiting = 0
        self.receiving = 0  # uploads being streamed to disk (at most max_queue + 1 at once)
        self.running: str | None = None
        self.closing = False
        self.runtimes: dict[str, dict[str, Any]] = {}
        self.log: deque[dict[str, Any]] = deque(maxlen=1000)
        self.counts = {"accepted": 0, "ok": 0, "failed": 0, "rejected": 0, "timeout": 0}
        self._ids = itertools.count(1)
        self._token = config.token.encode("utf-8")
        # Uploads stream to disk concurrently; they are validated one at a time, on one dedicated thread: at most
        # one model's structure is in memory, and the allocator keeps one extra arena instead of one per thread.
        self.upload_gate = asyncio.Semaphore(1)
        self.validator = ThreadPoolExecutor(max_workers=1, thread_name_prefix="hwdiffnas-validate")

    # --- lifecycle -----------------------------------------------------------------------------------
    async def startup(self) -> None:
        self.jobs_dir.mkdir(parents=True, exist_ok=True)
        for stale in self.jobs_dir.iterdir():  # left by a killed agent
            shutil.rmtree(stale, ignore_errors=True)
        answer = await self.worker.call({"op": "health"}, timeout_s=120)
        self.runtimes = answer.get("runtimes", {}) if answer.get("ok") else {}

    async def shutdown(self) -> None:
        self.closing = True
        async with self.lock:  # let a running measurement finish
            await self.worker.stop()
        self.validator.shutdown(wait=True)
        shutil.rmtree(self.jobs_dir, ignore_errors=True)

    # --- helpers -------------------------------------------------------------------------------------
    def authorized(self, header: str | None) -> bool:
        if not header or not header.startswith("Bearer "):
            return False
        return hmac.compare_digest(header[len("Bearer "):].strip().encode("utf-8"), self._token)

    def health(self) -> dict[str, Any]:
        return {
            "status": "closing" if self.closing else "ok",
            "agent_version": __version__,
            "python": sys.version.split()[0],
            "host": _host(),
            "runtimes": self.runtimes,
            "formats": list(FORMATS),
            "busy": self.running is not None,
            "queued": self.waiting,
            "limits": {"max_upload_bytes": self.config.max_upload_bytes, "job_timeout_s": self.config.job_timeout_s,
                       "max_queue": self.config.max_queue, "upload_timeout_s": self.config.upload_timeout_s,
                       "job_memory_mb": self.config.job_memory_mb},
            "counts": dict(self.counts),
            "rss_mb": {"agent": rss_mb(), "worker": rss_mb(self.worker.pid) if self.worker.pid else None},
        }

    async def measure(self, path: Path, request: dict[str, Any]) -> tuple[dict[str, Any], dict[str, Any]]:
        """Queue for the worker, run one measurement; returns (worker answer, job record)."""
        if self.waiting >= self.config.max_queue:  # checked and counted with no await in between
            raise QueueFull(f"queue full ({self.config.max_queue} jobs waiting); retry later")
        job_id = f"{next(self._ids)}-{uuid.uuid4().hex[:8]}"
        t_queued = time.monotonic()
        self.waiting += 1
        self.counts["accepted"] += 1
        try:
            await self.lock.acquire()
        finally:
            self.waiting -= 1
        try:
            self.running = job_id
            started = time.monotonic()
            answer = await self.worker.call({**request, "op": "profile", "model": str(path)},
                                            self.config.job_timeout_s)
            finished = time.monotonic()
        finally:
            self.running = None
            self.lock.release()
        job = {"id": job_id, "queued_s": started - t_queued, "started": started, "finished": finished,
               "clock": "agent monotonic seconds"}
        self.log.append(job)
        return answer, job


def _host() -> str:
    from hwdiffnas.interfaces import host_description

    return host_description()


def _int_param(params: Any, key: str, default: int, lo: int, hi: int) -> int:
    raw = params.get(key)
    if raw is None:
        return default
    try:
        value = int(raw)
    except ValueError as exc:
        raise ModelRejected(f"parameter {key}={raw!r} is not an integer", status=400) from exc
    if not lo <= value <= hi:
        raise ModelRejected(f"parameter {key}={value} outside {lo}..{hi}", status=400)
    return value


def create_app(config: AgentConfig) -> Any:
    """The starlette application for ``config`` (needs the ``agent`` extra)."""
    try:
        from starlette.applications import Starlette
        from starlette.requests import ClientDisconnect, Request
        from starlette.responses import JSONResponse
        from starlette.routing import Route
    except ImportError as exc:
        raise MissingBackendError("the profiling agent's server (starlette, uvicorn)", "agent", str(exc)) from exc

    agent = Agent(config)

    def error(status: int, message: str, **headers: str) -> JSONResponse:
        if status not in (401,):
            agent.counts["rejected"] += 1
        return JSONResponse({"error": message, "status": status}, status_code=status, headers=headers or None)

    def unauthorized() -> JSONResponse:
        return JSONResponse({"error": "missing or wrong bearer token", "status": 401}, status_code=401,
                            headers={"WWW-Authenticate": 'Bearer realm="hwdiffnas-agent"'})

    async def health(request: Request) -> JSONResponse:
        if not agent.authorized(request.headers.get("authorization")):
            return unauthorized()
        return JSONResponse(agent.health())

    def check_length(request: Request, limit: int) -> None:
        declared = request.headers.get("content-length")
        if declared is not None:
            try:
                n = int(declared)
            except ValueError as exc:
                raise ModelRejected(f"bad Content-Length {declared!r}", status=400) from exc
            if n > limit:
                raise ModelRejected(f"upload of {n} bytes is over the limit of {limit} bytes", status=413)

    async def receive(request: Request, path: Path, limit: int) -> None:
        """Stream the body into ``path`` chunk by chunk (never whole in memory), within the size limit and the
        upload timeout."""
        async def copy() -> None:
            total = 0
            with open(path, "xb") as fh:
                async for chunk in request.stream():
                    total += len(chunk)
                    if total > limit:
                        raise ModelRejected(f"upload is over the limit of {limit} bytes", status=413)
                    fh.write(chunk)

        try:
            await asyncio.wait_for(copy(), config.upload_timeout_s)
        except (asyncio.TimeoutError, TimeoutError) as exc:
            raise ModelRejected(f"upload not received within {config.upload_timeout_s:g} s (the agent's "
                                "--upload-timeout)", status=408) from exc

    async def drain(request: Request, limit: int) -> None:
        """Read and drop an unread request body (up to ``limit`` bytes) so the client gets to read our answer
        instead of a reset connection; larger bodies are not read (the connection is closed)."""
        declared = request.headers.get("content-length", "")
        if declared.isdigit() and int(declared) > limit:
            return

        async def read() -> None:
            total = 0
            async for chunk in request.stream():
                total += len(chunk)
                if total > limit:
                    return

        try:
            await asyncio.wait_for(read(), config.upload_timeout_s)
        except (ClientDisconnect, asyncio.TimeoutError, TimeoutError):
            return

    async def profile(request: Request) -> JSONResponse:
        if not agent.authorized(request.headers.get("authorization")):
            await drain(request, UNAUTHENTICATED_DRAIN_BYTES)
            return unauthorized()
        if agent.closing:
            await drain(request, config.max_upload_bytes)
            return error(503, "agent is shutting down")
        q = request.query_params
        try:
            fmt = q.get("format", "onnx")
            if fmt not in FORMATS:
                raise ModelRejected(f"unsupported format {fmt!r}; accepted: {', '.join(FORMATS)}", status=415)
            name = check_name(q.get("name", f"model{SUFFIX[fmt]}"))
            runtime = q.get("runtime", "onnxruntime")
            info = agent.runtimes.get(runtime)
            if info is None:
                raise ModelRejected(f"unknown runtime {runtime!r}; this agent has: "
                                    f"{', '.join(sorted(agent.runtimes)) or 'none'}", status=400)
            if not info.get("available"):
                raise ModelRejected(f"runtime {runtime!r} is not usable on this agent: {info.get('reason')}",
                                    status=400)
            if info.get("model_format") != fmt:
                raise ModelRejected(f"runtime {runtime!r} loads {info.get('model_format')!r} models, "
                                    f"not {fmt!r}", status=415)
            settings = {
                "warmup": _int_param(q, "warmup", 10, 0, config.max_warmup),
                "runs": _int_param(q, "runs", 50, 1, config.max_runs),
                "threads": _int_param(q, "threads", 1, 1, 256),
                "precision": q.get("precision", "fp32"),
            }
            if settings["precision"] not in ("fp32", "fp16", "int8"):
                raise ModelRejected(f"precision {settings['precision']!r} not one of fp32, fp16, int8", status=400)
            if settings["precision"] not in info.get("precisions", ("fp32",)):
                raise ModelRejected(f"runtime {runtime!r} on this agent times {', '.join(info.get('precisions', ()))}"
                                    f" only, not precision {settings['precision']!r}", status=400)
            if agent.waiting >= config.max_queue or agent.receiving > config.max_queue:
                await drain(request, config.max_upload_bytes)
                return error(503, f"queue full ({config.max_queue} jobs waiting or uploading); retry later",
                             **{"Retry-After": "5"})
            check_length(request, config.max_upload_bytes)
        except ModelRejected as exc:
            await drain(request, config.max_upload_bytes)
            return error(exc.status, str(exc))
        job_dir = agent.jobs_dir / uuid.uuid4().hex
        job_dir.mkdir(mode=0o700)
        try:
            path = safe_child(job_dir, name)
            agent.receiving += 1
            try:
                try:
                    await receive(request, path, config.max_upload_bytes)
                finally:
                    agent.receiving -= 1
                async with agent.upload_gate:
                    check = await asyncio.get_running_loop().run_in_executor(
                        agent.validator, validate_file, path, fmt, config.max_upload_bytes)
            except ModelRejected as exc:
                return error(exc.status, str(exc), **({"Connection": "close"} if exc.status == 408 else {}))
            except ClientDisconnect:
                return error(400, "client disconnected during upload")
            try:
                answer, job = await agent.measure(path, {
                    "format": fmt, "runtime": runtime, **settings, "input_shape": list(check.input_shape),
                    "metadata": check.metadata})
            except JobTimeout as exc:
                agent.counts["timeout"] += 1
                return error(504, str(exc))
            except QueueFull as exc:
                return error(503, str(exc), **{"Retry-After": "5"})
        finally:
            shutil.rmtree(job_dir, ignore_errors=True)
        if not answer.get("ok"):
            agent.counts["failed"] += 1
            return JSONResponse({"error": answer.get("error", "measurement failed"), "status": 500, "job": job},
                                status_code=500)
        agent.counts["ok"] += 1
        return JSONResponse({"stats": answer["stats"], "job": job, "name": name, "size_bytes": check.size_bytes})

    @contextlib.asynccontextmanager
    async def lifespan(_app: Any) -> AsyncIterator[None]:
        await agent.startup()
        try:
            yield
        finally:
            await agent.shutdown()

    app = Starlette(routes=[Route("/health", health, methods=["GET"]),
                            Route("/profile", profile, methods=["POST"])], lifespan=lifespan)
    app.state.agent = agent
    return app


def serve(config: AgentConfig, host: str = "127.0.0.1", port: int = 8765) -> int:
    """Run the agent until SIGTERM/SIGINT; prints the bound address on stderr once listening."""
    try:
        import uvicorn
    except ImportError as exc:
        raise MissingBackendError("the profiling agent's server (uvicorn)", "agent", str(exc)) from exc
    config.workdir.mkdir(parents=True, exist_ok=True)
    app = create_app(config)
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    try:
        sock.bind((host, port))
    except OSError as exc:
        sock.close()
        raise UserError(f"cannot listen on {host}:{port}: {exc.strerror}") from exc
    sock.listen(128)
    bound = sock.getsockname()[1]
    stop_signals: list[int] = []

    class _Server(uvicorn.Server):
        """Graceful stop on SIGTERM/SIGINT, then a normal return (exit status 0) instead of re-raising."""

        @contextlib.contextmanager
        def capture_signals(self) -> Any:
            loop = asyncio.get_running_loop()

            def on_signal(sig: int) -> None:
                stop_signals.append(sig)
                if self.should_exit:
                    self.force_exit = True
                self.should_exit = True

            for sig in (signal.SIGINT, signal.SIGTERM):
                loop.add_signal_handler(sig, on_signal, sig)
            try:
                yield
            finally:
                for sig in (signal.SIGINT, signal.SIGTERM):
                    loop.remove_signal_handler(sig)

    server = _Server(uvicorn.Config(app, log_level="warning", access_log=False,
                                    timeout_graceful_shutdown=int(config.job_timeout_s) + 5))

    async def run() -> None:
        task = asyncio.create_task(server.serve(sockets=[sock]))
        while not server.started and not task.done():
            await asyncio.sleep(0.05)
        if server.started:
            shown = f"[{host}]" if family == socket.AF_INET6 else host
            print(f"hwdiffnas agent listening on http://{shown}:{bound} (work dir {config.workdir})",
                  file=sys.stderr, flush=True)
        await task

    asyncio.run(run())
    if stop_signals:
        print(f"hwdiffnas agent stopped ({signal.Signals(stop_signals[0]).name})", file=sys.stderr, flush=True)
    return 0
