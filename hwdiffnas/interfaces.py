"""The small interfaces the core defines and plug-ins implement: exporters, profilers, transports.

Plug-ins live in the top-level packages ``export/`` and ``profilers/`` (and third-party distributions); the
core finds them through entry points (see `hwdiffnas.plugins`) and never imports a backend by name.
"""

from __future__ import annotations

import math
import numbers
import platform
import statistics
from abc import ABC, abstractmethod
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    import numpy as np
    from torch import nn


# --- export --------------------------------------------------------------------------------------------
@dataclass(frozen=True)
class ModelMetadata:
    """What every exported file carries about its origin."""

    arch_str: str
    dataset: str
    input_shape: tuple[int, ...]
    tool_version: str
    dead_nodes: str = "zeros"
    extra: dict[str, str] = field(default_factory=dict)
    space: str = "nb201"

    def as_strings(self) -> dict[str, str]:
        """Flat string map (ONNX metadata_props, OpenVINO rt_info, TFLite metadata)."""
        out = {
            "hwdiffnas.space": self.space,
            "hwdiffnas.arch_str": self.arch_str,
            "hwdiffnas.dataset": self.dataset,
            "hwdiffnas.input_shape": "x".join(str(d) for d in self.input_shape),
            "hwdiffnas.tool_version": self.tool_version,
            "hwdiffnas.dead_nodes": self.dead_nodes,
        }
        out.update({f"hwdiffnas.{k}": v for k, v in self.extra.items()})
        return out

    @classmethod
    def from_strings(cls, props: dict[str, str]) -> ModelMetadata:
        shape = tuple(int(d) for d in props["hwdiffnas.input_shape"].split("x"))
        known = {"arch_str", "dataset", "input_shape", "tool_version", "dead_nodes", "space"}
        extra = {k.removeprefix("hwdiffnas."): v for k, v in props.items()
                 if k.startswith("hwdiffnas.") and k.removeprefix("hwdiffnas.") not in known}
        return cls(props["hwdiffnas.arch_str"], props["hwdiffnas.dataset"], shape,
                   props["hwdiffnas.tool_version"], props.get("hwdiffnas.dead_nodes", "zeros"), extra,
                   props.get("hwdiffnas.space", "nb201"))

    @property
    def file_stem(self) -> str:
        """File name stem every exporter uses: ``nb201-<six op ids>-<dataset>[-prune]``, or
        ``<space>-<architecture>-<dataset>`` in other spaces (whose architecture strings are file-name safe)."""
        if self.space != "nb201":
            return f"{self.space}-{self.arch_str}-{self.dataset}"
        from hwdiffnas.space import Cell

        ops = "".join(str(o) for o in Cell.from_str(self.arch_str).ops)
        suffix = "" if self.dead_nodes == "zeros" else f"-{self.dead_nodes}"
        return f"nb201-{ops}-{self.dataset}{suffix}"


@dataclass(frozen=True)
class ExportedModel:
    """A model file (plus side files) produced by an exporter."""

    path: Path  # the file a runtime loads (e.g. model.onnx, model.xml)
    format: str  # exporter name: "onnx", "openvino", ...
    metadata: ModelMetadata
    files: tuple[Path, ...] = ()  # every file written, ``path`` included


@dataclass(frozen=True)
class TorchModel:
    """The torch module itself as a "model format" (``"torch"``) for profilers that run it eagerly."""

    module: nn.Module
    metadata: ModelMetadata
    format: str = "torch"


@dataclass(frozen=True)
class ValidationReport:
    """Numerical agreement of an exported model with its torch source on random inputs."""

    max_abs_diff: float
    tolerance: float
    max_abs_output: float
    trials: int

    @property
    def passed(self) -> bool:
        return self.max_abs_diff <= self.tolerance

    def to_dict(self) -> dict[str, Any]:
        return {**asdict(self), "passed": self.passed}


def validation_tolerance(reference_outputs: Sequence[float] | float, rel: float = 1e-4) -> float:
    """The project-wide tolerance: ``rel × max(1, max |output|)``."""
    if isinstance(reference_outputs, numbers.Real):
        peak = abs(float(reference_outputs))
    else:
        peak = max((abs(float(v)) for v in reference_outputs), default=0.0)
    return rel * max(1.0, float(peak))


def modules_importable(names: Sequence[str]) -> tuple[bool, str]:
    """(True, "") when every module in ``names`` imports; else (False, the first import error)."""
    import importlib

    for name in names:
        try:
            importlib.import_module(name)
        except ImportError as exc:
            return False, str(exc)
    return True, ""


