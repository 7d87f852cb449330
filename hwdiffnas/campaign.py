"""Measurement campaigns: pick cells that span a device's latency range, measure them, store each result.

A campaign is named by ``(device, run_id)``. Its cell list is a pure function of its options (proxy, seed, n),
so running the same command again after a crash re-derives the same cells, skips those with an ``ok`` row
in the store and measures the rest; failed cells are tried again. Each result is written in its own
transaction as soon as it is measured, and the store's ``UNIQUE(device, run_id, cell)`` makes a repeated
write replace rather than duplicate. One process at a time runs a campaign on a store: a second identical
one is refused, naming the first (a lock file that the system releases when its holder exits).

Cells are picked by stratifying a *proxy* of latency: ``flops`` (multiply-accumulates of the network, exact
and cheap) or the latency table of a device already in the store. Candidates are connected cells, one per
isomorphism class; the picks are the candidates nearest to ``n`` targets spread evenly over the proxy's range,
so both ends of the range are always measured.

Other search spaces (FBNet, …) plan their architectures in `hwdiffnas.campaign_space` and store them keyed by
(space, architecture string) (`hwdiffnas.store_space`); measuring, resuming and locking are the same.
"""

from __future__ import annotations

import math
import sys
import tempfile
import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from functools import cache
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from hwdiffnas.errors import UserError
from hwdiffnas.interfaces import LatencyStats, ProfileSettings
from hwdiffnas.space import CONV1, CONV3, NUM_EDGES, Cell, all_cells

if TYPE_CHECKING:
    from hwdiffnas.devices import DeviceConfig
    from hwdiffnas.remote.route import RemoteProfiler
    from hwdiffnas.store import Store

PROXY_FLOPS = ("flops", "macs")


# --- proxies -----------------------------------------------------------------------------------------------
@cache
def _macs_coefficients(dataset: str) -> tuple[int, int, int]:
    """(base, per conv1x1 edge, per conv3x3 edge) MACs of the NB201 network on ``dataset``.

    In the default network every edge that is not ``none`` runs in all 15 cells, so the total is linear in the
    number of 1×1 and 3×3 conv edges; three networks give the coefficients (checked on random cells in tests).
    """
    from hwdiffnas.materialize import network_info

    none = network_info(Cell((0,) * NUM_EDGES), dataset).macs
    one_1x1 = network_info(Cell((CONV1,) + (0,) * (NUM_EDGES - 1)), dataset).macs
    one_3x3 = network_info(Cell((CONV3,) + (0,) * (NUM_EDGES - 1)), dataset).macs
    return none, one_1x1 - none, one_3x3 - none


def macs_of(cells: Sequence[Cell], dataset: str = "cifar100") -> np.ndarray:
    """(n,) MACs of each cell's network (see `_macs_coefficients`)."""
    base, a, b = _macs_coefficients(dataset)
    ops = np.array([c.ops for c in cells], dtype=np.int64).reshape(-1, NUM_EDGES)
    return base + a * (ops == CONV1).sum(axis=1) + b * (ops == CONV3).sum(axis=1)


def candidate_cells() -> list[Cell]:
    """Connected cells, one (the smallest op vector) per isomorphism class."""
    seen: dict[tuple[int, ...], Cell] = {}
    for c in all_cells():
        if c.is_connected:
            seen.setdefault(c.isomorphism_key, c)
    return sorted(seen.values())


def proxy_values(cells: Sequence[Cell], proxy: str, dataset: str = "cifar100",
                 store: Store | None = None) -> np.ndarray:
    """(n,) proxy of latency per cell: ``flops`` (MACs) or a device's latency from the store (NaN if absent)."""
    if proxy in PROXY_FLOPS:
        return macs_of(cells, dataset).astype(np.float64)
    if store is None:
        raise UserError(f"proxy {proxy!r} is a device: it needs the benchmark store (import the tables first)")
    lat = store.latency(proxy)
    idx = np.array([store.index_of(c) for c in cells], dtype=np.int64)
    return np.asarray(lat, dtype=np.float64)[idx]


