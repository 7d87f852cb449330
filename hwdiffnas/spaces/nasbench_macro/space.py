"""NAS-Bench-Macro architectures, their network (the benchmark's ``train/model.py``) and exact size counts.

An architecture is 8 characters, layer 1 first: ``0`` identity, ``1`` MobileNetV2 block k3 expansion 3,
``2`` MobileNetV2 block k5 expansion 6 (``22212220`` is the benchmark's best).

Equivalence: an identity among a stage's later layers (stride 1, same channels) is a no-op, so moving it to
another later position of its stage computes the same function; ``canonical`` moves them to the end of each
stage. The 6,561 strings form 3,969 classes, and the benchmark reports one accuracy per class.

Network: stem Conv3×3(3→32)+BN+ReLU on 32×32; three stages of 2, 3, 3 layers, the first layer of each with
stride 2 and doubled channels (32→64→128→256); identity is nothing, or Conv1×1(stride)+BN (no ReLU) when
stride or channels change; a block is Conv1×1(C→tC)+BN+ReLU, depthwise Conv k×k(stride, pad k//2)+BN+ReLU,
Conv1×1(tC→C_out)+BN, plus the input when C_in = C_out and stride 1; head Conv1×1(256→1280)+BN+ReLU, global
average pool, Linear(1280→10).
"""

from __future__ import annotations

import itertools
from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np

from hwdiffnas.errors import UserError
from hwdiffnas.spaces.modules import conv_bn, conv_bn_counts, residual_block

if TYPE_CHECKING:
    from torch import nn

OPS: tuple[str, ...] = ("id", "ir_3x3_t3", "ir_5x5_t6")
OP_SPECS: tuple[tuple[int, int], ...] = ((0, 0), (3, 3), (5, 6))  # (kernel, expansion); identity = (0, 0)
NUM_LAYERS = 8
STAGES: tuple[int, ...] = (2, 3, 3)
STEM_CHANNELS = 32
HEAD_CHANNELS = 1280
NUM_CLASSES = 10
INPUT_SHAPE = (1, 3, 32, 32)


@dataclass(frozen=True, order=True)
class MacroArch:
    """A NAS-Bench-Macro architecture: the op (0..2) of each of the 8 layers."""

    ops: tuple[int, ...]

    def __post_init__(self) -> None:
        ops = tuple(int(o) for o in self.ops)
        if len(ops) != NUM_LAYERS or any(not 0 <= o < len(OPS) for o in ops):
            raise UserError(f"a NAS-Bench-Macro architecture is {NUM_LAYERS} ops from 0..{len(OPS) - 1} "
                            f"({', '.join(OPS)}); got {ops}")
        object.__setattr__(self, "ops", ops)

    @classmethod
    def parse(cls, text: str) -> MacroArch:
        """Read the benchmark's 8-character form (``22212220``) or 8 comma-separated op ids/names."""
        text = text.strip()
        parts = [p.strip() for p in text.split(",")] if "," in text else list(text)
        ops = []
        for p in parts:
            if p.isdigit():
                ops.append(int(p))
            elif p in OPS:
                ops.append(OPS.index(p))
            else:
                raise UserError(f"cannot read NAS-Bench-Macro architecture {text!r}: {p!r} is not an op id 0..2 "
                                f"or one of {', '.join(OPS)}")
        return cls(tuple(ops))

    @property
    def arch_str(self) -> str:
        return "".join(str(o) for o in self.ops)

    def canonical(self) -> MacroArch:
        """The class representative: each stage's later identity layers moved to the stage's end."""
        out: list[int] = []
        start = 0
        for n in STAGES:
            stage = self.ops[start:start + n]
            later = [o for o in stage[1:] if o != 0]
            out += [stage[0], *later, *([0] * (n - 1 - len(later)))]
            start += n
        return MacroArch(tuple(out))

    def __str__(self) -> str:
        return self.arch_str


def all_archs() -> list[MacroArch]:
    """The 6,561 architectures in the benchmark's order (lexicographic in the 8-character form)."""
    return [MacroArch(ops) for ops in itertools.product(range(len(OPS)), repeat=NUM_LAYERS)]


