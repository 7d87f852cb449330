"""Predictors: ridge maths, latency predictor calibration, forest, accuracy surrogate, device vector, quantiles,
bundle round-trip and corruption, and the new-device mode on the real NB201 tables."""

from __future__ import annotations

import json

import numpy as np
import pytest

from hwdiffnas.errors import UserError
from hwdiffnas.predictors import (
    build_transfer_basis,
    cell_codes,
    cell_features,
    code_to_cell,
    connected_mask,
    device_vector,
    fit_latency_predictor,
    predicted_quantiles,
    reference_cells,
    table_quantiles,
)
from hwdiffnas.predictors.accuracy import fit_accuracy_surrogate
from hwdiffnas.predictors.bundle import META_NAME, WEIGHTS_NAME, PredictorBundle, load_bundle
from hwdiffnas.predictors.forest import fit_forest
from hwdiffnas.predictors.ridge import fit_ridge
from hwdiffnas.predictors.serialize import load_latency_predictor, save_latency_predictor
from hwdiffnas.space import Cell


def spearman(a: np.ndarray, b: np.ndarray) -> float:
    ra = np.argsort(np.argsort(a))
    rb = np.argsort(np.argsort(b))
    return float(np.corrcoef(ra, rb)[0, 1])


def synthetic_log_latency(codes: np.ndarray, seed: int = 0) -> np.ndarray:
    """A device whose log-latency is linear in the live-edge op one-hots (known coefficients)."""
    rng = np.random.default_rng(seed)
    beta = rng.uniform(0.0, 0.5, size=(6, 5))
    beta[:, 0] = 0.0
    live = cell_features(codes, "live")[:, 30:60]  # live-edge one-hots
    return 1.0 + live @ beta.reshape(-1)


def test_vectorized_structure_matches_cell_methods() -> None:
    from hwdiffnas.predictors.features import all_ops, live_mask

    ops = all_ops()
    live = live_mask(ops)
    for code in range(0, 15625, 7):
        cell = code_to_cell(code)
        assert cell.ops == tuple(ops[code])
        assert cell_codes([cell])[0] == code
        assert tuple(live[code]) == cell.live_edges()
        assert bool(connected_mask()[code]) == cell.is_connected
    assert int(connected_mask().sum()) == 15625 - 341
    full = cell_features(np.arange(15625), "full")
    assert full.shape == (15625, 323) and np.all(np.isfinite(full))


# --- ridge -------------------------------------------------------------------------------------------------
def test_ridge_recovers_known_coefficients() -> None:
    rng = np.random.default_rng(1)
    x = rng.normal(size=(400, 6)) * np.array([1, 2, 3, 0.5, 1, 4])
    beta = np.array([1.5, -2.0, 0.3, 4.0, 0.0, -0.7])
    y = 3.0 + x @ beta + rng.normal(scale=0.01, size=400)
    fit = fit_ridge(x, y)
    raw_coef = fit.coef / fit.x_scale
    assert np.allclose(raw_coef, beta, atol=0.02)
    assert np.allclose(fit.predict(x[:5]), y[:5], atol=0.1)


def test_ridge_leave_one_out_matches_refits() -> None:
    rng = np.random.default_rng(2)
    x = rng.normal(size=(25, 8))
    y = x @ rng.normal(size=8) + rng.normal(size=25)
    w = np.r_[np.ones(4), np.full(4, 10.0)]
    fit = fit_ridge(x, y, lambdas=(0.7,), penalty_weights=w)
    for i in (0, 7, 24):
        keep = np.arange(25) != i
        # an explicit refit without row i (same standardization, unpenalized intercept)
        xs = (x - fit.x_mean) / fit.x_scale
        xk, yk = xs[keep], y[keep]
        xm, ym = xk.mean(axis=0), yk.mean()
        b = np.linalg.solve((xk - xm).T @ (xk - xm) + 0.7 * np.diag(w), (xk - xm).T @ (yk - ym))
        pred_i = ym + (xs[i] - xm) @ b
        assert abs((y[i] - pred_i) - fit.loo_residuals[i]) < 1e-8