def pick_spanning(values: np.ndarray, n: int, seed: int = 0) -> np.ndarray:
    """Indices of ``n`` distinct items whose values cover ``values``' range evenly.

    Targets are ``n`` evenly spaced points from the minimum to the maximum finite value; each takes the
    not-yet-picked item nearest to it (ties broken by a seeded shuffle). Items with NaN values are never
    picked. Deterministic for a given seed.
    """
    values = np.asarray(values, dtype=np.float64)
    ok = np.flatnonzero(np.isfinite(values))
    if n < 1:
        raise UserError(f"need at least one cell to measure, got n={n}")
    if n > len(ok):
        raise UserError(f"asked for {n} cells but only {len(ok)} candidates have a proxy value")
    rng = np.random.default_rng(seed)
    order = ok[rng.permutation(len(ok))]
    order = order[np.argsort(values[order], kind="stable")]  # sorted by value, random among ties
    sv = values[order]
    taken = np.zeros(len(order), dtype=bool)
    targets = np.linspace(sv[0], sv[-1], n)
    picks = []
    for t in targets:
        pos = int(np.searchsorted(sv, t))
        lo, hi = pos - 1, pos
        while lo >= 0 and taken[lo]:
            lo -= 1
        while hi < len(order) and taken[hi]:
            hi += 1
        cand = [i for i in (lo, hi) if 0 <= i < len(order)]
        best = min(cand, key=lambda i: (abs(sv[i] - t), i))
        taken[best] = True
        picks.append(order[best])
    return np.array(picks, dtype=np.int64)


# --- plan ------------------------------------------------------------------------------------------------
@dataclass(frozen=True)
class CampaignSpec:
    """Everything that defines one campaign."""

    device: str
    runtime: str
    settings: ProfileSettings
    dataset: str = "cifar100"
    n: int = 200
    seed: int = 0
    proxy: str = "flops"
    run_id: str = ""
    fmt: str = "onnx"
    space: str = "nb201"

    def resolved_run_id(self) -> str:
        """The run id: given, or derived from the options that decide the cell list and the measurement (the
        space's name first, outside NB201)."""
        if self.run_id:
            return self.run_id
        s = self.settings
        prefix = "" if self.space == "nb201" else f"{self.space}-"
        return (f"{prefix}{self.runtime}-{self.dataset}-{self.proxy}-n{self.n}-s{self.seed}-"
                f"w{s.warmup}r{s.runs}t{s.threads}-{s.precision}")


def plan_cells(spec: CampaignSpec, store: Store | None = None) -> list[Cell]:
    """The campaign's cells, in measuring order (same spec → same list).

    The order is a seeded shuffle, so slow drifts of the device (thermal state, other load) do not line up
    with the proxy and bias the measured trend.
    """
    cands = candidate_cells()
    values = proxy_values(cands, spec.proxy, spec.dataset, store)
    picks = pick_spanning(values, spec.n, spec.seed)
    order = np.random.default_rng(spec.seed + 1).permutation(len(picks))
    return [cands[i] for i in picks[order]]


# --- measuring ---------------------------------------------------------------------------------------------
Measure = Callable[[Any], LatencyStats]


def check_format_space(fmt: str, space: str) -> None:
    """Refuse, before measuring, a model format whose exporter cannot write networks of ``space``."""
    if fmt == "torch":
        return
    from hwdiffnas.plugins import get_exporter

    get_exporter(fmt).check_space(space)


def local_measurer(spec: CampaignSpec, workdir: Path) -> Measure:
    """Export each cell and time it on this machine with the profiler plug-in ``spec.runtime``."""
    from hwdiffnas.deploy import profile_cell
    from hwdiffnas.plugins import get_profiler

    prof = get_profiler(spec.runtime)
    ok, why = prof.available()
    if not ok:
        raise UserError(f"runtime {spec.runtime!r} is not usable here: {why}")
    _check_precision(spec, prof.precisions, "here")
    check_format_space(prof.model_format, spec.space)

    def measure(cell: Any) -> LatencyStats:
        return profile_cell(cell, spec.runtime, spec.settings, dataset=spec.dataset, workdir=workdir,
                            space=spec.space)

    return measure


def _check_precision(spec: CampaignSpec, supported: Sequence[str] | None, where: str) -> None:
    """Refuse a campaign whose precision its runtime does not time (its results would be mislabelled)."""
    if supported is not None and spec.settings.precision not in supported:
        raise UserError(f"device {spec.device!r} is measured at precision {spec.settings.precision!r}, but runtime "
                        f"{spec.runtime!r} {where} times {', '.join(supported)} only; pick a runtime that times "
                        f"{spec.settings.precision} (--runtime) or another device")


