"""TensorRT engines: build from ONNX (Python API or ``trtexec``), and the binding of an engine to the GPU and
TensorRT version that built it.

A serialized engine only runs on the GPU model (compute capability) and TensorRT version it was built with.
Every engine gets a sidecar ``<engine>.json`` (`EngineBinding`) naming the GPU, its compute capability, the
TensorRT version, the precision and the builder; `check_binding` refuses to use an engine elsewhere.

TensorRT is detected at run time: the Python module ``tensorrt`` (``pip install 'hwdiffnas[tensorrt]'`` on a
CUDA machine) or a ``trtexec`` executable (``$HWDIFFNAS_TRTEXEC`` or on PATH). This code path has not been run
in this project's development environment, which has no NVIDIA GPU and no TensorRT.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from export.tensorrt.trtexec import PRECISIONS, build_argv, parse_device
from hwdiffnas.errors import MissingBackendError, UserError

ENV_TRTEXEC = "HWDIFFNAS_TRTEXEC"
BINDING_SUFFIX = ".json"


class EngineBindingError(UserError):
    """An engine is used on a GPU or TensorRT version other than the one that built it."""


@dataclass(frozen=True)
class EngineBinding:
    """What an engine is bound to (written beside it as ``<engine>.json``)."""

    gpu_name: str
    compute_capability: str
    tensorrt_version: str
    precision: str
    builder: str  # "python-api" | "trtexec"

    def to_dict(self) -> dict[str, str]:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> EngineBinding:
        keys = ("gpu_name", "compute_capability", "tensorrt_version", "precision", "builder")
        missing = [k for k in keys if not isinstance(data.get(k), str) or not data.get(k)]
        if missing:
            raise EngineBindingError(f"engine binding lacks {', '.join(missing)}")
        return cls(*(data[k] for k in keys))


@dataclass(frozen=True)
class GpuContext:
    """The GPU and TensorRT version available here."""

    gpu_name: str
    compute_capability: str
    tensorrt_version: str


def binding_path(engine: Path | str) -> Path:
    """The sidecar file of ``engine``."""
    return Path(str(engine) + BINDING_SUFFIX)


def write_binding(engine: Path | str, binding: EngineBinding, extra: dict[str, str] | None = None) -> Path:
    """Write the sidecar of ``engine`` (the binding plus optional metadata strings)."""
    path = binding_path(engine)
    path.write_text(json.dumps({**binding.to_dict(), **({"metadata": extra} if extra else {})}, indent=2) + "\n")
    return path


def read_binding(engine: Path | str) -> tuple[EngineBinding, dict[str, str]]:
    """The binding and metadata strings stored beside ``engine``."""
    path = binding_path(engine)
    try:
        data = json.loads(path.read_text())
    except FileNotFoundError as exc:
        raise EngineBindingError(f"{engine} has no binding file {path.name}: rebuild it with "
                                 "'hwdiffnas export --format tensorrt' on the target GPU") from exc
    except (OSError, json.JSONDecodeError) as exc:
        raise EngineBindingError(f"cannot read the binding of {engine}: {exc}") from exc
    return EngineBinding.from_dict(data), dict(data.get("metadata") or {})


def _major_minor_patch(version: str) -> tuple[str, ...]:
    return tuple(version.split(".")[:3])


def check_binding(binding: EngineBinding, here: GpuContext) -> None:
    """Refuse (`EngineBindingError`) unless ``here`` is the GPU model, compute capability and TensorRT
    version (major.minor.patch) the engine was built with."""
    problems = []
    if binding.gpu_name != here.gpu_name:
        problems.append(f"GPU {binding.gpu_name!r} ≠ {here.gpu_name!r}")
    if binding.compute_capability != here.compute_capability:
        problems.append(f"compute capability {binding.compute_capability} ≠ {here.compute_capability}")
    if _major_minor_patch(binding.tensorrt_version) != _major_minor_patch(here.tensorrt_version):
        problems.append(f"TensorRT {binding.tensorrt_version} ≠ {here.tensorrt_version}")
    if problems:
        raise EngineBindingError("this engine was built for another GPU or TensorRT version ("
                                 + "; ".join(problems) + "): rebuild it here with 'hwdiffnas export --format "
                                 "tensorrt'")


# --- what is installed -----------------------------------------------------------------------------------
def trtexec_path() -> str | None:
    """``$HWDIFFNAS_TRTEXEC`` or ``trtexec`` on PATH (also TensorRT's usual install folders)."""
    env = os.environ.get(ENV_TRTEXEC)
    if env:
        return env if Path(env).is_file() else None
    found = shutil.which("trtexec")
    if found:
        return found
    for p in ("/usr/src/tensorrt/bin/trtexec", "/usr/local/tensorrt/bin/trtexec"):
        if Path(p).is_file():
            return p
    return None


def tensorrt_module() -> Any | None:
    """The ``tensorrt`` Python module, or None."""
    try:
        import tensorrt
    except ImportError:
        return None
    return tensorrt


def tensorrt_available() -> tuple[bool, str]:
    """Whether an engine can be built or timed here (Python API or trtexec), and why not."""
    if tensorrt_module() is not None or trtexec_path() is not None:
        return True, ""
    return False, ("neither the tensorrt Python module nor a trtexec executable was found (set "
                   f"${ENV_TRTEXEC} or put trtexec on PATH); TensorRT needs an NVIDIA GPU")


def require_tensorrt() -> None:
    ok, why = tensorrt_available()
    if not ok:
        raise MissingBackendError("TensorRT", "tensorrt", why)


def gpu_context(trtexec: str | None = None) -> GpuContext:
    """The GPU and TensorRT version here: from the Python API + CUDA (torch or nvidia-smi), else from a
    trtexec run's own device report."""
    trt = tensorrt_module()
    if trt is not None:
        name, cc = _cuda_device()
        return GpuContext(name, cc, str(trt.__version__))
    exe = trtexec or trtexec_path()
    if exe is None:
        require_tensorrt()
    proc = subprocess.run([str(exe), "--loadEngine=/nonexistent.engine"], capture_output=True, text=True,
                          timeout=120, check=False)
    dev = parse_device(proc.stdout + proc.stderr)
    return GpuContext(dev.gpu_name, dev.compute_capability, dev.tensorrt_version)


def _cuda_device() -> tuple[str, str]:
    try:
        import torch

        if torch.cuda.is_available():
            major, minor = torch.cuda.get_device_capability(0)
            return torch.cuda.get_device_name(0), f"{major}.{minor}"
    except ImportError:
        pass
    smi = shutil.which("nvidia-smi")
    if smi is None:
        raise MissingBackendError("CUDA GPU", "tensorrt", "no CUDA device visible to torch and no nvidia-smi")
    proc = subprocess.run([smi, "--query-gpu=name,compute_cap", "--format=csv,noheader"], capture_output=True,
                          text=True, timeout=60, check=False)
    first = proc.stdout.strip().splitlines()[0] if proc.stdout.strip() else ""
    if proc.returncode != 0 or "," not in first:
        raise MissingBackendError("CUDA GPU", "tensorrt", f"nvidia-smi gave no device: {proc.stderr.strip()}")
    name, cc = (s.strip() for s in first.split(",", 1))
    return name, cc


# --- building --------------------------------------------------------------------------------------------
def build_with_python_api(onnx_path: Path, engine_path: Path, precision: str, workspace_mb: int = 1024,
                          strongly_typed: bool = False) -> None:
    """Parse the ONNX file and serialize an engine with the TensorRT Python API (a strongly typed network
    takes every tensor's type from the ONNX file; no precision flag is set then)."""
    trt = tensorrt_module()
    if trt is None:
        raise MissingBackendError("tensorrt (Python API)", "tensorrt")
    logger = trt.Logger(trt.Logger.WARNING)
    builder = trt.Builder(logger)
    flags = 0
    if hasattr(trt, "NetworkDefinitionCreationFlag") and \
            hasattr(trt.NetworkDefinitionCreationFlag, "EXPLICIT_BATCH") and int(trt.__version__.split(".")[0]) < 10:
        flags = 1 << int(trt.NetworkDefinitionCreationFlag.EXPLICIT_BATCH)
    if strongly_typed:
        flags |= 1 << int(trt.NetworkDefinitionCreationFlag.STRONGLY_TYPED)
    network = builder.create_network(flags)
    parser = trt.OnnxParser(network, logger)
    if not parser.parse(Path(onnx_path).read_bytes()):
        errors = "; ".join(str(parser.get_error(i)) for i in range(parser.num_errors))
        raise UserError(f"TensorRT cannot parse {onnx_path}: {errors}")
    config = builder.create_builder_config()
    config.set_memory_pool_limit(trt.MemoryPoolType.WORKSPACE, workspace_mb << 20)
    if precision == "fp16" and not strongly_typed:
        config.set_flag(trt.BuilderFlag.FP16)
    serialized = builder.build_serialized_network(network, config)
    if serialized is None:
        raise UserError(f"TensorRT failed to build an engine from {onnx_path}")
    Path(engine_path).write_bytes(bytes(serialized))


def build_with_trtexec(trtexec: str, onnx_path: Path, engine_path: Path, precision: str,
                       timeout_s: float = 1800.0, strongly_typed: bool = False) -> str:
    """Build with ``trtexec`` (argument list from `build_argv`); returns its output."""
    argv = build_argv(trtexec, onnx_path, engine_path, precision, strongly_typed=strongly_typed)
    try:
        proc = subprocess.run(argv, capture_output=True, text=True, timeout=timeout_s, check=False)
    except subprocess.TimeoutExpired as exc:
        raise UserError(f"trtexec did not build the engine within {timeout_s:g} s") from exc
    out = proc.stdout + proc.stderr
    if proc.returncode != 0 or not Path(engine_path).is_file():
        tail = "\n".join(out.strip().splitlines()[-8:])
        raise UserError(f"trtexec failed to build {engine_path.name} (status {proc.returncode}):\n{tail}")
    return out


def build_engine(onnx_path: Path, engine_path: Path, precision: str = "fp32",
                 metadata: dict[str, str] | None = None, strongly_typed: bool = False) -> EngineBinding:
    """Build an engine (Python API if importable, else trtexec) and write its binding sidecar.

    ``strongly_typed`` (TensorRT ≥ 10, whose strongly typed networks ignore precision flags): an fp16 engine
    is then built from a copy of the ONNX file with fp16 baked in (`export.tensorrt.onnx_fp16.to_fp16`)."""
    if precision not in PRECISIONS:
        raise UserError(f"unknown TensorRT precision {precision!r}; known: {', '.join(PRECISIONS)}")
    require_tensorrt()
    if strongly_typed and precision == "fp16":
        import onnx

        from export.tensorrt.onnx_fp16 import to_fp16

        baked = Path(onnx_path).with_suffix(".fp16.onnx")
        onnx.save_model(to_fp16(onnx.load(str(onnx_path))), str(baked))
        onnx_path = baked
    if tensorrt_module() is not None:
        build_with_python_api(onnx_path, engine_path, precision, strongly_typed=strongly_typed)
        here = gpu_context()
        builder = "python-api"
    else:
        exe = trtexec_path()
        assert exe is not None
        out = build_with_trtexec(exe, onnx_path, engine_path, precision, strongly_typed=strongly_typed)
        dev = parse_device(out)
        here = GpuContext(dev.gpu_name, dev.compute_capability, dev.tensorrt_version)
        builder = "trtexec"
    binding = EngineBinding(here.gpu_name, here.compute_capability, here.tensorrt_version, precision, builder)
    write_binding(engine_path, binding, metadata)
    return binding
