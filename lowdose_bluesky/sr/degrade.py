"""Forward model from sharp high-resolution images to camera-like low-resolution frames.

A camera frame binned ``f x f`` is ``bin_f(gaussian(sensor, sigma_s))`` and a knife edge on
it measures ``sigma_px = binned_sigma(sigma_s, f)`` frame pixels. Treating the sharp image
as the sensor grid, :func:`degrade` reproduces a measured ``sigma_px``:

* ``mode="bin"``: blur with ``sigma_s = sensor_sigma(sigma_px, f)`` sharp pixels, then
  average ``f x f`` blocks (the mean keeps the intensity scale);
* ``mode="bicubic"``: blur with ``sigma_s = f * sigma_px`` sharp pixels (point sampling
  adds no width), then :func:`skimage.transform.resize` with ``order=3`` and no
  anti-aliasing.

Then Gaussian noise of std ``noise_std`` (image units) is added.
"""

from __future__ import annotations

import math
from numbers import Integral
from typing import Literal

import numpy as np
from numpy.typing import ArrayLike
from scipy.ndimage import gaussian_filter
from skimage.transform import downscale_local_mean, resize

from .sampling import sensor_sigma

__all__ = ["SR_FACTORS", "degrade", "sharp_sigma"]

#: Supported up-sampling (and so down-sampling) factors.
SR_FACTORS = (2, 4)

Mode = Literal["bin", "bicubic"]


def _check_factor(factor: int) -> int:
    if isinstance(factor, bool) or not isinstance(factor, Integral) or factor not in SR_FACTORS:
        raise ValueError(f"factor must be 2 or 4, got {factor!r}")
    return int(factor)


def sharp_sigma(sigma_px: float, factor: int, mode: Mode = "bin") -> float:
    """Blur (sharp-grid pixels) that gives a frame PSF of ``sigma_px`` frame pixels.

    Parameters
    ----------
    sigma_px
        PSF sigma measured on the low-resolution frame (frame pixels).
    factor
        Down-sampling factor, 2 or 4.
    mode
        ``"bin"``: ``sensor_sigma(sigma_px, factor)``, 0 when ``sigma_px`` is below the
        width binning alone gives; ``"bicubic"``: ``factor * sigma_px``.

    Returns
    -------
    float
        Gaussian sigma on the sharp grid.
    """
    f = _check_factor(factor)
    sigma = float(sigma_px)
    if not (math.isfinite(sigma) and sigma >= 0):
        raise ValueError(f"sigma_px must be finite and >= 0, got {sigma_px!r}")
    if mode == "bin":
        return sensor_sigma(sigma, f, clip=True)
    if mode == "bicubic":
        return f * sigma
    raise ValueError(f"mode must be 'bin' or 'bicubic', got {mode!r}")


def degrade(sharp: ArrayLike, *, factor: int, sigma_px: float,
            noise_std: float | ArrayLike = 0.0,
            rng: np.random.Generator | int | None = None, mode: Mode = "bin") -> np.ndarray:
    """Low-resolution, blurred, noisy version of sharp images.

    Parameters
    ----------
    sharp
        ``(H, W)`` or ``(N, H, W)`` images on the high-resolution grid; ``H`` and ``W``
        divisible by ``factor``.
    factor
        Down-sampling factor, 2 or 4.
    sigma_px
        PSF sigma measured on the camera frames (low-resolution pixels), e.g.
        :func:`~lowdose_bluesky.sr.knife_edge_sigma` on binned frames.
    noise_std
        Std of the added Gaussian noise in image units: a float or an array broadcastable
        to the low-resolution output (e.g. ``rel * sqrt(clean / ref)`` for Poisson-like
        noise computed from a noise-free call).
    rng
        Generator or seed for the noise.
    mode
        ``"bin"`` (block mean) or ``"bicubic"`` (see the module docstring).

    Returns
    -------
    ndarray
        ``(H / factor, W / factor)`` or ``(N, H / factor, W / factor)`` of dtype
        ``np.result_type(sharp.dtype, np.float32)`` (float32 for float32 or uint8 input).

    Raises
    ------
    ValueError
        For a factor other than 2 or 4, a negative or non-finite sigma or noise, an unknown
        mode, or a shape not divisible by ``factor``.
    """
    f = _check_factor(factor)
    blur = sharp_sigma(sigma_px, f, mode)
    images = np.asarray(sharp)
    dtype = np.result_type(images.dtype, np.float32)
    images = images.astype(dtype, copy=False)
    if images.ndim not in (2, 3) or images.shape[-1] % f or images.shape[-2] % f:
        raise ValueError(f"sharp must be (H, W) or (N, H, W) with H and W divisible by "
                         f"{f}, got shape {images.shape}")
    noise = np.asarray(noise_std, dtype=np.float64)
    if not (np.all(np.isfinite(noise)) and np.all(noise >= 0)):
        raise ValueError("noise_std must be finite and >= 0")
    spatial = (0.0,) * (images.ndim - 2) + (blur, blur)
    blurred = gaussian_filter(images, spatial, mode="reflect") if blur > 0 else images
    if mode == "bin":
        low = downscale_local_mean(blurred, (1,) * (images.ndim - 2) + (f, f))
    else:
        shape = images.shape[-2:]
        out_shape = (shape[0] // f, shape[1] // f)
        planes = blurred.reshape((-1, *shape))
        low = np.stack([resize(p, out_shape, order=3, mode="reflect", anti_aliasing=False,
                               clip=False) for p in planes])
        low = low.reshape(images.shape[:-2] + out_shape)
    low = low.astype(dtype, copy=False)
    if np.any(noise > 0):
        generator = np.random.default_rng(rng)
        low = (low + generator.normal(0.0, 1.0, low.shape) * noise).astype(dtype, copy=False)
    return low
