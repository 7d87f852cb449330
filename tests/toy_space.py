"""A test-only search space: a chain of 4 layers, each one of 3 ops (identity, conv3x3+BN+ReLU, max-pool 3x3
stride 1), on 3×8×8 inputs with a 5-class head. It uses nothing of the core but the `SearchSpace` interface, so a
test that runs it through the whole path shows a new space needs no change to the core."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from hwdiffnas.errors import UserError
from hwdiffnas.spaces.base import DatasetSetting, Encoding, SearchSpace

if TYPE_CHECKING:
    from torch import nn

OPS = ("id", "conv3", "pool3")
LAYERS = 4
WIDTH = 8


@dataclass(frozen=True, order=True)
class ChainArch:
    """One op id per layer."""

    ops: tuple[int, ...]


class ToyChainSpace(SearchSpace[ChainArch]):
    """4 layers × 3 ops (81 architectures); the all-identity chain is degenerate (no layer computes)."""

    name = "toychain"
    description = "test-only chain of 4 layers x 3 ops"

    def parse(self, text: str) -> ChainArch:
        text = text.strip()
        if len(text) != LAYERS or any(ch not in "012" for ch in text):
            raise UserError(f"a toychain architecture is {LAYERS} op ids from 0..2, got {text!r}")
        return ChainArch(tuple(int(ch) for ch in text))

    def format(self, arch: ChainArch) -> str:
        return "".join(str(o) for o in arch.ops)

    def degenerate(self, arch: ChainArch) -> str | None:
        return "every layer is the identity" if not any(arch.ops) else None

    @property
    def size(self) -> int:
        return len(OPS) ** LAYERS

    @property
    def encoding(self) -> Encoding:
        return Encoding.chain(LAYERS, OPS, "toychain(layers=4,ops=id,conv3,pool3)")

    def encode(self, arch: ChainArch) -> Sequence[int]:
        return arch.ops

    def decode(self, ops: Sequence[int]) -> ChainArch:
        ops = tuple(int(o) for o in ops)
        if len(ops) != LAYERS or any(not 0 <= o < len(OPS) for o in ops):
            raise UserError(f"not a toychain code vector: {ops}")
        return ChainArch(ops)

    def reference_archs(self) -> tuple[ChainArch, ...]:
        return tuple(ChainArch(ops) for ops in ((1, 1, 1, 1), (2, 2, 2, 2), (1, 0, 0, 0), (1, 2, 1, 2)))

    @property
    def datasets(self) -> dict[str, DatasetSetting]:
        return {"toy8": DatasetSetting("toy8", 5, (1, 3, 8, 8))}

    def materialize(self, arch: ChainArch, dataset: str, **options: Any) -> nn.Module:
        from torch import nn

        setting = self.dataset(dataset)
        layers: list[nn.Module] = [nn.Conv2d(3, WIDTH, 1)]
        for op in arch.ops:
            if op == 1:
                layers += [nn.Conv2d(WIDTH, WIDTH, 3, padding=1, bias=False), nn.BatchNorm2d(WIDTH), nn.ReLU()]
            elif op == 2:
                layers.append(nn.MaxPool2d(3, stride=1, padding=1))
        layers += [nn.AdaptiveAvgPool2d(1), nn.Flatten(1), nn.Linear(WIDTH, setting.num_classes)]
        return nn.Sequential(*layers).eval()
