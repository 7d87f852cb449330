"""Parser for the console output of LiteRT's (TensorFlow Lite's) ``benchmark_model`` tool.

The tool prints one ``count=… first=… curr=… min=… max=… avg=… std=…`` line (microseconds) after each
"Running benchmark for at least N iterations …" header: the first block is the warm-up phase, the last the
timed runs. A summary line follows: ``Inference timings in us: Init: …, First inference: …, Warmup (avg): …,
Inference (avg): …`` (older builds: ``Average inference timings in us: Warmup: …, Init: …, no stats: …``).
Output read from ``adb logcat`` carries a logcat prefix per line, which is removed. Lines of the op-profiling
tables (``Timings (microseconds): count=…``) are not confused with the benchmark's own lines.

``benchmark_model`` reports no median or percentiles and no per-run samples: `BenchmarkModelResult.to_stats`
fills ``median_ms`` with the mean of the timed runs and ``p90_ms`` with the normal approximation
``mean + 1.2816·std`` capped at the maximum; both are documented approximations.
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass

from hwdiffnas.interfaces import LatencyStats

_LOGCAT = re.compile(r"^\d\d-\d\d\s+\d\d:\d\d:\d\d\.\d+\s+\d+\s+\d+\s+[VDIWEF]\s+[^:]*?\s*:\s?")
_HEADER = re.compile(r"Running benchmark for at least (\d+) iterations")
_COUNT = re.compile(r"^count=\d+")
_PAIR = re.compile(r"(\w+)=([-+0-9.eE]+|inf|nan)")
_SUMMARY = re.compile(r"^(Average )?[Ii]nference timings in us:\s*(.*)$")
_SIZE = re.compile(r"The input model file size \(MB\):\s*([0-9.eE+-]+)")
_INIT = re.compile(r"Initialized session in ([0-9.eE+-]+)\s*ms")
_MEMORY = re.compile(r"(?:Peak )?[Mm]emory footprint.*?\(MB\):\s*init=([0-9.eE+-]+)\s+overall=([0-9.eE+-]+)")


class BenchmarkOutputError(ValueError):
    """The text holds no timed ``benchmark_model`` run (the tool failed or printed something else)."""


@dataclass(frozen=True)
class RunBlock:
    """One ``count=…`` line (all times in microseconds; absent fields are NaN)."""

    min_iterations: int
    count: int
    first_us: float
    curr_us: float
    min_us: float
    max_us: float
    avg_us: float
    std_us: float


@dataclass(frozen=True)
class BenchmarkModelResult:
    """What one ``benchmark_model`` run reported."""

    warmup: RunBlock | None
    timed: RunBlock
    summary_us: dict[str, float]
    init_ms: float | None = None
    model_size_mb: float | None = None
    memory_init_mb: float | None = None
    memory_overall_mb: float | None = None

    def to_stats(self, *, threads: int, runtime: str = "litert", runtime_version: str = "",
                 host: str = "", precision: str = "fp32") -> LatencyStats:
        """Latency statistics in ms (median = mean, p90 = normal approximation; see the module doc)."""
        t = self.timed
        mean = t.avg_us / 1000.0
        std = 0.0 if math.isnan(t.std_us) else t.std_us / 1000.0
        lo = t.min_us / 1000.0 if not math.isnan(t.min_us) else mean
        hi = t.max_us / 1000.0 if not math.isnan(t.max_us) else mean
        p90 = min(hi, mean + 1.2816 * std)
        return LatencyStats(median_ms=mean, p90_ms=max(p90, mean), mean_ms=mean, std_ms=std,
                            cv=std / mean if mean > 0 else math.nan, min_ms=lo, runs=t.count,
                            warmup=self.warmup.count if self.warmup else 0, threads=threads, runtime=runtime,
                            runtime_version=runtime_version, host=host, precision=precision)


def _strip_prefix(line: str) -> str:
    return _LOGCAT.sub("", line.rstrip("\r\n")).strip()


def _block(min_iter: int, line: str) -> RunBlock:
    vals = {k: float(v) for k, v in _PAIR.findall(line)}
    nan = math.nan
    count = int(vals.get("count", 0))
    curr = vals.get("curr", nan)
    avg = vals.get("avg", curr if count == 1 else nan)
    if count < 1 or math.isnan(avg):
        raise BenchmarkOutputError(f"benchmark_model stats line without a count or average: {line!r}")
    return RunBlock(min_iter, count, vals.get("first", curr), curr, vals.get("min", avg), vals.get("max", avg),
                    avg, vals.get("std", 0.0 if count == 1 else nan))


def _summary(text: str, old_style: bool) -> dict[str, float]:
    out: dict[str, float] = {}
    for part in text.split(","):
        key, sep, value = part.rpartition(":")
        if not sep:
            continue
        key = key.strip()
        if old_style and key == "no stats":  # old builds printed the timed average under this label
            key = "Inference (avg)"
        elif old_style and key == "Warmup":
            key = "Warmup (avg)"
        try:
            out[key] = float(value.strip())
        except ValueError:
            continue
    return out


def parse_benchmark_model(text: str) -> BenchmarkModelResult:
    """Parse the full console (or logcat) output of one ``benchmark_model`` run."""
    blocks: list[RunBlock] = []
    summary: dict[str, float] = {}
    init_ms = size_mb = mem_init = mem_overall = None
    pending: int | None = None
    for raw in text.splitlines():
        line = _strip_prefix(raw)
        if not line:
            continue
        m = _HEADER.search(line)
        if m:
            pending = int(m.group(1))
            continue
        if pending is not None and _COUNT.match(line):
            blocks.append(_block(pending, line))
            pending = None
            continue
        m = _SUMMARY.match(line)
        if m:
            summary = _summary(m.group(2), old_style=bool(m.group(1)))
            continue
        if (m := _SIZE.search(line)) is not None:
            size_mb = float(m.group(1))
        elif (m := _INIT.search(line)) is not None:
            init_ms = float(m.group(1))
        elif (m := _MEMORY.search(line)) is not None:
            mem_init, mem_overall = float(m.group(1)), float(m.group(2))
    if not blocks:
        tail = "\n".join(x for x in (_strip_prefix(r) for r in text.splitlines()[-5:]) if x)
        raise BenchmarkOutputError("no timed run found in benchmark_model output"
                                   + (f"; it ended with:\n{tail}" if tail else " (empty output)"))
    warmup = blocks[0] if len(blocks) > 1 else None
    return BenchmarkModelResult(warmup, blocks[-1], summary, init_ms, size_mb, mem_init, mem_overall)


def benchmark_model_argv(tool: str, graph: str, *, threads: int, warmup: int, runs: int,
                         extra: tuple[str, ...] = ()) -> list[str]:
    """Argument list running exactly ``warmup`` + ``runs`` inferences of ``graph`` with ``threads`` threads."""
    return [tool, f"--graph={graph}", f"--num_threads={threads}", f"--warmup_runs={warmup}",
            "--warmup_min_secs=0", f"--num_runs={runs}", "--min_secs=0", *extra]
