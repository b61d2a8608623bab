"""Forward model: energy scale, Poisson statistics, windows and centring."""

from __future__ import annotations

import numpy as np
import pytest

from lowdose_bluesky.ptycho import (
    diffraction_patterns,
    exit_waves,
    expected_intensity,
    focused_probe,
    raster_positions,
    test_object,
)


@pytest.fixture(scope="module")
def probe() -> np.ndarray:
    return focused_probe((32, 32), diameter_px=12.0, defocus=1.0)


def test_transparent_object_energy(probe: np.ndarray) -> None:
    clear = np.ones((48, 48), complex)
    positions = raster_positions((0, 0, 48, 48), 2, (32, 32))  # 81 patterns
    expected = expected_intensity(clear, probe, positions, 500.0)
    np.testing.assert_allclose(expected.sum(axis=(1, 2)), 500.0, rtol=1e-10)
    patterns = diffraction_patterns(clear, probe, positions, 500.0, rng=0)
    assert patterns.dtype == np.float32 and patterns.shape == (81, 32, 32)
    assert np.all(patterns == np.round(patterns)) and patterns.min() >= 0
    totals = patterns.sum(axis=(1, 2))
    # Poisson: mean 500 and variance 500 per pattern (standard error of the mean ~2.5).
    assert totals.mean() == pytest.approx(500.0, abs=10.0)
    assert totals.var(ddof=1) == pytest.approx(500.0, rel=0.4)


def test_probe_scale_does_not_matter(probe: np.ndarray) -> None:
    obj = test_object((48, 48), seed=0)
    positions = [[3, 5], [10, 12]]
    np.testing.assert_allclose(expected_intensity(obj, 7.0 * probe, positions, 100.0),
                               expected_intensity(obj, probe, positions, 100.0), rtol=1e-10)


def test_windows_and_centring(probe: np.ndarray) -> None:
    obj = test_object((48, 48), seed=0)
    waves = exit_waves(obj, probe, [[3.4, 5.5]])  # rounded half up to (3, 6)
    np.testing.assert_allclose(waves[0], probe * obj[3:35, 6:38])
    # Zero frequency at the centre: a clear object and a flat probe give one central peak.
    flat = np.ones((32, 32), complex)
    pattern = expected_intensity(np.ones((48, 48), complex), flat, [[0, 0]], 1000.0)[0]
    assert pattern[16, 16] == pytest.approx(1000.0)
    assert np.unravel_index(np.argmax(pattern), pattern.shape) == (16, 16)


def test_absorbing_object_gives_fewer_counts(probe: np.ndarray) -> None:
    dark = np.full((48, 48), 0.5 + 0j)
    expected = expected_intensity(dark, probe, [[8, 8]], 1000.0)
    assert expected.sum() == pytest.approx(250.0)


def test_errors(probe: np.ndarray) -> None:
    obj = np.ones((48, 48), complex)
    with pytest.raises(ValueError, match="photons must be a positive finite count per pattern, "
                                         "got 0"):
        diffraction_patterns(obj, probe, [[0, 0]], 0)
    with pytest.raises(ValueError, match=r"position 0 \(y=20, x=0\)"):
        diffraction_patterns(obj, probe, [[20, 0]], 10.0)


def test_object_windows_are_cut_where_the_forward_model_cuts_them() -> None:
    from lowdose_bluesky.ptycho import object_windows

    obj = np.arange(20 * 20).reshape(20, 20).astype(complex)
    patches = object_windows(obj, [[2, 3], [4.5, 0.5]], (8, 8))
    np.testing.assert_array_equal(patches[0], obj[2:10, 3:11])
    np.testing.assert_array_equal(patches[1], obj[5:13, 1:9])  # half up, as window_corners
    with pytest.raises(ValueError):
        object_windows(obj, [[15, 0]], (8, 8))
