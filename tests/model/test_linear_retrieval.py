"""Learned linear phase retrieval: fit, predict, checkpoints, bad input."""

from __future__ import annotations

import numpy as np
import pytest

from lowdose_bluesky.model.linear_retrieval import LinearRetrievalModel, fit_linear_retrieval
from lowdose_bluesky.ptycho import focused_probe, test_object
from lowdose_bluesky.ptycho.augment import synthetic_pairs

PROBE = focused_probe((32, 32), diameter_px=20.0)
INTENSITY = np.abs(PROBE) ** 2
SUPPORT = INTENSITY >= 0.02 * INTENSITY.max()


@pytest.fixture(scope="module")
def pairs():
    obj = test_object((120, 120), seed=5)
    train = synthetic_pairs(obj[:, :60], np.ones((120, 60), bool), PROBE, 1e5, 3000, rng=0)
    test = synthetic_pairs(obj[:, 60:], np.ones((120, 60), bool), PROBE, 1e5, 200, rng=1)
    return train, test


@pytest.fixture(scope="module")
def fitted(pairs):
    train, _ = pairs
    return fit_linear_retrieval(train.patterns, np.angle(train.windows), SUPPORT)


def test_it_predicts_unseen_patches_far_better_than_their_mean(pairs, fitted):
    model, record = fitted
    _, test = pairs
    _, phase = model.predict(test.patterns)
    assert phase.shape == (200, 32, 32) and phase.dtype == np.float32
    assert np.all(phase[:, ~SUPPORT] == 0)
    truth = np.angle(test.windows)[:, SUPPORT]
    error = np.abs(phase[:, SUPPORT] - truth).mean()
    baseline = np.abs(truth - truth.mean()).mean()
    assert error < 0.7 * baseline  # 0.58 x measured: the other half holds other shapes
    assert record["validation_mae"] < 0.5 * record["validation_mae_mean"]
    assert record["pairs"] == 3000 and record["support_pixels"] == int(SUPPORT.sum())


def test_the_scale_is_the_mean_total_count(pairs, fitted):
    train, _ = pairs
    model, record = fitted
    assert model.scale == pytest.approx(train.patterns.reshape(3000, -1).sum(1).mean())
    assert record["scale"] == model.scale


def test_one_pattern_gives_one_image(pairs, fitted):
    model, _ = fitted
    _, test = pairs
    _, one = model.predict(test.patterns[0])
    _, many = model.predict(test.patterns[:3], batch_size=2)
    assert one.shape == (32, 32)
    np.testing.assert_allclose(one, many[0], atol=1e-5)


def test_checkpoint_round_trip(pairs, fitted):
    model, _ = fitted
    _, test = pairs
    again = LinearRetrievalModel.from_bytes(model.to_bytes())
    np.testing.assert_array_equal(again.predict(test.patterns)[1], model.predict(test.patterns)[1])
    assert again.settings == model.settings and again.history == model.history


def test_a_checkpoint_of_another_kind_is_refused():
    from lowdose_bluesky.model.ptychonn import PtychoNN, PtychoNNModel

    other = PtychoNNModel(PtychoNN(size=32, channels=(4, 8))).to_bytes()
    with pytest.raises(ValueError, match="not a 'linear_retrieval' model"):
        LinearRetrievalModel.from_bytes(other)


@pytest.mark.parametrize(("change", "match"), [
    ({"patterns": -np.ones((20, 32, 32))}, "non-negative"),
    ({"phase": np.zeros((19, 32, 32))}, "must agree"),
    ({"support": np.zeros((32, 32), bool)}, "support is empty"),
    ({"ridge": 0}, "ridge"),
    ({"patterns": np.zeros((20, 32, 32))}, "no counts"),
])
def test_bad_input_is_refused(change, match):
    args = {"patterns": np.ones((20, 32, 32)), "phase": np.zeros((20, 32, 32)),
            "support": SUPPORT, **change}
    with pytest.raises(ValueError, match=match):
        fit_linear_retrieval(args.pop("patterns"), args.pop("phase"), args.pop("support"),
                             **args)


def test_patterns_of_another_shape_are_refused(fitted):
    model, _ = fitted
    with pytest.raises(ValueError, match=r"patterns must be \(32, 32\)"):
        model.predict(np.ones((2, 64, 64)))


def test_patterns_at_another_dose_are_predicted_with_their_dose():
    obj = test_object((120, 120), seed=5)
    covered = np.ones((120, 60), bool)
    train = synthetic_pairs(obj[:, :60], covered, PROBE, 1e5, 3000, rng=0)
    model, _ = fit_linear_retrieval(train.patterns, np.angle(train.windows), SUPPORT,
                                    scale=1e5)
    brighter = synthetic_pairs(obj[:, 60:], covered, PROBE, 5e5, 200, rng=1)
    truth = np.angle(brighter.windows)[:, SUPPORT]

    def error(**kwargs):
        return np.abs(model.predict(brighter.patterns, **kwargs)[1][:, SUPPORT] - truth).mean()

    # told the dose, the 5x brighter patterns are read as well as the training ones are;
    # read at the training dose, every amplitude looks sqrt(5) x too large
    assert error(photons=5e5) < 0.5 * error()
    with pytest.raises(ValueError, match="photons"):
        model.predict(brighter.patterns, photons=0)


def test_patterns_too_large_for_the_solve_are_refused():
    with pytest.raises(ValueError, match=r"256 x 256 pixels are too large .*at most 16384"):
        fit_linear_retrieval(np.ones((3, 256, 256)), np.zeros((3, 256, 256)),
                             np.ones((256, 256), bool))


def test_the_recipe_refuses_patterns_too_large_when_it_opens_the_run(tmp_path):
    import h5py

    from lowdose_bluesky.recipes.ptycho import PtychoRecipe

    probe_file = tmp_path / "probe.h5"
    with h5py.File(probe_file, "w") as f:
        f["probe"] = np.ones((160, 160), np.complex64)
    start = {"uid": "run-1", "ptycho": {
        "pattern_key": "pixel", "x_key": "x", "y_key": "y", "pixel_size_um": 0.05,
        "probe_file": str(probe_file), "train_positions": 10, "field": (0, 0, 1, 1)}}
    with pytest.raises(ValueError, match=r"run run-1: patterns of \(160, 160\) are too large "
                                         r"for model='linear' \(at most 16384 pixels\)"):
        PtychoRecipe().open(start, context=None)
    PtychoRecipe(model="ptychonn").open(start, context=None)  # PtychoNN takes them
