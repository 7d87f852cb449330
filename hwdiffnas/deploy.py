"""Architecture → validated deployable file, and architecture → measured latency, in any search space (NB201's
cells by default; the space materializes the network).

The core side of exporting and profiling: it materializes the network, hands it to a plug-in found through
`hwdiffnas.plugins` (never a backend by name), validates every export numerically against the torch network
and writes the result atomically: files appear in the output folder only after validation passed.

Validation rule (the same for every format): on ``trials`` seeded random inputs the exported file's logits
differ from the torch network's by at most ``1e-4 × max(1, max |torch output|)`` (`validation_tolerance`).
Networks are materialized with seeded random weights *and* random BatchNorm statistics/affine parameters, so
the check covers every parameter (with default BN parameters a folded BN would be an identity and the
constant that a conv on a dead node adds through BN would be zero).
"""

from __future__ import annotations

import contextlib
import os
import shutil
import tempfile
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from hwdiffnas import __version__
from hwdiffnas.errors import MissingBackendError, UserError, ValidationError
from hwdiffnas.interfaces import (
    ExportedModel,
    Exporter,
    LatencyStats,
    ModelMetadata,
    Profiler,
    ProfileSettings,
    TorchModel,
    ValidationReport,
    cpu_pinning,
    validation_tolerance,
)
from hwdiffnas.materialize import MacroConfig, NetworkInfo, count_macs, count_parameters, network_info
from hwdiffnas.plugins import DEFAULT_SPACE, get_exporter, get_profiler, get_space
from hwdiffnas.spaces.base import SearchSpace

if TYPE_CHECKING:
    import numpy as np
    from torch import nn

DEFAULT_TRIALS = 3


@dataclass(frozen=True)
class ExportResult:
    """What `export_cell` wrote and how well it reproduces the torch network."""

    exported: ExportedModel
    validation: ValidationReport
    info: NetworkInfo
    export_s: float  # wall time of the exporter call
    validate_s: float  # wall time of the numerical validation

    @property
    def path(self) -> Path:
        return self.exported.path

    def to_dict(self) -> dict[str, Any]:
        return {
            **self.info.to_dict(),
            "format": self.exported.format,
            "dead_nodes": self.exported.metadata.dead_nodes,
            "path": str(self.exported.path),
            "files": [str(p) for p in self.exported.files],
            "metadata": self.exported.metadata.as_strings(),
            "validation": self.validation.to_dict(),
            "export_s": self.export_s,
            "validate_s": self.validate_s,
        }


@contextlib.contextmanager
def torch_threads(n: int | None) -> Iterator[None]:
    """Temporarily set torch's intra-op thread count (``None`` leaves it alone)."""
    import torch

    if n is None:
        yield
        return
    before = torch.get_num_threads()
    torch.set_num_threads(n)
    try:
        yield
    finally:
        torch.set_num_threads(before)


def prepare_network(arch: Any, dataset: str = "cifar100", macro: MacroConfig | None = None,
                    seed: int = 0, space: str | SearchSpace[Any] = DEFAULT_SPACE) -> tuple[nn.Module, ModelMetadata]:
    """The seeded eval-mode network for ``arch`` of ``space``, with the space's validation weights
    (`SearchSpace.validation_weights`), and the metadata its exports carry. ``macro`` (channels, cells per stage,
    dead-node rule) is NB201's; other spaces refuse it."""
    import torch

    sp = get_space(space)
    setting = sp.dataset(dataset)
    if sp.name != "nb201" and macro is not None:
        raise UserError(f"macro settings (dead nodes, channels, cells per stage) are NB201's; search space "
                        f"{sp.name!r} has none")
    torch.manual_seed(seed)
    extra = {"num_classes": str(setting.num_classes)}
    if sp.name == "nb201":
        macro = macro or MacroConfig()
        net = sp.materialize(arch, setting.name, dead_nodes=macro.dead_nodes, channels=macro.channels,
                             cells_per_stage=macro.cells_per_stage)
        extra.update(channels=str(macro.channels), cells_per_stage=str(macro.cells_per_stage))
    else:
        net = sp.materialize(arch, setting.name)
    net = sp.validation_weights(net, setting.name, seed)
    meta = ModelMetadata(
        arch_str=sp.format(arch),
        dataset=setting.name,
        input_shape=setting.input_shape,
        tool_version=__version__,
        dead_nodes=macro.dead_nodes if macro is not None else "zeros",
        extra=extra,
        space=sp.name,
    )
    return net, meta


