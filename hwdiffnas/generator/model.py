"""The generator: diffusion + denoiser + the facts a checkpoint carries; sampling with guidance; checkpoints.

A checkpoint is ONE safetensors file: the denoiser weights as tensors and a JSON config in the file's metadata
(key ``hwdiffnas.generator``): format version, search space (``space``: the encoding's identity; ``space_name``: the
registered space, ``nb201`` when absent), sizes, diffusion settings, datasets, the device
representations and latency quantiles of the training devices, and training provenance. No pickle anywhere.
Resumable training keeps its optimizer state in a sidecar ``<ckpt>.state.safetensors``.
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from hwdiffnas.errors import UserError
from hwdiffnas.generator.conditions import GROUPS, ConditionBatch
from hwdiffnas.plugins import DEFAULT_SPACE, get_space
from hwdiffnas.spaces.base import SearchSpace

if TYPE_CHECKING:
    import torch

    from hwdiffnas.generator.denoiser import Denoiser

FORMAT = "hwdiffnas-generator"
FORMAT_VERSION = 1
META_KEY = "hwdiffnas.generator"
QUANTILE_POINTS = 201


@dataclass(frozen=True)
class Guidance:
    """How conditions steer sampling.

    ``mode``: ``"none"`` (conditional logits only), ``"joint"`` (DiNAS: ``(1+w)·cond − w·uncond``, one extra pass),
    or ``"per-condition"`` (``cond + Σ_g w_g (cond − cond_without_g)``, one extra pass per guided group).
    ``adaptive_fraction`` a in [0, 1): in the last ``a`` fraction of the steps (the low-noise end) the guidance
    passes are skipped and the conditional logits are used alone (adaptive guidance).
    """

    mode: str = "joint"
    scale: float = 2.0
    scales: dict[str, float] = field(default_factory=lambda: {"accuracy": 2.0, "device": 0.0, "latency": 2.0})
    adaptive_fraction: float = 0.0

    def __post_init__(self) -> None:
        if self.mode not in ("none", "joint", "per-condition"):
            raise UserError(f"unknown guidance mode {self.mode!r}; known: none, joint, per-condition")
        bad = sorted(set(self.scales) - set(GROUPS))
        if bad:
            raise UserError(f"unknown condition group(s) {bad} in guidance scales; known: {', '.join(GROUPS)}")
        if not 0.0 <= self.adaptive_fraction < 1.0:
            raise UserError(f"adaptive_fraction must be in [0, 1), got {self.adaptive_fraction}")


@dataclass
class GeneratorMeta:
    """Everything besides the weights that a checkpoint must carry."""

    denoiser: dict[str, int]
    timesteps: int
    marginals: list[float]
    datasets: list[str]
    accuracy_column: str
    devices: dict[str, dict[str, list[float]]]  # name -> {"rep": (11,), "quantiles_ms": (201,)}
    training: dict[str, Any] = field(default_factory=dict)
    step: int = 0
    space_name: str = DEFAULT_SPACE
    scorers: dict[str, dict[str, Any]] = field(default_factory=dict)
    """Objective scorers of a checkpoint whose "datasets" are objectives (open spaces); empty for NB201."""

    @property
    def space(self) -> SearchSpace[Any]:
        """The registered search space this checkpoint's samples belong to."""
        return get_space(self.space_name)

    @property
    def device_dim(self) -> int:
        """Width of the device representation: the space's reference architectures + 1."""
        return len(self.space.reference_archs()) + 1

    def to_json(self) -> str:
        body = {"format": FORMAT, "version": FORMAT_VERSION, "space": self.space.encoding.identity,
                **self.__dict__}
        if self.space_name == DEFAULT_SPACE:  # checkpoints of the default space stay as they were written
            body.pop("space_name")
        if not self.scorers:
            body.pop("scorers")
        return json.dumps(body, sort_keys=True)

    @classmethod
    def from_json(cls, text: str, where: str) -> GeneratorMeta:
        try:
            body = json.loads(text)
        except json.JSONDecodeError as exc:
            raise UserError(f"{where}: generator config is not valid JSON ({exc.msg})") from exc
        if not isinstance(body, dict) or body.get("format") != FORMAT:
            raise UserError(f"{where}: not a hwdiffnas generator checkpoint")
        if body.get("version") != FORMAT_VERSION:
            raise UserError(f"{where}: generator checkpoint format version {body.get('version')!r}; this hwdiffnas "
                            f"reads version {FORMAT_VERSION} (retrain with `hwdiffnas train`)")
        name = body.get("space_name", DEFAULT_SPACE)
        if not isinstance(name, str):
            raise UserError(f"{where}: generator config space_name must be a string, got {name!r}")
        try:
            space = get_space(name)
        except UserError as exc:
            raise UserError(f"{where}: checkpoint of search space {name!r}: {exc}") from None
        if body.get("space") != space.encoding.identity:
            raise UserError(f"{where}: checkpoint is for search space encoding {body.get('space')!r}, not "
                            f"{space.name}'s {space.encoding.identity!r}")
        keys = ("denoiser", "timesteps", "marginals", "datasets", "accuracy_column", "devices", "training", "step")
        missing = [k for k in keys if k not in body]
        if missing:
            raise UserError(f"{where}: generator config lacks {', '.join(missing)}")
        _check_config(body, where, len(space.encoding.choices), len(space.reference_archs()) + 1)
        scorers = body.get("scorers", {})
        if not isinstance(scorers, dict) or not all(isinstance(v, dict) for v in scorers.values()):
            raise UserError(f"{where}: generator config scorers must map objective names to objects")
        return cls(**{k: body[k] for k in keys}, space_name=name, scorers=scorers)