def remote_measurer(spec: CampaignSpec, remote: RemoteProfiler, workdir: Path) -> Measure:
    """Export each cell here (checked against torch on one input) and time it on the remote."""
    from hwdiffnas.deploy import export_cell

    fmt = remote.model_format(spec.runtime)
    precisions = getattr(remote, "precisions", None)
    if precisions is not None:
        _check_precision(spec, precisions(spec.runtime), f"on {remote.description}")
    check_format_space(fmt, spec.space)

    def measure(cell: Any) -> LatencyStats:
        with tempfile.TemporaryDirectory(dir=workdir) as d:
            result = export_cell(cell, fmt, Path(d) / "model", dataset=spec.dataset, validate_trials=1,
                                 space=spec.space)
            return remote.profile(result.path, fmt=fmt, runtime=spec.runtime, settings=spec.settings)

    return measure


@dataclass
class CampaignReport:
    """What one invocation did."""

    device: str
    run_id: str
    planned: int
    already_done: int = 0
    measured_ok: int = 0
    failed: int = 0
    seconds: float = 0.0
    failures: list[tuple[str, str]] = field(default_factory=list)

    @property
    def complete(self) -> int:
        return self.already_done + self.measured_ok

    def to_dict(self) -> dict[str, Any]:
        return {"device": self.device, "run_id": self.run_id, "planned": self.planned,
                "already_done": self.already_done, "measured_ok": self.measured_ok, "failed": self.failed,
                "complete": self.complete, "seconds": round(self.seconds, 2),
                "failures": [{"arch_str": a, "error": e} for a, e in self.failures]}


@contextmanager
def campaign_lock(store_path: Path, device: str, run_id: str) -> Iterator[None]:
    """Hold the lock of campaign (device, run id) on the store at ``store_path``, or refuse.

    The lock is an exclusive ``flock`` on a small file beside the store (``locks/campaign-<hash>.lock``), so it
    is released when its holder exits, even by SIGKILL; the file names the holder for the refusal message.
    """
    import fcntl
    import hashlib
    import json
    import os
    import socket

    key = hashlib.sha256(json.dumps([str(store_path.resolve()), device, run_id]).encode()).hexdigest()[:16]
    path = store_path.parent / "locks" / f"campaign-{key}.lock"
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o644)
    except OSError as exc:
        raise UserError(f"cannot create the campaign lock {path}: {exc.strerror}") from exc
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError:
            holder = os.pread(fd, 4096, 0).decode("utf-8", "replace").strip() or "another process"
            raise UserError(f"campaign {run_id!r} on {device!r} is already running on the store {store_path} "
                            f"({holder}); wait for it to finish (running the same command later resumes it), or "
                            "give another --run-id") from None
        note = f"pid {os.getpid()} on {socket.gethostname()}, started {time.strftime('%Y-%m-%d %H:%M:%S %Z')}"
        os.ftruncate(fd, 0)
        os.pwrite(fd, note.encode(), 0)
        yield
    finally:
        os.close(fd)  # releases the lock


class Ledger:
    """Where a campaign's results go: NB201 cells in the store's ``measurements`` table (see
    `hwdiffnas.campaign_space.ArchLedger` for other spaces)."""

    def __init__(self, store: Store) -> None:
        self.store = store

    def done(self, device: str, run_id: str) -> set[Any]:
        """The architectures with an ``ok`` row in (device, run id)."""
        return {m.cell for m in self.store.measured(device, run_id, status="ok")}

    def name(self, arch: Any) -> str:
        return arch.arch_str

    def record(self, device: str, run_id: str, arch: Any, **row: Any) -> None:
        """Store one result (`Store.record_measurement` keywords)."""
        self.store.record_measurement(device, run_id, arch, **row)


def run_campaign(spec: CampaignSpec, store: Store, cells: Sequence[Any], measure: Measure,
                 progress: bool = True, host: str = "", ledger: Ledger | None = None) -> CampaignReport:
    """Measure every cell of ``cells`` without an ``ok`` row in (device, run id); one transaction per cell.

    Only one process at a time runs a given campaign on a store (`campaign_lock`); a second one is refused.
    """
    run_id = spec.resolved_run_id()
    lock_id = run_id if spec.space == "nb201" else f"{spec.space}:{run_id}"
    with campaign_lock(store.path, spec.device, lock_id):
        return _run_campaign(spec, ledger or Ledger(store), cells, measure, progress, host)


