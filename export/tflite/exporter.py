"""Torch → LiteRT (TFLite) flatbuffer, fp32 and int8 post-training quantized, run back with the LiteRT
interpreter (``ai-edge-litert``).

Two converters produce the fp32 model:

* ``direct`` (default; extra ``litert``): `export.tflite.flatbuffer` writes the NB201 graph itself (BN folded,
  NHWC behind one input TRANSPOSE). It needs only the LiteRT runtime's flatbuffer schema and converts in
  well under a second, which is what makes 100-cell latency studies and CI tests possible.
* ``litert-torch`` (extra ``litert-torch``, ~1 GB with JAX and the LiteRT converter): Google's
  ``litert_torch.convert`` (torch.export → MLIR → TFLite). Works with torch 2.13; about a minute per NB201
  network on a 2-core host.

int8 (``tflite-int8``): the fp32 model is quantized with ``ai-edge-quantizer``'s static int8 recipe (int8
weights per channel, int8 activations) calibrated on a representative dataset: by default seeded standard-
normal inputs (``HWDIFFNAS_TFLITE_CALIBRATION``: a ``.npy`` file of (N, C, H, W) float32 images replaces them).
The exported model that the core validates at 1e-4 is the fp32 file; the int8 file is written beside it
together with a JSON report of its drift from torch on random inputs (int8 cannot meet a 1e-4 tolerance).

The hwdiffnas metadata is stored as a TFLite metadata buffer named ``hwdiffnas`` (JSON) in the fp32 file; the
int8 file is kept byte for byte as the quantizer wrote it (it may store buffers after the flatbuffer, which a
repack would lose) and its metadata goes into the drift report.
"""

from __future__ import annotations

import json
import os
import warnings
from dataclasses import asdict, dataclass, replace
from pathlib import Path
from typing import TYPE_CHECKING, Any

from hwdiffnas.errors import MissingBackendError, UserError
from hwdiffnas.interfaces import ExportedModel, Exporter, ModelMetadata, modules_importable

if TYPE_CHECKING:
    import numpy as np
    from torch import nn

CONVERTERS = ("direct", "litert-torch")
DIRECT_SPACES: tuple[str, ...] = ("nb201", "fbnet", "nasbench_macro")
"""Search spaces whose networks the direct flatbuffer writer handles (`export.tflite.flatbuffer.build_tflite`)."""
METADATA_NAME = "hwdiffnas"
ENV_CALIBRATION = "HWDIFFNAS_TFLITE_CALIBRATION"
DEFAULT_CALIBRATION_SAMPLES = 32


def litert_available() -> tuple[bool, str]:
    """Whether the LiteRT runtime (interpreter + flatbuffer schema) can be imported."""
    try:
        import flatbuffers  # noqa: F401
        from ai_edge_litert import interpreter, schema_py_generated  # noqa: F401
    except ImportError as exc:
        return False, str(exc)
    return True, ""


def require_litert() -> None:
    """Raise `MissingBackendError` naming the ``litert`` extra unless the runtime imports."""
    ok, why = litert_available()
    if not ok:
        raise MissingBackendError("ai-edge-litert (LiteRT runtime)", "litert", why)


def interpreter(model: Path | bytes, threads: int = 1, xnnpack: bool = True) -> Any:
    """A LiteRT interpreter with ``threads`` threads and tensors allocated (XNNPACK is LiteRT's default CPU
    delegate; ``xnnpack=False`` uses the built-in reference/optimized kernels only)."""
    require_litert()
    from ai_edge_litert.interpreter import Interpreter, OpResolverType

    kw: dict[str, Any] = {"num_threads": threads}
    if not xnnpack:
        kw["experimental_op_resolver_type"] = OpResolverType.BUILTIN_WITHOUT_DEFAULT_DELEGATES
    if isinstance(model, (bytes, bytearray)):
        it = Interpreter(model_content=bytes(model), **kw)
    else:
        it = Interpreter(model_path=str(model), **kw)
    it.allocate_tensors()
    return it


