"""`FBNetSpace`: HW-NAS-Bench's FBNet macro space (22 layers × 9 blocks, 9^22 ≈ 10^21 networks) behind
`SearchSpace`.

Exact string: the 22 op ids (``7818488874147327324245``); block names are read too. No equivalences (every op
string is its own network) and no degenerate architectures. Encoding: the 22 layers as a chain. Features: the
one-hot of every layer (held-out Spearman 0.98 on HELP's measured non-phone devices with a ridge on them).
Reference architectures: HELP's ten. Datasets: the CIFAR settings of the latency data and FBNet's ImageNet
setting. MACs and parameters from exact per-layer tables.
"""

from __future__ import annotations

from collections.abc import Sequence
from functools import lru_cache
from typing import TYPE_CHECKING, Any

from hwdiffnas.errors import UserError
from hwdiffnas.spaces.base import (
    DatasetSetting,
    Encoding,
    ExactLatency,
    MeasuredRows,
    SearchSpace,
    Supports,
)
from hwdiffnas.spaces.fbnet.arch import BLOCKS, NUM_BLOCKS, NUM_LAYERS, FBNetArch
from hwdiffnas.spaces.fbnet.network import SETTINGS

if TYPE_CHECKING:
    import numpy as np
    from torch import nn

HELP_REFERENCE_OPS: tuple[str, ...] = (
    "1866803437874325730137", "5485168530480245066005", "7275468066512407560332", "8161627168752018032254",
    "1707434661105677676312", "2245725722123146363201", "4455311042242050562525", "8844681803128858228148",
    "0767336174377084856851", "1240730564570143233306",
)
"""HELP's ten reference architectures of this space (its ``hardware_embedding_index``: rows 3328, 3790, 3313,
890, 3052, 2538, 1640, 2514, 457, 2100 of its 5,000)."""


@lru_cache(maxsize=2)
def _help_rows(lut_devices: frozenset[str]) -> dict[str, MeasuredRows]:
    """HELP's shipped rows by device, the lookup-table devices left out (built once per process)."""
    from hwdiffnas.spaces.fbnet.help_tables import load_help_tables

    tables = load_help_tables()
    archs = tuple(tables.op_string(i) for i in range(len(tables.ops)))
    return {d: MeasuredRows(archs, tuple(float(v) for v in lat), f"table:help:{d}")
            for d, lat in tables.latency_ms.items() if d not in lut_devices}


class FBNetSpace(SearchSpace[FBNetArch]):
    """The FBNet macro space of HW-NAS-Bench."""

    name = "fbnet"
    description = "FBNet macro space (HW-NAS-Bench): 22 layers x 9 MobileNet-class blocks (9^22), no accuracy table"
    default_objective = "naswot"
    """Chosen by the calibration on NAS-Bench-Macro (docs/benchmarks.md, "Objectives where no accuracy exists")."""

    def parse(self, text: str) -> FBNetArch:
        return FBNetArch.parse(text)

    def format(self, arch: FBNetArch) -> str:
        return arch.op_string

    @property
    def size(self) -> int:
        return NUM_BLOCKS ** NUM_LAYERS

    @property
    def encoding(self) -> Encoding:
        return Encoding.chain(NUM_LAYERS, BLOCKS, identity="fbnet/chain-22x9")

    def encode(self, arch: FBNetArch) -> Sequence[int]:
        return arch.ops

    def decode(self, ops: Sequence[int]) -> FBNetArch:
        return FBNetArch(tuple(int(o) for o in ops))

    def reference_archs(self) -> tuple[FBNetArch, ...]:
        return tuple(FBNetArch.parse(s) for s in HELP_REFERENCE_OPS)

    @property
    def datasets(self) -> dict[str, DatasetSetting]:
        return {name: DatasetSetting(name, s.num_classes, s.input_shape) for name, s in SETTINGS.items()}

    def materialize(self, arch: FBNetArch, dataset: str, **options: Any) -> nn.Module:
        if options:
            raise UserError(f"the FBNet space takes no network options; got {', '.join(options)}")
        from hwdiffnas.spaces.fbnet.network import build_fbnet

        return build_fbnet(arch, self.dataset(dataset).name)

    def size_counts(self, arch: FBNetArch, dataset: str) -> tuple[int, int]:
        from hwdiffnas.spaces.fbnet.cost import cost_tables

        macs, params = cost_tables(self.dataset(dataset).name)
        return macs.total(arch), params.total(arch)

    def size_counts_codes(self, ops: np.ndarray, dataset: str) -> tuple[np.ndarray, np.ndarray]:
        import numpy as np

        from hwdiffnas.spaces.fbnet.cost import cost_tables

        macs, params = cost_tables(self.dataset(dataset).name)
        return (macs.total_batch(ops).astype(np.float64), params.total_batch(ops).astype(np.float64))

    def latency_tables(self, dataset: str) -> dict[str, ExactLatency]:
        """HW-NAS-Bench's lookup tables (fpga, eyeriss, raspi4, pixel3), CIFAR-100 setting only."""
        if self.dataset(dataset).name != "cifar100":
            return {}
        from hwdiffnas.spaces.fbnet.lut import load_latency_models

        return dict(load_latency_models())

    def exact_optimum(self, device: str, budget_ms: float, objective: str,
                      dataset: str) -> tuple[FBNetArch, float] | None:
        """Multiple-choice knapsack over the lookup tables (fpga, eyeriss, raspi4, pixel3) for ``flops`` or
        ``params`` (`hwdiffnas.spaces.fbnet.optimum`)."""
        from hwdiffnas.spaces.fbnet.optimum import ADDITIVE_OBJECTIVES, exact_optimum

        if objective not in ADDITIVE_OBJECTIVES:
            raise UserError(f"objective {objective!r} is not a sum over layers; the exact method supports "
                            f"{', '.join(ADDITIVE_OBJECTIVES)}")
        tables = self.latency_tables(dataset)
        if device not in tables:
            raise UserError(f"the exact method needs additive latency: device {device!r} has none in the "
                            f"{dataset!r} setting; lookup-table devices: {', '.join(sorted(tables)) or 'none'} "
                            "(cifar100 setting)")
        model = tables[device]
        fastest = float(model.constant_ms + model.table_ms.min(axis=1).sum())
        if budget_ms < fastest:
            raise UserError(f"budget {budget_ms:g} ms is below the fastest FBNet architecture on {device!r} "
                            f"({fastest:.4f} ms)")
        best = exact_optimum(model, budget_ms, objective)
        return None if best is None else (best.arch, float(best.value))

    def measured_rows(self, dataset: str) -> dict[str, MeasuredRows]:
        """HELP's measured FBNet-space tables (20 device settings × 5,000 architectures, CIFAR-100 setting)."""
        if self.dataset(dataset).name != "cifar100":
            return {}
        return dict(_help_rows(frozenset(self.latency_tables(dataset))))

    def supports(self) -> Supports:
        return Supports(tuple(self.datasets), exporters=("tflite", "tflite-int8"), accuracy_tables=False,
                        notes={"latency": "exact lookup tables for fpga, eyeriss, raspi4, pixel3 (CIFAR setting); "
                                          "HELP's 20 measured devices as 5,000-row tables",
                               "accuracy": "none exists: objectives (flops, params, proxies) or --labels"})
