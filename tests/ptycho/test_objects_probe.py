"""Test object and probe: properties, seeding, size calibration and the input checks."""

from __future__ import annotations

import numpy as np
import pytest

from lowdose_bluesky.ptycho import (
    check_object,
    check_probe,
    focused_probe,
    probe_diameter_px,
    test_object,
)


def test_object_properties() -> None:
    obj = test_object(seed=1)
    assert obj.shape == (192, 192) and obj.dtype == np.complex128
    amplitude, phase = np.abs(obj), np.angle(obj)
    assert amplitude.min() > 0 and amplitude.max() <= 1.0
    assert 1.5 <= phase.max() <= 2.0 and phase.min() >= 0
    # Amplitude and phase come from one thickness: amplitude = exp(-0.1 * phase).
    np.testing.assert_allclose(amplitude, np.exp(-0.1 * phase), atol=1e-12)
    assert (phase == 0).mean() > 0.2  # clear background between the features
    assert len(np.unique(np.round(phase, 6))) > 100  # the texture is smooth, not binary
    assert check_object(obj) is not None


def test_object_seeded_and_small() -> None:
    np.testing.assert_array_equal(test_object((64, 48), seed=3), test_object((64, 48), seed=3))
    assert not np.array_equal(test_object((64, 64), seed=3), test_object((64, 64), seed=4))
    small = test_object((16, 16), seed=0)
    assert small.shape == (16, 16) and np.angle(small).max() > 0


def test_object_is_not_collected_as_a_test() -> None:
    assert test_object.__test__ is False


@pytest.mark.parametrize(
    ("bad", "message"),
    [
        (np.ones(20, complex), "2-D array, got shape (20,)"),
        (np.ones((8, 40), complex), "at least 16x16 pixels, got shape (8, 40)"),
        (np.ones((20, 20)), "complex array, got dtype float64"),
        (np.full((20, 20), np.nan, complex), "finite"),
        (np.full((20, 20), 1.5 + 0j), "amplitude must be <= 1 (passive sample), got maximum 1.5"),
    ],
)
def test_check_object_errors(bad: np.ndarray, message: str) -> None:
    with pytest.raises(ValueError, match=message.replace("(", r"\(").replace(")", r"\)")):
        check_object(bad)


def test_object_shape_errors() -> None:
    with pytest.raises(ValueError, match=r"each at least 16, got \(8, 64\)"):
        test_object((8, 64))
    with pytest.raises(ValueError, match=r"max_phase must be in \(0, pi\]"):
        test_object((32, 32), max_phase=5.0)


@pytest.mark.parametrize(
    ("shape", "diameter", "defocus"),
    [((64, 64), 24.0, 2.0), ((32, 32), 12.0, 1.0), ((64, 64), 10.0, 0.0), ((48, 40), 16.0, 1.0)],
)
def test_probe_normalised_and_sized(shape: tuple[int, int], diameter: float,
                                    defocus: float) -> None:
    probe = focused_probe(shape, diameter_px=diameter, defocus=defocus)
    assert probe.shape == shape and probe.dtype == np.complex128
    assert np.sum(np.abs(probe) ** 2) == pytest.approx(1.0, abs=1e-12)
    assert probe_diameter_px(probe) == pytest.approx(diameter, rel=0.05)
    # Centred in its window.
    intensity = np.abs(probe) ** 2
    yy, xx = np.indices(shape)
    assert np.sum(yy * intensity) == pytest.approx(shape[0] / 2, abs=1.0)
    assert np.sum(xx * intensity) == pytest.approx(shape[1] / 2, abs=1.0)


def test_probe_has_rings_and_seeded_aberrations() -> None:
    ideal = focused_probe()
    np.testing.assert_array_equal(ideal, focused_probe())
    # Azimuthal average: an on-axis spot, a dark zone, then the bright ring of the
    # out-of-focus annular beam.
    intensity = np.abs(ideal) ** 2
    yy, xx = np.indices(intensity.shape)
    radius = np.hypot(yy - 32, xx - 32).astype(int).ravel()
    profile = np.bincount(radius, intensity.ravel()) / np.bincount(radius)
    dark = profile[1:5].min()
    assert profile[0] > 3 * dark and profile[5:12].max() > 3 * dark
    a, b = focused_probe(seed=5), focused_probe(seed=5)
    np.testing.assert_array_equal(a, b)
    assert not np.allclose(a, ideal)


def test_probe_diameter_of_a_disc() -> None:
    yy, xx = np.indices((64, 64))
    disc = ((yy - 32) ** 2 + (xx - 32) ** 2 <= 10**2).astype(complex)
    # 90 % of a uniform disc of radius 10 lies within radius 10 * sqrt(0.9).
    assert probe_diameter_px(disc) == pytest.approx(20 * np.sqrt(0.9), abs=0.5)


def test_probe_errors() -> None:
    with pytest.raises(ValueError, match=r"diameter_px must be in \[2, 24\]"):
        focused_probe((32, 32), diameter_px=30)
    with pytest.raises(ValueError, match="cannot be reached"):
        focused_probe((32, 32), diameter_px=6, defocus=2.0)
    with pytest.raises(ValueError,
                       match=r"probe shape \(32, 32\) must equal the pattern shape \(64, 64\)"):
        check_probe(np.ones((32, 32), complex), (64, 64))
    with pytest.raises(ValueError, match="all zero"):
        check_probe(np.zeros((8, 8), complex), (8, 8))
    with pytest.raises(ValueError, match="complex array"):
        check_probe(np.ones((8, 8)), (8, 8))
    with pytest.raises(ValueError, match="finite and non-zero"):
        probe_diameter_px(np.zeros((8, 8)))
