"""Training pairs simulated from an object estimate through the forward model."""

from __future__ import annotations

import numpy as np
import pytest

from lowdose_bluesky.ptycho import expected_intensity, focused_probe, test_object
from lowdose_bluesky.ptycho.augment import synthetic_pairs

PROBE = focused_probe((32, 32), diameter_px=20.0)
OBJ = test_object((80, 80), seed=1)


def test_pairs_are_the_forward_model_of_their_windows():
    covered = np.ones(OBJ.shape, bool)
    pairs = synthetic_pairs(OBJ, covered, PROBE, 1e9, 50, gain_range=(1, 1), rng=0)
    assert pairs.patterns.shape == pairs.windows.shape == (50, 32, 32)
    assert pairs.patterns.dtype == np.float32
    # each window, put back as an object of its own, gives its pattern within the
    # Poisson noise (6 standard deviations)
    for k in range(5):
        expected = expected_intensity(pairs.windows[k], PROBE, [(0, 0)], 1e9)[0]
        assert np.all(np.abs(pairs.patterns[k] - expected) <= 6 * np.sqrt(expected) + 6)
        assert abs(pairs.patterns[k].sum() / expected.sum() - 1) < 1e-3


def test_windows_are_turned_patches_of_the_object():
    pairs = synthetic_pairs(OBJ, np.ones(OBJ.shape, bool), PROBE, 1e4, 20, gain_range=(1, 1),
                            rng=1)
    patches = {np.round(OBJ[y:y + 32, x:x + 32], 9).tobytes()
               for y in range(49) for x in range(49)}
    for window in pairs.windows:
        variants = [np.rot90(window, -k) for k in range(4)]
        variants += [np.rot90(window[:, ::-1], -k) for k in range(4)]
        assert any(np.round(v, 9).tobytes() in patches for v in variants)


def test_the_gain_scales_phase_and_log_amplitude_together():
    pairs = synthetic_pairs(OBJ, np.ones(OBJ.shape, bool), PROBE, 1e4, 30, gain_range=(0.5, 2),
                            rng=2)
    thick = np.angle(pairs.windows) > 0.1
    ratio = np.log(np.abs(pairs.windows))[thick] / np.angle(pairs.windows)[thick]
    # the test object's single material: log|O| = -(beta/delta) phase
    expected = np.log(np.abs(OBJ))[np.angle(OBJ) > 0.1] / np.angle(OBJ)[np.angle(OBJ) > 0.1]
    np.testing.assert_allclose(ratio, expected.mean(), rtol=1e-6)
    assert np.angle(pairs.windows).max() > 1.2 * np.angle(OBJ).max()


def test_windows_stay_where_the_object_is_covered():
    covered = np.zeros(OBJ.shape, bool)
    covered[:, :45] = True
    region = OBJ.copy()
    region[:, 45:] = 0.5  # a value the covered part never holds off its probe support
    pairs = synthetic_pairs(region, covered, PROBE, 1e4, 40, support_fraction=0.02, rng=3)
    intensity = np.abs(PROBE) ** 2
    support = intensity >= 0.02 * intensity.max()
    for window in pairs.windows:
        turned = [np.rot90(window, -k) for k in range(4)]
        turned += [np.rot90(window[:, ::-1], -k) for k in range(4)]
        assert any(not np.isclose(np.abs(t[support]), 0.5).any() for t in turned)


@pytest.mark.parametrize(("kwargs", "match"), [
    ({"photons": 0}, "photons must be a positive"),
    ({"n": 0}, "n must be a positive integer"),
    ({"gain_range": (0, 1)}, "gain_range"),
    ({"covered": np.zeros((80, 80), bool)}, "no .* window"),
    ({"covered": np.ones((10, 10), bool)}, "one shape"),
])
def test_bad_input_is_refused(kwargs, match):
    args = {"obj": OBJ, "covered": np.ones(OBJ.shape, bool), "probe": PROBE, "photons": 1e4,
            "n": 5, **kwargs}
    with pytest.raises(ValueError, match=match):
        synthetic_pairs(**args)
