"""Imports point one way: a layer map of the package, checked on every import (module level and inside functions,
and ``module:attr`` targets written as strings); no import cycle; no core module over 500 lines; ``hwdiffnas
--help`` imports neither torch nor numpy."""

from __future__ import annotations

import ast
import re
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1] / "hwdiffnas"

# lowest first; a module may import its own layer and the ones below it, never one above
LAYERS: tuple[tuple[str, ...], ...] = (
    ("hwdiffnas", "hwdiffnas.errors", "hwdiffnas.jsonable", "hwdiffnas.delegates", "hwdiffnas.datadir",
     "hwdiffnas.datahints", "hwdiffnas.workdir", "hwdiffnas.storefile", "hwdiffnas.result_order"),
    ("hwdiffnas.space", "hwdiffnas.spaces.nb201.cell", "hwdiffnas.devices", "hwdiffnas.remote.validate",
     "hwdiffnas.remote.onnxwire", "hwdiffnas.generator.diffusion", "hwdiffnas.knapsack"),
    ("hwdiffnas.latency.reference", "hwdiffnas.latency", "hwdiffnas.materialize", "hwdiffnas.interfaces",
     "hwdiffnas.predictors", "hwdiffnas.store", "hwdiffnas.store_devices", "hwdiffnas.store_schema",
     "hwdiffnas.store_space",
     "hwdiffnas.spaces"),
    ("hwdiffnas.plugins", "hwdiffnas.importers", "hwdiffnas.import_formats", "hwdiffnas.import_binary",
     "hwdiffnas.packaged",
     "hwdiffnas.benchmark", "hwdiffnas.deploy", "hwdiffnas.remote", "hwdiffnas.generator", "hwdiffnas.objectives"),
    ("hwdiffnas.latency.device", "hwdiffnas.latency.lookup", "hwdiffnas.latency.space_device", "hwdiffnas.baselines",
     "hwdiffnas.campaign",
     "hwdiffnas.campaign_space"),
    ("hwdiffnas.search",),
    ("hwdiffnas.methods",),
    ("hwdiffnas.harness",),
    ("hwdiffnas.cli", "hwdiffnas.__main__"),
)
MAX_LINES = 500
_TARGET = re.compile(r"^(hwdiffnas(?:\.\w+)*):\w+$")


def module_name(path: Path) -> str:
    parts = list(path.relative_to(ROOT.parent).with_suffix("").parts)
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def layer_of(module: str) -> int:
    """The layer of ``module``: its longest listed prefix decides (the root package counts for itself only)."""
    best, level = -1, None
    for i, names in enumerate(LAYERS):
        for n in names:
            if (module == n or (n != "hwdiffnas" and module.startswith(n + "."))) and len(n) > best:
                best, level = len(n), i
    assert level is not None, f"{module} is in no layer; add it to LAYERS"
    return level


def _is_module(name: str) -> bool:
    rel = ROOT.parent.joinpath(*name.split("."))
    return rel.with_suffix(".py").is_file() or (rel / "__init__.py").is_file()


def imports_of(path: Path) -> set[str]:
    """Every ``hwdiffnas`` module ``path`` imports (anywhere in it; ``from pkg import mod`` counts as ``pkg.mod``),
    and every ``hwdiffnas.x:attr`` string."""
    tree = ast.parse(path.read_text())
    out: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            out |= {a.name for a in node.names if a.name.split(".")[0] == "hwdiffnas"}
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            if node.module.split(".")[0] == "hwdiffnas":
                subs = {f"{node.module}.{a.name}" for a in node.names if _is_module(f"{node.module}.{a.name}")}
                out |= subs or {node.module}
        elif isinstance(node, ast.Constant) and isinstance(node.value, str) and _TARGET.match(node.value):
            out.add(node.value.partition(":")[0])
    return out


def graph() -> dict[str, set[str]]:
    return {module_name(p): imports_of(p) for p in sorted(ROOT.rglob("*.py"))}


def test_no_upward_import() -> None:
    bad = [f"{m} (layer {layer_of(m)}) imports {d} (layer {layer_of(d)})"
           for m, deps in graph().items() for d in sorted(deps) if layer_of(d) > layer_of(m)]
    assert not bad, "\n".join(bad)


def test_core_never_names_a_plugin() -> None:
    """``export/`` and ``profilers/`` plug into the core through entry points; the core never imports them."""
    bad = []
    for p in ROOT.rglob("*.py"):
        for node in ast.walk(ast.parse(p.read_text())):
            names = ([a.name for a in node.names] if isinstance(node, ast.Import)
                     else [node.module or ""] if isinstance(node, ast.ImportFrom) else [])
            bad += [f"{module_name(p)} imports {n}" for n in names if n.split(".")[0] in ("export", "profilers")]
    assert not bad, bad


def test_no_import_cycle() -> None:
    g = graph()
    state: dict[str, int] = {}
    cycles: list[list[str]] = []

    def visit(m: str, stack: list[str]) -> None:
        state[m] = 1
        for d in sorted(g.get(m, ())):
            if d not in g or d == m:
                continue
            if state.get(d) == 1:
                cycles.append(stack[stack.index(d):] + [d])
            elif d not in state:
                visit(d, stack + [d])
        state[m] = 2

    for m in sorted(g):
        if m not in state:
            visit(m, [m])
    assert not cycles, cycles


def test_the_layer_check_catches_an_upward_import(tmp_path: Path) -> None:
    """The checker itself: a store that imported the search would be flagged."""
    p = tmp_path / "fake.py"
    p.write_text("def f():\n    from hwdiffnas.search import run_search\n    return 'hwdiffnas.cli:main'\n")
    deps = imports_of(p)
    assert deps == {"hwdiffnas.search", "hwdiffnas.cli"}
    assert all(layer_of(d) > layer_of("hwdiffnas.store") for d in deps)


def test_no_core_module_over_500_lines() -> None:
    long = {module_name(p): n for p in ROOT.rglob("*.py") if (n := len(p.read_text().splitlines())) > MAX_LINES}
    assert not long, long


def test_help_imports_neither_torch_nor_numpy() -> None:
    code = ("import sys\nfrom hwdiffnas.cli import main\n"
            "try:\n    main(['--help'])\nexcept SystemExit:\n    pass\n"
            "print(sorted(m for m in ('torch', 'numpy') if m in sys.modules))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip().splitlines()[-1] == "[]", out


@pytest.mark.parametrize(("module", "never"), [
    ("hwdiffnas.store", ("hwdiffnas.devices", "hwdiffnas.cli")),  # given its device catalog by its opener
    ("hwdiffnas.generator.train", ("hwdiffnas.cli",)),  # given a progress callback
    ("hwdiffnas.baselines.base", ("hwdiffnas.search", "hwdiffnas.methods")),  # the registry lives above both
    ("hwdiffnas.devices", ("hwdiffnas.remote",)),  # the LiteRT delegates are a core leaf
    ("hwdiffnas.generator.conditions", ("hwdiffnas.predictors",)),  # the reference cells are a latency leaf
])
def test_formerly_backward_imports_are_gone(module: str, never: tuple[str, ...]) -> None:
    g = graph()
    deps = g[module] | g.get("hwdiffnas.store_devices", set()) if module == "hwdiffnas.store" else g[module]
    assert not [d for d in deps if d.startswith(never)], deps