def _run_campaign(spec: CampaignSpec, ledger: Ledger, cells: Sequence[Any], measure: Measure, progress: bool,
                  host: str) -> CampaignReport:
    run_id = spec.resolved_run_id()
    done = ledger.done(spec.device, run_id)
    todo = [c for c in cells if c not in done]
    report = CampaignReport(spec.device, run_id, len(cells), already_done=len(cells) - len(todo))
    settings = {"warmup": spec.settings.warmup, "runs": spec.settings.runs, "threads": spec.settings.threads,
                "precision": spec.settings.precision, "dataset": spec.dataset, "format": spec.fmt}
    bar = _bar(len(cells), report.already_done, f"{spec.device} {run_id}", progress)
    t0 = time.perf_counter()
    try:
        for cell in todo:
            try:
                stats = measure(cell)
            except (KeyboardInterrupt, SystemExit):
                raise
            except Exception as exc:  # one bad cell must not end the campaign; its reason is stored
                reason = f"{type(exc).__name__}: {exc}".strip()[:2000]
                ledger.record(spec.device, run_id, cell, status="failed", error=reason, runtime=spec.runtime,
                              settings=settings, host=host)
                report.failed += 1
                report.failures.append((ledger.name(cell), reason))
            else:
                ledger.record(spec.device, run_id, cell, stats=stats.to_dict(with_samples=True),
                              runtime=stats.runtime, runtime_version=stats.runtime_version,
                              host=stats.host or host, settings=settings)
                report.measured_ok += 1
            if bar is not None:
                bar.update(1)
                bar.set_postfix(ok=report.complete, failed=report.failed, refresh=False)
    finally:
        report.seconds = time.perf_counter() - t0
        if bar is not None:
            bar.close()
    return report


def _bar(total: int, initial: int, desc: str, enabled: bool) -> Any:
    if not enabled:
        return None
    from tqdm import tqdm

    return tqdm(total=total, initial=initial, desc=desc, file=sys.stderr, unit="cell", dynamic_ncols=True,
                mininterval=1.0)


def measurement_route(cfg: DeviceConfig, remote: str | None) -> str:
    """``local`` or ``remote``, checked against the device config's route."""
    route = cfg.measure.route
    if remote:
        return "remote"
    if route == "local":
        return "local"
    if route == "table-only":
        raise UserError(f"device {cfg.name!r} is table-only (no way to measure it is configured); measure "
                        "local-cpu, or give --remote URL for a device you can reach")
    raise UserError(f"device {cfg.name!r} is measured over {route}: give --remote URL "
                    f"({'http://HOST:PORT with --token-file' if route == 'agent' else route + '://…'})")


# --- estimates for unmeasured cells ------------------------------------------------------------------------
@dataclass(frozen=True)
class HeldOut:
    """Predictor quality on measurements it was not fitted on."""

    n_train: int
    n_test: int
    spearman: float
    mape_pct: float

    def to_dict(self) -> dict[str, Any]:
        return {"n_train": self.n_train, "n_test": self.n_test, "spearman": self.spearman,
                "mape_pct": self.mape_pct}


def fit_predictor(cells: Sequence[Cell], latencies_ms: Sequence[float],
                  basis: Any = None) -> Callable[[Sequence[Cell]], np.ndarray]:
    """A latency predictor (`hwdiffnas.predictors.fit_latency_predictor`) fitted on measured cells; returns
    ``predict(cells) -> (n,) ms`` (the predictor's median estimate). ``basis`` is an optional transfer basis
    built from other devices' tables (`hwdiffnas.predictors.build_transfer_basis`)."""
    from hwdiffnas.predictors import fit_latency_predictor

    model = fit_latency_predictor(list(cells), np.asarray(latencies_ms, dtype=np.float64), basis=basis)
    return lambda cs: np.asarray(model.predict(list(cs))[0], dtype=np.float64)


