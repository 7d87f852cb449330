"""`MacroSpace`: NAS-Bench-Macro's 6,561 MobileNetV2-block networks behind `SearchSpace`.

Exact string: the benchmark's 8 characters. Canonical form: a stage's later identity layers moved to its end
(3,969 classes; the benchmark reports one accuracy per class). Encoding: the 8 layers as a chain. Datasets:
CIFAR-10 (the setting every network was trained in). MACs and parameters exact (equal to the benchmark's columns).
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from typing import TYPE_CHECKING, Any

from hwdiffnas.errors import UserError
from hwdiffnas.spaces.base import DatasetSetting, Encoding, SearchSpace, Supports
from hwdiffnas.spaces.nasbench_macro.space import (
    INPUT_SHAPE,
    NUM_CLASSES,
    NUM_LAYERS,
    OPS,
    MacroArch,
    all_archs,
    size_counts,
)

if TYPE_CHECKING:
    from torch import nn


class MacroSpace(SearchSpace[MacroArch]):
    """NAS-Bench-Macro (Su et al., CVPR 2021): 8 layers x {identity, MBv2 k3 e3, MBv2 k5 e6}."""

    name = "nasbench_macro"
    description = "NAS-Bench-Macro: 8 layers x 3 MobileNetV2 blocks (6,561; 3,969 distinct), CIFAR-10 accuracies"

    def parse(self, text: str) -> MacroArch:
        return MacroArch.parse(text)

    def format(self, arch: MacroArch) -> str:
        return arch.arch_str

    def canonical(self, arch: MacroArch) -> MacroArch:
        return arch.canonical()

    @property
    def size(self) -> int:
        return len(OPS) ** NUM_LAYERS

    def enumerate(self) -> Iterator[MacroArch]:
        return iter(all_archs())

    @property
    def encoding(self) -> Encoding:
        return Encoding.chain(NUM_LAYERS, OPS, identity="nasbench_macro/chain-8x3")

    def encode(self, arch: MacroArch) -> Sequence[int]:
        return arch.ops

    def decode(self, ops: Sequence[int]) -> MacroArch:
        return MacroArch(tuple(int(o) for o in ops))

    @property
    def datasets(self) -> dict[str, DatasetSetting]:
        return {"cifar10": DatasetSetting("cifar10", NUM_CLASSES, INPUT_SHAPE)}

    def materialize(self, arch: MacroArch, dataset: str, **options: Any) -> nn.Module:
        self.dataset(dataset)
        if options:
            raise UserError(f"the NAS-Bench-Macro space takes no network options; got {', '.join(options)}")
        from hwdiffnas.spaces.nasbench_macro.space import build_macro_network

        return build_macro_network(arch)

    def size_counts(self, arch: MacroArch, dataset: str) -> tuple[int, int]:
        self.dataset(dataset)
        return size_counts(arch)

    def supports(self) -> Supports:
        return Supports(("cifar10",), exporters=("tflite", "tflite-int8"), accuracy_tables=True,
                        notes={"accuracy": "CIFAR-10 mean of three seeds (the benchmark's accuracy.csv)",
                               "latency": "none tabulated: measure with campaign"})
