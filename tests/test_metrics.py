"""PSNR / SSIM wrappers: agree with scikit-image, explicit data range, per slice or volume."""

from __future__ import annotations

import numpy as np
import pytest
from skimage.metrics import peak_signal_noise_ratio, structural_similarity

from lowdose_bluesky.metrics import psnr, ssim


@pytest.fixture(scope="module")
def pair() -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(0)
    ref = rng.random((4, 32, 32))
    test = ref + rng.normal(0, 0.05, ref.shape) * np.arange(1, 5)[:, None, None]
    return test, ref


def test_psnr_agrees_with_skimage(pair) -> None:
    test, ref = pair
    assert psnr(test, ref, data_range=1.0) == pytest.approx(
        peak_signal_noise_ratio(ref, test, data_range=1.0))
    per = psnr(test, ref, data_range=1.0, per_slice=True)
    assert per.shape == (4,)
    for k in range(4):
        assert per[k] == pytest.approx(peak_signal_noise_ratio(ref[k], test[k], data_range=1.0))
    assert np.all(np.diff(per) < 0)  # noisier slices score lower
    assert psnr(test[0], ref[0], data_range=2.0) == pytest.approx(
        peak_signal_noise_ratio(ref[0], test[0], data_range=2.0))


def test_ssim_agrees_with_skimage(pair) -> None:
    test, ref = pair
    per = ssim(test, ref, data_range=1.0, per_slice=True)
    expected = [structural_similarity(ref[k], test[k], data_range=1.0) for k in range(4)]
    np.testing.assert_allclose(per, expected)
    assert ssim(test, ref, data_range=1.0) == pytest.approx(np.mean(expected))  # mean of 2-D
    assert ssim(test[2], ref[2], data_range=1.0) == pytest.approx(expected[2])


def test_identical_images() -> None:
    ref = np.random.default_rng(1).random((2, 16, 16))
    assert psnr(ref, ref, data_range=1.0) == np.inf
    np.testing.assert_array_equal(psnr(ref, ref, data_range=1.0, per_slice=True), np.inf)
    assert ssim(ref, ref, data_range=1.0) == pytest.approx(1.0)


@pytest.mark.parametrize("metric", [psnr, ssim])
def test_data_range_required_and_valid(metric, pair) -> None:
    test, ref = pair
    with pytest.raises(ValueError, match="data_range is required"):
        metric(test, ref)
    for bad in (0.0, -1.0, np.nan, np.inf):
        with pytest.raises(ValueError, match="data_range must be a positive finite"):
            metric(test, ref, data_range=bad)


@pytest.mark.parametrize("metric", [psnr, ssim])
def test_invalid_inputs(metric, pair) -> None:
    test, ref = pair
    with pytest.raises(ValueError, match="shapes differ"):
        metric(test[:, :16], ref, data_range=1.0)
    with pytest.raises(ValueError, match="per_slice=True needs a 3-D stack"):
        metric(test[0], ref[0], data_range=1.0, per_slice=True)
    bad = test.copy()
    bad[0, 0, 0] = np.nan
    with pytest.raises(ValueError, match="NaN or infinite"):
        metric(bad, ref, data_range=1.0)
    with pytest.raises(ValueError, match="2-D or 3-D"):
        metric(np.zeros(8), np.zeros(8), data_range=1.0)
