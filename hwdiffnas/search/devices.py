"""Device resolution for a search: the `DeviceLatency` of ``--device`` / ``--device-table`` as a generator sees it
(a stored table or measured device, a file of rows, or a training device of the checkpoint without a store)."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from hwdiffnas.errors import UserError
from hwdiffnas.latency.device import (
    DeviceLatency,
    from_quantiles,
    from_rows,
    from_table,
    shipped_latency_estimators,
    stored_device,
)
from hwdiffnas.space import Cell

device_from_table = from_table
device_from_rows = from_rows


def fallback_rep(gen: Any, name: str) -> np.ndarray | None:
    """The checkpoint's representation of ``name`` when it is one of its training devices (else None)."""
    return gen.device_rep(name) if name in gen.meta.devices else None


def device_from_checkpoint(name: str, gen: Any, estimators: dict[str, Any]) -> DeviceLatency:
    """A training device of the checkpoint, without a benchmark store: latencies from the shipped estimator."""
    return from_quantiles(name, gen.device_quantiles_ms(name), gen.device_rep(name), estimators.get(name))


def table_device(gen: Any, name: str, cells: Sequence[Cell], latency_ms: np.ndarray, connected: np.ndarray,
                 source: str = "table") -> DeviceLatency:
    """A device given as a latency table aligned with ``cells`` (a bench task, a grid cell)."""
    return from_table(name, cells, latency_ms, connected, source, fallback_rep(gen, name))


def resolve_device(gen: Any, store: Any | None, device: str | None = None,
                   device_table: Path | str | None = None) -> DeviceLatency:
    """The device of ``--device`` / ``--device-table`` (the file wins): rows of a file; a stored table or measured
    device; a training device of the checkpoint (no store). Unknown names list the known ones."""
    from hwdiffnas.devices import default_registry

    if device_table:
        from hwdiffnas.benchmark import load_device_table

        p = Path(device_table)
        return from_rows(device or p.stem, load_device_table(p), store)
    if not device:
        raise UserError("give --device NAME or --device-table FILE.csv")
    reg = default_registry()
    name = reg.get(device).name if device in reg else device
    if store is not None and name in store.latency_devices():
        return stored_device(store, name, fallback_rep=fallback_rep(gen, name))
    if name in gen.meta.devices:
        return device_from_checkpoint(name, gen, shipped_latency_estimators())
    if device in reg:  # a configured device without latencies here: say where its data comes from
        from hwdiffnas.datahints import no_latency_data

        raise UserError(no_latency_data(reg.get(device), store is not None))
    known = sorted(set(gen.meta.devices) | (set(store.latency_devices()) if store is not None else set()))
    raise UserError(f"unknown device {device!r}; known: {', '.join(known)} "
                    "(or give measured rows with --device-table FILE.csv)")