# --- latency predictor --------------------------------------------------------------------------------------
def test_latency_predictor_fits_synthetic_device_and_is_calibrated() -> None:
    rng = np.random.default_rng(3)
    codes = np.flatnonzero(connected_mask())
    rng.shuffle(codes)
    train, test = codes[:1500], codes[1500:6000]
    noise = 0.1
    y_train = synthetic_log_latency(train) + rng.normal(scale=noise, size=len(train))
    y_test = synthetic_log_latency(test) + rng.normal(scale=noise, size=len(test))
    pred = fit_latency_predictor([code_to_cell(c) for c in train], np.exp(y_train), feature_set="live")
    point, lo, hi = pred.predict(test, alpha=0.1)
    assert spearman(point, y_test) > 0.97
    assert np.mean(np.abs(np.log(point) - y_test)) < 1.2 * noise
    coverage = np.mean((np.exp(y_test) >= lo) & (np.exp(y_test) <= hi))
    assert 0.86 <= coverage <= 0.94
    upper = pred.upper_ms(test, delta=0.05)
    assert 0.92 <= np.mean(np.exp(y_test) <= upper) <= 0.98
    both = pred.point_and_upper(test, delta=0.05)  # the search's estimate: one log-prediction for both
    np.testing.assert_allclose(both[0], point)
    np.testing.assert_allclose(both[1], upper)
    # P(latency <= budget) is calibrated too: among cells given >= 0.9, at least ~90 % fit the budget
    budget = float(np.median(np.exp(y_test)))
    prob = pred.prob_within(test, budget)
    sure = prob >= 0.9
    assert sure.sum() > 100
    assert np.mean(np.exp(y_test[sure]) <= budget) >= 0.88
    assert pred.prob_within(test[:50], budget * 2).min() >= pred.prob_within(test[:50], budget).min()


def test_latency_predictor_rejects_bad_input() -> None:
    cells = [code_to_cell(int(c)) for c in np.flatnonzero(connected_mask())[:20]]
    with pytest.raises(UserError, match="positive"):
        fit_latency_predictor(cells, [1.0] * 19 + [-2.0])
    with pytest.raises(UserError, match="at least 8"):
        fit_latency_predictor(cells[:5], [1.0] * 5)
    with pytest.raises(UserError, match="20 cells but 3"):
        fit_latency_predictor(cells, [1.0, 2.0, 3.0])
    pred = fit_latency_predictor(cells, np.linspace(1, 3, 20))
    with pytest.raises(UserError, match="budget must be positive"):
        pred.prob_within(cells, 0.0)
    with pytest.raises(UserError, match="alpha"):
        pred.predict(cells, alpha=1.5)


def test_small_calibration_set_refuses_to_certify_extreme_levels() -> None:
    cells = [code_to_cell(int(c)) for c in np.flatnonzero(connected_mask())[:12]]
    pred = fit_latency_predictor(cells, np.exp(synthetic_log_latency(cell_codes(cells))))
    assert np.all(np.isinf(pred.upper_ms(cells, delta=0.01)))  # 12 rows cannot certify 99 %
    assert np.all(np.isfinite(pred.upper_ms(cells, delta=0.2)))
    assert pred.prob_within(cells, 1e6).max() <= 12 / 13 + 1e-9


def test_predictor_file_round_trip_and_corruption(tmp_path) -> None:
    codes = np.flatnonzero(connected_mask())[::50]
    cells = [code_to_cell(int(c)) for c in codes]
    pred = fit_latency_predictor(cells, np.exp(synthetic_log_latency(codes)))
    path = tmp_path / "p.safetensors"
    save_latency_predictor(pred, path)
    again = load_latency_predictor(path)
    assert np.allclose(pred.predict(cells[:30])[0], again.predict(cells[:30])[0], rtol=1e-4)
    data = bytearray(path.read_bytes())
    data[10:30] = b"\xff" * 20
    path.write_bytes(bytes(data))
    with pytest.raises(UserError, match="corrupt"):
        load_latency_predictor(path)


# --- device vector and quantiles ----------------------------------------------------------------------------
def test_device_vector_from_table_and_predictor() -> None:
    codes = np.arange(15625)
    lat = np.exp(synthetic_log_latency(codes))
    table = {code_to_cell(int(c)): float(v) for c, v in zip(codes, lat)}
    vec = device_vector(table)
    assert vec.shape == (10,)
    assert abs(vec.mean()) < 1e-9 and abs(vec.std() - 1) < 1e-9
    conn = np.flatnonzero(connected_mask())
    pred = fit_latency_predictor([code_to_cell(int(c)) for c in conn[::7]], lat[conn[::7]], feature_set="live")
    assert np.max(np.abs(device_vector(pred) - vec)) < 0.05
    with pytest.raises(UserError, match="reference cells"):
        device_vector({reference_cells()[0]: 1.0})
    with pytest.raises(UserError, match="LatencyPredictor"):
        device_vector([1, 2, 3])