def _layers() -> list[tuple[int, int, int, int]]:
    """(c_in, c_out, stride, input side) of each layer."""
    out = []
    c, side = STEM_CHANNELS, INPUT_SHAPE[-1]
    for n in STAGES:
        for i in range(n):
            stride = 2 if i == 0 else 1
            c_out = c * 2 if i == 0 else c
            out.append((c, c_out, stride, side))
            c, side = c_out, side // stride
    return out


LAYERS = _layers()


def size_counts(arch: MacroArch) -> tuple[int, int]:
    """(MACs of conv and linear layers, parameter count) of the network, computed exactly without building it."""
    parts = [conv_bn_counts(3, STEM_CHANNELS, 3, 1, INPUT_SHAPE[-1])]
    for (c_in, c_out, stride, side), op in zip(LAYERS, arch.ops):
        k, t = OP_SPECS[op]
        out = side // stride
        if k == 0:
            if stride != 1 or c_in != c_out:
                parts.append(conv_bn_counts(c_in, c_out, 1, 1, out))
            continue
        hid = c_in * t
        parts += [conv_bn_counts(c_in, hid, 1, 1, side), conv_bn_counts(hid, hid, k, hid, out),
                  conv_bn_counts(hid, c_out, 1, 1, out)]
    parts.append(conv_bn_counts(LAYERS[-1][1], HEAD_CHANNELS, 1, 1, LAYERS[-1][3] // LAYERS[-1][2]))
    macs = sum(m for m, _ in parts) + HEAD_CHANNELS * NUM_CLASSES
    params = sum(p for _, p in parts) + HEAD_CHANNELS * NUM_CLASSES + NUM_CLASSES
    return macs, params


def build_macro_network(arch: MacroArch) -> nn.Module:
    """The benchmark's CIFAR-10 network for ``arch`` (eval mode; weights from the torch seed)."""
    from torch import nn

    def conv(c_in: int, c_out: int, k: int, stride: int, groups: int = 1, relu: bool = True) -> list[nn.Module]:
        return conv_bn(c_in, c_out, k, stride, k // 2, groups, relu)

    layers: list[nn.Module] = []
    for (c_in, c_out, stride, _side), op in zip(LAYERS, arch.ops):
        k, t = OP_SPECS[op]
        if k == 0:
            same = stride == 1 and c_in == c_out
            layers.append(nn.Identity() if same else nn.Sequential(*conv(c_in, c_out, 1, stride, relu=False)))
            continue
        hid = c_in * t
        body = conv(c_in, hid, 1, 1) + conv(hid, hid, k, stride, hid) + conv(hid, c_out, 1, 1, relu=False)
        layers.append(residual_block(nn.Sequential(*body), stride == 1 and c_in == c_out))
    net = nn.Sequential(
        nn.Sequential(*conv(3, STEM_CHANNELS, 3, 1)),
        nn.Sequential(*layers),
        nn.Sequential(*conv(LAYERS[-1][1], HEAD_CHANNELS, 1, 1)),
        nn.AdaptiveAvgPool2d(1),
        nn.Flatten(1),
        nn.Linear(HEAD_CHANNELS, NUM_CLASSES),
    )
    return net.eval()


def read_macro_accuracy(path: str) -> tuple[list[MacroArch], np.ndarray, np.ndarray, np.ndarray]:
    """(architectures, mean accuracy %, params, flops) from the benchmark's ``accuracy.csv``."""
    import csv
    from pathlib import Path

    p = Path(path)
    if p.is_dir():
        p = p / "accuracy.csv"
    if not p.is_file():
        raise UserError(f"NAS-Bench-Macro accuracy file not found: {p}")
    with p.open(newline="") as fh:
        reader = csv.DictReader(fh)
        need = {"arch", "mean_acc", "params", "flops"}
        if reader.fieldnames is None or not need <= set(reader.fieldnames):
            raise UserError(f"{p}: wrong columns {reader.fieldnames} for NAS-Bench-Macro (need {sorted(need)})")
        rows = list(reader)
    archs = [MacroArch.parse(r["arch"]) for r in rows]
    acc = np.array([float(r["mean_acc"]) for r in rows])
    params = np.array([int(r["params"]) for r in rows])
    flops = np.array([int(r["flops"]) for r in rows])
    return archs, acc, params, flops