MAX_TIMESTEPS = 10_000
DENOISER_BOUNDS = {"d_model": 4096, "heads": 64, "layers": 64, "d_cond": 4096, "n_datasets": 64}


def _is_int(v: Any, lo: int, hi: int) -> bool:
    return isinstance(v, int) and not isinstance(v, bool) and lo <= v <= hi


def _finite_list(v: Any, n: int) -> bool:
    return (isinstance(v, list) and len(v) == n
            and all(isinstance(x, (int, float)) and not isinstance(x, bool) and math.isfinite(x) for x in v))


def _check_config(body: dict[str, Any], where: str, n_ops: int, device_dim: int) -> None:
    """Types and bounds of a checkpoint's config (it is read from a file: a typo must not allocate gigabytes)."""
    def bad(what: str) -> UserError:
        return UserError(f"{where}: generator config {what}")

    if not _is_int(body["timesteps"], 1, MAX_TIMESTEPS):
        raise bad(f"timesteps={body['timesteps']!r} must be an integer in 1..{MAX_TIMESTEPS}")
    den = body["denoiser"]
    if not isinstance(den, dict) or set(den) != set(DENOISER_BOUNDS):
        raise bad(f"denoiser must be a mapping with exactly {', '.join(DENOISER_BOUNDS)}")
    for k, hi in DENOISER_BOUNDS.items():
        if not _is_int(den[k], 1, hi):
            raise bad(f"denoiser {k}={den[k]!r} must be an integer in 1..{hi}")
    if den["d_model"] % den["heads"]:
        raise bad(f"denoiser d_model={den['d_model']} is not a multiple of heads={den['heads']}")
    marg = body["marginals"]
    if not _finite_list(marg, n_ops) or min(marg) < 0 or sum(marg) <= 0:
        raise bad(f"marginals must be {n_ops} finite non-negative numbers with a positive sum")
    datasets = body["datasets"]
    if not isinstance(datasets, list) or not datasets or not all(isinstance(d, str) for d in datasets):
        raise bad("datasets must be a non-empty list of dataset names")
    if not isinstance(body["accuracy_column"], str) or not isinstance(body["training"], dict):
        raise bad("accuracy_column must be a string and training a mapping")
    if not _is_int(body["step"], 0, 2**62):
        raise bad(f"step={body['step']!r} must be a non-negative integer")
    devices = body["devices"]
    if not isinstance(devices, dict):
        raise bad(f"devices must be a mapping of device name to {{rep, quantiles_ms}}, got a "
                  f"{type(devices).__name__}")
    for name, d in devices.items():
        if (not isinstance(d, dict) or not _finite_list(d.get("rep"), device_dim)
                or not _finite_list(d.get("quantiles_ms"), QUANTILE_POINTS)):
            raise bad(f"device {name!r} needs rep ({device_dim} finite numbers) and quantiles_ms "
                      f"({QUANTILE_POINTS} finite numbers)")
        q = d["quantiles_ms"]
        if q[0] <= 0 or any(b < a for a, b in zip(q, q[1:])):
            raise bad(f"device {name!r} quantiles_ms must be positive and non-decreasing")


