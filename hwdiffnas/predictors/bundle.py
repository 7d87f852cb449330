"""The embedded default predictors: every table device's latency predictor, quantile map and device vector,
the transfer basis for new devices, and the accuracy surrogates — two files in ``hwdiffnas/assets/``:

- ``predictors_meta.json``: format version, device names, quantile maps, device vectors, per-object metadata,
  the held-out figures measured when it was built, and the SHA-256 of the weights file;
- ``predictors_weights.safetensors``: all arrays.

`load_bundle` checks the version, the checksum, every key and every shape; any problem is one `UserError`.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from functools import cache
from pathlib import Path
from typing import Any

import numpy as np

from hwdiffnas import ASSETS_DIR
from hwdiffnas.errors import UserError
from hwdiffnas.predictors.accuracy import ACCURACY_DATASETS, AccuracySurrogate, fit_accuracy_surrogate
from hwdiffnas.predictors.device import (
    DEVICE_VECTOR_DIM,
    LatencyQuantiles,
    device_vector,
    predicted_quantiles,
    reference_cells,
    table_quantiles,
)
from hwdiffnas.predictors.latency import (
    LatencyPredictor,
    TransferBasis,
    build_transfer_basis,
    connected_mask,
    fit_latency_predictor,
)
from hwdiffnas.predictors.serialize import (
    FORMAT_VERSION,
    accuracy_from_state,
    accuracy_to_state,
    basis_from_state,
    basis_to_state,
    latency_from_state,
    latency_to_state,
    quantiles_from_meta,
    quantiles_to_meta,
)
from hwdiffnas.space import Cell

META_NAME = "predictors_meta.json"
WEIGHTS_NAME = "predictors_weights.safetensors"
BASIS_RANK = 24


@dataclass
class PredictorBundle:
    """All predictors the search needs without a benchmark store."""

    latency: dict[str, LatencyPredictor]
    quantiles: dict[str, LatencyQuantiles]
    device_vectors: dict[str, np.ndarray]
    accuracy: dict[str, AccuracySurrogate]
    basis: TransferBasis | None = None
    info: dict[str, Any] = field(default_factory=dict)

    def devices(self) -> list[str]:
        return sorted(self.latency)

    def latency_predictor(self, device: str) -> LatencyPredictor:
        """The predictor of a table device; unknown names list the known ones."""
        if device not in self.latency:
            raise UserError(f"no embedded latency predictor for device {device!r}; known: {', '.join(self.devices())}")
        return self.latency[device]

    def accuracy_surrogate(self, dataset: str = "cifar100") -> AccuracySurrogate:
        if dataset not in self.accuracy:
            raise UserError(f"no embedded accuracy surrogate for dataset {dataset!r}; "
                            f"known: {', '.join(sorted(self.accuracy))}")
        return self.accuracy[dataset]

    def fit_new_device(self, cells: Sequence[Cell], latencies_ms: Sequence[float] | np.ndarray) -> LatencyPredictor:
        """A predictor for a device known only from ``cells``/``latencies_ms``, using the embedded basis."""
        return fit_latency_predictor(cells, latencies_ms, basis=self.basis)

    # --- files --------------------------------------------------------------------------------------------
    def save(self, folder: Path | str) -> tuple[Path, Path]:
        """Write ``predictors_meta.json`` and ``predictors_weights.safetensors`` into ``folder``."""
        from safetensors.numpy import save_file

        folder = Path(folder)
        folder.mkdir(parents=True, exist_ok=True)
        arrays: dict[str, np.ndarray] = {}
        lat_meta = {}
        for name, pred in sorted(self.latency.items()):
            a, m = latency_to_state(pred, prefix=f"latency.{name}.")
            arrays.update(a)
            lat_meta[name] = m
        acc_meta = {}
        for ds, sur in sorted(self.accuracy.items()):
            a, m = accuracy_to_state(sur, prefix=f"accuracy.{ds}.")
            arrays.update(a)
            acc_meta[ds] = m
        basis_meta = None
        if self.basis is not None:
            a, basis_meta = basis_to_state(self.basis)
            arrays.update(a)
        weights = folder / WEIGHTS_NAME
        save_file(arrays, str(weights))
        meta = {
            "format": "hwdiffnas-predictors",
            "version": FORMAT_VERSION,
            "weights": WEIGHTS_NAME,
            "weights_sha256": hashlib.sha256(weights.read_bytes()).hexdigest(),
            "latency": lat_meta,
            "quantiles": {k: quantiles_to_meta(q) for k, q in sorted(self.quantiles.items())},
            "device_vectors": {k: [float(x) for x in v] for k, v in sorted(self.device_vectors.items())},
            "accuracy": acc_meta,
            "basis": basis_meta,
            "info": self.info,
        }
        meta_path = folder / META_NAME
        meta_path.write_text(json.dumps(meta, indent=1, sort_keys=True) + "\n")
        return meta_path, weights


def load_bundle(folder: Path | str | None = None, space: str = "nb201") -> PredictorBundle:
    """Load and validate a bundle (default: the packaged assets) of predictors for ``space``'s architectures (a
    bundle records its space; one without a record is NB201's)."""
    folder = ASSETS_DIR if folder is None else Path(folder)
    meta_path = folder / META_NAME
    try:
        meta = json.loads(meta_path.read_text())
    except FileNotFoundError as exc:
        raise UserError(f"no predictor bundle at {folder} (missing {META_NAME}); build it with "
                        "python benchmarks/build_predictor_assets.py --data-dir DIR") from exc
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise UserError(f"{meta_path}: corrupt predictor metadata ({exc})") from exc
    where = str(meta_path)
    if not isinstance(meta, dict) or meta.get("format") != "hwdiffnas-predictors":
        raise UserError(f"{where}: not a hwdiffnas predictor bundle")
    if meta.get("space", "nb201") != space:
        raise UserError(f"{where}: the predictor bundle is for search space {meta.get('space', 'nb201')!r}, not "
                        f"{space!r}")
    if meta.get("version") != FORMAT_VERSION:
        raise UserError(f"{where}: bundle format version {meta.get('version')!r}, this hwdiffnas reads "
                        f"{FORMAT_VERSION}; rebuild it with benchmarks/build_predictor_assets.py")
    weights = folder / str(meta.get("weights", WEIGHTS_NAME))
    if not weights.is_file():
        raise UserError(f"{where}: weights file {weights} is missing")
    digest = hashlib.sha256(weights.read_bytes()).hexdigest()
    if digest != meta.get("weights_sha256"):
        raise UserError(f"{weights}: checksum mismatch (corrupt or from another build); rebuild the bundle")
    from safetensors.numpy import load_file

    try:
        arrays = load_file(str(weights))
    except Exception as exc:  # safetensors' own error types
        raise UserError(f"{weights}: corrupt weights file ({type(exc).__name__})") from exc
    try:
        latency = {name: latency_from_state(arrays, m, prefix=f"latency.{name}.", where=f"{where} latency {name}")
                   for name, m in dict(meta["latency"]).items()}
        accuracy = {ds: accuracy_from_state(arrays, m, prefix=f"accuracy.{ds}.", where=f"{where} accuracy {ds}")
                    for ds, m in dict(meta["accuracy"]).items()}
        quantiles = {k: quantiles_from_meta(m, f"{where} quantiles {k}") for k, m in dict(meta["quantiles"]).items()}
        vectors = {}
        for k, v in dict(meta["device_vectors"]).items():
            vec = np.array(v, dtype=np.float64)
            if vec.shape != (DEVICE_VECTOR_DIM,) or not np.all(np.isfinite(vec)):
                raise UserError(f"{where}: device vector of {k!r} must be {DEVICE_VECTOR_DIM} finite numbers")
            vectors[k] = vec
        basis = None if meta.get("basis") is None else basis_from_state(arrays, meta["basis"], where=f"{where} basis")
    except (KeyError, TypeError, ValueError) as exc:
        raise UserError(f"{where}: malformed bundle ({type(exc).__name__}: {exc})") from exc
    return PredictorBundle(latency, quantiles, vectors, accuracy, basis, dict(meta.get("info", {})))


