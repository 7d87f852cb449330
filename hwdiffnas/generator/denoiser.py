"""The x0-predicting graph-transformer denoiser (torch; imported lazily by the generator).

Input: the noisy op classes of the six op-nodes ``x_t`` (B, 6), the timestep ``t`` (B,), and a
`ConditionBatch`. The network sees all eight nodes of the cell graph (input and output nodes carry their fixed
classes 5 and 6) and attends over them with a learned per-head bias for each relation of the fixed adjacency
(self, edge i→j, edge j→i, no edge). Each condition group passes through its own MLP; a dropped group is
replaced by a learned null embedding. The timestep and the conditions modulate every layer (FiLM on the layer
norms). Output: logits (B, 6, 5) of the clean op classes x0. The shapes are NB201's; another space brings its
own `Encoding` (positions, op classes, fixed graph) and device-representation width.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass

import numpy as np
import torch
from torch import nn

from hwdiffnas.generator.conditions import DEVICE_DIM, SCALAR_DIM, ConditionBatch
from hwdiffnas.spaces.base import Encoding


@dataclass(frozen=True)
class DenoiserConfig:
    """Sizes of the denoiser (stored in the checkpoint's JSON)."""

    d_model: int = 64
    heads: int = 4
    layers: int = 3
    d_cond: int = 32
    n_datasets: int = 1

    def to_dict(self) -> dict[str, int]:
        return asdict(self)


def _relations(enc: Encoding) -> torch.Tensor:
    """(n, n) relation ids of the encoding's fixed graph (NB201: 8 nodes): 0 self, 1 edge i→j, 2 edge j→i,
    3 none."""
    adj = torch.tensor(np.array(enc.adjacency), dtype=torch.long)  # (n, n)
    rel = torch.full((enc.nodes, enc.nodes), 3, dtype=torch.long)
    rel[adj.T == 1] = 2
    rel[adj == 1] = 1
    rel[torch.eye(enc.nodes, dtype=torch.bool)] = 0
    return rel


def timestep_embedding(t: torch.Tensor, dim: int) -> torch.Tensor:
    """Sinusoidal embedding of the normalized timestep ``t`` in [0, 1]: (B,) → (B, dim)."""
    half = dim // 2
    freqs = torch.exp(torch.arange(half, dtype=torch.float32) * (-math.log(1000.0) / max(1, half - 1)))  # (half,)
    ang = t.float().view(-1, 1) * 1000.0 * freqs.view(1, -1)  # (B, half)
    return torch.cat([torch.sin(ang), torch.cos(ang)], dim=1)  # (B, dim)


def _mlp(d_in: int, d_hidden: int, d_out: int) -> nn.Sequential:
    return nn.Sequential(nn.Linear(d_in, d_hidden), nn.SiLU(), nn.Linear(d_hidden, d_out))


class _Block(nn.Module):
    """Pre-norm transformer block with relation-biased attention and FiLM from the global vector."""

    def __init__(self, d: int, heads: int) -> None:
        super().__init__()
        self.heads = heads
        self.norm1 = nn.LayerNorm(d, elementwise_affine=False)
        self.norm2 = nn.LayerNorm(d, elementwise_affine=False)
        self.qkv = nn.Linear(d, 3 * d)
        self.proj = nn.Linear(d, d)
        self.ff = nn.Sequential(nn.Linear(d, 2 * d), nn.SiLU(), nn.Linear(2 * d, d))
        self.film = nn.Linear(d, 4 * d)  # scale/shift for both norms
        self.rel_bias = nn.Embedding(4, heads)

    def forward(self, h: torch.Tensor, g: torch.Tensor, rel: torch.Tensor) -> torch.Tensor:
        B, n, d = h.shape  # (B, 8, d)
        s1, b1, s2, b2 = self.film(g).unsqueeze(1).chunk(4, dim=-1)  # each (B, 1, d)
        x = self.norm1(h) * (1 + s1) + b1  # (B, 8, d)
        q, k, v = self.qkv(x).view(B, n, 3, self.heads, d // self.heads).permute(2, 0, 3, 1, 4)  # (B, H, 8, dh)
        bias = self.rel_bias(rel).permute(2, 0, 1).unsqueeze(0)  # (1, H, 8, 8)
        att = torch.softmax(q @ k.transpose(-1, -2) / math.sqrt(d // self.heads) + bias, dim=-1)  # (B, H, 8, 8)
        out = (att @ v).transpose(1, 2).reshape(B, n, d)  # (B, 8, d)
        h = h + self.proj(out)
        x = self.norm2(h) * (1 + s2) + b2
        return h + self.ff(x)  # (B, 8, d)


class Denoiser(nn.Module):
    """x0-predicting graph transformer over a space's encoding graph (NB201: the 8-node cell graph).
    ``device_dim``: width of the device representation (the space's reference count + 1)."""

    def __init__(self, cfg: DenoiserConfig, encoding: Encoding, device_dim: int = DEVICE_DIM) -> None:
        super().__init__()
        self.cfg = cfg
        self.encoding = encoding
        d, dc = cfg.d_model, cfg.d_cond
        n_ops = len(encoding.choices)
        self.class_emb = nn.Embedding(n_ops + 2, d)  # op classes 0..n_ops-1, input n_ops, output n_ops + 1
        self.pos_emb = nn.Parameter(torch.zeros(encoding.nodes, d))
        self.time_mlp = _mlp(d, d, d)
        self.cond_mlps = nn.ModuleList([
            _mlp(SCALAR_DIM + cfg.n_datasets, dc, dc),  # accuracy
            _mlp(device_dim, dc, dc),  # device
            _mlp(SCALAR_DIM, dc, dc),  # latency
        ])
        self.null = nn.Parameter(torch.zeros(3, dc))  # learned null embedding per group
        self.cond_proj = nn.Linear(3 * dc, d)
        self.blocks = nn.ModuleList([_Block(d, cfg.heads) for _ in range(cfg.layers)])
        self.out_norm = nn.LayerNorm(d)
        self.head = nn.Linear(d, n_ops)
        self.register_buffer("rel", _relations(encoding), persistent=False)
        nn.init.normal_(self.pos_emb, std=0.02)
        nn.init.normal_(self.null, std=0.02)

    def condition_vector(self, cond: ConditionBatch) -> torch.Tensor:
        """(B, d) global condition embedding (null embeddings for absent groups)."""
        feats = [torch.as_tensor(cond.accuracy), torch.as_tensor(cond.device), torch.as_tensor(cond.latency)]
        present = torch.as_tensor(cond.present)  # (B, 3)
        parts = []
        for g, (mlp, x) in enumerate(zip(self.cond_mlps, feats)):
            e = mlp(x.float())  # (B, dc)
            parts.append(torch.where(present[:, g:g + 1], e, self.null[g].expand_as(e)))
        return self.cond_proj(torch.cat(parts, dim=1))  # (B, d)

    def forward(self, xt: torch.Tensor, t_frac: torch.Tensor, cond: ConditionBatch) -> torch.Tensor:
        """Logits of x0: ``xt`` (B, 6) op classes, ``t_frac`` (B,) = t/T → (B, 6, 5)."""
        B = xt.shape[0]
        ends_in = torch.full((B, 1), self.encoding.input_class, dtype=torch.long)
        ends_out = torch.full((B, 1), self.encoding.output_class, dtype=torch.long)
        nodes = torch.cat([ends_in, xt, ends_out], dim=1)  # (B, 8)
        h = self.class_emb(nodes) + self.pos_emb  # (B, 8, d)
        g = self.time_mlp(timestep_embedding(t_frac, self.cfg.d_model)) + self.condition_vector(cond)  # (B, d)
        h = h + g.unsqueeze(1)
        for blk in self.blocks:
            h = blk(h, g, self.rel)
        return self.head(self.out_norm(h[:, 1:1 + self.encoding.positions]))  # (B, 6, 5)
