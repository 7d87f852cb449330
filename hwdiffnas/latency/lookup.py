"""What a device's latency in any space is built from: the rows predictor of a device's shipped rows, the transfer
basis of the other devices, a device known only from rows (`device_from_rows`), a user's table of rows, the
device's campaign measurements in the store, the space's quantile sample, and the error for a device without data.
`hwdiffnas.latency.space_device` puts them together into one device."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from hwdiffnas.errors import UserError
from hwdiffnas.spaces.base import MeasuredRows, SearchSpace

STORE_SPACES = ("nb201",)
"""Spaces whose device latencies the benchmark store serves today."""


def measure_hint(space: SearchSpace[Any], dataset: str) -> str:
    """How to obtain latencies where no table exists."""
    return (f"measure them: hwdiffnas profile --space {space.name} --dataset {dataset} --arch ... --runtime RUNTIME, "
            f"or a campaign on the device")


_ROW_PREDICTORS: dict[tuple[str, str, str], Any] = {}


def rows_predictor(space: SearchSpace[Any], device: str, dataset: str, rows: MeasuredRows) -> Any:
    """The latency predictor fitted on a device's shipped rows and the space's features (cached per space,
    device and setting)."""
    key = (space.name, device, dataset)
    if key not in _ROW_PREDICTORS:
        from hwdiffnas.predictors.rows import fit_rows_predictor

        feats = space.features([space.parse(a) for a in rows.archs])
        _ROW_PREDICTORS[key] = fit_rows_predictor(feats, np.asarray(rows.latency_ms))
    return _ROW_PREDICTORS[key]


def transfer_basis(space: SearchSpace[Any], dataset: str,
                   exclude: Sequence[str] = ()) -> Callable[[Sequence[Any]], np.ndarray] | None:
    """A function mapping architectures to the log-latencies (n, k) that every other device the space serves in
    ``dataset`` gives them (exact tables; models fitted on each device's shipped rows), so a device known from a
    few rows borrows their shape; None when the space serves fewer than two devices there."""
    tables = {d: m for d, m in space.latency_tables(dataset).items() if d not in exclude}
    rows = {d: r for d, r in space.measured_rows(dataset).items() if d not in exclude}
    if len(tables) + len(rows) < 2:
        return None
    models = [rows_predictor(space, d, dataset, r) for d, r in rows.items()]

    def basis(archs: Sequence[Any]) -> np.ndarray:
        cols = [np.log([m.latency_ms(a) for a in archs]) for m in tables.values()]
        if models:
            feats = space.features(list(archs))
            cols += [m.log_predict(feats)[0] for m in models]
        return np.stack(cols, axis=1)

    return basis


@dataclass(frozen=True)
class RowsDevice:
    """A device known from measured rows: exact for them, else an estimate with its bound (``predictor`` on
    ``featurize(archs)``)."""

    name: str
    rows: MeasuredRows
    predictor: Any
    featurize: Callable[[Sequence[Any]], np.ndarray]


def device_from_rows(space: SearchSpace[Any], name: str, rows: MeasuredRows, dataset: str) -> RowsDevice:
    """A device known only from ``rows`` (a user's table): regression on the space's transfer basis when it has
    one, else on the space's features."""
    from hwdiffnas.predictors.rows import fit_rows_predictor

    archs = [space.parse(a) for a in rows.archs]
    basis = transfer_basis(space, dataset, exclude=(name,))
    featurize = basis if basis is not None else space.features
    return RowsDevice(name, rows, fit_rows_predictor(featurize(archs), np.asarray(rows.latency_ms)), featurize)


def read_rows_file(space: SearchSpace[Any], path: str | Path) -> MeasuredRows:
    """Rows ``arch,latency_ms`` (a header line; ``arch_str`` accepted for ``arch``) of a user's latency table."""
    import csv

    p = Path(path)
    try:
        with p.open(newline="") as fh:
            reader = csv.DictReader(fh)
            fields = reader.fieldnames or []
            key = "arch" if "arch" in fields else "arch_str" if "arch_str" in fields else None
            if key is None or "latency_ms" not in fields:
                raise UserError(f"{p}: needs the columns arch,latency_ms; got {', '.join(fields) or 'none'}")
            archs, lat = [], []
            for n, row in enumerate(reader, start=2):
                try:
                    value = float(row["latency_ms"])
                except (TypeError, ValueError):
                    raise UserError(f"{p}: line {n}: latency_ms {row['latency_ms']!r} is not a number") from None
                if not value > 0:
                    raise UserError(f"{p}: line {n}: latency_ms must be positive, got {value}")
                archs.append(space.format(space.parse(row[key])))
                lat.append(value)
    except OSError as exc:
        raise UserError(f"cannot read {p}: {exc.strerror or exc}") from exc
    return MeasuredRows(tuple(archs), tuple(lat), f"measured:{p.stem}")


def no_latency_data(space: SearchSpace[Any], device: str | None, dataset: str) -> UserError:
    """The error for a device without latency data in ``space`` (names the devices with data, or how to measure)."""
    served = sorted(space.latency_tables(dataset)) + sorted(space.measured_rows(dataset))
    if not served:
        where = [s for s in space.datasets if space.latency_tables(s) or space.measured_rows(s)]
        hint = f"; tables exist in: {', '.join(where)}" if where else ""
        return UserError(f"no latency table exists for space {space.name!r} in the {dataset!r} setting{hint}; "
                         f"{measure_hint(space, dataset)}")
    return UserError(f"device {device!r} has no latency data in space {space.name!r} ({dataset}); devices with "
                     f"data: {', '.join(sorted(served))}; or {measure_hint(space, dataset)}")


def store_rows(space: SearchSpace[Any], device: str, dataset: str, store: Any | None) -> MeasuredRows | None:
    """The device's campaign measurements in ``space`` and ``dataset``'s setting (None without a store or
    measurements; measured only in another setting: an error naming it)."""
    if store is None:
        return None
    from hwdiffnas.store_space import measured_arch_rows, measured_settings

    measured = measured_arch_rows(store, space.name, device, dataset)
    if measured is None:
        elsewhere = measured_settings(store, space.name, device)
        if elsewhere:
            raise UserError(f"device {device!r} is measured in space {space.name!r} in the "
                            f"{', '.join(elsewhere)} setting(s), not {dataset!r}; give --dataset {elsewhere[0]}")
    return measured


QUANTILE_SAMPLE = 5000


def quantile_sample(space: SearchSpace[Any], dataset: str) -> list[Any]:
    """The architectures over which a ``pNN`` budget (and a generator's budget quantile) is taken: those of the
    space's shipped measured rows (FBNet: HELP's 5,000) or, without rows, 5,000 seeded uniform samples."""
    rows = space.measured_rows(dataset)
    if rows:
        return [space.parse(a) for a in next(iter(rows.values())).archs]
    return space.sample(QUANTILE_SAMPLE, seed=0)