def _network_info(arch: Any, meta: ModelMetadata, macro: MacroConfig | None, net: nn.Module) -> NetworkInfo:
    if meta.space == "nb201":
        return network_info(arch, meta.dataset, macro, model=net)
    return NetworkInfo(meta.arch_str, meta.dataset, meta.input_shape, count_parameters(net),  # type: ignore[arg-type]
                       count_macs(net, meta.input_shape))


def _usable_exporter(fmt: str) -> Exporter:
    exporter = get_exporter(fmt)
    ok, why = exporter.available()
    if not ok:
        if exporter.extra:
            raise MissingBackendError(fmt, exporter.extra, why)
        raise UserError(f"format {fmt!r} cannot run here: {why} (a core dependency: reinstall hwdiffnas)")
    return exporter


def _usable_profiler(runtime: str) -> Profiler:
    profiler = get_profiler(runtime)
    ok, why = profiler.available()
    if not ok:
        if profiler.extra:
            raise MissingBackendError(runtime, profiler.extra, why)
        raise UserError(f"runtime {runtime!r} cannot run here: {why} (a core dependency: reinstall hwdiffnas)")
    return profiler


def random_inputs(shape: tuple[int, ...], trials: int, seed: int = 0) -> np.ndarray:
    """``trials`` seeded standard-normal inputs of batch-1 ``shape``, stacked: (trials, C, H, W) float32."""
    import numpy as np

    rng = np.random.default_rng(seed)
    return rng.standard_normal((trials, *shape[1:])).astype(np.float32)


def validate_export(exported: ExportedModel, model: nn.Module, exporter: Exporter | None = None,
                    trials: int = DEFAULT_TRIALS, seed: int = 0) -> ValidationReport:
    """Compare the exported file (run by its exporter's runtime) with ``model`` on seeded random inputs."""
    import numpy as np
    import torch

    if trials < 1:
        raise UserError(f"validation needs at least one trial, got {trials}")
    exporter = exporter or _usable_exporter(exported.format)
    x = random_inputs(exported.metadata.input_shape, trials, seed)  # (T, C, H, W)
    with torch.no_grad():
        ref = model.eval()(torch.from_numpy(x)).numpy()  # (T, classes)
    out = np.asarray(exporter.run(exported, x))
    peak = float(np.abs(ref).max())
    if out.shape != ref.shape or not np.all(np.isfinite(out)):
        diff = float("inf")
    else:
        diff = float(np.abs(out.astype(np.float64) - ref.astype(np.float64)).max())
    return ValidationReport(max_abs_diff=diff, tolerance=validation_tolerance(peak), max_abs_output=peak,
                            trials=trials)


def _staging_root(out_dir: Path) -> Path:
    """The nearest existing folder at or above ``out_dir`` (where the staging folder goes)."""
    if out_dir.exists() and not out_dir.is_dir():
        raise UserError(f"output path {out_dir} exists and is not a folder")
    probe = out_dir
    while not probe.exists():
        if probe.parent == probe:
            break
        probe = probe.parent
    if not probe.is_dir():
        raise UserError(f"cannot create output folder {out_dir}: {probe} is not a folder")
    return probe


def _published_name(exported: ExportedModel, path: Path, file_name: str | None) -> str:
    """The name ``path`` (one of the export's files) gets: the exporter's, or ``file_name``'s stem in front."""
    if file_name is None:
        return path.name
    stem = exported.metadata.file_stem
    return Path(file_name).stem + path.name[len(stem):] if path.name.startswith(stem) else path.name


def _publish(exported: ExportedModel, out_dir: Path, file_name: str | None = None) -> ExportedModel:
    """Move the validated files into ``out_dir`` (the loadable file last); undo on failure."""
    if file_name is not None and Path(file_name).suffix != exported.path.suffix:
        raise UserError(f"{out_dir / file_name}: format {exported.format} writes a {exported.path.suffix} file; "
                        f"name it {Path(file_name).stem}{exported.path.suffix}, or give a folder (one that exists, "
                        "or a path ending in '/')")
    try:
        out_dir.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise UserError(f"cannot create output folder {out_dir}: {exc.strerror or exc}") from exc
    order = [p for p in exported.files if p != exported.path] + [exported.path]
    moved: list[Path] = []
    try:
        for src in order:
            dst = out_dir / _published_name(exported, src, file_name)
            os.replace(src, dst)
            moved.append(dst)
    except OSError as exc:
        for p in moved:
            p.unlink(missing_ok=True)
        raise UserError(f"cannot write to {out_dir}: {exc.strerror or exc}") from exc
    return ExportedModel(path=out_dir / _published_name(exported, exported.path, file_name), format=exported.format,
                         metadata=exported.metadata,
                         files=tuple(out_dir / _published_name(exported, p, file_name) for p in exported.files))


