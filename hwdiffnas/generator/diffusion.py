"""Discrete diffusion maths over categorical node classes (DiGress family), written from the equations.

Notation (row-vector convention, one categorical variable per node, K classes):

* ``m`` (K,) — the marginal class distribution of the training data; the noise limit.
* cosine schedule: ``ᾱ(t) = cos²(π/2 · (t/T + s)/(1 + s)) / cos²(π/2 · s/(1 + s))`` for t = 0..T, and the
  one-step keep probability ``α_t = ᾱ(t)/ᾱ(t−1)``.
* one-step transition ``Q_t = α_t I + (1 − α_t) 1 mᵀ`` and, because ``mᵀ Q = mᵀ`` for every matrix of this
  family, the products stay in it: ``Q̄_t = Q_1 ⋯ Q_t = ᾱ_t I + (1 − ᾱ_t) 1 mᵀ`` and, for s < t,
  ``Q_{t|s} = Q_{s+1} ⋯ Q_t = (ᾱ_t/ᾱ_s) I + (1 − ᾱ_t/ᾱ_s) 1 mᵀ``.
* forward noising ``q(x_t | x_0) = x_0 Q̄_t``.
* posterior (Bayes) ``q(x_s | x_t, x_0) = (x_t Q_{t|s}ᵀ) ⊙ (x_0 Q̄_s) / (x_0 Q̄_t x_tᵀ)``.
* reverse step with a denoiser's x0 prediction ``p̂``: ``p(x_s | x_t) = Σ_k p̂(k) q(x_s | x_t, x_0 = k)``.

Allowing any s < t in the posterior lets the sampler skip steps (fewer network calls) with exact maths.

In NAS-Bench-201 the cell graph's topology is fixed (input, six op-nodes, output, one adjacency for every
cell), and the input/output node classes are fixed too; only the classes of the six op-nodes vary. Diffusing
the edges or the two end-nodes would spend model capacity and sampling steps on variables whose value is
known, and could produce graphs that are not cells. We therefore diffuse only the six op-node classes
(K = 5 operations); the adjacency enters the denoiser as an attention bias.
"""

from __future__ import annotations

import math
from typing import TYPE_CHECKING

import numpy as np

if TYPE_CHECKING:
    import torch


def cosine_alpha_bar(timesteps: int, s: float = 0.008) -> np.ndarray:
    """ᾱ(t) for t = 0..T under the cosine schedule; shape (T + 1,), ᾱ(0) = 1, decreasing to ≈ 0."""
    t = np.arange(timesteps + 1, dtype=np.float64) / timesteps  # (T+1,)
    f = np.cos(0.5 * math.pi * (t + s) / (1.0 + s)) ** 2
    alpha_bar = f / f[0]
    # Clip so that every one-step α_t = ᾱ_t/ᾱ_{t-1} stays in (0, 1] and ᾱ_T is a small positive number.
    alpha_bar = np.clip(alpha_bar, 1e-5, 1.0)
    return alpha_bar


