"""Device configurations: one TOML file per device, validated into frozen dataclasses.

The packaged folder ``device_configs/`` holds the built-in devices; a user adds or overrides devices with
``--device-configs DIR`` or ``$HWDIFFNAS_DEVICE_CONFIGS`` (a folder of ``*.toml`` files, same schema).
Unknown keys are errors. Schema (see ``device_configs/README.md``)::

    name = "pixel3"
    description = "..."
    aliases = ["pixel-3"]            # optional
    kind = "phone"                   # one of KINDS below
    [[tables]]                       # latency/energy tables that serve this device, preferred first
    space = "nb201"                  # search space of the table (default nb201; fbnet: source lut or help)
    source = "help"                  # help | eagle | hw360 | hwnasbench | measured | lut
    column = "hwnb_c10_pixel3"       # column (or metric) name inside that source
    metric = "latency"               # latency | energy
    setting = "cifar10"              # input setting: cifar10 | cifar100 | ImageNet16-120 | imagenet | unknown
    [measure]                        # how it is (or could be) measured
    route = "adb"                    # table-only | local | agent | ssh | adb
    runtime = "litert"               # profiler name, e.g. onnxruntime | openvino | torch | litert | tensorrt
    precision = "fp32"
    warmup = 10
    runs = 40
    threads = 1
    input_setting = "cifar10"
    delegate = "nnapi"               # optional, litert only: cpu | xnnpack | nnapi | gpu | hexagon
"""

from __future__ import annotations

import os
import sys
from dataclasses import dataclass, fields
from functools import cache
from pathlib import Path
from typing import Any

from hwdiffnas.delegates import DELEGATE_FLAGS
from hwdiffnas.errors import UserError

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover
    import tomli as tomllib

KINDS = ("phone", "sbc", "edge-gpu", "gpu", "cpu", "fpga", "asic", "tpu", "dsp", "npu", "host")
SOURCES = ("help", "eagle", "hw360", "hwnasbench", "measured", "lut")
SPACE_SOURCES = {"nb201": SOURCES[:5], "fbnet": ("help", "lut", "measured")}
"""Table sources per search space (``lut``: the space's shipped exact lookup tables)."""
METRICS = ("latency", "energy")
SETTINGS = ("cifar10", "cifar100", "ImageNet16-120", "unknown", "imagenet")
ROUTES = ("table-only", "local", "agent", "ssh", "adb")
DELEGATES = ("", *DELEGATE_FLAGS)  # LiteRT delegates of benchmark_model ("" = the tool's default)
ENV_DEVICE_CONFIGS = "HWDIFFNAS_DEVICE_CONFIGS"


@dataclass(frozen=True)
class TableRef:
    """One latency or energy table serving a device."""

    source: str
    column: str
    metric: str = "latency"
    setting: str = "unknown"
    space: str = "nb201"

    @property
    def unit(self) -> str:
        return "ms" if self.metric == "latency" else "mJ"


@dataclass(frozen=True)
class MeasureSpec:
    """How a device is (or could be) measured."""

    route: str = "table-only"
    runtime: str = ""
    precision: str = "fp32"
    warmup: int = 10
    runs: int = 50
    threads: int = 1
    input_setting: str = "cifar10"
    notes: str = ""
    delegate: str = ""  # LiteRT delegate on the device ("" = the tool's default)


@dataclass(frozen=True)
class DeviceConfig:
    """A target device: where its latencies come from and how to measure it."""

    name: str
    description: str
    kind: str
    all_tables: tuple[TableRef, ...] = ()
    measure: MeasureSpec = MeasureSpec()
    aliases: tuple[str, ...] = ()
    source_file: str = ""

    @property
    def tables(self) -> tuple[TableRef, ...]:
        """The NB201-space tables (what the benchmark store serves)."""
        return self.tables_in("nb201")

    def tables_in(self, space: str) -> tuple[TableRef, ...]:
        """The tables serving this device in ``space``, preferred first."""
        return tuple(t for t in self.all_tables if t.space == space)

    @property
    def spaces(self) -> tuple[str, ...]:
        """The search spaces in which some table serves this device."""
        return tuple(dict.fromkeys(t.space for t in self.all_tables))

    @property
    def latency_tables(self) -> tuple[TableRef, ...]:
        return tuple(t for t in self.tables if t.metric == "latency")

    @property
    def table_only(self) -> bool:
        return self.measure.route == "table-only"

    def to_dict(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "description": self.description,
            "kind": self.kind,
            "aliases": list(self.aliases),
            "tables": [t.__dict__ | {"unit": t.unit} for t in self.tables],
            "space_tables": {sp: [t.__dict__ | {"unit": t.unit} for t in self.tables_in(sp)]
                             for sp in self.spaces if sp != "nb201"},
            "measure": dict(self.measure.__dict__),
        }


def _check_keys(where: str, data: dict[str, Any], allowed: set[str], required: set[str]) -> None:
    unknown = sorted(set(data) - allowed)
    if unknown:
        raise UserError(f"{where}: unknown key(s) {', '.join(unknown)}; allowed: {', '.join(sorted(allowed))}")
    missing = sorted(required - set(data))
    if missing:
        raise UserError(f"{where}: missing key(s) {', '.join(missing)}")


def _choice(where: str, key: str, value: Any, choices: tuple[str, ...]) -> str:
    if value not in choices:
        raise UserError(f"{where}: {key} = {value!r} is not one of {', '.join(choices)}")
    return value


