"""Gaussian PSF widths under pixel binning.

A camera frame binned ``b x b`` sums ``b`` point samples per axis of the blurred sensor
image, at offsets ``(k - (b - 1) / 2) / b`` (``k = 0 .. b-1``) binned pixels from the
binned pixel's centre. Projected onto any direction, these samples are a discrete
distribution of variance ``(b**2 - 1) / (12 b**2)`` binned px² (``1/16`` for ``b = 2``,
``5/64`` for ``b = 4``), so a Gaussian sensor PSF of ``sigma_s`` sensor pixels is seen on
the binned frame (e.g. by a knife edge) with

``sigma_b = sqrt((sigma_s / b)**2 + (b**2 - 1) / (12 b**2))`` binned pixels.

The sensor pixels are treated as point samples of the PSF-blurred image, as in the
simulated camera (PSF applied to mean counts on the sensor grid).
"""

from __future__ import annotations

import math
from numbers import Integral

__all__ = ["binned_sigma", "binning_variance", "sensor_sigma"]


def _check_binning(binning: int) -> int:
    if isinstance(binning, bool) or not isinstance(binning, Integral) or binning < 1:
        raise ValueError(f"binning must be a positive integer, got {binning!r}")
    return int(binning)


def _check_sigma(sigma: float, name: str) -> float:
    value = float(sigma)
    if not (math.isfinite(value) and value >= 0):
        raise ValueError(f"{name} must be finite and >= 0, got {sigma!r}")
    return value


def binning_variance(binning: int) -> float:
    """Variance (binned px²) that ``binning x binning`` summing adds to a PSF.

    Parameters
    ----------
    binning
        Binning factor ``b`` (1 = no binning).

    Returns
    -------
    float
        ``(b**2 - 1) / (12 b**2)``.
    """
    b = _check_binning(binning)
    return (b * b - 1) / (12.0 * b * b)


def binned_sigma(sigma_sensor_px: float, binning: int) -> float:
    """PSF sigma on a binned frame, in binned pixels.

    Parameters
    ----------
    sigma_sensor_px
        Gaussian PSF sigma on the sensor grid, in sensor pixels.
    binning
        Binning factor ``b``.

    Returns
    -------
    float
        ``sqrt((sigma_sensor_px / b)**2 + (b**2 - 1) / (12 b**2))``.
    """
    sigma = _check_sigma(sigma_sensor_px, "sigma_sensor_px")
    b = _check_binning(binning)
    return math.sqrt((sigma / b) ** 2 + binning_variance(b))


def sensor_sigma(sigma_binned_px: float, binning: int, *, clip: bool = False) -> float:
    """Sensor PSF sigma (sensor pixels) that gives ``sigma_binned_px`` on a binned frame.

    Inverse of :func:`binned_sigma`.

    Parameters
    ----------
    sigma_binned_px
        PSF sigma measured on the binned frame, in binned pixels.
    binning
        Binning factor ``b``.
    clip
        Return 0 instead of raising when ``sigma_binned_px`` is below what binning alone
        gives (``sqrt(binning_variance(b))``).

    Returns
    -------
    float
        ``b * sqrt(sigma_binned_px**2 - (b**2 - 1) / (12 b**2))``.

    Raises
    ------
    ValueError
        When ``sigma_binned_px`` is below the binning floor and ``clip`` is false.
    """
    sigma = _check_sigma(sigma_binned_px, "sigma_binned_px")
    b = _check_binning(binning)
    variance = sigma * sigma - binning_variance(b)
    if variance < 0:
        if clip:
            return 0.0
        floor = math.sqrt(binning_variance(b))
        raise ValueError(f"sigma_binned_px {sigma:.4g} is below the {floor:.4g} px that "
                         f"{b} x {b} binning alone gives")
    return b * math.sqrt(variance)
