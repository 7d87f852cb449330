"""The latency of given architectures on a device, in any space: a space's exact lookup tables (source ``lut``),
else, in the NB201 space, the benchmark store (exact table rows, measured rows or the estimate with its bound).
A device without data in the space is a one-line error naming the devices that have some and how to measure."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from hwdiffnas.errors import UserError
from hwdiffnas.spaces.base import SearchSpace

STORE_SPACES = ("nb201",)
"""Spaces whose device latencies the benchmark store serves today."""


@dataclass(frozen=True)
class LatencyAnswer:
    """One architecture's latency on a device: point and one-sided upper bound (equal when exact), its source."""

    arch: str
    latency_ms: float
    upper_ms: float
    source: str

    def to_dict(self) -> dict[str, Any]:
        return {"arch": self.arch, "latency_ms": self.latency_ms, "upper_ms": self.upper_ms, "source": self.source}


def measure_hint(space: SearchSpace[Any], dataset: str) -> str:
    """How to obtain latencies where no table exists."""
    return (f"measure them: hwdiffnas profile --space {space.name} --dataset {dataset} --arch ... --runtime RUNTIME, "
            f"or a campaign on the device")


def space_latencies(space: SearchSpace[Any], device: str, archs: Sequence[Any], dataset: str,
                    store: Any | None = None, delta: float = 0.05) -> list[LatencyAnswer]:
    """Latency of each of ``archs`` on ``device`` in ``dataset``'s setting (see the module docstring)."""
    tables = space.latency_tables(dataset)
    if device in tables:
        model = tables[device]
        return [LatencyAnswer(space.format(a), v, v, "lut") for a in archs for v in [model.latency_ms(a)]]
    if space.name in STORE_SPACES and store is not None:
        from hwdiffnas.latency.device import device_latency

        dev = device_latency(store, device)
        point, upper, source = dev.latencies(list(archs), delta)
        return [LatencyAnswer(space.format(a), float(p), float(u), s)
                for a, p, u, s in zip(archs, point, upper, source)]
    if space.name in STORE_SPACES:
        raise UserError(f"no benchmark store: import the NB201 tables (hwdiffnas data import DIR) for {device!r}")
    with_data = [d for s in space.datasets for d in space.latency_tables(s)]
    if not space.latency_tables(dataset):
        where = f"; tables exist in: {', '.join(sorted({s for s in space.datasets if space.latency_tables(s)}))}" \
            if with_data else ""
        raise UserError(f"no latency table exists for space {space.name!r} in the {dataset!r} setting{where}; "
                        f"{measure_hint(space, dataset)}")
    raise UserError(f"device {device!r} has no latency data in space {space.name!r} ({dataset}); devices with "
                    f"data: {', '.join(sorted(tables))} (lut); or {measure_hint(space, dataset)}")
