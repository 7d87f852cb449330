"""Discovery of exporter and profiler plug-ins through entry points.

Groups: ``hwdiffnas.exporters`` and ``hwdiffnas.profilers``. A third-party distribution adds a backend by
declaring an entry point in one of these groups; nothing here names a backend.
"""

from __future__ import annotations

from functools import cache
from importlib.metadata import EntryPoint, entry_points

from hwdiffnas.errors import UserError
from hwdiffnas.interfaces import Exporter, Profiler

EXPORTER_GROUP = "hwdiffnas.exporters"
PROFILER_GROUP = "hwdiffnas.profilers"


@cache
def _entry_points(group: str) -> dict[str, EntryPoint]:
    return {ep.name: ep for ep in entry_points(group=group)}


def exporter_names() -> list[str]:
    """Names of the installed exporters."""
    return sorted(_entry_points(EXPORTER_GROUP))


def profiler_names() -> list[str]:
    """Names of the installed profilers."""
    return sorted(_entry_points(PROFILER_GROUP))


def _load(group: str, name: str, kind: str) -> object:
    eps = _entry_points(group)
    if name not in eps:
        raise UserError(f"unknown {kind} {name!r}; known: {', '.join(sorted(eps)) or '(none installed)'}")
    try:
        cls = eps[name].load()
    except ImportError as exc:
        raise UserError(f"{kind} {name!r} cannot be loaded: {exc}") from exc
    return cls()


def get_exporter(name: str) -> Exporter:
    """Instantiate the exporter ``name``; unknown names list the installed ones."""
    exp = _load(EXPORTER_GROUP, name, "format")
    assert isinstance(exp, Exporter), f"{name} is not an Exporter"
    return exp


def get_profiler(name: str) -> Profiler:
    """Instantiate the profiler ``name``; unknown names list the installed ones."""
    prof = _load(PROFILER_GROUP, name, "runtime")
    assert isinstance(prof, Profiler), f"{name} is not a Profiler"
    return prof
