"""Predictors to and from plain arrays + JSON metadata (stored with safetensors; never pickle).

Every object maps to ``(arrays, meta)``: ``arrays`` a flat ``{name: ndarray}`` and ``meta`` JSON-safe.
Loading validates shapes and keys and raises `UserError` naming what is wrong.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np

from hwdiffnas.errors import UserError
from hwdiffnas.predictors.accuracy import AccuracySurrogate
from hwdiffnas.predictors.device import LatencyQuantiles
from hwdiffnas.predictors.features import feature_dim
from hwdiffnas.predictors.forest import Forest
from hwdiffnas.predictors.latency import LatencyPredictor, TransferBasis
from hwdiffnas.space import NUM_CELLS

FORMAT_VERSION = 1


def _get(
    arrays: dict[str, np.ndarray], key: str, where: str, shape: tuple[int | None, ...] | None = None
) -> np.ndarray:
    if key not in arrays:
        raise UserError(f"{where}: missing array {key!r}")
    arr = np.asarray(arrays[key])
    if shape is not None:
        ok = arr.ndim == len(shape) and all(s is None or s == a for s, a in zip(shape, arr.shape))
        if not ok:
            raise UserError(f"{where}: array {key!r} has shape {arr.shape}, expected {shape}")
    if arr.dtype.kind == "f" and not np.all(np.isfinite(arr)):
        raise UserError(f"{where}: array {key!r} holds non-finite values")
    return arr


def _meta(meta: dict[str, Any], key: str, where: str, kind: type | tuple[type, ...]) -> Any:
    if key not in meta or not isinstance(meta[key], kind):
        raise UserError(f"{where}: metadata {key!r} missing or of the wrong type")
    return meta[key]


# --- latency predictor --------------------------------------------------------------------------------------
def latency_to_state(pred: LatencyPredictor, prefix: str = "") -> tuple[dict[str, np.ndarray], dict[str, Any]]:
    """Arrays (float32) and metadata of a `LatencyPredictor`."""
    arrays = {
        f"{prefix}x_mean": pred.x_mean.astype(np.float32),
        f"{prefix}x_scale": pred.x_scale.astype(np.float32),
        f"{prefix}coef": pred.coef.astype(np.float32),
        f"{prefix}residuals": pred.residuals.astype(np.float32),
    }
    if pred.offset is not None:
        arrays[f"{prefix}offset"] = pred.offset.astype(np.float32)
    if pred.variance is not None:
        arrays[f"{prefix}variance"] = pred.variance.astype(np.float32)
    meta = {
        "feature_set": pred.feature_set,
        "intercept": float(pred.intercept),
        "n_calib": int(pred.n_calib),
        "n_train": int(pred.n_train),
        "variance_const": float(pred.variance_const),
        "info": json.loads(json.dumps(pred.info, default=list)),
    }
    if pred.group_scale is not None:
        meta["group_scale"] = [float(v) for v in pred.group_scale]
    return arrays, meta


def _feature_set(meta: dict[str, Any], where: str) -> tuple[str, int]:
    """The stored feature-set name and its feature width; an unknown name is an error naming ``where``."""
    fs = _meta(meta, "feature_set", where, str)
    try:
        return fs, feature_dim(fs)
    except UserError as exc:
        raise UserError(f"{where}: {exc}") from exc


def latency_from_state(arrays: dict[str, np.ndarray], meta: dict[str, Any], prefix: str = "",
                       where: str = "latency predictor") -> LatencyPredictor:
    """Inverse of `latency_to_state`, validated."""
    fs, p = _feature_set(meta, where)
    residuals = _get(arrays, f"{prefix}residuals", where, (None,)).astype(np.float64)
    if len(residuals) < 2 or np.any(np.diff(residuals) < 0):
        raise UserError(f"{where}: calibration residuals must be sorted and hold 2+ values")
    offset = arrays.get(f"{prefix}offset")
    variance = arrays.get(f"{prefix}variance")
    group = meta.get("group_scale")
    if group is not None and not (isinstance(group, list) and len(group) == 7
                                  and all(isinstance(v, (int, float)) and v > 0 for v in group)):
        raise UserError(f"{where}: group_scale must be a list of 7 positive numbers, got {group!r}")
    return LatencyPredictor(
        feature_set=fs,
        x_mean=_get(arrays, f"{prefix}x_mean", where, (p,)).astype(np.float64),
        x_scale=_get(arrays, f"{prefix}x_scale", where, (p,)).astype(np.float64),
        coef=_get(arrays, f"{prefix}coef", where, (p,)).astype(np.float64),
        intercept=float(_meta(meta, "intercept", where, (int, float))),
        residuals=residuals,
        n_calib=int(_meta(meta, "n_calib", where, int)),
        n_train=int(_meta(meta, "n_train", where, int)),
        offset=None if offset is None else _get(arrays, f"{prefix}offset", where, (NUM_CELLS,)).astype(np.float64),
        variance=None if variance is None else _get(arrays, f"{prefix}variance", where, (NUM_CELLS,)),
        variance_const=float(_meta(meta, "variance_const", where, (int, float))),
        info=dict(meta.get("info", {})),
        group_scale=None if group is None else np.asarray(group, dtype=np.float64),
    )


# --- accuracy surrogate -------------------------------------------------------------------------------------
def forest_to_state(forest: Forest, prefix: str, exact: bool = False) -> tuple[dict[str, np.ndarray], dict[str, Any]]:
    """Compact forest arrays: a right child always follows its left sibling (only ``left`` is stored),
    thresholds are float16 (the features are small counts, so split points are exact halves) and node values
    are int16 codes of ``center + step * code`` (step ≤ 0.005 for accuracies in percent) — or, with ``exact``,
    the float32 values themselves (predictions then match the fitted forest bit for bit)."""
    inner = forest.feature >= 0
    if np.any(forest.right[inner] != forest.left[inner] + 1):
        raise UserError("forest layout not serializable: right children must follow left ones")
    thr16 = forest.threshold.astype(np.float16)
    if np.any(thr16[inner].astype(np.float32) != forest.threshold[inner]):
        raise UserError("forest thresholds are not representable in float16")
    value = forest.value.astype(np.float64)
    center = float((value.max() + value.min()) / 2)
    step = max(float(np.abs(value - center).max()) / 32000.0, 1e-9)
    arrays = {
        f"{prefix}feature": forest.feature.astype(np.int16),
        f"{prefix}threshold": thr16,
        f"{prefix}left": forest.left.astype(np.int32),
        f"{prefix}value": (forest.value.astype(np.float32) if exact
                           else np.round((value - center) / step).astype(np.int16)),
        f"{prefix}roots": forest.roots.astype(np.int32),
    }
    return arrays, {"depth": int(forest.depth), "value_center": center, "value_step": step}


def forest_from_state(arrays: dict[str, np.ndarray], prefix: str, meta: dict[str, Any], n_features: int,
                      where: str) -> Forest:
    """Inverse of `forest_to_state`, validated."""
    feature = _get(arrays, f"{prefix}feature", where, (None,)).astype(np.int32)
    n = len(feature)
    left = _get(arrays, f"{prefix}left", where, (n,)).astype(np.int32)
    if feature.size and (feature.max() >= n_features or feature.min() < -1):
        raise UserError(f"{where}: forest splits on a feature outside 0..{n_features - 1}")
    right = np.where(feature >= 0, left + 1, -1).astype(np.int32)
    stored = _get(arrays, f"{prefix}value", where, (n,))
    if stored.dtype == np.float32:  # written with exact=True
        value = stored
    else:
        center = float(_meta(meta, "value_center", where, (int, float)))
        step = float(_meta(meta, "value_step", where, (int, float)))
        value = (center + step * stored.astype(np.float64)).astype(np.float32)
    return Forest(
        feature=feature,
        threshold=_get(arrays, f"{prefix}threshold", where, (n,)).astype(np.float32),
        left=left,
        right=right,
        value=value,
        roots=_get(arrays, f"{prefix}roots", where, (None,)).astype(np.int32),
        depth=int(_meta(meta, "depth", where, int)),
    )


def accuracy_to_state(sur: AccuracySurrogate, prefix: str = "",
                      exact: bool = False) -> tuple[dict[str, np.ndarray], dict[str, Any]]:
    """Arrays and metadata of an `AccuracySurrogate` (its class labels go into the metadata); ``exact``: see
    `forest_to_state`."""
    arrays, forest_meta = forest_to_state(sur.forest, prefix, exact)
    meta = {
        "dataset": sur.dataset,
        "column": sur.column,
        "n_labels": int(sur.n_labels),
        "feature_set": sur.feature_set,
        "forest": forest_meta,
        "class_labels": sur.class_labels,
        "info": json.loads(json.dumps(sur.info, default=list)),
    }
    return arrays, meta


def accuracy_from_state(arrays: dict[str, np.ndarray], meta: dict[str, Any], prefix: str = "",
                        where: str = "accuracy surrogate") -> AccuracySurrogate:
    """Inverse of `accuracy_to_state`, validated."""
    fs, p = _feature_set(meta, where)
    labels = _meta(meta, "class_labels", where, dict)
    if not all(isinstance(k, str) and isinstance(v, (int, float)) for k, v in labels.items()):
        raise UserError(f"{where}: class labels must map class strings to numbers")
    forest = forest_from_state(arrays, prefix, _meta(meta, "forest", where, dict), p, where)
    return AccuracySurrogate(
        forest=forest,
        dataset=_meta(meta, "dataset", where, str),
        column=_meta(meta, "column", where, str),
        n_labels=int(_meta(meta, "n_labels", where, int)),
        class_labels={k: float(v) for k, v in labels.items()},
        feature_set=fs,
        info=dict(meta.get("info", {})),
    )


# --- small objects ------------------------------------------------------------------------------------------
def basis_to_state(basis: TransferBasis, prefix: str = "basis.") -> tuple[dict[str, np.ndarray], dict[str, Any]]:
    """The basis scores are stored as float16 (unit-scale numbers; ~1e-3 relative precision is ample)."""
    return {f"{prefix}scores": basis.scores.astype(np.float16)}, {"devices": list(basis.devices)}


def basis_from_state(arrays: dict[str, np.ndarray], meta: dict[str, Any], prefix: str = "basis.",
                     where: str = "transfer basis") -> TransferBasis:
    scores = _get(arrays, f"{prefix}scores", where, (NUM_CELLS, None)).astype(np.float32)
    devices = _meta(meta, "devices", where, list)
    return TransferBasis(scores, tuple(str(d) for d in devices))


def quantiles_to_meta(q: LatencyQuantiles) -> dict[str, Any]:
    return {"levels": [round(float(v), 6) for v in q.levels], "values_ms": [float(v) for v in q.values_ms],
            "source": q.source}


def quantiles_from_meta(meta: dict[str, Any], where: str = "latency quantiles") -> LatencyQuantiles:
    try:
        return LatencyQuantiles(np.array(meta["levels"], dtype=float), np.array(meta["values_ms"], dtype=float),
                                str(meta.get("source", "table")))
    except (KeyError, TypeError, ValueError) as exc:
        raise UserError(f"{where}: malformed quantile map ({exc})") from exc


# --- files --------------------------------------------------------------------------------------------------
def save_latency_predictor(pred: LatencyPredictor, path: Path | str) -> None:
    """Write one predictor to a safetensors file (metadata JSON in its header)."""
    from safetensors.numpy import save_file

    arrays, meta = latency_to_state(pred)
    save_file(arrays, str(path), metadata={"hwdiffnas": json.dumps({"kind": "latency_predictor",
                                                                    "version": FORMAT_VERSION, "meta": meta})})


def load_latency_predictor(path: Path | str) -> LatencyPredictor:
    """Read a file written by `save_latency_predictor`; a corrupt or foreign file raises `UserError`."""
    arrays, header = _read_safetensors(Path(path))
    if header.get("kind") != "latency_predictor" or header.get("version") != FORMAT_VERSION:
        raise UserError(f"{path}: not a hwdiffnas latency predictor (format version {FORMAT_VERSION})")
    return latency_from_state(arrays, header.get("meta", {}), where=str(path))


def save_accuracy_surrogate(sur: AccuracySurrogate, path: Path | str, key: str = "") -> None:
    """Write one accuracy surrogate to a safetensors file, exactly (its predictions are reproduced bit for bit);
    ``key`` (e.g. a hash of its training labels) is kept in the header so a cache can tell whether the file answers
    for the same labels."""
    from safetensors.numpy import save_file

    arrays, meta = accuracy_to_state(sur, exact=True)
    save_file(arrays, str(path), metadata={"hwdiffnas": json.dumps({"kind": "accuracy_surrogate", "key": key,
                                                                    "version": FORMAT_VERSION, "meta": meta})})


def load_accuracy_surrogate(path: Path | str, key: str | None = None) -> AccuracySurrogate:
    """Read a file written by `save_accuracy_surrogate`; a corrupt or foreign file, or (with ``key``) one written
    for other labels, raises `UserError`."""
    arrays, header = _read_safetensors(Path(path))
    if header.get("kind") != "accuracy_surrogate" or header.get("version") != FORMAT_VERSION:
        raise UserError(f"{path}: not a hwdiffnas accuracy surrogate (format version {FORMAT_VERSION})")
    if key is not None and header.get("key") != key:
        raise UserError(f"{path}: accuracy surrogate written for other labels")
    return accuracy_from_state(arrays, header.get("meta", {}), where=str(path))


def _read_safetensors(path: Path) -> tuple[dict[str, np.ndarray], dict[str, Any]]:
    from safetensors import safe_open

    try:
        with safe_open(str(path), framework="np") as fh:
            header = json.loads((fh.metadata() or {}).get("hwdiffnas", "{}"))
            arrays = {k: fh.get_tensor(k) for k in fh.keys()}
    except FileNotFoundError as exc:
        raise UserError(f"predictor file {path} does not exist") from exc
    except Exception as exc:  # safetensors raises its own error types for corrupt headers and data
        raise UserError(f"{path}: corrupt predictor file ({type(exc).__name__}: {str(exc)[:120]})") from exc
    if not isinstance(header, dict):
        raise UserError(f"{path}: corrupt predictor metadata")
    return arrays, header
