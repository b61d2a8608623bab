"""Classical denoisers: call shape of an enhancer, and they reduce noise."""

from __future__ import annotations

import numpy as np
import pytest

from lowdose_bluesky.baselines import BM3DDenoiser, MedianFilter, TVDenoiser
from lowdose_bluesky.metrics import psnr
from lowdose_bluesky.phantoms import spheres_in_cube


@pytest.fixture(scope="module")
def frames() -> tuple[np.ndarray, np.ndarray]:
    """Clean and noisy (10 % Gaussian) projections of the phantom, scaled to [0, 1]."""
    clean = spheres_in_cube(64, seed=4).project([0.0, 30.0])
    clean /= clean.max()
    rng = np.random.default_rng(0)
    noisy = (clean + rng.normal(0.0, 0.1, clean.shape)).astype(np.float32)
    return clean, noisy


DENOISERS = [MedianFilter(3), TVDenoiser(), TVDenoiser(weight=0.1), BM3DDenoiser(),
             BM3DDenoiser(sigma=0.1)]


@pytest.mark.parametrize("denoiser", DENOISERS, ids=lambda d: f"{d.name}")
def test_reduces_noise(denoiser, frames) -> None:
    clean, noisy = frames
    out = denoiser(noisy)
    assert out.shape == noisy.shape and out.dtype == np.float32
    assert psnr(out, clean, data_range=1.0) > psnr(noisy, clean, data_range=1.0) + 3.0


@pytest.mark.parametrize("denoiser", [MedianFilter(), TVDenoiser(), BM3DDenoiser(sigma=0.1)],
                         ids=lambda d: d.name)
def test_single_frame_matches_stack(denoiser, frames) -> None:
    _, noisy = frames
    one = denoiser(noisy[1])
    assert one.shape == noisy.shape[1:] and one.dtype == np.float32
    np.testing.assert_allclose(one, denoiser(noisy)[1], atol=1e-5)


def test_median_is_per_frame() -> None:
    stack = np.zeros((3, 8, 8), np.float32)
    stack[1] = 1.0  # a median across frames would erase it
    np.testing.assert_array_equal(MedianFilter(3)(stack), stack)


def test_names() -> None:
    assert [d.name for d in (MedianFilter(), TVDenoiser(), BM3DDenoiser())] == [
        "median", "tv", "bm3d"]


def test_invalid_arguments() -> None:
    with pytest.raises(ValueError, match="positive odd integer"):
        MedianFilter(4)
    with pytest.raises(ValueError, match="weight must be a positive number"):
        TVDenoiser(weight=-1.0)
    with pytest.raises(ValueError, match="sigma must be a positive number"):
        BM3DDenoiser(sigma=0.0)
    with pytest.raises(ValueError, match=r"\(N, H, W\) or \(H, W\)"):
        MedianFilter()(np.zeros(5))
    with pytest.raises(ValueError, match="NaN or infinite"):
        TVDenoiser()(np.full((4, 4), np.nan))
