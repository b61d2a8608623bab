"""PSF width under binning: the closed form against a numerical second moment."""

from __future__ import annotations

import math

import numpy as np
import pytest
from scipy.special import erf

from lowdose_bluesky.sr import binned_sigma, binning_variance, sensor_sigma


def _binned_lsf_variance(sigma_s: float, binning: int, angle_deg: float) -> float:
    """Second moment (binned px²) of the LSF of a b x b-binned, point-sampled sensor.

    The binned ESF at normal distance ``d`` is the mean of the sensor ESFs at the
    projected offsets of the ``b x b`` summed sensor pixels.
    """
    theta = math.radians(angle_deg)
    k = np.arange(binning) - (binning - 1) / 2
    offsets = (k[:, None] * math.cos(theta) - k[None, :] * math.sin(theta)).ravel()
    d = np.linspace(-20 * binning, 20 * binning, 200001)  # sensor px
    esf = np.mean([0.5 * (1 + erf((d - o) / (math.sqrt(2) * sigma_s))) for o in offsets], axis=0)
    lsf = np.gradient(esf, d)
    mean = np.trapezoid(d * lsf, d)
    return float(np.trapezoid((d - mean) ** 2 * lsf, d)) / binning**2


@pytest.mark.parametrize("binning", [1, 2, 4])
@pytest.mark.parametrize("sigma_s", [0.5, 0.8, 2.0])
def test_binned_sigma_is_the_rms_width(binning: int, sigma_s: float) -> None:
    numeric = math.sqrt(_binned_lsf_variance(sigma_s, binning, angle_deg=5.0))
    assert binned_sigma(sigma_s, binning) == pytest.approx(numeric, rel=1e-4)


def test_closed_forms() -> None:
    assert binning_variance(1) == 0.0
    assert binning_variance(2) == pytest.approx(1 / 16)
    assert binning_variance(4) == pytest.approx(15 / 192)
    assert binned_sigma(2.0, 2) == pytest.approx(math.sqrt(1.0 + 1 / 16))
    for b in (1, 2, 4):
        assert sensor_sigma(binned_sigma(1.7, b), b) == pytest.approx(1.7)


def test_sensor_sigma_below_the_binning_floor() -> None:
    with pytest.raises(ValueError, match=r"below the 0\.25 px"):
        sensor_sigma(0.2, 2)
    assert sensor_sigma(0.2, 2, clip=True) == 0.0
    with pytest.raises(ValueError, match="binning"):
        binned_sigma(1.0, 0)
    with pytest.raises(ValueError, match=">= 0"):
        binned_sigma(-1.0, 2)
