"""Background noise: plane removal, temporal std and ROI checks."""

from __future__ import annotations

import numpy as np
import pytest

from lowdose_bluesky.sr import background_noise


def _tilted(shape: tuple[int, ...], level: float = 1000.0) -> np.ndarray:
    z, x = np.mgrid[: shape[-2], : shape[-1]]
    return level * (1.0 + 0.3 * z / shape[-2] + 0.2 * x / shape[-1])


def test_poisson_noise_with_a_tilt_is_sqrt_of_the_mean() -> None:
    rng = np.random.default_rng(0)
    frame = rng.poisson(_tilted((128, 128))).astype(float)
    estimate = background_noise(frame, [10, 110, 20, 120])
    assert estimate.std == pytest.approx(np.sqrt(estimate.mean), rel=0.05)
    assert estimate.relative_std == pytest.approx(estimate.std / estimate.mean)
    assert estimate.temporal_std is None
    assert estimate.n_pixels == 100 * 100 and estimate.n_frames == 1
    offset, slope_z, slope_x = estimate.plane
    assert slope_z == pytest.approx(300 / 128, rel=0.05)
    assert slope_x == pytest.approx(200 / 128, rel=0.05)
    assert offset == pytest.approx(estimate.mean, rel=1e-3)
    assert np.std(frame[10:110, 20:120]) > 2 * estimate.std  # the tilt alone


def test_temporal_std_ignores_fixed_pattern() -> None:
    rng = np.random.default_rng(1)
    pattern = rng.normal(0.0, 50.0, (64, 64))
    frames = rng.poisson(np.broadcast_to(_tilted((64, 64)), (4, 64, 64))) + pattern
    estimate = background_noise(frames, [0, 64, 0, 64])
    assert estimate.n_frames == 4
    assert estimate.temporal_std == pytest.approx(np.sqrt(estimate.mean), rel=0.05)
    assert estimate.std > 1.3 * estimate.temporal_std


@pytest.mark.parametrize("roi", [[0, 10, 0, 70], [-1, 10, 0, 10], [5, 5, 0, 10], [0, 10, 0]])
def test_bad_roi(roi: list[int]) -> None:
    with pytest.raises(ValueError, match="roi"):
        background_noise(np.ones((64, 64)), roi)


def test_too_few_pixels() -> None:
    with pytest.raises(ValueError, match=r"holds 49 pixels, need >= 64"):
        background_noise(np.ones((64, 64)), [0, 7, 0, 7])
