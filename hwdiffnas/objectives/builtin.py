"""The built-in objectives: ``flops`` and ``params`` (size), ``synflow``, ``naswot`` and ``zen`` (training-free).

The proxies follow their papers' definitions on the materialized network, with seeded random weights and
seeded Gaussian inputs (no training data is used or needed):

* ``synflow`` (Tanaka et al., NeurIPS 2020): every parameter replaced by its absolute value, float64, an all-ones
  input, R = Σ outputs; score = log Σ |θ · ∂R/∂θ|. BatchNorm in eval mode.
* ``naswot`` (Mellor et al., ICML 2021): for a batch of 32 inputs, the binary codes of every ReLU's output; kernel
  K = N_A − Hamming distance between codes; score = log |det K|. Inputs are N(0, 1) (the paper uses a data batch).
* ``zen`` (Lin et al., ICCV 2021, Zen-NAS): weights N(0, 1), BatchNorm on batch statistics, f = the feature map
  that enters the global average pool; score = log E‖f(x) − f(x + 0.01 ε)‖₁ + Σ_BN log √(mean channel variance),
  x, ε ~ N(0, 1), batch 16.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from hwdiffnas.objectives.base import Objective

if TYPE_CHECKING:
    from torch import nn


class FlopsObjective(Objective):
    name = "flops"
    description = "multiply-accumulates of the conv and linear layers (as counted for NB201)"
    additive = True

    def compute(self, model: nn.Module, input_shape: tuple[int, ...], seed: int = 0) -> float:
        from hwdiffnas.materialize import count_macs

        return float(count_macs(model, input_shape))


class ParamsObjective(Objective):
    name = "params"
    description = "number of trainable parameters"
    additive = True

    def compute(self, model: nn.Module, input_shape: tuple[int, ...], seed: int = 0) -> float:
        from hwdiffnas.materialize import count_parameters

        return float(count_parameters(model))


class SynflowObjective(Objective):
    name = "synflow"
    description = "log synaptic flow: Σ|θ·∂R/∂θ| with |θ|, all-ones input (Tanaka et al. 2020)"

    def compute(self, model: nn.Module, input_shape: tuple[int, ...], seed: int = 0) -> float:
        import math

        import torch

        net = model.double().eval()
        with torch.no_grad():
            for p in net.state_dict().values():
                if p.is_floating_point():
                    p.abs_()
        net.zero_grad()
        out = net(torch.ones(input_shape, dtype=torch.float64))
        out.sum().backward()
        with torch.no_grad():
            total = sum(float((p * p.grad).abs().sum()) for p in net.parameters() if p.grad is not None)
        return math.log(total) if total > 0 else float("-inf")


class NaswotObjective(Objective):
    name = "naswot"
    description = "log|det| of the ReLU activation-pattern kernel over a Gaussian batch (Mellor et al. 2021)"
    needs_torch_seed = True
    batch = 32

    def compute(self, model: nn.Module, input_shape: tuple[int, ...], seed: int = 0) -> float:
        import torch
        from torch import nn

        gen = torch.Generator().manual_seed(seed)
        x = torch.randn((self.batch, *input_shape[1:]), generator=gen)
        kernel = torch.zeros(self.batch, self.batch, dtype=torch.float64)

        def hook(_m: nn.Module, _inp: tuple, out: torch.Tensor) -> None:
            # K_ij = #units where i and j agree = 2·c_i·c_j − |c_i| − |c_j| + n: one product instead of two, in
            # float32 while every entry is an integer below 2^24 (exact), so the kernel is the same bit for bit
            n = out[0].numel()
            dtype = torch.float32 if 3 * n < 2**24 else torch.float64
            codes = (out.detach().reshape(self.batch, -1) > 0).to(dtype)
            ones = codes.sum(dim=1, keepdim=True)
            kernel.add_((2 * (codes @ codes.T) - ones - ones.T + n).double())

        handles = [m.register_forward_hook(hook) for m in model.modules() if isinstance(m, nn.ReLU)]
        try:
            with torch.no_grad():
                model.eval()(x)
        finally:
            for h in handles:
                h.remove()
        sign, logdet = torch.linalg.slogdet(kernel)
        return float(logdet) if float(sign) > 0 else float("-inf")


class ZenObjective(Objective):
    name = "zen"
    description = "Zen-score: log expected feature change under input perturbation + BN scale terms (Lin et al. 2021)"
    needs_torch_seed = True
    batch = 16
    mixup = 0.01

    def compute(self, model: nn.Module, input_shape: tuple[int, ...], seed: int = 0) -> float:
        import math

        import torch
        from torch import nn

        gen = torch.Generator().manual_seed(seed)
        with torch.no_grad():
            for m in model.modules():
                if isinstance(m, (nn.Conv2d, nn.Linear)):
                    m.weight.normal_(generator=gen)
                    if m.bias is not None:
                        m.bias.zero_()
        pools = [m for m in model.modules() if isinstance(m, nn.AdaptiveAvgPool2d)]
        if not pools:
            raise ValueError("zen needs a network with a global average pool")
        feats: list[torch.Tensor] = []
        bn_vars: list[float] = []
        pool_handle = pools[-1].register_forward_hook(lambda _m, inp, _out: feats.append(inp[0]))
        bn_handles = [m.register_forward_hook(lambda _m, inp, _out: bn_vars.append(
            float(inp[0].var(dim=(0, 2, 3), unbiased=False).mean()))) for m in model.modules()
            if isinstance(m, nn.BatchNorm2d)]
        x = torch.randn((self.batch, *input_shape[1:]), generator=gen)
        eps = torch.randn(x.shape, generator=gen)
        try:
            with torch.no_grad():
                model.train()
                model(x)
                n_bn = len(bn_vars)
                model(x + self.mixup * eps)
        finally:
            pool_handle.remove()
            for h in bn_handles:
                h.remove()
            model.eval()
        delta = float((feats[0] - feats[1]).abs().sum(dim=(1, 2, 3)).mean())
        scale = sum(0.5 * math.log(v) for v in bn_vars[:n_bn] if v > 0)
        return (math.log(delta) if delta > 0 else float("-inf")) + scale