def parse_device_config(data: dict[str, Any], where: str = "<device config>") -> DeviceConfig:
    """Validate one parsed TOML document into a `DeviceConfig`."""
    top = {"name", "description", "kind", "aliases", "tables", "measure"}
    _check_keys(where, data, top, {"name", "description", "kind"})
    name = data["name"]
    if not isinstance(name, str) or not name or any(c.isspace() for c in name):
        raise UserError(f"{where}: name must be a non-empty string without spaces, got {name!r}")
    kind = _choice(where, "kind", data["kind"], KINDS)
    tables = []
    table_keys = {f.name for f in fields(TableRef)}
    for i, t in enumerate(data.get("tables", [])):
        w = f"{where} tables[{i}]"
        if not isinstance(t, dict):
            raise UserError(f"{w}: must be a table")
        _check_keys(w, t, table_keys, {"source", "column"})
        space = _choice(w, "space", t.get("space", "nb201"), tuple(SPACE_SOURCES))
        _choice(w, "source", t["source"], SPACE_SOURCES[space])
        _choice(w, "metric", t.get("metric", "latency"), METRICS)
        _choice(w, "setting", t.get("setting", "unknown"), SETTINGS)
        tables.append(TableRef(**t))
    m = data.get("measure", {})
    measure_keys = {f.name for f in fields(MeasureSpec)}
    _check_keys(f"{where} [measure]", m, measure_keys, set())
    if "route" in m:
        _choice(f"{where} [measure]", "route", m["route"], ROUTES)
    if "delegate" in m:
        _choice(f"{where} [measure]", "delegate", m["delegate"], DELEGATES)
        if m["delegate"] and m.get("runtime") != "litert":
            raise UserError(f"{where} [measure]: delegate applies to runtime 'litert' only, got runtime "
                            f"{m.get('runtime')!r}")
    if "input_setting" in m:
        _choice(f"{where} [measure]", "input_setting", m["input_setting"], SETTINGS[:3])
    for k in ("warmup", "runs", "threads"):
        if k in m and (not isinstance(m[k], int) or m[k] < (0 if k == "warmup" else 1)):
            raise UserError(f"{where} [measure]: {k} must be a {'non-negative' if k == 'warmup' else 'positive'} "
                            f"integer, got {m[k]!r}")
    measure = MeasureSpec(**m)
    if measure.route != "table-only" and not measure.runtime:
        raise UserError(f"{where} [measure]: route {measure.route!r} needs a runtime")
    aliases = data.get("aliases", [])
    if not isinstance(aliases, list) or not all(isinstance(a, str) for a in aliases):
        raise UserError(f"{where}: aliases must be a list of strings")
    return DeviceConfig(name, str(data["description"]), kind, tuple(tables), measure, tuple(aliases), where)


def load_device_file(path: Path) -> DeviceConfig:
    """Read and validate one TOML device file."""
    try:
        with open(path, "rb") as fh:
            data = tomllib.load(fh)
    except tomllib.TOMLDecodeError as exc:
        raise UserError(f"{path}: invalid TOML: {exc}") from exc
    except OSError as exc:
        raise UserError(f"cannot read device config {path}: {exc.strerror}") from exc
    return parse_device_config(data, str(path))


def builtin_config_dir() -> Path:
    """The packaged ``device_configs`` folder."""
    import device_configs

    return Path(device_configs.__file__).parent


class DeviceRegistry:
    """All known devices, by name and alias."""

    def __init__(self, configs: list[DeviceConfig]) -> None:
        self._by_name: dict[str, DeviceConfig] = {}
        self._alias: dict[str, str] = {}
        for cfg in configs:
            self._by_name[cfg.name] = cfg  # later folders override earlier ones
        for cfg in self._by_name.values():
            for a in cfg.aliases:
                self._alias[a] = cfg.name

    @classmethod
    def load(cls, extra_dirs: list[Path] | tuple[Path, ...] = ()) -> DeviceRegistry:
        """Built-in configs, then ``$HWDIFFNAS_DEVICE_CONFIGS``, then ``extra_dirs`` (later ones override)."""
        dirs = [builtin_config_dir()]
        env = os.environ.get(ENV_DEVICE_CONFIGS)
        if env:
            dirs += [Path(p) for p in env.split(os.pathsep) if p]
        dirs += [Path(d) for d in extra_dirs]
        configs = []
        for d in dirs:
            if not d.is_dir():
                raise UserError(f"device config folder {d} does not exist")
            configs += [load_device_file(p) for p in sorted(d.glob("*.toml"))]
        return cls(configs)

    def names(self) -> list[str]:
        return sorted(self._by_name)

    def __iter__(self):
        return iter(self._by_name[n] for n in self.names())

    def __contains__(self, name: str) -> bool:
        return name in self._by_name or name in self._alias

    def get(self, name: str) -> DeviceConfig:
        """The device ``name`` (or alias); unknown names list the known ones."""
        key = self._alias.get(name, name)
        if key in self._by_name:
            return self._by_name[key]
        import difflib

        close = difflib.get_close_matches(name, self.names() + sorted(self._alias), n=1)
        hint = f" (did you mean {self._alias.get(close[0], close[0])!r}?)" if close else ""
        raise UserError(f"unknown device {name!r}{hint}; known: {', '.join(self.names())}")


@cache
def default_registry() -> DeviceRegistry:
    """Registry of built-in devices plus ``$HWDIFFNAS_DEVICE_CONFIGS`` (cached)."""
    return DeviceRegistry.load()


def get_device(name: str) -> DeviceConfig:
    """Shortcut for ``default_registry().get(name)``."""
    return default_registry().get(name)
