"""Campaigns in a search space other than NB201 (e.g. FBNet): plan the architectures, record each result keyed by
(space, exact architecture string) in the store (`hwdiffnas.store_space`).

Planning mirrors NB201's (`hwdiffnas.campaign.plan_cells`): candidates are the space's shipped measured rows'
architectures (FBNet: HELP's 5,000) when it has some in the setting, else ``max(5000, 10 n)`` seeded uniform
samples; the picks are the ``n`` candidates nearest to targets spread evenly over a proxy's range — ``flops``
(the space's exact MACs) or a device the space serves in that setting (a lookup table, or shipped rows) — then
put in a seeded shuffled order. The list is a pure function of (space, dataset, proxy, n, seed), so running the
same command again re-derives it and skips what is measured.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from hwdiffnas.campaign import PROXY_FLOPS, CampaignSpec, Ledger, pick_spanning
from hwdiffnas.errors import UserError
from hwdiffnas.spaces.base import SearchSpace
from hwdiffnas.store_space import arch_measured, measured_arch_rows, record_arch_measurement

if TYPE_CHECKING:
    from hwdiffnas.store import Store

SAMPLE_POOL = 5000


def candidate_archs(space: SearchSpace[Any], dataset: str, n: int, seed: int) -> list[Any]:
    """Distinct candidate architectures: the shipped measured rows' (if any in ``dataset``), else seeded samples."""
    rows = space.measured_rows(dataset)
    if rows:
        texts = next(iter(rows.values())).archs
        archs = [space.parse(a) for a in texts]
    elif space.finite and space.size <= SAMPLE_POOL:
        archs = list(space.enumerate())
    else:
        archs = space.sample(max(SAMPLE_POOL, 10 * n), seed=seed)
    seen: dict[str, Any] = {}
    for a in archs:
        if space.degenerate(a) is None:
            seen.setdefault(space.format(a), a)
    return list(seen.values())


def space_proxy_values(space: SearchSpace[Any], archs: Sequence[Any], proxy: str, dataset: str) -> np.ndarray:
    """(n,) proxy of latency: ``flops`` (MACs) or the latency of a device the space serves in ``dataset``."""
    if proxy in PROXY_FLOPS:
        return np.array([space.size_counts(a, dataset)[0] for a in archs], dtype=np.float64)
    tables = space.latency_tables(dataset)
    if proxy in tables:
        return np.array([tables[proxy].latency_ms(a) for a in archs], dtype=np.float64)
    rows = space.measured_rows(dataset)
    if proxy in rows:
        known = dict(zip(rows[proxy].archs, rows[proxy].latency_ms))
        return np.array([known.get(space.format(a), np.nan) for a in archs], dtype=np.float64)
    devices = sorted(tables) + sorted(rows)
    raise UserError(f"proxy {proxy!r} is neither 'flops' nor a device space {space.name!r} serves in the "
                    f"{dataset!r} setting; devices: {', '.join(devices) or 'none'}")


def plan_archs(spec: CampaignSpec, space: SearchSpace[Any]) -> list[Any]:
    """The campaign's architectures, in measuring order (same spec → same list)."""
    if spec.n < 1:
        raise UserError(f"need at least one architecture to measure, got --n {spec.n}")
    cands = candidate_archs(space, spec.dataset, spec.n, spec.seed)
    picks = pick_spanning(space_proxy_values(space, cands, spec.proxy, spec.dataset), spec.n, spec.seed)
    order = np.random.default_rng(spec.seed + 1).permutation(len(picks))
    return [cands[i] for i in picks[order]]


class ArchLedger(Ledger):
    """A campaign's results in ``space``, keyed by exact architecture string (`hwdiffnas.store_space`)."""

    def __init__(self, store: Store, space: SearchSpace[Any], dataset: str) -> None:
        super().__init__(store)
        self.space = space
        self.dataset = dataset

    def done(self, device: str, run_id: str) -> set[Any]:
        return {self.space.parse(m.arch_str)
                for m in arch_measured(self.store, self.space.name, device, run_id, status="ok")}

    def name(self, arch: Any) -> str:
        return self.space.format(arch)

    def record(self, device: str, run_id: str, arch: Any, **row: Any) -> None:
        record_arch_measurement(self.store, self.space.name, device, run_id, self.name(arch), self.dataset, **row)


def write_arch_table(store: Store, space: str, device: str, dataset: str, path: Path | str,
                     statistic: str = "median") -> int:
    """Write ``arch,latency_ms`` rows of the device's measured architectures (the ``latency --device-table``
    format); returns the row count."""
    import csv

    rows = measured_arch_rows(store, space, device, dataset, statistic)
    if rows is None:
        raise UserError(f"device {device!r} has no ok measurements in space {space!r} ({dataset}) in the store")
    with open(path, "w", newline="", encoding="utf-8") as fh:
        w = csv.writer(fh)
        w.writerow(["arch", "latency_ms"])
        for arch, ms in zip(rows.archs, rows.latency_ms):
            w.writerow([arch, f"{ms:.6g}"])
    return len(rows.archs)