def test_quantile_maps() -> None:
    rng = np.random.default_rng(4)
    lat = np.exp(rng.normal(1.0, 0.5, size=5000))
    q = table_quantiles(lat)
    for f in (0.1, 0.25, 0.5, 0.75, 0.9):
        b = q.budget_at(f)
        assert abs(np.mean(lat <= b) - f) < 0.01
        assert abs(q.fraction_under(b) - f) < 1e-6
    assert q.fraction_under(q.fastest_ms / 2) == 0.0
    with pytest.raises(UserError, match="fraction"):
        q.budget_at(1.5)
    # a predictor's quantile map approximates the true connected-cell distribution
    conn = np.flatnonzero(connected_mask())
    true = np.exp(synthetic_log_latency(conn))
    pick = rng.choice(len(conn), 60, replace=False)
    pred = fit_latency_predictor([code_to_cell(int(c)) for c in conn[pick]], true[pick], feature_set="live")
    pq = predicted_quantiles(pred)
    tq = table_quantiles(true)
    for f in (0.25, 0.5, 0.75):
        assert abs(pq.fraction_under(tq.budget_at(f)) - f) < 0.1


# --- forest and accuracy surrogate --------------------------------------------------------------------------
def test_forest_learns_step_function() -> None:
    rng = np.random.default_rng(5)
    x = rng.integers(0, 3, size=(600, 5)).astype(float)
    y = 2.0 * (x[:, 0] > 0.5) + 1.0 * (x[:, 3] > 1.5) + rng.normal(scale=0.05, size=600)
    forest = fit_forest(x[:500], y[:500], n_trees=30, max_features=0.6, min_leaf=2)
    pred = forest.predict(x[500:])
    assert np.mean(np.abs(pred - y[500:])) < 0.15


def test_accuracy_surrogate_uses_equivalence_classes() -> None:
    rng = np.random.default_rng(6)
    perm = rng.permutation(15625)
    train, test = perm[:2000], perm[3000:5000]

    def target(codes: np.ndarray) -> np.ndarray:
        return 50 + cell_features(codes, "struct")[:, :30] @ np.linspace(-1, 1, 30)

    cells = [code_to_cell(int(c)) for c in train]
    sur = fit_accuracy_surrogate(cells, target(train), n_trees=10)
    assert spearman(sur.predict_forest(test), target(test)) > 0.9
    # an unlabelled member of a labelled class gets the class's mean label, not the forest's estimate
    labelled = {c.nats_unique_str for c in cells}
    other = [int(c) for c in test if code_to_cell(int(c)).nats_unique_str in labelled][:20]
    assert other
    expected = [sur.class_labels[code_to_cell(c).nats_unique_str] for c in other]
    assert np.allclose(sur.predict(np.array(other)), expected)
    assert not np.allclose(sur.predict_forest(np.array(other)), expected)
    # queries go to distinct, still unlabelled classes, best predicted first
    pool = [code_to_cell(int(c)) for c in perm[3000:]]
    picks = sur.pick_queries(pool, k=10)
    assert len(picks) == 10
    chosen = [pool[i].nats_unique_str for i in picks]
    assert len(set(chosen)) == 10 and not set(chosen) & labelled
    pred = sur.predict_forest(pool)
    assert list(pred[picks]) == sorted(pred[picks], reverse=True)
    with pytest.raises(UserError, match="unknown dataset"):
        fit_accuracy_surrogate(cells, target(train), dataset="mnist")


# --- bundle ------------------------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def small_bundle() -> PredictorBundle:
    codes = np.arange(15625)
    cells = [code_to_cell(int(c)) for c in codes]
    tables = {f"dev{i}": np.exp(synthetic_log_latency(codes, seed=i)) for i in range(3)}
    sub = codes[::9]
    latency = {d: fit_latency_predictor([cells[c] for c in sub], t[sub]) for d, t in tables.items()}
    conn = connected_mask()
    bundle = PredictorBundle(
        latency=latency,
        quantiles={d: table_quantiles(t[conn]) for d, t in tables.items()},
        device_vectors={d: device_vector(p) for d, p in latency.items()},
        accuracy={"cifar100": fit_accuracy_surrogate([cells[c] for c in sub], 60 + np.log(tables["dev0"][sub]),
                                                     n_trees=5, use_class_labels=False)},
        basis=build_transfer_basis(cells, tables, rank=2),
    )
    return bundle


