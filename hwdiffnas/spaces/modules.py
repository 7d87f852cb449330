"""Building blocks shared by the macro (MobileNet-class) spaces: conv+BN(+ReLU) stacks, a residual wrapper, and
exact size counts of a conv+BN."""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from torch import nn


def conv_bn(c_in: int, c_out: int, kernel: int, stride: int, padding: int, groups: int = 1,
            relu: bool = True) -> list[nn.Module]:
    """Bias-free Conv2d, BatchNorm2d and (``relu``) ReLU, as a list of modules."""
    from torch import nn

    mods: list[nn.Module] = [nn.Conv2d(c_in, c_out, kernel, stride, padding, groups=groups, bias=False),
                             nn.BatchNorm2d(c_out)]
    if relu:
        mods.append(nn.ReLU())
    return mods


def conv_bn_counts(c_in: int, c_out: int, kernel: int, groups: int, out_side: int) -> tuple[int, int]:
    """(MACs, parameters) of a bias-free conv with a square output of side ``out_side``, followed by BatchNorm."""
    weights = c_out * (c_in // groups) * kernel * kernel
    return weights * out_side * out_side, weights + 2 * c_out


_BLOCK_CLASS: list[type] = []


def residual_block(body: nn.Module, residual: bool) -> nn.Module:
    """``body`` as a module whose output adds its input back when ``residual`` (``.body``, ``.residual``)."""
    if not _BLOCK_CLASS:
        import torch
        from torch import nn

        class ResidualBlock(nn.Module):
            """A block that adds its input back when shapes allow."""

            def __init__(self, body: nn.Module, residual: bool) -> None:
                super().__init__()
                self.body = body
                self.residual = residual

            def forward(self, x: torch.Tensor) -> torch.Tensor:
                out = self.body(x)
                return out + x if self.residual else out

        _BLOCK_CLASS.append(ResidualBlock)
    return _BLOCK_CLASS[0](body, residual)
