"""Phase offset removal and phase scores over the covered pixels."""

from __future__ import annotations

import numpy as np
import pytest

from lowdose_bluesky.ptycho import phase_scores, remove_phase_offset, test_object


@pytest.fixture(scope="module")
def truth() -> np.ndarray:
    return np.angle(test_object((64, 64), seed=0))


def test_offset_removed_even_across_the_wrap(truth: np.ndarray) -> None:
    shifted = np.angle(np.exp(1j * (truth + 2.9)))  # wraps partly past +pi
    aligned = remove_phase_offset(shifted, truth)
    np.testing.assert_allclose(aligned, truth, atol=1e-12)
    assert aligned.min() > -np.pi and aligned.max() <= np.pi


def test_offset_uses_only_finite_and_masked_pixels(truth: np.ndarray) -> None:
    estimate = truth - 1.0
    estimate[:, :10] = np.nan
    estimate[:, 50:] += 2.0  # wrong pixels, masked out below
    mask = np.ones_like(truth, bool)
    mask[:, 50:] = False
    aligned = remove_phase_offset(estimate, truth, mask)
    assert np.all(np.isnan(aligned[:, :10]))
    np.testing.assert_allclose(aligned[:, 10:50], truth[:, 10:50], atol=1e-12)


def test_scores(truth: np.ndarray) -> None:
    perfect = phase_scores(truth + 0.7, truth)
    assert perfect["ssim"] == pytest.approx(1.0)
    assert perfect["psnr"] > 100 and perfect["correlation"] == pytest.approx(1.0)
    rng = np.random.default_rng(0)
    noisy = truth + 0.7 + rng.normal(0, 0.1, truth.shape)
    noisy[:20] = np.nan  # not covered: ignored, not penalised
    scores = phase_scores(noisy, truth)
    assert scores["n_pixels"] == 44 * 64
    assert 0.3 < scores["ssim"] < 0.99
    expected_psnr = 10 * np.log10(np.ptp(truth[20:]) ** 2 / 0.1**2)
    assert scores["psnr"] == pytest.approx(expected_psnr, abs=0.5)
    worse = phase_scores(truth + rng.normal(0, 0.3, truth.shape), truth)
    assert worse["ssim"] < scores["ssim"] and worse["psnr"] < scores["psnr"]


def test_errors(truth: np.ndarray) -> None:
    with pytest.raises(ValueError, match=r"same shape, got \(64, 64\) and \(32, 32\)"):
        remove_phase_offset(truth, truth[:32, :32])
    with pytest.raises(ValueError, match="no pixel is finite"):
        remove_phase_offset(np.full_like(truth, np.nan), truth)
    with pytest.raises(ValueError, match="constant"):
        phase_scores(np.zeros((20, 20)), np.zeros((20, 20)))