def run_rows(model: Path | bytes, inputs: np.ndarray, threads: int = 1) -> np.ndarray:
    """Run a batch-1 TFLite model on each row of ``inputs`` (N, C, H, W) float32; returns (N, classes) float32.

    int8 models with a quantized input/output are fed and read through their scale and zero point.
    """
    import numpy as np

    it = interpreter(model, threads)
    details = it.get_input_details()  # empty when a converter dropped an unused input (disconnected cell)
    out = it.get_output_details()[0]
    rows = []
    for row in np.asarray(inputs, dtype=np.float32):
        if details:
            it.set_tensor(details[0]["index"], to_input_dtype(row[None], details[0]))
        it.invoke()
        y = it.get_tensor(out["index"])
        if out["dtype"] != np.float32:
            scale, zero = out["quantization"]
            y = (y.astype(np.float32) - zero) * scale
        rows.append(np.asarray(y, dtype=np.float32).reshape(1, -1))
    return np.concatenate(rows, axis=0)


def to_input_dtype(x: np.ndarray, detail: dict[str, Any]) -> np.ndarray:
    """``x`` as the interpreter input described by ``detail`` wants it (quantized for an integer input)."""
    import numpy as np

    if detail["dtype"] == np.float32:
        return x.astype(np.float32)
    scale, zero = detail["quantization"]
    info = np.iinfo(detail["dtype"])
    return np.clip(np.round(x / scale + zero), info.min, info.max).astype(detail["dtype"])


def convert_fp32(model: nn.Module, example_input: Any, converter: str = "direct") -> bytes:
    """The fp32 TFLite flatbuffer of ``model`` at the shape of ``example_input``."""
    if converter not in CONVERTERS:
        raise UserError(f"unknown TFLite converter {converter!r}; known: {', '.join(CONVERTERS)}")
    require_litert()
    if converter == "direct":
        from export.tflite.flatbuffer import build_tflite

        return build_tflite(model, tuple(example_input.shape))
    try:
        import litert_torch
    except ImportError as exc:
        raise MissingBackendError("litert-torch (torch → LiteRT converter)", "litert-torch", str(exc)) from exc
    import tempfile

    import torch

    with torch.no_grad():
        edge = litert_torch.convert(model.eval(), (example_input,))
    with tempfile.TemporaryDirectory(prefix="hwdiffnas-litert-") as tmp:
        path = Path(tmp) / "model.tflite"
        edge.export(str(path))
        return path.read_bytes()


def calibration_inputs(shape: tuple[int, ...], samples: int = DEFAULT_CALIBRATION_SAMPLES, seed: int = 1,
                       path: Path | str | None = None) -> np.ndarray:
    """The representative dataset for int8 calibration: a ``.npy`` file of (N, C, H, W) float32 images (``path``
    or ``$HWDIFFNAS_TFLITE_CALIBRATION``) or ``samples`` seeded standard-normal inputs of batch-1 ``shape``."""
    import numpy as np

    path = path or os.environ.get(ENV_CALIBRATION) or None
    if path:
        try:
            data = np.load(Path(path), allow_pickle=False)
        except (OSError, ValueError) as exc:
            raise UserError(f"cannot read the calibration data {path}: {exc}") from exc
        if data.ndim != 4 or tuple(data.shape[1:]) != tuple(shape[1:]):
            need = ", ".join(map(str, shape[1:]))
            raise UserError(f"calibration data {path} has shape {data.shape}; need (N, {need})")
        return data.astype(np.float32)
    return np.random.default_rng(seed).standard_normal((samples, *shape[1:])).astype(np.float32)


