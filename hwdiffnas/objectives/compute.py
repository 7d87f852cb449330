"""Compute an objective over many architectures, in parallel processes, deterministically, with progress."""

from __future__ import annotations

import math
import os
import time
import zlib
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from hwdiffnas.objectives import get_objective

if TYPE_CHECKING:
    from torch import nn

NetworkBuilder = Callable[[str], "tuple[nn.Module, tuple[int, ...]]"]
"""Picklable function: architecture string → (freshly built network, input shape)."""
Progress = Callable[[int, int], None]


@dataclass(frozen=True)
class ObjectiveValues:
    """Values of one objective over architectures, with the compute cost."""

    objective: str
    archs: tuple[str, ...]
    values: tuple[float, ...]
    seconds: tuple[float, ...]  # per network: build + objective, in its worker process
    workers: int
    wall_s: float

    @property
    def source(self) -> str:
        return f"objective:{self.objective}"

    @property
    def mean_seconds(self) -> float:
        return sum(self.seconds) / max(1, len(self.seconds))


def network_seed(arch: str, seed: int) -> int:
    """The torch seed for one architecture: independent of order and process, so values are reproducible."""
    return (zlib.crc32(arch.encode()) ^ (seed * 0x9E3779B1)) & 0x7FFFFFFF


def _one(args: tuple[str, str, NetworkBuilder, int]) -> tuple[float, float]:
    name, arch, build, seed = args
    import torch

    t0 = time.perf_counter()
    s = network_seed(arch, seed)
    torch.manual_seed(s)
    model, shape = build(arch)
    value = get_objective(name).compute(model, shape, s)
    return value, time.perf_counter() - t0


def _init_worker() -> None:
    import torch

    torch.set_num_threads(1)


def compute_objective(name: str, archs: Sequence[str], build: NetworkBuilder, seed: int = 0,
                      workers: int | None = None, progress: Progress | None = None) -> ObjectiveValues:
    """``name`` for every architecture (order kept). ``workers`` processes (default: the usable CPUs); 1 runs
    in this process."""
    get_objective(name)  # unknown names fail before any work
    if workers is None:
        workers = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else (os.cpu_count() or 1)
    workers = max(1, min(workers, len(archs) or 1))
    jobs = [(name, a, build, seed) for a in archs]
    t0 = time.perf_counter()
    results: list[tuple[float, float]] = []
    if workers == 1:
        import torch

        threads = torch.get_num_threads()
        torch.set_num_threads(1)
        try:
            for i, job in enumerate(jobs):
                results.append(_one(job))
                if progress:
                    progress(i + 1, len(jobs))
        finally:
            torch.set_num_threads(threads)
    else:
        import multiprocessing
        from concurrent.futures import ProcessPoolExecutor

        ctx = multiprocessing.get_context("spawn")
        chunk = max(1, min(32, math.ceil(len(jobs) / (workers * 8))))
        with ProcessPoolExecutor(workers, mp_context=ctx, initializer=_init_worker) as pool:
            for i, res in enumerate(pool.map(_one, jobs, chunksize=chunk)):
                results.append(res)
                if progress:
                    progress(i + 1, len(jobs))
    return ObjectiveValues(name, tuple(archs), tuple(v for v, _ in results), tuple(s for _, s in results),
                           workers, time.perf_counter() - t0)


def _space_network(space: str, dataset: str, arch: str) -> tuple[nn.Module, tuple[int, ...]]:
    from hwdiffnas.plugins import get_space

    sp = get_space(space)
    return sp.materialize(sp.parse(arch), dataset), sp.input_shape(dataset)


def space_network_builder(space: str, dataset: str) -> NetworkBuilder:
    """The picklable builder of a registered space's networks in a dataset setting (`SearchSpace.materialize`)."""
    from functools import partial

    return partial(_space_network, space, dataset)


def cached_objective(name: str, archs: Sequence[str], build: NetworkBuilder, cache: Path | None, *, space: str,
                     dataset: str | None, seed: int = 0, workers: int | None = None, chunk: int = 64,
                     progress: Callable[[str], None] | None = None) -> tuple[list[float], list[float]]:
    """(values, seconds per network) of ``name`` for ``archs``, computing only what ``cache`` lacks.

    ``cache``: a JSONL file of rows ``{space, dataset, objective, seed, arch, value, seconds}`` (rows of other keys
    may share it); new values are appended chunk by chunk, so an interrupted run resumes. A line torn by a crash
    (the file's unterminated last line) is dropped before appending; any other unreadable line is an error.
    """
    import json

    from hwdiffnas.errors import UserError

    key = (space, dataset, name, seed)
    known: dict[str, tuple[float, float]] = {}
    if cache is not None and cache.is_file():
        text = cache.read_text()
        lines = text.splitlines()
        if text and not text.endswith("\n"):
            lines = lines[:-1]
            cache.write_text("".join(line + "\n" for line in lines))
        for n, line in enumerate(lines, start=1):
            try:
                row = json.loads(line)
                if (row["space"], row.get("dataset"), row["objective"], row["seed"]) == key:
                    secs = row.get("seconds")
                    known[str(row["arch"])] = (float(row["value"]), math.nan if secs is None else float(secs))
            except (ValueError, KeyError, TypeError):
                raise UserError(f"{cache}: line {n} is not an objective row; delete the file to recompute") from None
    todo = [a for a in dict.fromkeys(archs) if a not in known]
    if todo and cache is not None:
        cache.parent.mkdir(parents=True, exist_ok=True)
    for start in range(0, len(todo), chunk):
        part = todo[start:start + chunk]
        res = compute_objective(name, part, build, seed=seed, workers=workers)
        if cache is not None:
            with cache.open("a") as fh:
                for a, v, s in zip(part, res.values, res.seconds):
                    fh.write(json.dumps({"space": space, "dataset": dataset, "objective": name, "seed": seed,
                                         "arch": a, "value": v, "seconds": s}) + "\n")
        known.update((a, (v, s)) for a, v, s in zip(part, res.values, res.seconds))
        if progress:
            progress(f"{name}: {len(archs) - len(todo) + start + len(part)}/{len(archs)} architectures "
                     f"({res.mean_seconds:.2f} s per network in a worker)")
    return [known[a][0] for a in archs], [known[a][1] for a in archs]
