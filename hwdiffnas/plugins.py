"""Plug-in registries of one shape: exporters, profilers, search spaces (entry-point groups ``hwdiffnas.exporters``,
``hwdiffnas.profilers``, ``hwdiffnas.spaces``) and, above the core, search methods (`hwdiffnas.methods`).

A `Registry` finds its plug-ins in an entry-point group (a third-party distribution adds a backend by declaring
one), in built-ins given as ``module:attr`` targets and in factories registered at run time; nothing here names a
backend. `Registry.describe` says for every plug-in whether it loads and its runtime is importable, and why not.
"""

from __future__ import annotations

import importlib
from collections.abc import Callable, Mapping
from dataclasses import asdict, dataclass
from functools import cache
from importlib.metadata import EntryPoint, entry_points
from typing import Any, Generic, TypeVar

from hwdiffnas.errors import UserError
from hwdiffnas.interfaces import Exporter, Profiler
from hwdiffnas.spaces.base import SearchSpace

EXPORTER_GROUP = "hwdiffnas.exporters"
PROFILER_GROUP = "hwdiffnas.profilers"
SPACE_GROUP = "hwdiffnas.spaces"
DEFAULT_SPACE = "nb201"

T = TypeVar("T")


@cache
def _entry_points(group: str) -> dict[str, EntryPoint]:
    return {ep.name: ep for ep in entry_points(group=group)}


@dataclass(frozen=True)
class PluginInfo:
    """One plug-in as `hwdiffnas plugins` lists it: where it comes from (``entry point``, ``built-in`` or
    ``registered``), its target, whether it loads and its runtime is importable, and the reason when not."""

    kind: str
    name: str
    origin: str
    target: str
    importable: bool
    reason: str = ""
    description: str = ""
    extra: str = ""

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


class Registry(Generic[T]):
    """Plug-ins of one ``kind`` (``format``, ``runtime``, ``search method``): the entry points of ``group``,
    ``builtins`` (name → ``module:attr``) and factories given to `register`; later sources win (registered over
    built-in over entry point). `create` instantiates one, checking it is a ``base``."""

    def __init__(self, kind: str, group: str, base: type[T] | None = None,
                 builtins: Mapping[str, str] | None = None) -> None:
        self.kind = kind
        self.group = group
        self.base = base
        self.builtins = dict(builtins or {})
        self._registered: dict[str, Callable[..., T]] = {}

    def entry_points(self) -> dict[str, EntryPoint]:
        return _entry_points(self.group)

    def names(self) -> list[str]:
        """Every known name, sorted."""
        return sorted(set(self.entry_points()) | set(self.builtins) | set(self._registered))

    def __contains__(self, name: str) -> bool:
        return name in self.names()

    def register(self, name: str, factory: Callable[..., T]) -> None:
        """Make ``factory(**options)`` available as ``name`` (replaces an earlier registration)."""
        self._registered[name] = factory

    def _origin(self, name: str) -> tuple[str, str]:
        if name in self._registered:
            f = self._registered[name]
            return "registered", f"{getattr(f, '__module__', '?')}:{getattr(f, '__qualname__', repr(f))}"
        if name in self.builtins:
            return "built-in", self.builtins[name]
        return "entry point", self.entry_points()[name].value

    def factory(self, name: str) -> Callable[..., T]:
        """The factory of ``name``; unknown names list the known ones, a failing import names its error."""
        if name not in self:
            raise UserError(f"unknown {self.kind} {name!r}; known: {', '.join(self.names()) or '(none installed)'}")
        if name in self._registered:
            return self._registered[name]
        try:
            if name in self.builtins:
                module, _, attr = self.builtins[name].partition(":")
                return getattr(importlib.import_module(module), attr)
            return self.entry_points()[name].load()
        except ImportError as exc:
            raise UserError(f"{self.kind} {name!r} cannot be loaded: {exc}") from exc

    def create(self, name: str, **options: Any) -> T:
        """Instantiate ``name`` with ``options``; unknown names and options are `UserError`."""
        factory = self.factory(name)
        try:
            obj = factory(**options)
        except TypeError as exc:
            raise UserError(f"{self.kind} {name!r} does not accept options {sorted(options)}: {exc}") from None
        if self.base is not None and not isinstance(obj, self.base):
            raise UserError(f"{self.kind} {name!r} is a {type(obj).__name__}, not a {self.base.__name__}")
        return obj

    def describe(self, instantiate: bool = True) -> list[PluginInfo]:
        """Every plug-in with whether it loads and (for backends with ``available()``) its runtime imports.
        ``instantiate``: build each one to ask it (backends are cheap to build; search methods are not — for
        them, loading the factory is the check)."""
        out = []
        for name in self.names():
            origin, target = self._origin(name)
            try:
                obj: Any = self.factory(name)
                if instantiate and isinstance(obj, type):
                    obj = obj()
                ok, reason = obj.available() if instantiate and hasattr(obj, "available") else (True, "")
                doc = (obj.__doc__ or "").strip().splitlines()[0] if isinstance(obj, type) and obj.__doc__ else ""
                desc = str(getattr(obj, "description", "") or doc)
                out.append(PluginInfo(self.kind, name, origin, target, bool(ok), "" if ok else str(reason), desc,
                                      str(getattr(obj, "extra", "") or "")))
            except Exception as exc:  # a broken plug-in is reported, never fatal to the listing
                out.append(PluginInfo(self.kind, name, origin, target, False, str(exc)))
        return out


