"""Generator maths, conditions, denoiser, checkpoints and a toy-distribution fit."""

from __future__ import annotations

import json

import numpy as np
import pytest

from hwdiffnas.errors import UserError
from hwdiffnas.generator.conditions import (
    DEVICE_DIM,
    HELP_REFERENCE_ARCHS,
    budget_quantile,
    build_conditions,
    device_representation,
    rank_in_budget,
)
from hwdiffnas.generator.diffusion import MarginalDiffusion, cosine_alpha_bar

torch = pytest.importorskip("torch")

MARG = np.array([0.1, 0.2, 0.3, 0.25, 0.15])


def test_cosine_schedule_monotone() -> None:
    ab = cosine_alpha_bar(500)
    assert ab.shape == (501,) and ab[0] == 1.0
    assert np.all(np.diff(ab) <= 0) and ab[-1] < 1e-3 and ab[-1] > 0


@pytest.mark.parametrize("t", [1, 2, 100, 250, 499, 500])
def test_transition_matrices_row_stochastic(t: int) -> None:
    d = MarginalDiffusion(MARG, 500)
    for Q in (d.Q(t), d.Q_bar(t), d.Q_between(t - 1, t), d.Q_between(0, t)):
        assert np.all(Q >= 0)
        np.testing.assert_allclose(Q.sum(1), 1.0, atol=1e-12)


def test_cumulative_is_product_and_preserves_marginals() -> None:
    d = MarginalDiffusion(MARG, 50)
    prod = np.eye(5)
    for t in range(1, 51):
        prod = prod @ d.Q(t)
        np.testing.assert_allclose(prod, d.Q_bar(t), atol=1e-10)
        np.testing.assert_allclose(MARG @ d.Q_bar(t), MARG, atol=1e-12)  # m is stationary
    np.testing.assert_allclose(d.Q_between(10, 30), np.linalg.solve(d.Q_bar(10), d.Q_bar(30)), atol=1e-8)
    # at T the forward process has forgotten x0: every row ≈ m
    np.testing.assert_allclose(d.Q_bar(50), np.tile(MARG, (5, 1)), atol=1e-3)


def test_forward_noising_matches_q_bar() -> None:
    d = MarginalDiffusion(MARG, 100)
    x0 = torch.full((20000, 1), 3)
    xt = d.noise(x0, torch.full((20000,), 40), generator=torch.Generator().manual_seed(0))
    freq = np.bincount(xt.numpy().ravel(), minlength=5) / 20000
    np.testing.assert_allclose(freq, d.Q_bar(40)[3], atol=0.015)


def test_posterior_normalizes_and_is_bayes() -> None:
    d = MarginalDiffusion(MARG, 100)
    g = torch.Generator().manual_seed(1)
    xt = torch.randint(0, 5, (7, 6), generator=g)
    p0 = torch.softmax(torch.randn(7, 6, 5, generator=g, dtype=torch.float64), -1)
    for t, s in ((100, 99), (60, 20), (5, 0), (1, 0)):
        post = d.posterior(xt, p0, t, s)
        assert post.shape == (7, 6, 5)
        np.testing.assert_allclose(post.sum(-1).numpy(), 1.0, atol=1e-10)
        assert (post >= 0).all()
    # exact Bayes for a known x0: q(x_s | x_t, x0) ∝ Q_{t|s}[x_s, x_t] Q̄_s[x0, x_s]
    x0, xt_val, t, s = 2, 4, 70, 30
    want = d.Q_between(s, t)[:, xt_val] * d.Q_bar(s)[x0]
    want /= want.sum()
    got = d.posterior_given_x0(torch.tensor([[xt_val]]), torch.tensor([[x0]]), t, s)[0, 0].numpy()
    np.testing.assert_allclose(got, want, atol=1e-10)
    # with s = 0 the posterior returns the x0 prediction itself
    np.testing.assert_allclose(d.posterior(xt, p0, 10, 0).numpy(), p0.numpy(), atol=1e-10)


