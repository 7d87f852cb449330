"""``trtexec`` command lines and parsers of its output (no TensorRT import here).

Parsed outputs (fixtures in ``tests/fixtures/tensorrt`` are genuine trtexec output from public pages):

* the console "=== Performance summary ===" lines ``Latency: min = … ms, max = …, mean = …, median = …,
  percentile(P%) = …`` (and Enqueue Time, H2D Latency, GPU Compute Time, D2H Latency), the throughput and the
  total walltimes (TensorRT 8.x/10.x format; percentiles follow ``--percentile``, default 90,95,99 in 8.6+,
  only 99 before);
* the "=== Device Information ===" block (``Selected Device``, ``Compute Capability``) and ``TensorRT
  version: X.Y.Z`` (or the ``[TensorRT vXYZZ]`` tag of the ``&&&& RUNNING`` line);
* the JSON written by ``--exportTimes=FILE``: one record per inference, in order, with ``latencyMs`` (H2D +
  compute + D2H as the host sees it), ``computeMs``, ``h2dMs``, ``d2hMs`` and start/end stamps.
"""

from __future__ import annotations

import json
import math
import re
from dataclasses import dataclass, field
from pathlib import Path

PRECISIONS = ("fp32", "fp16")


class TrtexecOutputError(ValueError):
    """The text is not the trtexec output expected (failed run, other tool, truncated)."""


# --- command lines ---------------------------------------------------------------------------------------
def build_argv(trtexec: str, onnx: Path | str, engine: Path | str, precision: str = "fp32", *,
               workspace_mb: int | None = None, timing_cache: Path | str | None = None,
               strongly_typed: bool = False) -> list[str]:
    """``trtexec`` arguments that build (only) an engine from an ONNX file.

    ``fp16`` adds ``--fp16``; with ``strongly_typed`` (TensorRT ≥ 10, where precision flags are ignored) the
    precision must already be baked into the ONNX file and no flag is passed.
    """
    if precision not in PRECISIONS:
        raise ValueError(f"unknown TensorRT precision {precision!r}; known: {', '.join(PRECISIONS)}")
    argv = [trtexec, f"--onnx={onnx}", f"--saveEngine={engine}", "--skipInference"]
    if strongly_typed:
        argv.append("--stronglyTyped")
    elif precision == "fp16":
        argv.append("--fp16")
    if workspace_mb is not None:
        argv.append(f"--memPoolSize=workspace:{int(workspace_mb)}M")
    if timing_cache is not None:
        argv.append(f"--timingCacheFile={timing_cache}")
    return argv


def time_argv(trtexec: str, engine: Path | str, times_json: Path | str, *, warmup: int, runs: int,
              spin_wait: bool = True) -> list[str]:
    """``trtexec`` arguments that time a saved engine: exactly ``warmup + runs`` inferences, no time-based
    warm-up or duration, one record per inference exported to ``times_json`` (the first ``warmup`` records
    are then dropped)."""
    argv = [trtexec, f"--loadEngine={engine}", f"--iterations={warmup + runs}", "--warmUp=0", "--duration=0",
            "--avgRuns=1", f"--exportTimes={times_json}"]
    if spin_wait:
        argv.append("--useSpinWait")
    return argv


def version_argv(trtexec: str) -> list[str]:
    """A trtexec call that only prints its header (TensorRT version) and help."""
    return [trtexec, "--help"]


# --- console output --------------------------------------------------------------------------------------
_PREFIX = re.compile(r"^\[[^\]]*\]\s*\[[IWEV]\]\s*")
_METRIC = re.compile(r"^(Latency|Enqueue Time|H2D Latency|GPU Compute Time|D2H Latency):\s*(.*)$")
_FIELD = re.compile(r"(min|max|mean|median|percentile\((\d+(?:\.\d+)?)%\))\s*=\s*([-+0-9.eE]+)\s*ms")
_RUNNING = re.compile(r"\[TensorRT v(\d+)\]")


@dataclass(frozen=True)
class MetricSummary:
    """One line of the performance summary (milliseconds)."""

    min_ms: float
    max_ms: float
    mean_ms: float
    median_ms: float
    percentiles_ms: dict[float, float] = field(default_factory=dict)


@dataclass(frozen=True)
class TrtexecSummary:
    """The "Performance summary" of one trtexec run."""

    metrics: dict[str, MetricSummary]
    throughput_qps: float
    host_walltime_s: float
    gpu_compute_s: float


def _strip(line: str) -> str:
    return _PREFIX.sub("", line.strip())