@cache
def default_bundle(space: str = "nb201") -> PredictorBundle:
    """The packaged bundle, loaded once; it holds NB201 predictors, and other spaces are refused by name."""
    from hwdiffnas.spaces.base import require_space

    require_space(space, ("nb201",), "the shipped predictor bundle")
    return load_bundle(space=space)


# --- building -----------------------------------------------------------------------------------------------
def build_bundle(
    cells: Sequence[Cell],
    latencies_ms: Mapping[str, np.ndarray],
    accuracies: Mapping[str, np.ndarray],
    *,
    accuracy_column: str = "nats",
    basis_rank: int = BASIS_RANK,
    progress: Callable[[str], None] | None = None,
    seed: int = 0,
) -> PredictorBundle:
    """Fit every predictor from full tables aligned with ``cells`` (NB201 index order or any order).

    ``latencies_ms``: device → (n,) ms (NaN missing); ``accuracies``: dataset → (n,) percent. A device's vector
    comes from its table's values at HELP's reference cells when the table has them, else from its predictor.
    """
    say = progress or (lambda _msg: None)
    conn = connected_mask()[_codes(cells)]
    latency: dict[str, LatencyPredictor] = {}
    quantiles: dict[str, LatencyQuantiles] = {}
    vectors: dict[str, np.ndarray] = {}
    refs = reference_cells()
    ref_set = set(refs)
    for name in sorted(latencies_ms):
        lat = np.asarray(latencies_ms[name], dtype=np.float64)
        say(f"latency predictor {name}")
        pred = fit_latency_predictor(cells, lat)
        latency[name] = pred
        ok = conn & np.isfinite(lat) & (lat > 0)
        quantiles[name] = table_quantiles(lat[ok]) if ok.sum() >= 100 else predicted_quantiles(pred)
        table = {c: float(v) for c, v in zip(cells, lat) if c in ref_set}
        if all(c in table and np.isfinite(table[c]) and table[c] > 0 for c in refs):
            # the table's own values: a few-row device's transfer predictor reproduces these more closely than the
            # full-table feature model does (mean |Δ| 0.22-0.31 vs 0.30-0.42 on pixel3, jetson-nano-fp16, pi5-litert)
            vectors[name] = device_vector(table)
        else:
            vectors[name] = device_vector(pred)
    say("transfer basis")
    basis = build_transfer_basis(cells, latencies_ms, rank=basis_rank)
    accuracy: dict[str, AccuracySurrogate] = {}
    for ds in ACCURACY_DATASETS:
        if ds not in accuracies:
            continue
        say(f"accuracy surrogate {ds}")
        accuracy[ds] = fit_accuracy_surrogate(cells, accuracies[ds], dataset=ds, column=accuracy_column,
                                              use_class_labels=False, seed=seed)
    return PredictorBundle(latency, quantiles, vectors, accuracy, basis, {"seed": seed})


def _codes(cells: Sequence[Cell]) -> np.ndarray:
    from hwdiffnas.space import cell_codes

    return cell_codes(cells)