class Exporter(ABC):
    """Turns a torch network into a deployable file and can run that file back for validation."""

    name: str = ""  # format name used on the command line
    extra: str = ""  # pip extra that installs its runtime ("" = core dependency)
    description: str = ""
    requires: tuple[str, ...] = ()  # modules the backend imports; `available` checks them
    spaces: tuple[str, ...] | None = None  # search spaces a space-specific path handles (None: any torch module)

    def available(self) -> tuple[bool, str]:
        """Whether the backend is importable here; the reason when it is not."""
        return modules_importable(self.requires)

    def check_space(self, space: str) -> None:
        """Refuse a network of a search space this exporter's space-specific path does not handle."""
        if self.spaces is not None and space not in self.spaces:
            from hwdiffnas.errors import UserError

            raise UserError(f"format {self.name!r} handles networks of search space(s) {', '.join(self.spaces)}, "
                            f"not {space!r}; use a general format (onnx, openvino) or another converter")

    @abstractmethod
    def export(self, model: nn.Module, example_input: Any, out_dir: Path,
               metadata: ModelMetadata) -> ExportedModel:
        """Write the model under ``out_dir`` (which exists and is empty) and return what was written."""

    @abstractmethod
    def run(self, exported: ExportedModel, inputs: np.ndarray) -> np.ndarray:
        """Run the exported model on ``inputs`` (N, C, H, W) float32; returns the logits (N, classes).

        Exported models have a fixed batch-1 input, so implementations run the N rows one at a time on
        one loaded model."""

    def read_metadata(self, path: Path) -> ModelMetadata:
        """Read the metadata an export wrote (override per format)."""
        raise NotImplementedError(f"{self.name} cannot read metadata back")


# --- profiling -----------------------------------------------------------------------------------------
@dataclass(frozen=True)
class ProfileSettings:
    """How to time a model."""

    warmup: int = 10
    runs: int = 50
    threads: int = 1
    precision: str = "fp32"
    pin_cpus: str = "auto"  # "auto" | "none" | a CPU list such as "1" or "0-3,6"

    def __post_init__(self) -> None:
        from hwdiffnas.errors import UserError

        if self.warmup < 0 or self.runs < 1 or self.threads < 1:
            raise UserError(f"need warmup ≥ 0, runs ≥ 1, threads ≥ 1; got {self.warmup}, {self.runs}, "
                            f"{self.threads}")
        if self.pin_cpus not in ("auto", "none"):
            parse_cpu_list(self.pin_cpus)


def parse_cpu_list(text: str) -> tuple[int, ...]:
    """CPU ids from a list such as ``"1"``, ``"0-3"`` or ``"0-1,6"``."""
    from hwdiffnas.errors import UserError

    cpus: set[int] = set()
    try:
        for part in text.split(","):
            lo, _, hi = part.strip().partition("-")
            first, last = int(lo), int(hi) if hi else int(lo)
            if first < 0 or last < first:
                raise ValueError
            cpus.update(range(first, last + 1))
    except ValueError:
        raise UserError(f"bad CPU list {text!r}; use e.g. '1', '0-3' or '0-1,6' (or 'auto', 'none')") from None
    return tuple(sorted(cpus))


def pinned_cpus(settings: ProfileSettings) -> tuple[int, ...] | None:
    """The CPUs a measurement is pinned to, or None for no pinning.

    ``auto`` pins when the measurement uses fewer threads than the CPUs this process may run on: to the last
    ``threads`` of them (CPU 0 usually serves more interrupts). Pinning keeps the measuring thread (and the
    runtime's worker threads, created after it) from migrating between cores, the main source of run-to-run
    spread on small hosts (docs/benchmarks.md: CV of the median 13–17 % unpinned vs < 1 % pinned, 2-core host).
    """
    import os

    if settings.pin_cpus == "none" or not hasattr(os, "sched_getaffinity"):
        return None
    allowed = sorted(os.sched_getaffinity(0))
    if settings.pin_cpus == "auto":
        return tuple(allowed[-settings.threads:]) if settings.threads < len(allowed) else None
    from hwdiffnas.errors import UserError

    wanted = parse_cpu_list(settings.pin_cpus)
    outside = sorted(set(wanted) - set(allowed))
    if outside:
        raise UserError(f"cannot pin to CPU(s) {outside}: this process may run on {allowed}")
    return wanted


@contextmanager
def cpu_pinning(settings: ProfileSettings) -> Iterator[tuple[int, ...] | None]:
    """Run the enclosed measurement on `pinned_cpus` (the calling thread and threads it creates); restore after."""
    import os

    cpus = pinned_cpus(settings)
    if cpus is None:
        yield None
        return
    before = os.sched_getaffinity(0)
    os.sched_setaffinity(0, cpus)
    try:
        yield cpus
    finally:
        os.sched_setaffinity(0, before)


