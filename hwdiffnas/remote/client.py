"""Client of the profiling agent (standard library only: works without the ``agent`` extra)."""

from __future__ import annotations

import json
import urllib.error
import urllib.parse
import urllib.request
from pathlib import Path
from typing import Any

from hwdiffnas.errors import UserError
from hwdiffnas.interfaces import LatencyStats, ProfileSettings


class RemoteError(UserError):
    """The agent answered with an error status (``status``) or could not be reached (``status`` 0)."""

    def __init__(self, message: str, status: int = 0) -> None:
        super().__init__(message)
        self.status = status


def stats_from_dict(d: dict[str, Any]) -> LatencyStats:
    """Rebuild `LatencyStats` from its ``to_dict`` form (unknown keys ignored)."""
    fields = set(LatencyStats.__dataclass_fields__)
    kw = {k: v for k, v in d.items() if k in fields}
    kw["samples_ms"] = tuple(float(x) for x in kw.get("samples_ms") or ())
    return LatencyStats(**kw)


class AgentClient:
    """Talks to one agent at ``url`` (``http://host:port``) with a bearer token."""

    def __init__(self, url: str, token: str, timeout_s: float = 600.0) -> None:
        parts = urllib.parse.urlsplit(url)
        if parts.scheme not in ("http", "https") or not parts.netloc:
            raise UserError(f"agent URL {url!r} must look like http://HOST:PORT")
        self.url = url.rstrip("/")
        self.token = token
        self.timeout_s = timeout_s
        self._max_upload: int | None = None

    def _request(self, method: str, path: str, body: bytes | None = None) -> dict[str, Any]:
        req = urllib.request.Request(self.url + path, data=body, method=method)
        req.add_header("Authorization", f"Bearer {self.token}")
        if body is not None:
            req.add_header("Content-Type", "application/octet-stream")
        try:
            with urllib.request.urlopen(req, timeout=self.timeout_s) as resp:  # noqa: S310 - http(s) checked above
                return json.loads(resp.read())
        except urllib.error.HTTPError as exc:
            try:
                detail = json.loads(exc.read()).get("error", "")
            except (ValueError, AttributeError, OSError):
                detail = exc.reason
            raise RemoteError(f"agent {self.url} answered {exc.code}: {detail}", exc.code) from exc
        except (BrokenPipeError, ConnectionResetError) as exc:
            raise RemoteError(f"agent {self.url} closed the connection during the request (an upload over its "
                              f"size limit?): {exc}") from exc
        except (urllib.error.URLError, TimeoutError, ConnectionError) as exc:
            reason = getattr(exc, "reason", exc)
            if isinstance(reason, (BrokenPipeError, ConnectionResetError)):
                raise RemoteError(f"agent {self.url} closed the connection during the request (an upload over "
                                  f"its size limit?): {reason}") from exc
            raise RemoteError(f"cannot reach agent {self.url}: {reason}") from exc

    def health(self) -> dict[str, Any]:
        """The agent's ``/health`` report."""
        return self._request("GET", "/health")

    def profile_bytes(self, data: bytes, *, fmt: str = "onnx", runtime: str = "onnxruntime",
                      settings: ProfileSettings | None = None, name: str | None = None) -> dict[str, Any]:
        """Upload model bytes and return the agent's full answer (``stats`` and ``job``)."""
        if self._max_upload is None:
            self._max_upload = int(self.health().get("limits", {}).get("max_upload_bytes", 0)) or -1
        if 0 < self._max_upload < len(data):
            raise RemoteError(f"model is {len(data)} bytes; the agent {self.url} accepts at most {self._max_upload} "
                              "(its --max-upload-mb)", 413)
        s = settings or ProfileSettings()
        query = {"format": fmt, "runtime": runtime, "warmup": s.warmup, "runs": s.runs, "threads": s.threads,
                 "precision": s.precision}
        if name is not None:
            query["name"] = name
        return self._request("POST", "/profile?" + urllib.parse.urlencode(query), data)

    def profile(self, model: Path | str, *, fmt: str | None = None, runtime: str = "onnxruntime",
                settings: ProfileSettings | None = None) -> LatencyStats:
        """Upload the model file and return its latency statistics."""
        path = Path(model)
        fmt = fmt or path.suffix.lstrip(".")
        answer = self.profile_bytes(path.read_bytes(), fmt=fmt, runtime=runtime, settings=settings)
        return stats_from_dict(answer["stats"])


def read_client_token(path: Path | str) -> str:
    """The token in ``path`` (first line, stripped)."""
    try:
        token = Path(path).read_text(encoding="utf-8").strip()
    except OSError as exc:
        raise UserError(f"cannot read token file {path}: {exc.strerror}") from exc
    if not token:
        raise UserError(f"token file {path} is empty")
    return token