class MarginalDiffusion:
    """Marginal-transition discrete diffusion for ``n`` categorical nodes with ``K`` classes."""

    def __init__(self, marginals: np.ndarray, timesteps: int = 500) -> None:
        m = np.asarray(marginals, dtype=np.float64)
        if m.ndim != 1 or m.size < 2 or np.any(m < 0) or not np.isclose(m.sum(), 1.0):
            raise ValueError(f"marginals must be a probability vector, got {m}")
        if timesteps < 1:
            raise ValueError("timesteps must be >= 1")
        self.K = int(m.size)
        self.T = int(timesteps)
        self.marginals = m  # (K,)
        self.alpha_bar = cosine_alpha_bar(self.T)  # (T+1,)

    # --- matrices (numpy, float64; used by tests and by the torch code through `_keep`) ---------------
    def _keep(self, t: int, s: int | None = None) -> float:
        """Keep probability of Q_{t|s} (s defaults to 0, i.e. Q̄_t)."""
        if s is None:
            return float(self.alpha_bar[t])
        return float(self.alpha_bar[t] / self.alpha_bar[s])

    def _matrix(self, keep: float) -> np.ndarray:
        return keep * np.eye(self.K) + (1.0 - keep) * np.outer(np.ones(self.K), self.marginals)  # (K, K)

    def Q(self, t: int) -> np.ndarray:
        """One-step transition Q_t (K, K), t in 1..T; row i = q(x_t | x_{t-1} = i)."""
        return self._matrix(self._keep(t, t - 1))

    def Q_bar(self, t: int) -> np.ndarray:
        """Cumulative transition Q̄_t = Q_1 ⋯ Q_t (K, K), t in 0..T."""
        return self._matrix(self._keep(t))

    def Q_between(self, s: int, t: int) -> np.ndarray:
        """Q_{t|s} = Q_{s+1} ⋯ Q_t (K, K) for 0 <= s < t."""
        return self._matrix(self._keep(t, s))

    # --- torch operations --------------------------------------------------------------------------
    def q_probs(self, x0: torch.Tensor, t: torch.Tensor) -> torch.Tensor:
        """q(x_t | x_0) for integer classes ``x0`` (B, n) at per-sample steps ``t`` (B,) → (B, n, K)."""
        import torch
        import torch.nn.functional as F

        ab = torch.as_tensor(self.alpha_bar, dtype=torch.float32)[t].view(-1, 1, 1)  # (B, 1, 1)
        m = torch.as_tensor(self.marginals, dtype=torch.float32).view(1, 1, -1)  # (1, 1, K)
        onehot = F.one_hot(x0, self.K).float()  # (B, n, K)
        return ab * onehot + (1.0 - ab) * m  # (B, n, K)

    def noise(self, x0: torch.Tensor, t: torch.Tensor, generator: torch.Generator | None = None) -> torch.Tensor:
        """Sample x_t ~ q(x_t | x_0): (B, n) integer classes."""
        import torch

        probs = self.q_probs(x0, t)  # (B, n, K)
        B, n, K = probs.shape
        flat = torch.multinomial(probs.reshape(B * n, K), 1, generator=generator)  # (B*n, 1)
        return flat.view(B, n)

    def sample_limit(self, batch: int, n: int, generator: torch.Generator | None = None) -> torch.Tensor:
        """x_T drawn from the limit distribution m: (batch, n) integer classes."""
        import torch

        m = torch.as_tensor(self.marginals, dtype=torch.float32).expand(batch * n, self.K)  # (B*n, K)
        return torch.multinomial(m, 1, replacement=True, generator=generator).view(batch, n)

    def posterior(self, xt: torch.Tensor, p0: torch.Tensor, t: int, s: int) -> torch.Tensor:
        """p(x_s | x_t) = Σ_k p0[k] q(x_s | x_t, x_0 = k) for s < t.

        ``xt`` (B, n) integer classes, ``p0`` (B, n, K) predicted distribution of x_0 → (B, n, K), rows sum to 1.
        """
        import torch

        if not 0 <= s < t <= self.T:
            raise ValueError(f"need 0 <= s < t <= T, got s={s}, t={t}")
        K = self.K
        m = torch.as_tensor(self.marginals, dtype=p0.dtype)  # (K,)
        a_ts = self._keep(t, s)  # keep prob of Q_{t|s}
        a_s = self._keep(s)  # keep prob of Q̄_s
        a_t = self._keep(t)  # keep prob of Q̄_t
        eye = torch.eye(K, dtype=p0.dtype)
        Q_ts = a_ts * eye + (1 - a_ts) * m.view(1, K)  # (K, K)
        Qb_s = a_s * eye + (1 - a_s) * m.view(1, K)  # (K, K)
        Qb_t = a_t * eye + (1 - a_t) * m.view(1, K)  # (K, K)
        # likelihood of the observed x_t from each candidate x_s = j: Q_{t|s}[j, x_t]
        like = Q_ts.T[xt]  # (B, n, K_j)
        # prior of x_s = j given x_0 = k: Q̄_s[k, j]; evidence Q̄_t[k, x_t]
        evidence = Qb_t.T[xt]  # (B, n, K_k)
        # q(x_s=j | x_t, x_0=k) = like[j] * Qb_s[k, j] / evidence[k]; mix over k with weights p0[k]
        weights = p0 / evidence.clamp_min(1e-12)  # (B, n, K_k)
        mixed = torch.einsum("bnk,kj->bnj", weights, Qb_s) * like  # (B, n, K_j)
        return mixed / mixed.sum(-1, keepdim=True).clamp_min(1e-12)

    def posterior_given_x0(self, xt: torch.Tensor, x0: torch.Tensor, t: int, s: int) -> torch.Tensor:
        """Exact q(x_s | x_t, x_0) for known integer ``x0`` (B, n) → (B, n, K)."""
        import torch.nn.functional as F

        return self.posterior(xt, F.one_hot(x0, self.K).to(dtype=self._dtype()), t, s)

    @staticmethod
    def _dtype() -> torch.dtype:
        import torch

        return torch.float64

    def step_schedule(self, steps: int) -> list[int]:
        """Decreasing timesteps T = τ_0 > τ_1 > … > τ_S = 0 for an S-step sampler (S <= T)."""
        steps = max(1, min(int(steps), self.T))
        taus = np.unique(np.round(np.linspace(0, self.T, steps + 1)).astype(int))[::-1]
        return [int(x) for x in taus]