def test_bundle_round_trip(small_bundle: PredictorBundle, tmp_path) -> None:
    small_bundle.save(tmp_path)
    again = load_bundle(tmp_path)
    probe = [code_to_cell(c) for c in range(0, 15625, 101)]
    assert again.devices() == small_bundle.devices()
    for d in again.devices():
        assert np.allclose(again.latency[d].predict(probe)[2], small_bundle.latency[d].predict(probe)[2], rtol=1e-4)
        assert np.allclose(again.device_vectors[d], small_bundle.device_vectors[d])
        assert again.quantiles[d].budget_at(0.5) == pytest.approx(small_bundle.quantiles[d].budget_at(0.5))
    assert np.allclose(again.accuracy_surrogate("cifar100").predict(probe),
                       small_bundle.accuracy["cifar100"].predict(probe), atol=1e-4)
    assert again.basis is not None and again.basis.rank == 2
    new = again.fit_new_device(probe[:20], small_bundle.latency["dev1"].predict(probe[:20])[0])
    assert new.info["mode"] == "transfer"
    with pytest.raises(UserError, match="known: dev0, dev1, dev2"):
        again.latency_predictor("pixle3")


def test_bundle_corruption_is_one_user_error(small_bundle: PredictorBundle, tmp_path) -> None:
    small_bundle.save(tmp_path)
    weights = tmp_path / WEIGHTS_NAME
    data = bytearray(weights.read_bytes())
    data[-5] ^= 0xFF
    weights.write_bytes(bytes(data))
    with pytest.raises(UserError, match="checksum"):
        load_bundle(tmp_path)

    small_bundle.save(tmp_path)
    meta_path = tmp_path / META_NAME
    meta = json.loads(meta_path.read_text())
    meta["latency"]["dev0"]["feature_set"] = "bogus"
    meta_path.write_text(json.dumps(meta))
    with pytest.raises(UserError, match="unknown feature set"):
        load_bundle(tmp_path)

    meta_path.write_text("{not json")
    with pytest.raises(UserError, match="corrupt predictor metadata"):
        load_bundle(tmp_path)
    with pytest.raises(UserError, match="no predictor bundle"):
        load_bundle(tmp_path / "nowhere")


# --- real data: a device the basis never saw, known from a few rows -------------------------------------------
def test_new_device_mode_on_real_tables(nb201_store) -> None:
    cells = nb201_store.cells()
    devices = nb201_store.latency_devices()
    target = "jetson-nano-fp16"
    assert target in devices
    tables = {d: nb201_store.latency(d) for d in devices if d != target}
    basis = build_transfer_basis(cells, tables, rank=16)
    y = nb201_store.latency(target)
    ok = np.flatnonzero(nb201_store.connected() & np.isfinite(y))
    rng = np.random.default_rng(0)
    scores = []
    for _ in range(3):
        pick = rng.choice(ok, 20, replace=False)
        rest = np.setdiff1d(ok, pick)
        pred = fit_latency_predictor([cells[i] for i in pick], y[pick], basis=basis)
        point, lo, hi = pred.predict([cells[i] for i in rest], alpha=0.2)
        scores.append(spearman(point, y[rest]))
        assert 0.6 <= np.mean((y[rest] >= lo) & (y[rest] <= hi)) <= 0.97
    assert np.mean(scores) >= 0.85, scores
    # the feature-only model from the same 20 rows is clearly worse: the basis is what carries the device
    feat_only = fit_latency_predictor([cells[i] for i in pick], y[pick])
    assert spearman(feat_only.predict([cells[i] for i in rest])[0], y[rest]) < scores[-1]


def test_cells_of_the_store_use_nb201_order(nb201_store) -> None:
    cells = nb201_store.cells()
    assert isinstance(cells[0], Cell)
    assert cell_codes(cells).shape == (15625,)
    assert sorted(cell_codes(cells).tolist()) == list(range(15625))


def test_shipped_bundle_matches_the_tables(nb201_store) -> None:
    from hwdiffnas.predictors.bundle import default_bundle

    bundle = default_bundle()
    assert {"pixel3", "raspi4", "jetson-nano-fp16", "edgetpu-int8", "pi5-litert"} <= set(bundle.devices())
    assert set(bundle.accuracy) == {"cifar10", "cifar100", "ImageNet16-120"}
    assert not bundle.accuracy["cifar100"].class_labels  # a model, not a copied table
    cells = nb201_store.cells()
    conn = nb201_store.connected()
    codes = cell_codes(cells)
    for dev in ("pixel3", "edgetpu-int8"):
        y = nb201_store.latency(dev)
        ok = conn & np.isfinite(y)
        assert spearman(bundle.latency[dev].predict(codes[ok])[0], y[ok]) > 0.95
        q = bundle.quantiles[dev]
        assert q.budget_at(0.5) == pytest.approx(float(np.median(y[ok])), rel=0.01)
    acc = nb201_store.accuracy("cifar100", "nats")
    assert spearman(bundle.accuracy["cifar100"].predict(codes[conn]), acc[conn]) > 0.95