def export_cell(cell: Any, fmt: str, out_dir: Path | str, dataset: str = "cifar100",
                macro: MacroConfig | None = None, validate_trials: int = DEFAULT_TRIALS, seed: int = 0,
                file_name: str | None = None, space: str | SearchSpace[Any] = DEFAULT_SPACE) -> ExportResult:
    """Materialize ``cell`` (an architecture of ``space``), export it as ``fmt`` into ``out_dir``, validate it,
    and return what was written.

    Files are named after the cell unless ``file_name`` names the loadable file (its suffix must be the
    format's, e.g. ``model.onnx``; companion files such as OpenVINO's ``.bin`` take its stem).

    The export is written into a hidden staging folder beside the target, validated there, and only then
    moved into ``out_dir``; on any failure (`ValidationError`, exporter error, unwritable folder) nothing of
    it is left behind. Exports run torch with one thread.
    """
    out_dir = Path(out_dir).expanduser()
    exporter = _usable_exporter(fmt)
    exporter.check_space(get_space(space).name)
    root = _staging_root(out_dir)
    try:
        staging = Path(tempfile.mkdtemp(prefix=".hwdiffnas-export-", dir=root))
    except OSError as exc:
        raise UserError(f"cannot write to {out_dir}: {exc.strerror or exc}") from exc
    try:
        with torch_threads(1):
            net, meta = prepare_network(cell, dataset, macro, seed, space)
            info = _network_info(cell, meta, macro, net)
            t0 = time.perf_counter()
            exported = exporter.export(net, _example_input(meta), staging, meta)
            t1 = time.perf_counter()
            report = validate_export(exported, net, exporter, validate_trials, seed)
            t2 = time.perf_counter()
        if not report.passed:
            raise ValidationError(
                f"{fmt} export of {meta.arch_str} ({meta.dataset}) does not match torch: max |diff| "
                f"{report.max_abs_diff:.3g} > tolerance {report.tolerance:.3g} (max |output| "
                f"{report.max_abs_output:.3g}, {report.trials} trials)"
            )
        published = _publish(exported, out_dir, file_name)
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    return ExportResult(published, report, info, t1 - t0, t2 - t1)


def _example_input(meta: ModelMetadata) -> Any:
    import torch

    return torch.zeros(meta.input_shape)


def model_for(profiler: Profiler, net: nn.Module, meta: ModelMetadata, workdir: Path) -> ExportedModel | TorchModel:
    """What ``profiler`` loads: the module itself (``model_format == "torch"``) or an export into ``workdir``."""
    if profiler.model_format == "torch":
        return TorchModel(net, meta)
    exporter = _usable_exporter(profiler.model_format)
    exporter.check_space(meta.space)
    with torch_threads(1):
        return exporter.export(net, _example_input(meta), workdir, meta)


def profile_cell(cell: Any, runtime: str, settings: ProfileSettings | None = None, dataset: str = "cifar100",
                 workdir: Path | str | None = None, macro: MacroConfig | None = None, seed: int = 0,
                 space: str | SearchSpace[Any] = DEFAULT_SPACE) -> LatencyStats:
    """Latency of ``cell``'s network (an architecture of ``space``) with the profiler ``runtime``: exported to
    the profiler's ``model_format`` in a temporary folder (under ``workdir`` if given), then timed."""
    settings = settings or ProfileSettings()
    profiler = _usable_profiler(runtime)
    with torch_threads(1):
        net, meta = prepare_network(cell, dataset, macro, seed, space)
    try:
        tmp = tempfile.TemporaryDirectory(prefix="hwdiffnas-profile-", dir=workdir)
    except OSError as exc:
        raise UserError(f"cannot write to {workdir}: {exc.strerror or exc}") from exc
    with tmp as folder:
        model = model_for(profiler, net, meta, Path(folder))
        with cpu_pinning(settings):
            return profiler.profile(model, settings)
