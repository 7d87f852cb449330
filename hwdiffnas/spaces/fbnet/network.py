"""Materialize an FBNet architecture as HW-NAS-Bench's ``FBNet_Infer`` network, in PyTorch.

Per layer: a ``kK_eE[_g2]`` block is Conv1×1(C_in→E·C_in, groups g)+BN+ReLU, a channel shuffle when g = 2,
depthwise ConvK×K(stride s, padding ceil((K − s)/2))+BN+ReLU, Conv1×1(E·C_in→C_out, groups g)+BN, plus a
residual add when C_in = C_out and s = 1. ``skip`` is the identity when s = 1 and C_in = C_out, else
Conv1×1(stride s)+BN+ReLU. Around the 22 layers: stem Conv3×3(3→16)+BN+ReLU, head Conv1×1(352→H)+BN+ReLU,
global average pool, Linear(H→classes).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import TYPE_CHECKING

from hwdiffnas.errors import UserError
from hwdiffnas.spaces.fbnet.arch import (
    BLOCK_SPECS,
    LAYER_SLOTS,
    STAGE_CHANNELS,
    STEM_CHANNELS,
    FBNetArch,
    LayerSlot,
)
from hwdiffnas.spaces.modules import channel_shuffle_class, conv_bn, residual_block

if TYPE_CHECKING:
    from torch import nn


@dataclass(frozen=True)
class FBNetSetting:
    """A dataset setting of the FBNet macro network."""

    name: str
    num_classes: int
    input_size: int
    stage_strides: tuple[int, ...]
    stem_stride: int
    head_channels: int

    @property
    def input_shape(self) -> tuple[int, int, int, int]:
        return (1, 3, self.input_size, self.input_size)

    def layer_strides(self) -> tuple[int, ...]:
        """Stride of each of the 22 layers (the first layer of a stage takes the stage's stride)."""
        return tuple(self.stage_strides[s.stage] if s.first_of_stage else 1 for s in LAYER_SLOTS)


_CIFAR_STRIDES = (1, 1, 2, 2, 1, 2, 1)
SETTINGS: dict[str, FBNetSetting] = {
    "cifar100": FBNetSetting("cifar100", 100, 32, _CIFAR_STRIDES, 1, 1504),
    "cifar10": FBNetSetting("cifar10", 10, 32, _CIFAR_STRIDES, 1, 1504),
    "imagenet": FBNetSetting("imagenet", 1000, 224, (1, 2, 2, 2, 1, 2, 1), 2, 1984),
}
"""The CIFAR settings are those of the latency data (32×32 input); ImageNet is FBNet's own setting."""


def fbnet_setting(name: str) -> FBNetSetting:
    """Look up a setting by name (``cifar100``, ``cifar10``, ``imagenet``; case-insensitive)."""
    key = name.lower()
    if key in ("c100",):
        key = "cifar100"
    elif key in ("c10",):
        key = "cifar10"
    elif key in ("imagenet1k", "in1k", "imagenet-1k"):
        key = "imagenet"
    if key not in SETTINGS:
        raise UserError(f"unknown FBNet dataset setting {name!r}; known: {', '.join(SETTINGS)}")
    return SETTINGS[key]


def block_padding(kernel: int, stride: int) -> int:
    """Padding that gives an output of input/stride: ceil((kernel − stride) / 2)."""
    return math.ceil((kernel - stride) / 2)


def build_layer(slot: LayerSlot, op: int, stride: int) -> nn.Module:
    """One searchable layer: block ``op`` (an index into ``BLOCKS``) at ``slot`` with ``stride``."""
    from torch import nn

    spec = BLOCK_SPECS[op]
    if spec.kernel == 0:  # skip
        if stride == 1 and slot.c_in == slot.c_out:
            return nn.Identity()
        return nn.Sequential(*conv_bn(slot.c_in, slot.c_out, 1, stride, 0))
    mid = slot.c_in * spec.expansion
    body: list[nn.Module] = conv_bn(slot.c_in, mid, 1, 1, 0, spec.groups)
    if spec.groups > 1:
        body.append(channel_shuffle_class()(spec.groups))
    body += conv_bn(mid, mid, spec.kernel, stride, block_padding(spec.kernel, stride), mid)
    body += conv_bn(mid, slot.c_out, 1, 1, 0, spec.groups, relu=False)
    return residual_block(nn.Sequential(*body), stride == 1 and slot.c_in == slot.c_out)


def build_fbnet(arch: FBNetArch, dataset: str = "cifar100") -> nn.Module:
    """The ``FBNet_Infer`` network for ``arch`` in a dataset setting (eval mode; weights from the torch seed).

    Children: 0 stem, 1 the 22 layers, 2 head, 3 pool, 4 flatten, 5 classifier.
    """
    from torch import nn

    setting = fbnet_setting(dataset)
    layers = [build_layer(slot, op, stride) for slot, op, stride in zip(LAYER_SLOTS, arch.ops, setting.layer_strides())]
    net = nn.Sequential(
        nn.Sequential(*conv_bn(3, STEM_CHANNELS, 3, setting.stem_stride, 1)),
        nn.Sequential(*layers),
        nn.Sequential(*conv_bn(STAGE_CHANNELS[-1], setting.head_channels, 1, 1, 0)),
        nn.AdaptiveAvgPool2d(1),
        nn.Flatten(1),
        nn.Linear(setting.head_channels, setting.num_classes),
    )
    _init_like_reference(net)
    return net.eval()


def _init_like_reference(net: nn.Module) -> None:
    """Kaiming-normal (fan-out) convs, unit BN, Linear N(0, 0.001): ``FBNet_Infer``'s initialization."""
    from torch import nn

    for m in net.modules():
        if isinstance(m, nn.Conv2d):
            nn.init.kaiming_normal_(m.weight, mode="fan_out")
        elif isinstance(m, nn.BatchNorm2d):
            nn.init.ones_(m.weight)
            nn.init.zeros_(m.bias)
        elif isinstance(m, nn.Linear):
            nn.init.normal_(m.weight, std=0.001)
            nn.init.zeros_(m.bias)
