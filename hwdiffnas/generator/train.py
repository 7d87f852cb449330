"""Training the conditional generator: data from the benchmark store, seeded batches, resumable checkpoints.

One training example is (device d, budget quantile u, cell c that fits u on d, its accuracy rank r among the
fitting labelled cells, dataset). The budget comes first (u uniform over the device's connected-cell latency
ranks), then the cell: with probability ``p_top`` (0.8) among the most accurate fitting labelled cells — the single
best one with probability ``p_best`` (0.5), else one of the top 0.1–10 % — otherwise uniformly among the fitting
cells (so the region the sampler asks for, r ≈ 1, is dense in training; with 0.5/0.3 the grid's mean regret was
0.18, with 0.8/0.5 it is 0.06). Because r is a
function of (c, u, d), this choice of cells changes only how often each condition is seen, not what
p(cell | conditions) is. Each condition group is then dropped on its own (probability ``p_drop``), all together
(``p_drop_all``, the unconditional model for joint guidance), and the accuracy group always for unlabelled
cells (``--label-fraction``).
"""

from __future__ import annotations

import json
import math
import sys
import time
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from hwdiffnas.errors import UserError
from hwdiffnas.generator.conditions import (
    ConditionBatch,
    build_conditions,
    device_representation,
)
from hwdiffnas.generator.model import QUANTILE_POINTS, Generator, GeneratorMeta
from hwdiffnas.latency.reference import table_quantiles
from hwdiffnas.plugins import DEFAULT_SPACE, get_space


@dataclass
class DeviceData:
    """One training device: latency-sorted connected cells and its representation."""

    name: str
    order: np.ndarray  # (Nd,) row indices of connected cells with a latency, sorted by (latency, row)
    lat_sorted_ms: np.ndarray  # (Nd,)
    rep: np.ndarray  # (11,)
    reference_sorted_ms: np.ndarray | None = None
    """The latencies a budget quantile is taken over (None: the training rows themselves, as in NB201, where
    they are every connected cell)."""

    @property
    def quantiles_ms(self) -> np.ndarray:
        ref = self.lat_sorted_ms if self.reference_sorted_ms is None else self.reference_sorted_ms
        return table_quantiles(ref, QUANTILE_POINTS).values_ms

    def budget_quantiles(self, k: np.ndarray) -> np.ndarray:
        """``u`` of the budgets equal to the latency of the k-th fastest training row (k >= 1)."""
        if self.reference_sorted_ms is None:
            return k / self.order.size
        ref = self.reference_sorted_ms
        n = np.searchsorted(ref, self.lat_sorted_ms[np.asarray(k) - 1], side="right")
        return np.maximum(n, 1) / ref.size

    def fit_count(self, k: int) -> int:
        """Number of cells that fit the budget equal to the latency of the k-th fastest cell (k >= 1)."""
        return int(np.searchsorted(self.lat_sorted_ms, self.lat_sorted_ms[k - 1], side="right"))


