"""The search-method registry, above the methods it names: the baselines (``random``, ``rea``, ``predictor``)
and the generator's search (``diffusion``) are built-ins; others come through `register_method` or the
entry-point group ``hwdiffnas.methods`` (a factory ``f(**options) -> SearchMethod``)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from hwdiffnas.baselines.base import SearchMethod
from hwdiffnas.plugins import Registry

ENTRY_POINT_GROUP = "hwdiffnas.methods"

methods: Registry[SearchMethod] = Registry("search method", ENTRY_POINT_GROUP, SearchMethod, {
    "random": "hwdiffnas.baselines.random_search:RandomSearch",
    "rea": "hwdiffnas.baselines.rea:RegularizedEvolution",
    "predictor": "hwdiffnas.baselines.predictor:PredictorSearch",
    "diffusion": "hwdiffnas.search.bench:DiffusionSearch",
})


def register_method(name: str, factory: Callable[..., SearchMethod]) -> None:
    """Make ``factory(**options)`` available as method ``name`` (replaces an earlier registration)."""
    methods.register(name, factory)


def method_names() -> list[str]:
    """All method names: built-in, registered and from entry points."""
    return methods.names()


def get_method(name: str, **options: Any) -> SearchMethod:
    """Instantiate method ``name`` with ``options``; unknown names and options are `UserError`."""
    return methods.create(name, **options)
