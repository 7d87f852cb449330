"""The latency of given architectures on a device, in any space: a space's exact lookup tables (source ``lut``),
its shipped measured rows (exact for their architectures, else an estimate with its bound fitted on them), else
the benchmark store: in the NB201 space its exact table rows, measured rows or the estimate with its bound; in
other spaces the device's campaign measurements (`hwdiffnas.store_space`, source ``measured:DEVICE``: exact for
the measured architectures, else `device_from_rows`' estimate with its bound).
A device without data in the space is a one-line error naming the devices that have some and how to measure."""

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

    def latencies(self, space: SearchSpace[Any], archs: Sequence[Any], delta: float) -> list[LatencyAnswer]:
        exact = dict(zip(self.rows.archs, self.rows.latency_ms))
        names = [space.format(a) for a in archs]
        missing = [i for i, n in enumerate(names) if n not in exact]
        point = upper = np.zeros(0)
        if missing:
            point, upper = self.predictor.point_and_upper(self.featurize([archs[i] for i in missing]), delta)
        est = {i: (float(p), float(u)) for i, p, u in zip(missing, point, upper)}
        return [LatencyAnswer(n, exact[n], exact[n], self.rows.source) if n in exact else
                LatencyAnswer(n, est[i][0], est[i][1], "estimate") for i, n in enumerate(names)]


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


def space_latencies(space: SearchSpace[Any], device: str | None, archs: Sequence[Any], dataset: str,
                    store: Any | None = None, delta: float = 0.05,
                    device_table: str | Path | None = None) -> list[LatencyAnswer]:
    """Latency of each of ``archs`` on ``device`` (or the device of a user's ``device_table`` of measured rows) in
    ``dataset``'s setting (see the module docstring)."""
    if device_table is not None and space.name not in STORE_SPACES:
        rows_in = read_rows_file(space, device_table)
        return device_from_rows(space, device or Path(device_table).stem, rows_in, dataset).latencies(
            space, archs, delta)
    if device is None and device_table is None:
        raise UserError("give a device name (--device) or a table of measured rows (--device-table FILE.csv)")
    tables = space.latency_tables(dataset)
    if device in tables and device_table is None:
        model = tables[device]
        return [LatencyAnswer(space.format(a), v, v, "lut") for a in archs for v in [model.latency_ms(a)]]
    rows = space.measured_rows(dataset)
    if device in rows and device_table is None:
        dev = RowsDevice(device, rows[device], rows_predictor(space, device, dataset, rows[device]), space.features)
        return dev.latencies(space, archs, delta)
    if space.name in STORE_SPACES and store is not None:
        from hwdiffnas.latency.device import device_latency

        nb = device_latency(store, device, device_table)
        point, upper, source = nb.latencies(list(archs), delta)
        return [LatencyAnswer(space.format(a), float(p), float(u), s)
                for a, p, u, s in zip(archs, point, upper, source)]
    if space.name in STORE_SPACES:
        raise UserError(f"no benchmark store: import the NB201 tables (hwdiffnas data import DIR) for {device!r}")
    if store is not None and device is not None:
        measured = store_rows(space, device, dataset, store)
        if measured is not None:
            exact = dict(zip(measured.archs, measured.latency_ms))
            names = [space.format(a) for a in archs]
            if all(n in exact for n in names):
                return [LatencyAnswer(n, exact[n], exact[n], measured.source) for n in names]
            return device_from_rows(space, device, measured, dataset).latencies(space, archs, delta)
    raise no_latency_data(space, device, dataset)


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


def space_budget_ms(space: SearchSpace[Any], device: str | None, text: str, dataset: str,
                    device_table: str | Path | None = None) -> float:
    """A budget in ms: a unit budget as written; ``pNN`` = the NN-th percentile of the device's latency over the
    space's reference sample — the architectures of its shipped measured rows (FBNet: HELP's 5,000) or, without
    rows, 5,000 seeded uniform samples — each from the best source (exact where known, else the estimate)."""
    from hwdiffnas.benchmark import parse_budget, quantile_fraction

    if quantile_fraction(text) is None:
        return parse_budget(text)
    answers = space_latencies(space, device, quantile_sample(space, dataset), dataset, device_table=device_table)
    return parse_budget(text, np.array([a.latency_ms for a in answers]))