@dataclass
class TrainingTables:
    """Architectures of one search space (as code arrays, `SearchSpace.encode`), validity (NB201: connected),
    accuracies (or an objective) per dataset and latencies per device, one row per architecture."""

    ops: np.ndarray  # (N, positions) int (NB201: (N, 6))
    connected: np.ndarray  # (N,) bool: not degenerate
    accuracy: dict[str, np.ndarray]  # dataset -> (N,) percent, NaN = unknown
    latency_ms: dict[str, np.ndarray]  # device -> (N,) ms, NaN = unknown
    accuracy_column: str = "nats"
    skipped_devices: dict[str, str] = field(default_factory=dict)
    space: str = DEFAULT_SPACE
    quantile_reference_ms: dict[str, np.ndarray] = field(default_factory=dict)
    """Per device: the latencies over which budget quantiles are taken (default: the training rows')."""
    scorers: dict[str, dict[str, Any]] = field(default_factory=dict)
    """Objective scorers the checkpoint carries (`hwdiffnas.objectives.scorer.ObjectiveScorer.to_dict`)."""
    setting: str | None = None
    """The dataset setting of the latencies when the "datasets" are objectives (open spaces)."""

    @classmethod
    def from_store(cls, store: Any, datasets: Sequence[str], devices: Sequence[str] | None = None,
                   column: str = "nats") -> TrainingTables:
        """Read the tables from a benchmark store (NB201 cells, NB201 index order)."""
        cells = store.cells()
        ops = np.array([c.ops for c in cells], dtype=np.int64)
        acc = {ds: np.asarray(store.accuracy(ds, column), dtype=np.float64) for ds in datasets}
        names = list(devices) if devices else list(store.latency_devices())
        lat = {d: np.asarray(store.latency(d), dtype=np.float64) for d in names}
        return cls(ops, np.asarray(store.connected(), dtype=bool), acc, lat, column)

    def row_of(self) -> dict[tuple[int, ...], int]:
        return {tuple(int(x) for x in r): i for i, r in enumerate(self.ops)}

    def device_data(self, min_cells: int = 100) -> dict[str, DeviceData]:
        """Training devices with a full set of reference latencies and ``min_cells`` valid rows with a latency
        (at most all of them, in a space smaller than that); others are recorded in `skipped_devices`."""
        min_cells = min(min_cells, int(np.count_nonzero(self.connected)))
        rows = self.row_of()
        space = get_space(self.space)
        refs = space.reference_archs()
        if len(refs) < 2:
            raise UserError(f"search space {space.name!r} defines {len(refs)} reference architectures; a device "
                            "representation needs at least 2")
        try:
            ref_rows = [rows[tuple(int(x) for x in space.encode(a))] for a in refs]
        except KeyError:
            raise UserError(f"the training tables lack a reference architecture of space {space.name!r}") from None
        out = {}
        for name, lat in self.latency_ms.items():
            ok = self.connected & np.isfinite(lat) & (lat > 0)
            if ok.sum() < min_cells:
                self.skipped_devices[name] = f"only {int(ok.sum())} connected cells with a latency"
                continue
            ref = lat[ref_rows]
            if not np.all(np.isfinite(ref) & (ref > 0)):
                self.skipped_devices[name] = "missing latency of a reference architecture (NB201: HELP's ten)"
                continue
            idx = np.flatnonzero(ok)
            order = idx[np.lexsort((idx, lat[idx]))]
            qref = self.quantile_reference_ms.get(name)
            out[name] = DeviceData(name, order, lat[order], device_representation(ref, len(refs)),
                                   None if qref is None else np.sort(np.asarray(qref, dtype=np.float64)))
        return out


@dataclass(frozen=True)
class TrainConfig:
    """Training settings (all recorded in the checkpoint)."""

    datasets: tuple[str, ...] = ("cifar100",)
    devices: tuple[str, ...] = ()
    label_fraction: float = 1.0
    steps: int = 6000
    batch_size: int = 256
    lr: float = 2e-3
    seed: int = 0
    timesteps: int = 500
    p_drop: float = 0.1
    p_drop_all: float = 0.1
    p_top: float = 0.8
    p_best: float = 0.5
    d_model: int = 64
    heads: int = 2
    layers: int = 2
    d_cond: int = 32
    checkpoint_every: int = 250

    def identity(self) -> dict[str, Any]:
        """The settings a resumed run must share with the checkpoint it continues."""
        d = dict(self.__dict__)
        d.pop("checkpoint_every")
        d["datasets"] = list(self.datasets)
        d["devices"] = list(self.devices)
        return d


def labelled_mask(connected: np.ndarray, label_fraction: float, seed: int) -> np.ndarray:
    """(N,) bool: the seeded random subset of connected cells whose accuracy training may use."""
    rng = np.random.default_rng([seed, 7919])
    conn = np.flatnonzero(connected)
    n_lab = int(round(label_fraction * conn.size))
    mask = np.zeros(np.shape(connected), dtype=bool)
    mask[rng.choice(conn, size=n_lab, replace=False)] = True
    return mask