def parse_summary(text: str) -> TrtexecSummary:
    """Parse the "=== Performance summary ===" block of trtexec's console output."""
    metrics: dict[str, MetricSummary] = {}
    qps = wall = compute = math.nan
    seen = False
    for raw in text.splitlines():
        line = _strip(raw)
        if line.startswith("=== Performance summary ==="):
            seen = True
            continue
        if not seen:
            continue
        if line.startswith("==="):
            break
        m = _METRIC.match(line)
        if m:
            vals: dict[str, float] = {}
            pcts: dict[float, float] = {}
            for name, pct, value in _FIELD.findall(m.group(2)):
                if pct:
                    pcts[float(pct)] = float(value)
                else:
                    vals[name] = float(value)
            if set(vals) != {"min", "max", "mean", "median"}:
                raise TrtexecOutputError(f"incomplete trtexec summary line: {line!r}")
            metrics[m.group(1)] = MetricSummary(vals["min"], vals["max"], vals["mean"], vals["median"], pcts)
        elif line.startswith("Throughput:"):
            qps = float(line.split(":", 1)[1].split()[0])
        elif line.startswith("Total Host Walltime:"):
            wall = float(line.split(":", 1)[1].split()[0])
        elif line.startswith("Total GPU Compute Time:"):
            compute = float(line.split(":", 1)[1].split()[0])
    if "Latency" not in metrics or "GPU Compute Time" not in metrics:
        raise TrtexecOutputError("no trtexec performance summary (Latency and GPU Compute Time lines) found")
    return TrtexecSummary(metrics, qps, wall, compute)


@dataclass(frozen=True)
class TrtexecDevice:
    """The GPU and TensorRT version a trtexec run reports."""

    gpu_name: str
    compute_capability: str
    tensorrt_version: str


def _tag_version(tag: str) -> str:
    """``8502`` → ``8.5.2``; ``100200`` → ``10.2.0`` (trtexec's NV_TENSORRT_VERSION tag)."""
    n = int(tag)
    if n >= 100000:  # TensorRT 10+: MMmmpp
        return f"{n // 10000}.{n // 100 % 100}.{n % 100}"
    return f"{n // 1000}.{n // 100 % 10}.{n % 100}"


def parse_device(text: str) -> TrtexecDevice:
    """The selected GPU, its compute capability and the TensorRT version from trtexec's console output."""
    name = cc = version = ""
    for raw in text.splitlines():
        m = _RUNNING.search(raw)
        if m and not version:
            version = _tag_version(m.group(1))
        line = _strip(raw)
        if line.startswith("Selected Device:"):
            name = line.split(":", 1)[1].strip()
        elif line.startswith("Compute Capability:"):
            cc = line.split(":", 1)[1].strip()
        elif line.startswith("TensorRT version:"):
            version = line.split(":", 1)[1].strip()
    if not name or not cc or not version:
        missing = [k for k, v in (("Selected Device", name), ("Compute Capability", cc),
                                  ("TensorRT version", version)) if not v]
        raise TrtexecOutputError(f"trtexec output lacks {', '.join(missing)}")
    return TrtexecDevice(name, cc, version)


# --- --exportTimes JSON ----------------------------------------------------------------------------------
TIME_FIELDS = ("latencyMs", "computeMs", "h2dMs", "d2hMs")


def parse_times(text: str) -> list[dict[str, float]]:
    """The per-inference records of a ``--exportTimes`` file, in inference order."""
    try:
        data = json.loads(text)
    except json.JSONDecodeError as exc:
        raise TrtexecOutputError(f"--exportTimes file is not JSON: {exc}") from exc
    if not isinstance(data, list) or not data:
        raise TrtexecOutputError("--exportTimes file holds no inference records")
    for i, rec in enumerate(data):
        if not isinstance(rec, dict) or any(not isinstance(rec.get(k), (int, float)) for k in TIME_FIELDS):
            raise TrtexecOutputError(f"--exportTimes record {i} lacks one of {', '.join(TIME_FIELDS)}")
    return [{k: float(v) for k, v in rec.items()} for rec in data]


def times_samples(records: list[dict[str, float]], metric: str = "latencyMs", skip: int = 0) -> list[float]:
    """One metric (ms) of every record after the first ``skip`` (the warm-up inferences)."""
    if metric not in TIME_FIELDS:
        raise ValueError(f"unknown exportTimes metric {metric!r}; known: {', '.join(TIME_FIELDS)}")
    if skip >= len(records):
        raise TrtexecOutputError(f"{len(records)} records, but {skip} warm-up inferences were to be skipped")
    return [r[metric] for r in records[skip:]]


def read_times(path: Path | str) -> list[dict[str, float]]:
    """`parse_times` of a file."""
    return parse_times(Path(path).read_text())