def quantize_int8(fp32: bytes, calibration: np.ndarray) -> bytes:
    """Static int8 post-training quantization (int8 weights and activations) calibrated on ``calibration``."""
    try:
        from ai_edge_quantizer import quantizer, recipe
    except ImportError as exc:
        raise MissingBackendError("ai-edge-quantizer (int8 post-training quantization)", "litert", str(exc)) from exc
    import numpy as np

    it = interpreter(fp32)
    signatures = it.get_signature_list()
    if not signatures:
        raise UserError("the fp32 TFLite model has no signature; int8 calibration needs one")
    key = next(iter(signatures))
    input_name = signatures[key]["inputs"][0]
    qt = quantizer.Quantizer(bytearray(fp32))
    qt.load_quantization_recipe(recipe.static_wi8_ai8())
    data = {key: [{input_name: np.asarray(x[None], dtype=np.float32)} for x in calibration]}
    before = os.environ.get("TQDM_DISABLE")
    os.environ["TQDM_DISABLE"] = "1"  # the quantizer's progress bars
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # "experimental_preserve_all_tensors … debugging purposes"
            calib = qt.calibrate(data, num_threads=1)
            result = qt.quantize(calib, enable_progress_bar=False, enable_progress_report=False)
    finally:
        if before is None:
            os.environ.pop("TQDM_DISABLE", None)
        else:
            os.environ["TQDM_DISABLE"] = before
    return bytes(result.quantized_model)


@dataclass(frozen=True)
class Int8Drift:
    """How far the int8 model's logits are from the torch network's on seeded random inputs."""

    trials: int
    max_abs_diff: float
    mean_abs_diff: float
    max_abs_output: float
    rel_max_diff: float  # max |diff| / max |torch output|
    top1_agreement: float  # fraction of inputs whose arg-max class agrees with torch
    calibration_samples: int
    calibration_source: str

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def int8_drift(model: nn.Module, int8: bytes, shape: tuple[int, ...], trials: int = 16, seed: int = 7,
               calibration_samples: int = 0, calibration_source: str = "") -> Int8Drift:
    """Compare the int8 model with the torch network on ``trials`` seeded standard-normal inputs."""
    import numpy as np
    import torch

    x = np.random.default_rng(seed).standard_normal((trials, *shape[1:])).astype(np.float32)
    with torch.no_grad():
        ref = model.eval()(torch.from_numpy(x)).numpy().astype(np.float64)
    out = run_rows(int8, x).astype(np.float64)
    diff = np.abs(out - ref)
    peak = float(np.abs(ref).max())
    return Int8Drift(trials, float(diff.max()), float(diff.mean()), peak, float(diff.max() / max(peak, 1e-12)),
                     float(np.mean(out.argmax(1) == ref.argmax(1))), calibration_samples, calibration_source)


def _with_metadata(tflite: bytes, metadata: ModelMetadata) -> bytes:
    from export.tflite.flatbuffer import add_metadata

    return add_metadata(tflite, {METADATA_NAME: json.dumps(metadata.as_strings(), sort_keys=True).encode()})


def read_tflite_metadata(path: Path) -> ModelMetadata:
    """The `ModelMetadata` stored in a TFLite file's ``hwdiffnas`` metadata buffer."""
    require_litert()
    from export.tflite.flatbuffer import read_metadata

    entries = read_metadata(Path(path).read_bytes())
    if METADATA_NAME not in entries:
        raise ValueError(f"{path} carries no hwdiffnas metadata")
    return ModelMetadata.from_strings(json.loads(entries[METADATA_NAME].decode()))


class TfliteExporter(Exporter):
    """fp32 LiteRT flatbuffer, run back with the LiteRT interpreter (XNNPACK CPU delegate, one thread)."""

    name = "tflite"
    extra = "litert"
    description = "LiteRT/TFLite fp32 flatbuffer (direct NB201 converter), validated with the LiteRT interpreter"

    def __init__(self, converter: str = "direct") -> None:
        if converter not in CONVERTERS:
            raise UserError(f"unknown TFLite converter {converter!r}; known: {', '.join(CONVERTERS)}")
        self.converter = converter
        # the direct writer knows the networks of these spaces only; litert-torch converts any torch module
        self.spaces = DIRECT_SPACES if converter == "direct" else None

    def available(self) -> tuple[bool, str]:
        ok, why = litert_available()
        if not ok or self.converter != "litert-torch":
            return ok, why
        return modules_importable(["litert_torch"])

    def _metadata(self, metadata: ModelMetadata, **extra: str) -> ModelMetadata:
        merged = {**metadata.extra, "format": self.name, "converter": self.converter, "precision": "fp32", **extra}
        return replace(metadata, extra=merged)

    def export(self, model: nn.Module, example_input: Any, out_dir: Path, metadata: ModelMetadata) -> ExportedModel:
        metadata = self._metadata(metadata)
        data = _with_metadata(convert_fp32(model, example_input, self.converter), metadata)
        path = Path(out_dir) / f"{metadata.file_stem}.tflite"
        path.write_bytes(data)
        return ExportedModel(path=path, format=self.name, metadata=metadata, files=(path,))

    def run(self, exported: ExportedModel, inputs: np.ndarray) -> np.ndarray:
        return run_rows(exported.path, inputs)

    def read_metadata(self, path: Path) -> ModelMetadata:
        return read_tflite_metadata(path)


