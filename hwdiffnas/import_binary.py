"""Importers of the binary benchmark files: HELP ``.pt`` lists, LatBench (Eagle) and HW-NAS-Bench pickles
(read through a restricted unpickler that builds only lists, dicts, tuples, numbers and numpy scalars/arrays)."""

from __future__ import annotations

import io
import math
import pickle
from pathlib import Path
from typing import Any

import numpy as np

from hwdiffnas.errors import UserError
from hwdiffnas.import_formats import HWNB_DATASETS, ImportContext, ImportFileError, Parsed, Series, column_targets
from hwdiffnas.space import NUM_CELLS, NUM_EDGES, OPS, Cell, op_codes
from hwdiffnas.store import cell_key


def parse_help_pt(path: Path, ctx: ImportContext) -> Parsed:
    """A HELP ``.pt`` file (torch zip, loaded with ``weights_only=True``)."""
    import torch

    try:
        payload = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as exc:  # torch raises many types for bad files
        raise ImportFileError(path, None, f"not a loadable torch file (weights_only): {exc}") from None
    out = Parsed(path, "help-pt")
    if isinstance(payload, dict):
        if len(payload) != NUM_CELLS or not all(isinstance(k, str) and isinstance(v, int) for k, v in
                                                payload.items()):
            raise ImportFileError(path, None, "a dict payload must map 15,625 arch strings to NB201 indices")
        idx_to_key = ctx.require_index(path)
        for arch, idx in payload.items():
            info = ctx.cell(arch, path, None)
            if not 0 <= idx < NUM_CELLS or int(idx_to_key[idx]) != info.key:
                raise ImportFileError(path, None, f"{arch} -> {idx} disagrees with the NB201 index")
        out.kind = "help-arch-index"
        out.notes.append("str_arch2idx agrees with arch_index.csv for all 15,625 cells")
        out.rows = len(payload)
        return out
    values = np.asarray(payload) if isinstance(payload, list) else None
    if values is None or values.ndim != 1 or values.dtype.kind not in "iuf":
        raise ImportFileError(path, None, f"payload is {type(payload).__name__}, expected a list of numbers")
    if len(payload) != NUM_CELLS:
        if all(isinstance(v, int) and 0 <= v < NUM_CELLS for v in payload) and len(payload) < 100:
            out.kind = "help-embedding-index"
            out.meta["help_hardware_embedding_index"] = ",".join(str(v) for v in payload)
            out.rows = len(payload)
            out.notes.append(f"HELP reference cells: {len(payload)} indices")
            return out
        raise ImportFileError(path, None, f"list has {len(payload)} values, expected {NUM_CELLS} (truncated?)")
    stem = path.stem
    targets = column_targets("help")
    column = stem if stem in targets else f"hwnb_c10_{stem}"
    if column not in targets:
        raise ImportFileError(path, None, f"no device config has a HELP table for {stem!r}; known: "
                                          f"{', '.join(sorted(targets))}")
    t = targets[column][0]
    idx_to_key = ctx.require_index(path)
    values = values.astype(np.float64)
    bad = ~(np.isfinite(values) & (values >= 0))
    if bad.any():
        i = int(np.argmax(bad))
        raise ImportFileError(path, None, f"entry {i}: bad value {payload[i]!r}")
    s = Series("hw", t.device, "help", column, setting=t.setting, metric=t.metric, keys=idx_to_key.tolist(),
               values=values.tolist())
    out.series = [s]
    out.rows = NUM_CELLS
    return out


def _numpy_dtype(code: Any, align: Any = False, copy: Any = False) -> Any:
    """Reconstruct only numeric numpy dtypes (what LatBench's numpy float scalars reference)."""
    if not isinstance(code, str) or code.lstrip("<>=|")[:1] not in ("f", "i", "u", "b"):
        raise pickle.UnpicklingError(f"numpy dtype {code!r} is not a plain numeric type")
    return np.dtype(code)


def _numpy_scalar(dtype: Any, data: Any = None) -> int | float:
    """Reconstruct a numeric numpy scalar as a Python number."""
    if not isinstance(dtype, np.dtype) or dtype.kind not in "fiub" or not isinstance(data, bytes):
        raise pickle.UnpicklingError("numpy scalar of a non-numeric type")
    value = np.frombuffer(data, dtype=dtype, count=1)[0]
    return float(value) if dtype.kind == "f" else int(value)


class _RestrictedUnpickler(pickle.Unpickler):
    """Unpickler that resolves only builtin containers/numbers and numeric numpy scalars (as Python numbers)."""

    _BUILTINS = frozenset(("dict", "list", "tuple", "set", "frozenset", "int", "float", "complex", "str",
                           "bytes", "bool"))

    def find_class(self, module: str, name: str) -> Any:
        if module == "builtins" and name in self._BUILTINS:
            return super().find_class(module, name)
        if module == "collections" and name == "OrderedDict":
            return super().find_class(module, name)
        if module in ("numpy", "numpy.core.multiarray", "numpy._core.multiarray"):
            if name == "dtype":
                return _numpy_dtype
            if name == "scalar":
                return _numpy_scalar
        raise pickle.UnpicklingError(f"global {module}.{name} is not allowed in a benchmark pickle")


def load_restricted_pickle(path: Path) -> Any:
    """Load a trusted pickle allowing only builtin containers/numbers; anything else is refused."""
    try:
        data = path.read_bytes()
        return _RestrictedUnpickler(io.BytesIO(data)).load()
    except OSError as exc:
        raise ImportFileError(path, None, f"cannot read: {exc.strerror}") from exc
    except Exception as exc:  # pickle raises many types for bad data
        raise ImportFileError(path, None, f"not an acceptable pickle: {exc}") from None