def test_step_schedule() -> None:
    d = MarginalDiffusion(MARG, 500)
    taus = d.step_schedule(50)
    assert taus[0] == 500 and taus[-1] == 0 and len(taus) == 51
    assert all(a > b for a, b in zip(taus, taus[1:]))


def test_device_representation_shape_and_validation() -> None:
    lat = np.linspace(1, 10, 10)
    rep = device_representation(lat)
    assert rep.shape == (DEVICE_DIM,)
    np.testing.assert_allclose(rep[:10].mean(), 0, atol=1e-6)
    # scaling all latencies changes only the scale entry
    rep2 = device_representation(lat * 10)
    np.testing.assert_allclose(rep2[:10], rep[:10], atol=1e-6)
    assert rep2[10] == pytest.approx(rep[10] + 1, abs=1e-6)
    with pytest.raises(ValueError):
        device_representation([1.0] * 9)
    assert len(HELP_REFERENCE_ARCHS) == 10


def test_rank_and_quantile_helpers() -> None:
    acc = np.array([50.0, 70.0, np.nan, 60.0, 80.0])  # latency-sorted
    assert rank_in_budget(acc, 4, 70.0) == 1.0  # best among first four (NaN ignored)
    assert rank_in_budget(acc, 4, 50.0) == 0.0
    assert rank_in_budget(acc, 5, 70.0) == pytest.approx(1 - 1 / 3)
    lat = np.array([1.0, 2.0, 2.0, 3.0])
    assert budget_quantile(2.0, lat) == 0.75 and budget_quantile(0.5, lat) == 0.0


def test_build_conditions_broadcast_and_absent_groups() -> None:
    rep = np.arange(DEVICE_DIM, dtype=float)
    c = build_conditions(["cifar100"], "cifar100", 1.0, rep, 0.3, batch=4)
    assert c.present.shape == (4, 3) and c.present.all()
    assert c.accuracy.shape == (4, 10) and c.device.shape == (4, DEVICE_DIM) and c.latency.shape == (4, 9)
    c2 = build_conditions(["cifar100"], "cifar100", None, None, None, batch=2)
    assert not c2.present.any()
    np.testing.assert_allclose(c2.latency[:, 0], 1.0)  # absent budget = u = 1
    with pytest.raises(ValueError):
        build_conditions(["cifar100"], "cifar10", 1.0, rep, 0.3)


def _tiny_meta(n_datasets: int = 1):
    from hwdiffnas.generator.model import QUANTILE_POINTS, GeneratorMeta

    return GeneratorMeta(
        denoiser={"d_model": 32, "heads": 2, "layers": 2, "d_cond": 16, "n_datasets": n_datasets},
        timesteps=50, marginals=list(MARG), datasets=["cifar100"][:n_datasets], accuracy_column="nats",
        devices={"dev": {"rep": [0.0] * DEVICE_DIM, "quantiles_ms": list(np.linspace(1, 10, QUANTILE_POINTS))}},
        training={"seed": 0}, step=0)


def test_denoiser_shapes_and_timestep_matters() -> None:
    from hwdiffnas.generator.model import Generator

    torch.manual_seed(0)
    gen = Generator(_tiny_meta())
    xt = torch.randint(0, 5, (3, 6))
    cond = build_conditions(["cifar100"], "cifar100", 1.0, np.zeros(DEVICE_DIM), 0.5, batch=3)
    a = gen.net(xt, torch.full((3,), 0.1), cond)
    b = gen.net(xt, torch.full((3,), 0.9), cond)
    assert a.shape == (3, 6, 5)
    assert not torch.allclose(a, b)  # the denoiser sees the timestep
    c_null = cond.with_present(np.zeros((3, 3), dtype=bool))
    assert not torch.allclose(a, gen.net(xt, torch.full((3,), 0.1), c_null))