class TfliteTorchExporter(TfliteExporter):
    """fp32 LiteRT flatbuffer converted by ``litert-torch`` (the heavy, general converter)."""

    name = "tflite-torch"
    extra = "litert-torch"
    description = "LiteRT/TFLite fp32 via litert-torch (torch.export → MLIR), validated with the LiteRT interpreter"

    def __init__(self) -> None:
        super().__init__(converter="litert-torch")


class TfliteInt8Exporter(TfliteExporter):
    """fp32 flatbuffer (validated) plus its static-int8 quantization and an int8 drift report beside it."""

    name = "tflite-int8"
    extra = "litert"
    description = ("LiteRT/TFLite fp32 + int8 post-training quantized (ai-edge-quantizer, representative "
                   "dataset), int8 drift vs torch reported")

    def __init__(self, converter: str = "direct", calibration: Path | str | None = None,
                 calibration_samples: int = DEFAULT_CALIBRATION_SAMPLES, drift_trials: int = 16) -> None:
        super().__init__(converter)
        self.calibration = calibration
        self.calibration_samples = calibration_samples
        self.drift_trials = drift_trials

    def available(self) -> tuple[bool, str]:
        ok, why = super().available()
        return modules_importable(("ai_edge_quantizer",)) if ok else (ok, why)

    def export(self, model: nn.Module, example_input: Any, out_dir: Path, metadata: ModelMetadata) -> ExportedModel:
        shape = tuple(example_input.shape)
        fp32 = convert_fp32(model, example_input, self.converter)
        source = str(self.calibration or os.environ.get(ENV_CALIBRATION) or "random-normal")
        calib = calibration_inputs(shape, self.calibration_samples, path=self.calibration)
        int8 = quantize_int8(fp32, calib)
        drift = int8_drift(model, int8, shape, self.drift_trials, calibration_samples=len(calib),
                           calibration_source=source)
        stem = metadata.file_stem
        meta = self._metadata(metadata, int8_file=f"{stem}.int8.tflite",
                              int8_max_abs_diff=f"{drift.max_abs_diff:.6g}",
                              int8_top1_agreement=f"{drift.top1_agreement:.4f}")
        out_dir = Path(out_dir)
        path = out_dir / f"{stem}.tflite"
        int8_path = out_dir / f"{stem}.int8.tflite"
        report = out_dir / f"{stem}.int8-drift.json"
        int8_meta = replace(meta, extra={**meta.extra, "precision": "int8"})
        path.write_bytes(_with_metadata(fp32, meta))
        int8_path.write_bytes(int8)  # as the quantizer wrote it (its buffers may sit after the flatbuffer)
        report.write_text(json.dumps({"arch_str": meta.arch_str, "dataset": meta.dataset, **drift.to_dict(),
                                      "int8_metadata": int8_meta.as_strings()}, indent=2) + "\n")
        return ExportedModel(path=path, format=self.name, metadata=meta, files=(int8_path, report, path))


def int8_path_of(exported: ExportedModel) -> Path | None:
    """The int8 sibling written by `TfliteInt8Exporter`, if any."""
    name = exported.metadata.extra.get("int8_file")
    if not name:
        return None
    p = Path(exported.path).parent / name
    return p if p.is_file() else None