def spearman(a: np.ndarray, b: np.ndarray) -> float:
    """Spearman rank correlation (average ranks for ties)."""
    from scipy.stats import spearmanr

    return float(spearmanr(a, b).statistic)


def held_out_quality(cells: Sequence[Cell], latencies_ms: Sequence[float], n_train: int,
                     seed: int = 0, basis: Any = None) -> HeldOut:
    """Fit on ``n_train`` random measured cells, score Spearman and mean abs % error on the rest."""
    y = np.asarray(latencies_ms, dtype=np.float64)
    if not 2 <= n_train < len(y):
        raise UserError(f"need 2 <= n_train < {len(y)} measurements, got {n_train}")
    perm = np.random.default_rng(seed).permutation(len(y))
    tr, te = perm[:n_train], perm[n_train:]
    predict = fit_predictor([cells[i] for i in tr], y[tr], basis)
    pred = predict([cells[i] for i in te])
    mape = float(np.mean(np.abs(pred - y[te]) / y[te]) * 100.0)
    return HeldOut(int(n_train), int(len(te)), spearman(pred, y[te]), mape)


def estimate_device(store: Store, device: str, setting: str = "cifar100", name: str | None = None,
                    statistic: str = "median") -> tuple[str, int, HeldOut | None]:
    """Write a complete latency table for a measured device: measured values (``statistic`` of each
    measurement, median over repeated measurements) where measured, predictor estimates elsewhere. Stored as a
    user table named ``name`` (default ``DEVICE+est``), so ``--device DEVICE+est`` works in search and bench.
    Returns (name, #measured cells, held-out quality on a random 80/20 split of the measurements, or None
    below 10 measurements)."""
    from hwdiffnas.store import cell_key

    medians = measured_medians(store, device, statistic=statistic)
    if len(medians) < 8:
        raise UserError(f"device {device!r} has {len(medians)} measured cells in the store; need at least 8 "
                        f"(run: hwdiffnas campaign --device {device})")
    cells = list(medians)
    y = np.array([medians[c] for c in cells])
    quality = held_out_quality(cells, y, int(len(y) * 0.8)) if len(y) >= 10 else None
    predict = fit_predictor(cells, y)
    every = list(all_cells())
    values = predict(every)
    measured = dict(zip(cells, y))
    values = np.array([measured.get(c, v) for c, v in zip(every, values)], dtype=np.float64)
    table = name or f"{device}+est"
    with store.transaction() as cur:
        store.put_hw(cur, table, "user", table, setting, "latency", f"campaign:{device}",
                     [cell_key(c) for c in every], values.tolist())
    return table, len(cells), quality


STATISTICS = ("median", "min", "mean", "p90")


def measured_medians(store: Store, device: str, run_id: str | None = None,
                     statistic: str = "median") -> dict[Cell, float]:
    """Cell → median over its ok measurements of one per-measurement ``statistic`` (ms) for ``device``.

    ``statistic`` picks the summary of each measurement's timed runs: ``median`` (the store's column), or
    ``min``/``mean``/``p90`` from the stored statistics. ``min`` is the robust choice on a host shared with
    other work, where contention only ever adds time.
    """
    if statistic not in STATISTICS:
        raise UserError(f"unknown statistic {statistic!r}; known: {', '.join(STATISTICS)}")
    by_cell: dict[Cell, list[float]] = {}
    for m in store.measured(device, run_id, status="ok"):
        v = m.median_ms if statistic == "median" else m.stats.get(f"{statistic}_ms")
        if v is not None and math.isfinite(float(v)) and float(v) > 0:
            by_cell.setdefault(m.cell, []).append(float(v))
    return {c: float(np.median(v)) for c, v in sorted(by_cell.items())}


def write_measured_table(store: Store, device: str, path: Path | str, run_id: str | None = None,
                         statistic: str = "median") -> int:
    """Write ``arch_str,latency_ms`` rows of the measured cells (the ``--device-table`` format); returns rows."""
    import csv

    table = measured_medians(store, device, run_id, statistic)
    if not table:
        raise UserError(f"device {device!r} has no ok measurements in the store")
    with open(path, "w", newline="", encoding="utf-8") as fh:
        w = csv.writer(fh)
        w.writerow(["arch_str", "latency_ms"])
        for cell, ms in table.items():
            w.writerow([cell.arch_str, f"{ms:.6g}"])
    return len(table)