class BatchSampler:
    """Seeded, step-indexed batches of (x0, conditions): batch ``k`` is the same however training is resumed."""

    def __init__(self, tables: TrainingTables, devices: dict[str, DeviceData], cfg: TrainConfig) -> None:
        self.tables = tables
        self.devices = list(devices.values())
        self.cfg = cfg
        labelled = labelled_mask(tables.connected, cfg.label_fraction, cfg.seed)
        self.labelled = labelled  # (N,)
        # per (device, dataset): the latency positions of the labelled cells in descending accuracy order, and
        # for each latency position its index in that order (-1 = unlabelled)
        self.by_acc: dict[tuple[str, str], tuple[np.ndarray, np.ndarray]] = {}
        for d in self.devices:
            for ds in cfg.datasets:
                acc = np.where(labelled[d.order], tables.accuracy[ds][d.order], np.nan)  # (Nd,)
                lab = np.flatnonzero(np.isfinite(acc))
                pos_desc = lab[np.lexsort((lab, -acc[lab]))]  # (Nlab,) latency positions, best first
                inv = np.full(d.order.size, -1, dtype=np.int64)
                inv[pos_desc] = np.arange(pos_desc.size)
                self.by_acc[(d.name, ds)] = (pos_desc, inv)

    def batch(self, step: int) -> tuple[np.ndarray, ConditionBatch]:
        """x0 op classes (B, 6) and their conditions for training step ``step``."""
        cfg = self.cfg
        rng = np.random.default_rng([cfg.seed, step])
        B = cfg.batch_size
        dev_i = rng.integers(len(self.devices), size=B)  # (B,)
        ds_i = rng.integers(len(cfg.datasets), size=B)  # (B,)
        drop_all = rng.random(B) < cfg.p_drop_all  # (B,)
        keep = ~drop_all[:, None] & (rng.random((B, 3)) >= cfg.p_drop)  # (B, 3): accuracy, device, latency
        k_draw = rng.random(B)  # budget rank draw
        top_draw = rng.random(B) < cfg.p_top
        top_frac = np.where(rng.random(B) < cfg.p_best, 0.0, 10 ** rng.uniform(-3.0, -1.0, size=B))
        pick = rng.random(B)  # uniform position within the chosen range
        x0 = np.zeros((B, self.tables.ops.shape[1]), dtype=np.int64)
        r = np.full(B, np.nan)
        u = np.full(B, np.nan)
        reps = np.full((B, self.devices[0].rep.size), np.nan)
        for gi in np.unique(dev_i * len(cfg.datasets) + ds_i):
            di, si = divmod(int(gi), len(cfg.datasets))
            dev, ds = self.devices[di], cfg.datasets[si]
            rows = np.flatnonzero((dev_i == di) & (ds_i == si))  # (b,)
            n_dev = dev.order.size
            k_raw = np.minimum((k_draw[rows] * n_dev).astype(np.int64), n_dev - 1)  # (b,) 0-based
            k = np.searchsorted(dev.lat_sorted_ms, dev.lat_sorted_ms[k_raw], side="right")  # (b,) fitting cells
            k = np.where(keep[rows, 2], k, n_dev)
            pos_desc, inv = self.by_acc[(dev.name, ds)]
            fits = pos_desc[None, :] < k[:, None]  # (b, Nlab) labelled fitting cells, best first
            cum = np.cumsum(fits, axis=1)  # (b, Nlab)
            n_fit_lab = cum[:, -1] if cum.shape[1] else np.zeros(rows.size, dtype=np.int64)  # (b,)
            pos = np.minimum((pick[rows] * k).astype(np.int64), k - 1)  # uniform among fitting cells
            m = np.maximum(1, np.round(top_frac[rows] * n_fit_lab)).astype(np.int64)
            j = np.minimum((pick[rows] * m).astype(np.int64), np.maximum(n_fit_lab - 1, 0))
            use_top = top_draw[rows] & (n_fit_lab > 0)
            if use_top.any():
                first = np.argmax(cum > j[:, None], axis=1)  # (b,) index in best-first order of the (j+1)-th fit
                pos = np.where(use_top, pos_desc[np.minimum(first, max(pos_desc.size - 1, 0))], pos)
            x0[rows] = self.tables.ops[dev.order[pos]]
            order_idx = inv[pos]  # (b,) -1 = unlabelled
            lab = order_idx >= 0
            better = np.where(lab, cum[np.arange(rows.size), np.maximum(order_idx, 0)] - 1, 0) if cum.shape[1] \
                else np.zeros(rows.size, dtype=np.int64)
            rank = np.where(n_fit_lab > 1, 1.0 - better / np.maximum(n_fit_lab - 1, 1), 1.0)
            r[rows] = np.where(keep[rows, 0] & lab, rank, np.nan)
            reps[rows[keep[rows, 1]]] = dev.rep
            u[rows] = np.where(keep[rows, 2], dev.budget_quantiles(k), np.nan)
        names = [cfg.datasets[i] for i in ds_i]
        cond = build_conditions(list(cfg.datasets), names, r, reps, u, device_dim=reps.shape[1])
        return x0, cond