@dataclass(frozen=True)
class LatencyStats:
    """Latency of repeated batch-1 inferences (milliseconds); ``cv`` is a fraction (std / mean)."""

    median_ms: float
    p90_ms: float
    mean_ms: float
    std_ms: float
    cv: float
    min_ms: float
    runs: int
    warmup: int
    threads: int
    runtime: str
    runtime_version: str
    host: str
    precision: str = "fp32"
    samples_ms: tuple[float, ...] = ()

    def to_dict(self, with_samples: bool = False) -> dict[str, Any]:
        d = asdict(self)
        if not with_samples:
            d.pop("samples_ms")
        else:
            d["samples_ms"] = list(self.samples_ms)
        return d

    @classmethod
    def from_samples(cls, samples_ms: Sequence[float], *, warmup: int, threads: int, runtime: str,
                     runtime_version: str, host: str | None = None, precision: str = "fp32",
                     keep_samples: bool = True) -> LatencyStats:
        """Summarize timed runs."""
        xs = sorted(float(s) for s in samples_ms)
        if not xs:
            raise ValueError("no latency samples")
        mean = statistics.fmean(xs)
        std = statistics.pstdev(xs) if len(xs) > 1 else 0.0
        return cls(
            median_ms=statistics.median(xs),
            p90_ms=percentile(xs, 90.0),
            mean_ms=mean,
            std_ms=std,
            cv=std / mean if mean > 0 else math.nan,
            min_ms=xs[0],
            runs=len(xs),
            warmup=warmup,
            threads=threads,
            runtime=runtime,
            runtime_version=runtime_version,
            host=host if host is not None else host_description(),
            precision=precision,
            samples_ms=tuple(samples_ms) if keep_samples else (),
        )


def percentile(sorted_values: Sequence[float], q: float) -> float:
    """Linear-interpolated percentile of already sorted values (q in 0..100)."""
    n = len(sorted_values)
    if n == 1:
        return float(sorted_values[0])
    pos = (n - 1) * q / 100.0
    lo = math.floor(pos)
    hi = min(lo + 1, n - 1)
    return float(sorted_values[lo] + (sorted_values[hi] - sorted_values[lo]) * (pos - lo))


def time_runs(fn: Callable[[], Any], warmup: int, runs: int) -> list[float]:
    """Call ``fn`` ``warmup`` times untimed, then ``runs`` times; wall time of each timed call in ms."""
    import time

    for _ in range(warmup):
        fn()
    out = []
    clock = time.perf_counter_ns
    for _ in range(runs):
        t0 = clock()
        fn()
        out.append((clock() - t0) / 1e6)
    return out


_HOST: str | None = None


def host_description() -> str:
    """One line naming this machine: CPU model, logical cores, OS, architecture."""
    global _HOST
    if _HOST is None:
        import os

        cpu = platform.processor() or platform.machine()
        try:
            with open("/proc/cpuinfo", encoding="utf-8") as fh:
                for line in fh:
                    if line.startswith("model name"):
                        cpu = line.split(":", 1)[1].strip()
                        break
        except OSError:
            pass
        _HOST = f"{cpu}, {os.cpu_count()} logical cores, {platform.system()} {platform.release()} {platform.machine()}"
    return _HOST


class Profiler(ABC):
    """Times a model with one runtime. ``model_format`` names the exporter whose output it loads
    (``"torch"`` = the nn.Module itself)."""

    name: str = ""
    model_format: str = ""
    extra: str = ""
    description: str = ""
    requires: tuple[str, ...] = ()  # modules the runtime imports; `available` checks them
    precisions: tuple[str, ...] = ("fp32",)  # what `profile` can time; other precisions are refused, not relabelled

    def available(self) -> tuple[bool, str]:
        """Whether the runtime is importable here; the reason when it is not."""
        return modules_importable(self.requires)

    @abstractmethod
    def version(self) -> str:
        """Runtime version string."""

    @abstractmethod
    def profile(self, model: ExportedModel | TorchModel, settings: ProfileSettings) -> LatencyStats:
        """Time batch-1 inference of ``model`` on random input of its recorded shape
        (``model.metadata.input_shape``); ``TorchModel`` when ``model_format == "torch"``."""


# --- remote transports (on-device profiling) -----------------------------------------------------------
class Transport(ABC):
    """Moves a model file to a device, runs a benchmark command there and returns its output."""

    name: str = ""

    @abstractmethod
    def push(self, local: Path, remote_name: str) -> str:
        """Copy ``local`` to the device; returns the remote path."""

    @abstractmethod
    def run(self, argv: Sequence[str], timeout_s: float) -> str:
        """Run a command (argument list) on the device; returns stdout+stderr; raises on failure/timeout."""

    def close(self) -> None:  # noqa: B027 - optional hook
        """Release the connection."""