def parse_pickle(path: Path) -> Parsed:
    """An Eagle/LatBench pickle or the HW-NAS-Bench pickle (only ever called with trust given)."""
    payload = load_restricted_pickle(path)
    if isinstance(payload, dict) and "nasbench201" in payload:
        return _parse_hwnasbench(path, payload["nasbench201"])
    if isinstance(payload, dict):
        return _parse_eagle(path, payload)
    raise ImportFileError(path, None, f"pickle payload is {type(payload).__name__}; expected an Eagle dict or "
                                      "the HW-NAS-Bench dict")


def _parse_eagle(path: Path, payload: dict) -> Parsed:
    targets = column_targets("eagle")
    if path.stem not in targets:
        raise ImportFileError(path, None, f"no device config has an Eagle table named {path.stem!r}; known: "
                                          f"{', '.join(sorted(targets))}")
    t = targets[path.stem][0]
    s = Series("hw", t.device, "eagle", path.stem, setting=t.setting, metric=t.metric)
    if not payload:
        raise ImportFileError(path, None, "empty Eagle table")
    keys = np.array(list(payload.keys()))  # (n, 6) op ids when well-formed
    values = np.array(list(payload.values()))  # (n,) seconds
    well_formed = (keys.ndim == 2 and keys.shape[1] == NUM_EDGES and keys.dtype.kind in "iu"
                   and bool(((keys >= 0) & (keys < len(OPS))).all())
                   and values.ndim == 1 and values.dtype.kind in "iuf")
    if well_formed:
        values = values.astype(np.float64)
        well_formed = bool((np.isfinite(values) & (values >= 0)).all())
    if not well_formed:  # find the first bad entry for the message
        for k, v in payload.items():
            if not (isinstance(k, tuple) and len(k) == NUM_EDGES and all(isinstance(o, int) for o in k)):
                raise ImportFileError(path, None, f"key {k!r} is not a 6-tuple of op ids")
            if isinstance(v, bool) or not isinstance(v, (int, float)) or not math.isfinite(v) or v < 0:
                raise ImportFileError(path, None, f"value for {k} is {v!r}, not a latency in seconds")
            try:
                Cell(k)
            except UserError as exc:
                raise ImportFileError(path, None, f"key {k}: {exc}") from None
        raise ImportFileError(path, None, "malformed Eagle table")  # pragma: no cover - caught above
    s.keys = op_codes(keys).tolist()
    s.values = (values * 1000.0).tolist()
    return Parsed(path, "eagle-pickle", series=[s], rows=len(s.keys), notes=["seconds converted to ms"])


def _parse_hwnasbench(path: Path, nb: Any) -> Parsed:
    if not isinstance(nb, dict):
        raise ImportFileError(path, None, "d['nasbench201'] is not a dict")
    targets = column_targets("hwnasbench")
    out = Parsed(path, "hwnasbench-pickle")
    skipped: set[str] = set()
    failed = 0
    for dataset in HWNB_DATASETS:
        if dataset not in nb:
            continue
        block = nb[dataset]
        where = f"d['nasbench201'][{dataset!r}]"
        if not isinstance(block, dict) or "config" not in block:
            raise ImportFileError(path, None, f"{where} has no 'config' list")
        configs = block["config"]
        keys = []
        seen: dict[int, int] = {}
        for i, cfg in enumerate(configs):
            if not isinstance(cfg, dict) or "arch_str" not in cfg:
                raise ImportFileError(path, None, f"{where}['config'][{i}] has no arch_str")
            try:
                cell = Cell.from_str(cfg["arch_str"])
            except UserError as exc:
                raise ImportFileError(path, None, f"{where}['config'][{i}]: unknown arch string: {exc}") from None
            k = cell_key(cell)
            if k in seen:
                raise ImportFileError(path, None, f"{where}['config'][{i}]: duplicate arch_str (first at "
                                                  f"{seen[k]})")
            seen[k] = i
            keys.append(k)
        for metric_name, values in block.items():
            if metric_name == "config":
                continue
            match = [t for t in targets.get(metric_name, []) if t.setting == dataset]
            if not match:
                skipped.add(metric_name)
                continue
            t = match[0]
            if not isinstance(values, (list, tuple)) or len(values) != len(keys):
                raise ImportFileError(path, None, f"{where}[{metric_name!r}] has {len(values)} values for "
                                                  f"{len(keys)} configs")
            s = Series("hw", t.device, "hwnasbench", metric_name, setting=dataset, metric=t.metric)
            for i, v in enumerate(values):
                if isinstance(v, bool) or not isinstance(v, (int, float)) or not math.isfinite(v):
                    raise ImportFileError(path, None, f"{where}[{metric_name!r}][{i}] = {v!r} is not a number")
                if metric_name == "edgetpu_latency" and v == -1:
                    failed += 1  # Edge TPU failed to compile this network: missing, not a latency
                    continue
                if v < 0:
                    raise ImportFileError(path, None, f"{where}[{metric_name!r}][{i}] = {v} is negative")
                s.keys.append(keys[i])
                s.values.append(float(v))
            out.series.append(s)
        out.rows = max(out.rows, len(keys))
    if not out.series:
        raise ImportFileError(path, None, f"no known HW-NAS-Bench datasets/metrics (datasets: "
                                          f"{', '.join(HWNB_DATASETS)})")
    if failed:
        out.notes.append(f"{failed} Edge TPU values of -1 (failed compile) stored as missing")
    if skipped:
        out.notes.append(f"metrics without a device table skipped: {', '.join(sorted(skipped))}")
    return out