def _save_state(path: Path, opt: Any, step: int, identity: dict[str, Any]) -> None:
    from safetensors.torch import save_file

    sd = opt.state_dict()
    tensors = {}
    for pid, st in sd["state"].items():
        for k, v in st.items():
            tensors[f"{pid}.{k}"] = v.detach().clone().contiguous().reshape(v.shape)
    meta = {"step": str(step), "identity": json.dumps(identity, sort_keys=True),
            "param_groups": json.dumps(sd["param_groups"])}
    tmp = path.with_name(path.name + ".tmp")
    save_file(tensors, str(tmp), metadata=meta)
    tmp.replace(path)


def _load_state(path: Path, opt: Any) -> tuple[int, dict[str, Any]]:
    from safetensors import safe_open

    try:
        with safe_open(str(path), framework="pt") as fh:
            meta = fh.metadata() or {}
            tensors = {k: fh.get_tensor(k) for k in fh.keys()}
        groups = json.loads(meta["param_groups"])
        step = int(meta["step"])
        identity = json.loads(meta["identity"])
    except Exception as exc:
        raise UserError(f"{path}: cannot read the training state ({type(exc).__name__}); delete it to restart") \
            from exc
    state: dict[int, dict[str, Any]] = {}
    for key, t in tensors.items():
        pid, name = key.split(".", 1)
        state.setdefault(int(pid), {})[name] = t
    opt.load_state_dict({"state": state, "param_groups": groups})
    return step, identity


def state_path(ckpt: Path) -> Path:
    """The sidecar file holding the optimizer state of a resumable run."""
    return ckpt.with_name(ckpt.name + ".state.safetensors")


