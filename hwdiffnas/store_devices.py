"""How a store resolves a device name to its latency or energy table: a configured device's tables in its
config's order of preference (given by the store's opener as a `DeviceCatalog`; the store never loads device
configs), then a user table or a campaign's measurements stored under the name."""

from __future__ import annotations

import sqlite3
from collections.abc import Iterator
from pathlib import Path
from typing import Any, Protocol

import numpy as np

from hwdiffnas.errors import UserError


class DeviceCatalog(Protocol):
    """The configured devices a store resolves names against (`hwdiffnas.devices.DeviceRegistry`): each has a
    ``name``, aliases (``in`` and ``get`` accept them) and ``tables`` (refs with ``source``, ``column``, ``metric``,
    ``setting``) in order of preference. The store never loads device configs itself; its opener passes them."""

    def __contains__(self, name: str) -> bool: ...

    def __iter__(self) -> Iterator[Any]: ...

    def get(self, name: str) -> Any: ...

    def names(self) -> list[str]: ...


class NoDevices:
    """The catalog of a store opened without device configs: only stored names (user tables, campaigns)."""

    def __contains__(self, name: str) -> bool:
        return False

    def __iter__(self) -> Iterator[Any]:
        return iter(())

    def get(self, name: str) -> Any:
        raise UserError(f"unknown device {name!r}")

    def names(self) -> list[str]:
        return []


class DeviceTables:
    """The device look-ups of `hwdiffnas.store.Store` (a mixin: it reads the store's ``hw_table`` and
    ``measured_latency``)."""

    path: Path
    conn: sqlite3.Connection
    catalog: DeviceCatalog

    def _device_metric(self, device: str, metric: str, setting: str | None) -> tuple[np.ndarray, str]:
        reg = self.catalog
        if device in reg:
            cfg = reg.get(device)
            refs = [t for t in cfg.tables if t.metric == metric and (setting is None or t.setting == setting)]
            for ref in refs:
                if ref.source == "measured":
                    if metric == "latency":
                        arr = self.measured_latency(ref.column)
                        if np.isfinite(arr).any():
                            return arr, f"measured:{ref.column}"
                    continue
                arr = self.hw_table(ref.source, ref.column, ref.setting, metric)
                if arr is not None:
                    return arr, f"{ref.source}:{ref.column}:{ref.setting}"
            name = cfg.name
        else:
            name = device
        # a user-imported table or a device measured by a campaign
        rows = self.conn.execute(
            "SELECT source, column_name, setting FROM hw_series WHERE device = ? AND metric = ? "
            "AND (? IS NULL OR setting = ?) ORDER BY series_id", (name, metric, setting, setting)).fetchall()
        if rows:
            src, col, st = rows[0]
            arr = self.hw_table(src, col, st, metric)
            assert arr is not None
            return arr, f"{src}:{col}:{st}"
        if metric == "latency":
            arr = self.measured_latency(name)
            if np.isfinite(arr).any():
                return arr, f"measured:{name}"
        if device not in reg:
            known = sorted(set(reg.names()) | set(self.devices(metric)))
            raise UserError(f"unknown device {device!r}; known: {', '.join(known)} "
                            "(or give a table with --device-table FILE.csv)")
        which = f" in setting {setting!r}" if setting else ""
        from hwdiffnas.datahints import data_source_hint

        hint = data_source_hint(reg.get(device), metric)
        raise UserError(f"no {metric} data for device {device!r}{which} in the store {self.path}; devices with "
                        f"{metric} data: {', '.join(self.devices(metric)) or 'none'}. {hint[0].upper()}{hint[1:]}")

    def latency(self, device: str, setting: str | None = None) -> np.ndarray:
        """(15625,) latency in ms of ``device``, NB201 index order, NaN where missing.

        The device's tables are tried in its config's order of preference (optionally only those in
        ``setting``); devices without a config are user tables or campaign measurements.
        """
        return self._device_metric(device, "latency", setting)[0]

    def latency_source(self, device: str, setting: str | None = None) -> str:
        """Which table `latency` reads for ``device`` (``source:column:setting``)."""
        return self._device_metric(device, "latency", setting)[1]

    def energy(self, device: str, setting: str | None = None) -> np.ndarray:
        """(15625,) energy in mJ of ``device``, NB201 index order, NaN where missing."""
        return self._device_metric(device, "energy", setting)[0]

    def devices(self, metric: str = "latency") -> list[str]:
        """Devices with any data of ``metric`` (stored tables or, for latency, ok measurements)."""
        reg = self.catalog
        names: set[str] = set()
        have = {(s, c, st) for s, c, st in self.conn.execute(
            "SELECT source, column_name, setting FROM hw_series WHERE metric = ? AND n > 0", (metric,))}
        for cfg in reg:
            for ref in cfg.tables:
                if ref.metric == metric and (ref.source, ref.column, ref.setting) in have:
                    names.add(cfg.name)
        names.update(d for (d,) in self.conn.execute(
            "SELECT DISTINCT device FROM hw_series WHERE metric = ? AND n > 0 AND source = 'user'", (metric,)))
        if metric == "latency":
            measured = {d for (d,) in self.conn.execute(
                "SELECT DISTINCT device FROM measurements WHERE status = 'ok' AND median_ms IS NOT NULL")}
            for d in measured:
                names.add(reg.get(d).name if d in reg else d)
        return sorted(names)

    def latency_devices(self) -> list[str]:
        """Devices with any latency data."""
        return self.devices("latency")
