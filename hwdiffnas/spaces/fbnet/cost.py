"""Multiply-accumulates and parameters of FBNet networks, per layer and block (both are additive over layers).

MACs count conv and linear layers as the project does for NB201 (``hwdiffnas.materialize.count_macs``);
parameters count every trainable tensor, BatchNorm's affine pair included.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache

import numpy as np

from hwdiffnas.spaces.fbnet.arch import (
    BLOCK_SPECS,
    LAYER_SLOTS,
    NUM_BLOCKS,
    NUM_LAYERS,
    STAGE_CHANNELS,
    STEM_CHANNELS,
    FBNetArch,
)
from hwdiffnas.spaces.fbnet.network import fbnet_setting
from hwdiffnas.spaces.modules import conv_bn_counts


@dataclass(frozen=True)
class CostTable:
    """``base`` (stem, head, classifier) + Σ_layers ``per_block[layer, block]``."""

    name: str
    dataset: str
    base: int
    per_block: np.ndarray  # (22, 9) int64

    def total(self, arch: FBNetArch) -> int:
        return int(self.base + self.per_block[np.arange(NUM_LAYERS), arch.ops].sum())

    def total_batch(self, ops: np.ndarray) -> np.ndarray:
        """(n,) totals of an (n, 22) block-id matrix."""
        return self.base + self.per_block[np.arange(NUM_LAYERS)[None, :], np.asarray(ops, dtype=np.int64)].sum(1)


@lru_cache(maxsize=8)
def cost_tables(dataset: str = "cifar100") -> tuple[CostTable, CostTable]:
    """(MACs, params) tables for a dataset setting."""
    setting = fbnet_setting(dataset)
    macs = np.zeros((NUM_LAYERS, NUM_BLOCKS), dtype=np.int64)
    params = np.zeros_like(macs)
    side = setting.input_size // setting.stem_stride
    for slot, stride in zip(LAYER_SLOTS, setting.layer_strides()):
        out = side // stride
        for op, spec in enumerate(BLOCK_SPECS):
            parts: list[tuple[int, int]] = []
            if spec.kernel == 0:
                if stride != 1 or slot.c_in != slot.c_out:
                    parts.append(conv_bn_counts(slot.c_in, slot.c_out, 1, 1, out))
            else:
                mid = slot.c_in * spec.expansion
                parts += [conv_bn_counts(slot.c_in, mid, 1, spec.groups, side),
                          conv_bn_counts(mid, mid, spec.kernel, mid, out),
                          conv_bn_counts(mid, slot.c_out, 1, spec.groups, out)]
            macs[slot.layer, op] = sum(m for m, _ in parts)
            params[slot.layer, op] = sum(p for _, p in parts)
        side = out
    stem = conv_bn_counts(3, STEM_CHANNELS, 3, 1, setting.input_size // setting.stem_stride)
    head = conv_bn_counts(STAGE_CHANNELS[-1], setting.head_channels, 1, 1, side)
    fc = setting.head_channels * setting.num_classes
    base_macs = stem[0] + head[0] + fc
    base_params = stem[1] + head[1] + fc + setting.num_classes
    macs.setflags(write=False)
    params.setflags(write=False)
    return (CostTable("macs", setting.name, base_macs, macs), CostTable("params", setting.name, base_params, params))
