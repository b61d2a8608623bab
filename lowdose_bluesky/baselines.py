"""Classical denoisers to compare with the CNN enhancer.

Each is a callable with the call shape of an enhancer: ``(N, H, W)`` or
``(H, W)`` frames in, float32 frames of the same shape out, frame by frame
(2-D filtering; never across frames). The paper compares against median and
total-variation filtering; BM3D is the usual strong reference.
"""

from __future__ import annotations

import numpy as np
from numpy.typing import ArrayLike
from scipy.ndimage import median_filter
from skimage.restoration import denoise_tv_chambolle, estimate_sigma

__all__ = ["BM3DDenoiser", "MedianFilter", "TVDenoiser"]


def _as_frames(frames: ArrayLike) -> tuple[np.ndarray, bool]:
    """``(N, H, W)`` float32 view of the input and whether it was 2-D."""
    arr = np.asarray(frames)
    if arr.ndim not in (2, 3) or min(arr.shape) < 1:
        raise ValueError(f"frames must be a non-empty (N, H, W) or (H, W) array, got {arr.shape}")
    if not (np.issubdtype(arr.dtype, np.floating) or np.issubdtype(arr.dtype, np.integer)):
        raise ValueError(f"frames must be real numbers, got dtype {arr.dtype}")
    arr = np.asarray(arr, dtype=np.float32)
    if not np.all(np.isfinite(arr)):
        raise ValueError("frames contain NaN or infinite values")
    single = arr.ndim == 2
    return (arr[np.newaxis] if single else arr), single


def _noise_sigma(frame: np.ndarray, sigma: float | None) -> float:
    """The given noise level, or one estimated from the frame (wavelet MAD)."""
    if sigma is not None:
        return float(sigma)
    return float(estimate_sigma(frame.astype(np.float64), channel_axis=None))


def _check_sigma(sigma: float | None) -> float | None:
    if sigma is not None and not (np.isfinite(sigma) and sigma > 0):
        raise ValueError(f"sigma must be a positive number or None (estimate), got {sigma!r}")
    return None if sigma is None else float(sigma)


class MedianFilter:
    """Median filter over a ``size x size`` window of each frame.

    Parameters
    ----------
    size
        Odd window width in pixels.
    """

    name = "median"

    def __init__(self, size: int = 3) -> None:
        if int(size) != size or size < 1 or size % 2 == 0:
            raise ValueError(f"size must be a positive odd integer, got {size!r}")
        self.size = int(size)

    def __call__(self, frames: ArrayLike) -> np.ndarray:
        """Filter ``(N, H, W)`` or ``(H, W)`` frames; returns float32 of the same shape."""
        stack, single = _as_frames(frames)
        # window of 1 along the frame axis: 2-D filtering of every frame at once
        out = median_filter(stack, size=(1, self.size, self.size), mode="reflect")
        return out[0] if single else out


class TVDenoiser:
    """Total-variation denoising (Chambolle) of each frame.

    Parameters
    ----------
    weight
        Regularisation weight, in the units of the data. ``None``:
        ``weight_per_sigma`` times the noise level estimated for each frame
        with :func:`skimage.restoration.estimate_sigma`.
    weight_per_sigma
        Factor used when ``weight`` is ``None`` (1.0 was best or near-best on
        phantom projections with 2-30 % Gaussian noise).
    """

    name = "tv"

    def __init__(self, weight: float | None = None, *, weight_per_sigma: float = 1.0) -> None:
        if weight is not None and not (np.isfinite(weight) and weight > 0):
            raise ValueError(f"weight must be a positive number or None (estimate), got {weight!r}")
        if not (np.isfinite(weight_per_sigma) and weight_per_sigma > 0):
            raise ValueError(f"weight_per_sigma must be positive, got {weight_per_sigma!r}")
        self.weight = None if weight is None else float(weight)
        self.weight_per_sigma = float(weight_per_sigma)

    def __call__(self, frames: ArrayLike) -> np.ndarray:
        """Denoise ``(N, H, W)`` or ``(H, W)`` frames; returns float32 of the same shape."""
        stack, single = _as_frames(frames)
        out = np.empty_like(stack)
        for k, frame in enumerate(stack):
            weight = self.weight
            if weight is None:
                weight = self.weight_per_sigma * _noise_sigma(frame, None)
            out[k] = frame if weight <= 0 else denoise_tv_chambolle(frame, weight=weight,
                                                                    channel_axis=None)
        return out[0] if single else out


class BM3DDenoiser:
    """BM3D denoising (``bm3d`` package) of each frame, for white Gaussian noise.

    Parameters
    ----------
    sigma
        Noise standard deviation, in the units of the data. ``None``: estimated
        for each frame with :func:`skimage.restoration.estimate_sigma`.
    """

    name = "bm3d"

    def __init__(self, sigma: float | None = None) -> None:
        self.sigma = _check_sigma(sigma)

    def __call__(self, frames: ArrayLike) -> np.ndarray:
        """Denoise ``(N, H, W)`` or ``(H, W)`` frames; returns float32 of the same shape."""
        import bm3d

        stack, single = _as_frames(frames)
        out = np.empty_like(stack)
        for k, frame in enumerate(stack):
            sigma = _noise_sigma(frame, self.sigma)
            if sigma <= 0:
                out[k] = frame
                continue
            out[k] = np.asarray(bm3d.bm3d(frame.astype(np.float64), sigma_psd=sigma),
                                dtype=np.float32).reshape(frame.shape)
        return out[0] if single else out