def test_checkpoint_roundtrip_and_validation(tmp_path) -> None:
    from safetensors.torch import load_file, save_file

    from hwdiffnas.generator.model import META_KEY, Generator

    torch.manual_seed(0)
    gen = Generator(_tiny_meta())
    path = tmp_path / "g.safetensors"
    gen.save(path)
    gen2 = Generator.load(path)
    for k, v in gen.net.state_dict().items():
        assert torch.equal(v, gen2.net.state_dict()[k])
    assert gen2.meta.to_json() == gen.meta.to_json()

    bad = tmp_path / "bad.safetensors"
    bad.write_bytes(path.read_bytes()[:200])
    with pytest.raises(UserError, match="cannot read generator checkpoint"):
        Generator.load(bad)
    tensors = load_file(str(path))
    body = json.loads(gen.meta.to_json())
    for field, value, msg in (("version", 99, "format version"), ("space", "other", "search space")):
        other = dict(body, **{field: value})
        p = tmp_path / f"{field}.safetensors"
        save_file(tensors, str(p), metadata={META_KEY: json.dumps(other)})
        with pytest.raises(UserError, match=msg):
            Generator.load(p)
    p = tmp_path / "noconfig.safetensors"
    save_file(tensors, str(p))
    with pytest.raises(UserError, match="no hwdiffnas generator config"):
        Generator.load(p)
    p = tmp_path / "shape.safetensors"
    wrong = dict(body, denoiser=dict(body["denoiser"], d_model=48))
    save_file(tensors, str(p), metadata={META_KEY: json.dumps(wrong)})
    with pytest.raises(UserError, match="do not match"):
        Generator.load(p)
    with pytest.raises(UserError, match="does not exist"):
        Generator.load(tmp_path / "missing.safetensors")


def test_toy_distribution_is_reproduced() -> None:
    """Train on three cells with known frequencies, conditioned on a scalar; samples follow the data."""
    from hwdiffnas.generator.model import Generator, Guidance
    from hwdiffnas.generator.train import training_step

    torch.manual_seed(0)
    gen = Generator(_tiny_meta())
    cells = np.array([[3, 3, 1, 0, 3, 4], [1, 2, 2, 2, 0, 1], [4, 0, 3, 1, 1, 2]])
    probs = np.array([0.5, 0.3, 0.2])
    opt = torch.optim.AdamW(gen.net.parameters(), lr=3e-3)
    rng = np.random.default_rng(0)
    for step in range(600):
        idx = rng.choice(3, size=128, p=probs)
        # latency condition u = 0.2 for cell 0, 0.9 for the others; dropped 20 % of the time
        u = np.where(idx == 0, 0.2, 0.9)
        u[rng.random(128) < 0.2] = np.nan
        cond = build_conditions(["cifar100"], "cifar100", None, None, u)
        training_step(gen, opt, cells[idx], cond, seed=step)
    none = Guidance(mode="none")
    uncond = build_conditions(["cifar100"], "cifar100", None, None, None)
    samples = gen.sample(uncond, 600, steps=25, guidance=none, seed=0)
    match = (samples[:, None, :] == cells[None]).all(-1)  # (600, 3)
    assert match.any(1).mean() > 0.95
    np.testing.assert_allclose(match.mean(0), probs, atol=0.08)
    low = gen.sample(build_conditions(["cifar100"], "cifar100", None, None, 0.2), 200, steps=25,
                     guidance=Guidance(mode="joint", scale=1.0), seed=1)
    assert (low == cells[0]).all(1).mean() > 0.9
    high = gen.sample(build_conditions(["cifar100"], "cifar100", None, None, 0.9), 200, steps=25,
                      guidance=Guidance(mode="per-condition", scales={"latency": 1.0}, adaptive_fraction=0.5),
                      seed=2)
    assert (high == cells[0]).all(1).mean() < 0.1