def _lr_at(step: int, cfg: TrainConfig) -> float:
    warm = min(200, cfg.steps // 10 + 1)
    if step < warm:
        return cfg.lr * (step + 1) / warm
    frac = (step - warm) / max(1, cfg.steps - warm)
    return cfg.lr * (0.05 + 0.95 * 0.5 * (1 + math.cos(math.pi * min(1.0, frac))))


def training_step(gen: Generator, opt: Any, x0_np: np.ndarray, cond: ConditionBatch, seed: int) -> float:
    """One optimizer step of the x0-prediction loss: noise x0 (B, 6) to a random t, predict x0 back."""
    import torch
    import torch.nn.functional as F

    g = torch.Generator().manual_seed(int(seed))
    x0 = torch.as_tensor(x0_np, dtype=torch.long)  # (B, 6)
    T = gen.diffusion.T
    t = torch.randint(1, T + 1, (x0.shape[0],), generator=g)  # (B,)
    xt = gen.diffusion.noise(x0, t, generator=g)  # (B, 6)
    logits = gen.net(xt, t.float() / T, cond)  # (B, 6, 5)
    loss = F.cross_entropy(logits.reshape(-1, logits.shape[-1]), x0.reshape(-1))
    opt.zero_grad(set_to_none=True)
    loss.backward()
    torch.nn.utils.clip_grad_norm_(gen.net.parameters(), 1.0)
    opt.step()
    return float(loss.detach())


def train(tables: TrainingTables, out: Path | str, cfg: TrainConfig,
          log: Callable[[str], None] | None = None,
          progress: Callable[[range, int], Iterable[int]] | None = None) -> Generator:
    """Train (or resume training of) a generator into checkpoint ``out``; returns the trained generator.

    ``progress(steps, total)`` wraps the step range in a progress display (e.g. the CLI's bar; one with a
    ``set_postfix`` method is shown the running loss); without one, ``log`` reports each checkpoint."""
    import torch

    from hwdiffnas.generator.denoiser import Denoiser, DenoiserConfig

    out = Path(out)
    log = log or (lambda msg: print(msg, file=sys.stderr))
    if not 0.0 < cfg.label_fraction <= 1.0:
        raise UserError(f"--label-fraction must be in (0, 1], got {cfg.label_fraction}")
    if cfg.steps < 1:
        raise UserError(f"--steps must be positive, got {cfg.steps}")
    unknown = sorted(set(cfg.datasets) - set(tables.accuracy))
    if unknown:
        raise UserError(f"no accuracy table for dataset(s) {unknown}; have: {sorted(tables.accuracy)}")
    devices = tables.device_data()
    if cfg.devices:
        missing = [d for d in cfg.devices if d not in devices]
        if missing:
            why = "; ".join(f"{d}: {tables.skipped_devices.get(d, 'no latency table')}" for d in missing)
            raise UserError(f"cannot train on device(s) {missing} ({why}); usable: {', '.join(sorted(devices))}")
        devices = {d: devices[d] for d in cfg.devices}
    if not devices:
        raise UserError("no usable training device (each needs latencies of the space's reference architectures; "
                        "NB201: HELP's 10 cells)")
    cfg = TrainConfig(**{**cfg.__dict__, "devices": tuple(sorted(devices))})
    for name, why in sorted(tables.skipped_devices.items()):
        log(f"skipping device {name}: {why}")

    space = get_space(tables.space)
    conn_ops = tables.ops[tables.connected]
    marg = np.bincount(conn_ops.reshape(-1), minlength=len(space.encoding.choices)).astype(np.float64)
    marg /= marg.sum()
    dcfg = DenoiserConfig(cfg.d_model, cfg.heads, cfg.layers, cfg.d_cond, len(cfg.datasets))
    meta = GeneratorMeta(
        denoiser=dcfg.to_dict(), timesteps=cfg.timesteps, marginals=[float(x) for x in marg],
        datasets=list(cfg.datasets), accuracy_column=tables.accuracy_column,
        devices={d.name: {"rep": [float(x) for x in d.rep], "quantiles_ms": [float(x) for x in d.quantiles_ms]}
                 for d in devices.values()},
        training={**cfg.identity(), "train_seconds": 0.0, **({"setting": tables.setting} if tables.setting else {})},
        step=0, space_name=space.name, scorers=dict(tables.scorers))

    torch.manual_seed(cfg.seed)
    net = Denoiser(dcfg, space.encoding, meta.device_dim)
    gen = Generator(meta, net)
    opt = torch.optim.AdamW(net.parameters(), lr=cfg.lr, weight_decay=1e-4)
    start = 0
    spath = state_path(out)
    if out.exists():
        old = Generator.load(out)
        ident_keys = cfg.identity().keys()
        defaults = TrainConfig().identity()  # settings added after a checkpoint was made take their defaults
        if {k: old.meta.training.get(k, defaults.get(k)) for k in ident_keys} != cfg.identity():
            raise UserError(f"{out} was trained with other settings; give another -o path or delete it "
                            f"(its settings: {json.dumps({k: v for k, v in old.meta.training.items()})})")
        gen.net.load_state_dict(old.net.state_dict())
        meta.training["train_seconds"] = old.meta.training.get("train_seconds", 0.0)
        if old.meta.step >= cfg.steps:
            log(f"{out} is already trained ({old.meta.step} steps); nothing to do")
            gen.meta.step = old.meta.step
            gen.net.eval()
            return gen
        if not spath.is_file():
            raise UserError(f"{out} is a partial run but its training state {spath} is missing; delete {out}")
        start, ident = _load_state(spath, opt)
        if ident != cfg.identity() or start != old.meta.step:
            raise UserError(f"{spath} does not belong to {out}; delete both to restart")
        log(f"resuming {out} at step {start}/{cfg.steps}")

    sampler = BatchSampler(tables, devices, cfg)
    log(f"training on {len(devices)} devices, datasets {', '.join(cfg.datasets)}, "
        f"{int(sampler.labelled.sum())} labelled cells, {sum(p.numel() for p in net.parameters())} parameters")
    bar = progress(range(start, cfg.steps), cfg.steps - start) if progress is not None else None
    steps_iter = iter(bar) if bar is not None else iter(range(start, cfg.steps))
    net.train()
    t0 = time.perf_counter()
    base_seconds = float(meta.training["train_seconds"])
    ema = None
    for step in steps_iter:
        x0_np, cond = sampler.batch(step)
        for grp in opt.param_groups:
            grp["lr"] = _lr_at(step, cfg)
        loss = training_step(gen, opt, x0_np, cond, seed=cfg.seed * 1_000_003 + step)
        ema = loss if ema is None else 0.98 * ema + 0.02 * loss
        done = step + 1
        if bar is not None and hasattr(bar, "set_postfix"):
            bar.set_postfix(loss=f"{ema:.3f}")
        if done % cfg.checkpoint_every == 0 or done == cfg.steps:
            meta.step = done
            meta.training["train_seconds"] = round(base_seconds + time.perf_counter() - t0, 1)
            meta.training["final_loss"] = round(ema, 4)
            gen.save(out)
            _save_state(spath, opt, done, cfg.identity())
            if bar is None or not sys.stderr.isatty():
                log(f"step {done}/{cfg.steps} loss {ema:.4f} ({meta.training['train_seconds']:.0f} s)")
    net.eval()
    return gen
