"""One entry point for every remote route: ``open_remote(url)`` gives an object that times a model file."""

from __future__ import annotations

import urllib.parse
from pathlib import Path
from typing import TYPE_CHECKING, Protocol

from hwdiffnas.errors import UserError
from hwdiffnas.interfaces import LatencyStats, ProfileSettings

if TYPE_CHECKING:
    from hwdiffnas.materialize import MacroConfig
    from hwdiffnas.space import Cell


class RemoteProfiler(Protocol):
    """Times an exported model file somewhere else."""

    description: str

    def profile(self, model: Path, *, fmt: str, runtime: str, settings: ProfileSettings) -> LatencyStats: ...

    def model_format(self, runtime: str) -> str: ...

    def close(self) -> None: ...


class AgentProfiler:
    """A profiling agent reached over HTTP."""

    def __init__(self, url: str, token: str, timeout_s: float = 900.0) -> None:
        from hwdiffnas.remote.client import AgentClient

        self.client = AgentClient(url, token, timeout_s=timeout_s)
        self.description = f"agent {url}"
        self._runtimes: dict | None = None

    def model_format(self, runtime: str) -> str:
        """The format the agent's ``runtime`` loads (from its /health report)."""
        if self._runtimes is None:
            self._runtimes = self.client.health().get("runtimes", {})
        info = self._runtimes.get(runtime)
        if info is None:
            raise UserError(f"the agent at {self.client.url} has no runtime {runtime!r}; it has: "
                            f"{', '.join(sorted(self._runtimes)) or 'none'}")
        if not info.get("available"):
            raise UserError(f"runtime {runtime!r} is not usable on the agent at {self.client.url}: "
                            f"{info.get('reason', '')}")
        return str(info["model_format"])

    def precisions(self, runtime: str) -> tuple[str, ...] | None:
        """The precisions the agent's ``runtime`` times (None from an agent that does not say)."""
        self.model_format(runtime)
        assert self._runtimes is not None
        found = self._runtimes[runtime].get("precisions")
        return None if found is None else tuple(found)

    def profile(self, model: Path, *, fmt: str, runtime: str, settings: ProfileSettings) -> LatencyStats:
        return self.client.profile(model, fmt=fmt, runtime=runtime, settings=settings)

    def close(self) -> None:
        """Nothing to release (one HTTP request per measurement)."""


def open_remote(url: str, token_file: Path | str | None = None, delegate: str = "") -> RemoteProfiler:
    """The remote named by ``url``: ``http(s)://`` (agent; needs ``token_file``), ``ssh://`` or ``adb://``.

    ``delegate`` (a device config's ``[measure] delegate``) is the LiteRT delegate for ``benchmark_model`` over
    ssh/adb when the URL names none; an agent runs LiteRT's interpreter with its default (XNNPACK) CPU delegate,
    so another delegate there is an error rather than a silently different measurement.
    """
    scheme = urllib.parse.urlsplit(url).scheme
    if scheme in ("http", "https"):
        if delegate not in ("", "xnnpack"):
            raise UserError(f"delegate {delegate!r}: the profiling agent at {url} times LiteRT on its CPU (XNNPACK); "
                            "reach the device over adb:// or ssh://…?tool=…/benchmark_model for that delegate")
        if token_file is None:
            raise UserError(f"--remote {url} is a profiling agent: give its token with --token-file FILE")
        from hwdiffnas.remote.client import read_client_token

        return AgentProfiler(url, read_client_token(token_file))
    if scheme in ("ssh", "adb"):
        from hwdiffnas.remote.transports import parse_transport_url

        return parse_transport_url(url, delegate)
    raise UserError(f"unsupported --remote {url!r}: use http(s)://HOST:PORT (agent), ssh://[USER@]HOST[:PORT] "
                    "or adb://[SERIAL]")


def profile_cell_remote(cell: Cell, remote_url: str, token_file: Path | str | None, runtime: str,
                        settings: ProfileSettings, dataset: str = "cifar100",
                        macro: MacroConfig | None = None) -> LatencyStats:
    """Export ``cell`` here (validated against torch) and time it on the remote named by ``remote_url``."""
    import tempfile

    from hwdiffnas.deploy import export_cell

    remote = open_remote(remote_url, token_file)
    try:
        fmt = remote.model_format(runtime)
        with tempfile.TemporaryDirectory(prefix="hwdiffnas-remote-") as d:
            result = export_cell(cell, fmt, Path(d) / "model", dataset=dataset, macro=macro)
            return remote.profile(result.path, fmt=fmt, runtime=runtime, settings=settings)
    finally:
        remote.close()
