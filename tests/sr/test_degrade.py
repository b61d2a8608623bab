"""Forward model of training pairs: validation, scale, noise, knife-edge round trip."""

from __future__ import annotations

import numpy as np
import pytest

from lowdose_bluesky.sr import degrade, knife_edge_sigma, sensor_sigma, sharp_sigma

from ._synthetic import slanted_edge


@pytest.mark.parametrize("factor", [3, 1, 8, 2.0, True, "2"])
def test_factor_must_be_2_or_4(factor: object) -> None:
    with pytest.raises(ValueError, match=r"factor must be 2 or 4, got"):
        degrade(np.zeros((16, 16)), factor=factor, sigma_px=1.0)  # type: ignore[arg-type]


def test_other_validation() -> None:
    with pytest.raises(ValueError, match="sigma_px must be finite and >= 0"):
        degrade(np.zeros((16, 16)), factor=2, sigma_px=-0.5)
    with pytest.raises(ValueError, match="divisible by 4"):
        degrade(np.zeros((18, 16)), factor=4, sigma_px=1.0)
    with pytest.raises(ValueError, match="noise_std"):
        degrade(np.zeros((16, 16)), factor=2, sigma_px=1.0, noise_std=-1.0)
    with pytest.raises(ValueError, match="mode"):
        degrade(np.zeros((16, 16)), factor=2, sigma_px=1.0, mode="nearest")  # type: ignore[arg-type]


def test_shapes_dtype_and_intensity_scale() -> None:
    rng = np.random.default_rng(0)
    sharp = rng.uniform(0.3, 1.0, (3, 64, 32)).astype(np.float32)
    low = degrade(sharp, factor=4, sigma_px=1.0)
    assert low.shape == (3, 16, 8) and low.dtype == np.float32
    assert low.mean() == pytest.approx(sharp.mean(), rel=1e-3)
    single = degrade(sharp[1].astype(np.float64), factor=2, sigma_px=0.8, mode="bicubic")
    assert single.shape == (32, 16) and single.dtype == np.float64
    flat = degrade(np.full((32, 32), 0.7), factor=2, sigma_px=0.0)
    np.testing.assert_allclose(flat, 0.7)


def test_blur_on_the_sharp_grid() -> None:
    assert sharp_sigma(1.0, 2) == pytest.approx(sensor_sigma(1.0, 2))
    assert sharp_sigma(1.0, 4, mode="bicubic") == pytest.approx(4.0)
    assert sharp_sigma(0.1, 2) == 0.0  # below the width of 2 x 2 binning itself


def test_noise_float_and_array() -> None:
    sharp = np.full((2, 128, 128), 0.5)
    clean = degrade(sharp, factor=2, sigma_px=1.0)
    noisy = degrade(sharp, factor=2, sigma_px=1.0, noise_std=0.05, rng=1)
    assert np.std(noisy - clean) == pytest.approx(0.05, rel=0.03)
    np.testing.assert_array_equal(noisy, degrade(sharp, factor=2, sigma_px=1.0,
                                                 noise_std=0.05, rng=1))
    std_map = np.linspace(0.0, 0.1, 64)[np.newaxis, :]  # per column, broadcast
    varying = degrade(sharp, factor=2, sigma_px=1.0, noise_std=std_map,
                      rng=np.random.default_rng(2))
    residual = varying - clean
    assert np.all(residual[..., 0] == 0)
    assert np.std(residual[..., -8:]) == pytest.approx(0.095, rel=0.1)


@pytest.mark.parametrize("mode", ["bin", "bicubic"])
@pytest.mark.parametrize(("factor", "sigma_px"), [(2, 0.8), (2, 1.0), (2, 2.0), (4, 1.0)])
def test_knife_edge_round_trip(factor: int, sigma_px: float, mode: str) -> None:
    sharp = slanted_edge((256, 256), 0.0)
    low = degrade(sharp, factor=factor, sigma_px=sigma_px, noise_std=0.01, rng=0,
                  mode=mode)  # type: ignore[arg-type]
    result = knife_edge_sigma(low)
    assert result.sigma_px == pytest.approx(sigma_px, rel=0.05)
