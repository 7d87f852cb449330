"""One entry point for every remote route: ``open_remote(url)`` gives an object that times a model file."""

from __future__ import annotations

import urllib.parse
from pathlib import Path
from typing import Protocol

from hwdiffnas.errors import UserError
from hwdiffnas.interfaces import LatencyStats, ProfileSettings


class RemoteProfiler(Protocol):
    """Times an exported model file somewhere else."""

    description: str

    def profile(self, model: Path, *, fmt: str, runtime: str, settings: ProfileSettings) -> LatencyStats: ...

    def close(self) -> None: ...


class AgentProfiler:
    """A profiling agent reached over HTTP."""

    def __init__(self, url: str, token: str, timeout_s: float = 900.0) -> None:
        from hwdiffnas.remote.client import AgentClient

        self.client = AgentClient(url, token, timeout_s=timeout_s)
        self.description = f"agent {url}"

    def profile(self, model: Path, *, fmt: str, runtime: str, settings: ProfileSettings) -> LatencyStats:
        return self.client.profile(model, fmt=fmt, runtime=runtime, settings=settings)

    def close(self) -> None:
        """Nothing to release (one HTTP request per measurement)."""


def open_remote(url: str, token_file: Path | str | None = None) -> RemoteProfiler:
    """The remote named by ``url``: ``http(s)://`` (agent; needs ``token_file``), ``ssh://`` or ``adb://``."""
    scheme = urllib.parse.urlsplit(url).scheme
    if scheme in ("http", "https"):
        if token_file is None:
            raise UserError(f"--remote {url} is a profiling agent: give its token with --token-file FILE")
        from hwdiffnas.remote.client import read_client_token

        return AgentProfiler(url, read_client_token(token_file))
    if scheme in ("ssh", "adb"):
        from hwdiffnas.remote.transports import parse_transport_url

        return parse_transport_url(url)
    raise UserError(f"unsupported --remote {url!r}: use http(s)://HOST:PORT (agent), ssh://[USER@]HOST[:PORT] "
                    "or adb://[SERIAL]")
