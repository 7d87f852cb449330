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
_SHUFFLE_CLASS: list[type] = []


def channel_shuffle_class() -> type:
    """The channel-shuffle module class: (N, C, H, W) → view (N, g, C/g, H, W) → swap g and C/g → (N, C, H, W).

    Written with view/permute (as ShuffleNet and HW-NAS-Bench do) because ONNX's TorchScript exporter has no
    mapping for ``aten::channel_shuffle``."""
    if not _SHUFFLE_CLASS:
        import torch
        from torch import nn

        class ChannelShuffle(nn.Module):
            """Interleave the channels of ``groups`` groups."""

            def __init__(self, groups: int) -> None:
                super().__init__()
                self.groups = groups

            def forward(self, x: torch.Tensor) -> torch.Tensor:
                n, c, h, w = x.shape
                return x.view(n, self.groups, c // self.groups, h, w).transpose(1, 2).reshape(n, c, h, w)

        _SHUFFLE_CLASS.append(ChannelShuffle)
    return _SHUFFLE_CLASS[0]


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


def calibrate_for_validation(model: nn.Module, input_shape: tuple[int, ...], seed: int = 0,
                             batch: int = 8) -> nn.Module:
    """Give ``model`` weights and BatchNorm statistics under which its outputs are of order 1 (in place; eval).

    With the reference initialization these networks output values near 1e-8, which any absolute tolerance
    passes; validating an export needs outputs whose errors show. Convs and linears get variance-preserving
    (fan-in) normal weights, BatchNorm random affine terms (scale U(0.5, 1.5), shift N(0, 0.2)) and running
    statistics measured on a seeded N(0, 1) batch.
    """
    import torch
    from torch import nn

    gen = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for m in model.modules():
            if isinstance(m, (nn.Conv2d, nn.Linear)):
                fan_in = m.weight[0].numel()
                m.weight.normal_(0.0, fan_in ** -0.5, generator=gen)
                if m.bias is not None:
                    m.bias.normal_(0.0, 0.1, generator=gen)
            elif isinstance(m, nn.BatchNorm2d):
                m.weight.uniform_(0.5, 1.5, generator=gen)
                m.bias.normal_(0.0, 0.2, generator=gen)
                m.reset_running_stats()
                m.momentum = None  # cumulative: one batch gives exactly its statistics
        model.train()
        model(torch.randn((batch, *input_shape[1:]), generator=gen))
        for m in model.modules():
            if isinstance(m, nn.BatchNorm2d):
                m.momentum = 0.1
    return model.eval()


def count_parameters(model: nn.Module) -> int:
    """Number of trainable parameters."""
    return sum(p.numel() for p in model.parameters() if p.requires_grad)


def count_macs(model: nn.Module, input_shape: tuple[int, ...]) -> int:
    """Multiply-accumulates of the conv and linear layers for one forward pass at ``input_shape``.

    FLOPs as usually quoted (e.g. 220 M for NB201's largest CIFAR cell) are these MACs; 2×MACs counts multiplies
    and adds separately.
    """
    import torch
    from torch import nn

    total = 0

    def conv_hook(mod: nn.Conv2d, _inp: tuple, out: torch.Tensor) -> None:
        nonlocal total
        kh, kw = mod.kernel_size
        total += out.numel() * (mod.in_channels // mod.groups) * kh * kw

    def linear_hook(mod: nn.Linear, _inp: tuple, out: torch.Tensor) -> None:
        nonlocal total
        total += out.numel() * mod.in_features

    handles = []
    for m in model.modules():
        if isinstance(m, nn.Conv2d):
            handles.append(m.register_forward_hook(conv_hook))
        elif isinstance(m, nn.Linear):
            handles.append(m.register_forward_hook(linear_hook))
    try:
        with torch.no_grad():
            model(torch.zeros(input_shape))
    finally:
        for h in handles:
            h.remove()
    return total


def randomize_batchnorm(model: nn.Module, seed: int = 0) -> None:
    """Give every BatchNorm layer seeded random running statistics and affine parameters (in place)."""
    import torch
    from torch import nn

    gen = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for m in model.modules():
            if isinstance(m, nn.modules.batchnorm._BatchNorm):
                n = m.num_features
                m.running_mean.copy_(0.1 * torch.randn(n, generator=gen))
                m.running_var.copy_(0.5 + torch.rand(n, generator=gen))
                if m.affine:
                    m.weight.copy_(0.5 + torch.rand(n, generator=gen))
                    m.bias.copy_(0.1 * torch.randn(n, generator=gen))