exporters: Registry[Exporter] = Registry("format", EXPORTER_GROUP, Exporter)
profilers: Registry[Profiler] = Registry("runtime", PROFILER_GROUP, Profiler)


def exporter_names() -> list[str]:
    """Names of the installed exporters."""
    return exporters.names()


def profiler_names() -> list[str]:
    """Names of the installed profilers."""
    return profilers.names()


def get_exporter(name: str) -> Exporter:
    """Instantiate the exporter ``name``; unknown names list the installed ones."""
    return exporters.create(name)


def get_profiler(name: str) -> Profiler:
    """Instantiate the profiler ``name``; unknown names list the installed ones."""
    return profilers.create(name)


# NB201 is also a built-in, so the default space resolves even where the installed entry points are stale
spaces: Registry[SearchSpace[Any]] = Registry("search space", SPACE_GROUP, SearchSpace,
                                              builtins={DEFAULT_SPACE: "hwdiffnas.spaces.nb201:NB201Space",
                                                        "fbnet": "hwdiffnas.spaces.fbnet.space:FBNetSpace",
                                                        "nasbench_macro":
                                                            "hwdiffnas.spaces.nasbench_macro.plugin:MacroSpace"})
_SPACES: dict[str, SearchSpace[Any]] = {}


def space_names() -> list[str]:
    """Names of the installed search spaces."""
    return spaces.names()


def register_space(name: str, factory: Callable[[], SearchSpace[Any]]) -> None:
    """Make a search space available as ``name`` (tests, notebooks; replaces an earlier one of that name)."""
    spaces.register(name, factory)
    _SPACES.pop(name, None)


def get_space(name: str | SearchSpace[Any] = DEFAULT_SPACE) -> SearchSpace[Any]:
    """The search space ``name`` (one instance per name); unknown names list the installed ones. A space
    object is returned as it is."""
    if isinstance(name, SearchSpace):
        return name
    if name not in _SPACES:
        space = spaces.create(name)
        if space.name != name:
            raise UserError(f"search space plug-in {name!r} calls itself {space.name!r}; the names must agree")
        _SPACES[name] = space
    return _SPACES[name]


def parse_arch(space: str | SearchSpace[Any], text: str) -> Any:
    """``space.parse(text)``; when that fails but another installed space reads the text, the error says which
    (``--space NAME``)."""
    sp = get_space(space)
    try:
        return sp.parse(text)
    except UserError as exc:
        others = []
        for name in space_names():
            if name == sp.name:
                continue
            try:
                get_space(name).parse(text)
            except Exception:  # a broken or refusing plug-in is not a hint
                continue
            others.append(name)
        if not others or f"--space {others[0]}" in str(exc):
            raise
        raise UserError(f"{exc}; it reads as an architecture of search space {', '.join(others)} "
                        f"(use --space {others[0]})") from None
