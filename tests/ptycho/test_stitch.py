"""Stitching: exact on noiseless patches, NaN outside, incremental batches, phase wrap."""

from __future__ import annotations

import numpy as np
import pytest

from lowdose_bluesky.ptycho import (
    Stitcher,
    focused_probe,
    spiral_positions,
    stitch,
    test_object,
    window_corners,
)


@pytest.fixture(scope="module")
def setup() -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    obj = test_object((64, 64), seed=2)
    probe = focused_probe((32, 32), diameter_px=12.0, defocus=1.0)
    positions = spiral_positions((0, 0, 64, 64), 4.0, (32, 32))
    return obj, probe, positions


def _patches(obj: np.ndarray, positions: np.ndarray, shape: tuple[int, int]) -> np.ndarray:
    return np.stack([obj[y:y + shape[0], x:x + shape[1]] for y, x in window_corners(positions)])


def test_stitching_the_true_windows_returns_the_object(setup) -> None:
    obj, probe, positions = setup
    patches = _patches(obj, positions, probe.shape)
    amplitude, phase = stitch(np.abs(patches), np.angle(patches), positions, probe, obj.shape)
    covered = np.isfinite(amplitude)
    assert 0.2 < covered.mean() < 1.0
    np.testing.assert_array_equal(covered, np.isfinite(phase))
    np.testing.assert_allclose(amplitude[covered], np.abs(obj)[covered], atol=1e-12)
    np.testing.assert_allclose(phase[covered], np.angle(obj)[covered], atol=1e-12)
    # NaN exactly where the summed probe intensity is below 10 % of one probe's peak
    stitcher = Stitcher(obj.shape, probe)
    stitcher.add(np.abs(patches), np.angle(patches), positions)
    weight = stitcher.weight
    np.testing.assert_array_equal(covered, weight >= 0.1 * (np.abs(probe) ** 2).max())


def test_a_stitched_pixel_stays_stitched_as_patches_arrive(setup) -> None:
    obj, probe, positions = setup
    patches = _patches(obj, positions, probe.shape)
    stitcher = Stitcher(obj.shape, probe)
    before = None
    for start in range(0, len(positions), 5):
        sl = slice(start, start + 5)
        stitcher.add(np.abs(patches[sl]), np.angle(patches[sl]), positions[sl])
        now = stitcher.mask()
        if before is not None:
            assert now[before].all()
        before = now


def test_batches_equal_one_call(setup) -> None:
    obj, probe, positions = setup
    patches = _patches(obj, positions, probe.shape)
    amp, ph = np.abs(patches) * 0.9, np.angle(patches) + 0.3  # any values: compare the two ways
    stitcher = Stitcher(obj.shape, probe, threshold=0.2)
    assert np.all(np.isnan(stitcher.image()[0]))
    for start in range(0, len(positions), 7):
        stitcher.add(amp[start:start + 7], ph[start:start + 7], positions[start:start + 7])
    stitcher.add(amp[0], ph[0], positions[0])  # a single patch
    whole = stitch(np.concatenate([amp, amp[:1]]), np.concatenate([ph, ph[:1]]),
                   np.concatenate([positions, positions[:1]]), probe, obj.shape, threshold=0.2)
    assert stitcher.count == len(positions) + 1
    for a, b in zip(stitcher.image(), whole, strict=True):
        np.testing.assert_allclose(a, b, atol=1e-12, equal_nan=True)


def test_phase_wrapping_is_averaged_on_the_circle() -> None:
    probe = np.ones((16, 16), complex)
    phases = np.stack([np.full((16, 16), np.pi - 0.1), np.full((16, 16), -np.pi + 0.1)])
    _, phase = stitch(np.ones_like(phases), phases, [[0, 0], [0, 0]], probe, (16, 16))
    np.testing.assert_allclose(np.abs(phase), np.pi, atol=1e-12)


def test_errors(setup) -> None:
    obj, probe, positions = setup
    with pytest.raises(ValueError, match=r"amplitude must have shape \(N, h, w\) = \(2, 32, 32\)"):
        stitch(np.ones((2, 16, 16)), np.ones((2, 16, 16)), positions[:2], probe, obj.shape)
    with pytest.raises(ValueError, match=r"threshold must be in \[0, 1\], got 2"):
        Stitcher(obj.shape, probe, threshold=2)
    with pytest.raises(ValueError, match=r"probe shape \(32, 32\) does not fit"):
        Stitcher((20, 64), probe)
    with pytest.raises(ValueError, match="phase must be finite"):
        stitch(np.ones((1, 32, 32)), np.full((1, 32, 32), np.nan), [[0, 0]], probe, obj.shape)
