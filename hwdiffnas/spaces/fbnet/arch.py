"""The FBNet architecture type: one block choice for each of the 22 searchable layers.

An architecture is written as 22 op ids, layer 1 first (``7818488874147327324245``), or as 22 comma-separated
block names (``k5_e6,k3_e1,...``). Every op string is its own network: the layers sit at fixed positions with
fixed channels and strides, so no two strings compute the same function (there is no equivalence to reduce by).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from hwdiffnas.errors import UserError

BLOCKS: tuple[str, ...] = ("k3_e1", "k3_e1_g2", "k3_e3", "k3_e6", "k5_e1", "k5_e1_g2", "k5_e3", "k5_e6", "skip")
"""Block names in HW-NAS-Bench's ``PRIMITIVES`` order; an architecture stores each layer's index into this."""
BLOCK_INDEX: dict[str, int] = {name: i for i, name in enumerate(BLOCKS)}
SKIP = BLOCK_INDEX["skip"]
NUM_LAYERS = 22
NUM_BLOCKS = len(BLOCKS)

STAGE_LAYERS: tuple[int, ...] = (1, 4, 4, 4, 4, 4, 1)
STAGE_CHANNELS: tuple[int, ...] = (16, 24, 32, 64, 112, 184, 352)
STEM_CHANNELS = 16


@dataclass(frozen=True)
class BlockSpec:
    """Shape of one block choice: kernel size, expansion and 1×1 group count (``skip`` has kernel 0)."""

    kernel: int
    expansion: int
    groups: int


BLOCK_SPECS: tuple[BlockSpec, ...] = tuple(
    BlockSpec(0, 0, 1) if name == "skip"
    else BlockSpec(int(name[1]), int(name.split("_")[1][1:]), 2 if name.endswith("_g2") else 1)
    for name in BLOCKS
)


@dataclass(frozen=True)
class LayerSlot:
    """Where a searchable layer sits: its stage, input/output channels and stride flag (``first`` of a stage)."""

    layer: int  # 0-based
    stage: int
    c_in: int
    c_out: int
    first_of_stage: bool


def layer_slots() -> tuple[LayerSlot, ...]:
    """The 22 searchable layers in order (channels are the same in both dataset settings)."""
    slots = []
    c_prev = STEM_CHANNELS
    layer = 0
    for stage, (n, c) in enumerate(zip(STAGE_LAYERS, STAGE_CHANNELS)):
        for i in range(n):
            slots.append(LayerSlot(layer, stage, c_prev if i == 0 else c, c, i == 0))
            layer += 1
        c_prev = c
    return tuple(slots)


LAYER_SLOTS = layer_slots()


@dataclass(frozen=True, order=True)
class FBNetArch:
    """An FBNet-space architecture: the block index (0..8) of each of the 22 layers, layer 1 first."""

    ops: tuple[int, ...]

    def __post_init__(self) -> None:
        ops = tuple(int(o) for o in self.ops)
        if len(ops) != NUM_LAYERS:
            raise UserError(f"an FBNet architecture has {NUM_LAYERS} layers, got {len(ops)} ops")
        bad = [o for o in ops if not 0 <= o < NUM_BLOCKS]
        if bad:
            raise UserError(f"block id {bad[0]} out of range 0..{NUM_BLOCKS - 1} ({', '.join(BLOCKS)})")
        object.__setattr__(self, "ops", ops)

    @classmethod
    def parse(cls, text: str) -> FBNetArch:
        """Read 22 op ids (``7818488874147327324245``) or 22 comma-separated block names or ids."""
        text = text.strip()
        if text.startswith("|"):
            raise UserError(f"{text!r} looks like a NAS-Bench-201 arch string, not an FBNet architecture "
                            f"(give {NUM_LAYERS} op ids 0..{NUM_BLOCKS - 1} or block names; use --space nb201)")
        if "," in text:
            parts = [p.strip() for p in text.split(",")]
            ops = []
            for p in parts:
                if p.isdigit():
                    ops.append(int(p))
                elif p in BLOCK_INDEX:
                    ops.append(BLOCK_INDEX[p])
                else:
                    raise UserError(f"unknown FBNet block {p!r}; known: {', '.join(BLOCKS)}")
            if len(ops) == 6:
                raise UserError(f"{text!r} has 6 ops, like a NAS-Bench-201 cell; an FBNet architecture has "
                                f"{NUM_LAYERS} (use --space nb201 for cells)")
            return cls(tuple(ops))
        if not text.isdigit():
            raise UserError(f"cannot read FBNet architecture {text!r}: give {NUM_LAYERS} op ids 0..{NUM_BLOCKS - 1} "
                            f"('7818488874147327324245') or {NUM_LAYERS} comma-separated block names")
        if len(text) != NUM_LAYERS:
            raise UserError(f"FBNet op string {text!r} has {len(text)} characters; it needs {NUM_LAYERS} "
                            f"(one op id 0..{NUM_BLOCKS - 1} per layer)")
        return cls(tuple(int(c) for c in text))

    @property
    def op_string(self) -> str:
        """The 22-character op-id string (the canonical form and store key)."""
        return "".join(str(o) for o in self.ops)

    def __str__(self) -> str:
        return self.op_string

    @property
    def block_names(self) -> tuple[str, ...]:
        return tuple(BLOCKS[o] for o in self.ops)


def archs_to_matrix(archs: Sequence[FBNetArch]) -> np.ndarray:
    """(n, 22) int64 matrix of block ids."""
    return np.array([a.ops for a in archs], dtype=np.int64).reshape(len(archs), NUM_LAYERS)