class Generator:
    """A trained (or training) conditional graph-diffusion generator of a space's architectures (its
    checkpoint records the space)."""

    def __init__(self, meta: GeneratorMeta, denoiser: Denoiser | None = None) -> None:
        from hwdiffnas.generator.denoiser import Denoiser, DenoiserConfig
        from hwdiffnas.generator.diffusion import MarginalDiffusion

        configure_threads()
        self.meta = meta
        self.diffusion = MarginalDiffusion(np.asarray(meta.marginals), meta.timesteps)
        self.space = meta.space
        self.positions = self.space.encoding.positions
        self.net = denoiser if denoiser is not None else Denoiser(DenoiserConfig(**meta.denoiser),
                                                                  self.space.encoding, meta.device_dim)

    # --- checkpoints ---------------------------------------------------------------------------------
    def save(self, path: Path | str) -> None:
        """Write weights + config atomically to one safetensors file."""
        from safetensors.torch import save_file

        path = Path(path)
        path.parent.mkdir(parents=True, exist_ok=True)
        tensors = {k: v.detach().contiguous().clone() for k, v in self.net.state_dict().items()}
        tmp = path.with_name(path.name + ".tmp")
        save_file(tensors, str(tmp), metadata={META_KEY: self.meta.to_json()})
        tmp.replace(path)

    @classmethod
    def load(cls, path: Path | str) -> Generator:
        """Read and validate a checkpoint; any problem is a one-line `UserError`."""
        import torch
        from safetensors import safe_open

        path = Path(path)
        if not path.is_file():
            raise UserError(f"generator checkpoint {path} does not exist")
        try:
            with safe_open(str(path), framework="pt") as fh:
                text = (fh.metadata() or {}).get(META_KEY)
                tensors = {k: fh.get_tensor(k) for k in fh.keys()}
        except Exception as exc:  # safetensors raises several types for damaged files
            raise UserError(f"{path}: cannot read generator checkpoint ({type(exc).__name__}: "
                            f"{str(exc).splitlines()[0] if str(exc) else 'corrupt file'})") from exc
        if text is None:
            raise UserError(f"{path}: safetensors file has no hwdiffnas generator config")
        meta = GeneratorMeta.from_json(text, str(path))
        try:
            gen = cls(meta)
        except (TypeError, ValueError) as exc:
            raise UserError(f"{path}: generator config is inconsistent ({exc})") from exc
        expected = gen.net.state_dict()
        if set(expected) != set(tensors) or any(expected[k].shape != tensors[k].shape for k in expected):
            raise UserError(f"{path}: weights do not match the configured denoiser sizes")
        if not all(torch.isfinite(t).all() for t in tensors.values()):
            raise UserError(f"{path}: weights contain NaN or inf")
        gen.net.load_state_dict(tensors)
        gen.net.eval()
        return gen

    # --- facts ---------------------------------------------------------------------------------------
    def device_rep(self, device: str) -> np.ndarray:
        """(11,) representation of a training device."""
        return np.asarray(self.meta.devices[device]["rep"], dtype=np.float32)

    def device_quantiles_ms(self, device: str) -> np.ndarray:
        """(201,) latency quantiles (ms) of a training device's connected cells, at 0, 0.5, …, 100 %."""
        return np.asarray(self.meta.devices[device]["quantiles_ms"], dtype=np.float64)

    # --- sampling ------------------------------------------------------------------------------------
    def logits(self, xt: torch.Tensor, t: int, cond: ConditionBatch) -> torch.Tensor:
        """Denoiser logits (B, 6, 5) at integer step ``t`` for a batch."""
        import torch

        t_frac = torch.full((xt.shape[0],), t / self.diffusion.T)
        return self.net(xt, t_frac, cond)

    def guided_logits(self, xt: torch.Tensor, t: int, cond: ConditionBatch, guidance: Guidance,
                      skip_guidance: bool) -> torch.Tensor:
        """Logits (B, 6, 5) after classifier-free guidance; one batched network call."""
        B = xt.shape[0]
        variants: list[np.ndarray] = []  # presence masks of the extra passes
        if not skip_guidance and guidance.mode == "joint" and guidance.scale != 0:
            variants.append(np.zeros_like(cond.present))
        guided_groups: list[tuple[int, float]] = []
        if not skip_guidance and guidance.mode == "per-condition":
            for g, name in enumerate(GROUPS):
                w = float(guidance.scales.get(name, 0.0))
                if w != 0 and cond.present[:, g].any():
                    mask = cond.present.copy()
                    mask[:, g] = False
                    variants.append(mask)
                    guided_groups.append((g, w))
        full = cond
        for mask in variants:
            full = full.concat(cond.with_present(mask))
        x_rep = xt.repeat(1 + len(variants), 1)  # ((1+V)·B, 6)
        out = self.logits(x_rep, t, full).view(1 + len(variants), B, self.positions, -1)  # (1+V, B, 6, 5)
        lc = out[0]
        if not variants:
            return lc
        if guidance.mode == "joint":
            return (1 + guidance.scale) * lc - guidance.scale * out[1]
        res = lc.clone()
        for v, (_g, w) in enumerate(guided_groups, start=1):
            res = res + w * (lc - out[v])
        return res

    def sample(self, cond: ConditionBatch, n: int, steps: int = 50, guidance: Guidance | None = None,
               seed: int = 0, batch_size: int = 1024) -> np.ndarray:
        """Draw ``n`` architectures as op-index arrays (n, positions) (NB201: (n, 6)); ``cond`` has batch 1
        (broadcast) or ``n``; `SearchSpace.decode` turns a row into an architecture."""
        import torch

        guidance = guidance or Guidance()
        gen = torch.Generator().manual_seed(int(seed))
        taus = self.diffusion.step_schedule(steps)  # T ... 0
        n_adaptive = int(math.floor(guidance.adaptive_fraction * (len(taus) - 1)))
        out = []
        self.net.eval()
        with torch.inference_mode():
            for start in range(0, n, batch_size):
                b = min(batch_size, n - start)
                c = _slice_cond(cond, start, b)
                x = self.diffusion.sample_limit(b, self.positions, generator=gen)  # (b, 6)
                for i, (t, s) in enumerate(zip(taus[:-1], taus[1:])):
                    skip = i >= len(taus) - 1 - n_adaptive
                    lg = self.guided_logits(x, t, c, guidance, skip_guidance=skip)  # (b, 6, 5)
                    p0 = torch.softmax(lg.double(), dim=-1)  # (b, 6, 5)
                    if s == 0:
                        probs = p0
                    else:
                        probs = self.diffusion.posterior(x, p0, t, s)  # (b, 6, 5)
                    x = torch.multinomial(probs.reshape(-1, probs.shape[-1]).float(), 1,
                                          generator=gen).view(b, self.positions)
                out.append(x.numpy())
        return np.concatenate(out, axis=0) if out else np.zeros((0, self.positions), dtype=np.int64)


def configure_threads() -> None:
    """Run torch single-threaded unless ``$HWDIFFNAS_TORCH_THREADS`` says otherwise.

    The denoiser works on tiny tensors; on a small shared CPU, intra-op threads mostly wait for each other
    (measured here: one thread trains and samples about 10x faster than two while other jobs run).
    """
    import os

    import torch

    want = os.environ.get("HWDIFFNAS_TORCH_THREADS", "1")
    try:
        n = max(1, int(want))
    except ValueError as exc:
        raise UserError(f"HWDIFFNAS_TORCH_THREADS must be a positive integer, got {want!r}") from exc
    if torch.get_num_threads() != n:
        torch.set_num_threads(n)


def _slice_cond(cond: ConditionBatch, start: int, b: int) -> ConditionBatch:
    if len(cond) == 1:
        return ConditionBatch(*(np.repeat(a, b, axis=0) for a in
                                (cond.accuracy, cond.device, cond.latency, cond.present)))
    sl = slice(start, start + b)
    return ConditionBatch(cond.accuracy[sl], cond.device[sl], cond.latency[sl], cond.present[sl])
