"""Noise of a flat (open-beam or uniform) region: spatial and temporal standard deviation."""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
from numpy.typing import ArrayLike

from ._roi import roi_slices

__all__ = ["MIN_NOISE_PIXELS", "NoiseEstimate", "background_noise"]

#: Fewest pixels a noise ROI must hold.
MIN_NOISE_PIXELS = 64


@dataclass(frozen=True)
class NoiseEstimate:
    """Noise in a background ROI.

    Attributes
    ----------
    mean
        Mean level in the ROI (over all frames).
    std
        Spatial std about a fitted plane (tilt of the flat field removed), pooled over
        frames; ``ddof`` = 3 per frame.
    relative_std
        ``std / mean``.
    temporal_std
        With several frames: std of consecutive-frame differences over ``sqrt(2)``, pooled
        (fixed-pattern structure cancels); ``None`` for one frame.
    plane
        ``(offset, slope_z, slope_x)`` of the plane fitted to the mean frame, per pixel,
        about the ROI centre.
    n_pixels, n_frames
        ROI pixels per frame and frames used.
    """

    mean: float
    std: float
    relative_std: float
    temporal_std: float | None
    plane: tuple[float, float, float]
    n_pixels: int
    n_frames: int


def background_noise(frame_or_frames: ArrayLike, roi: Sequence[int]) -> NoiseEstimate:
    """Mean and noise std in a flat ROI after removing a fitted plane.

    Parameters
    ----------
    frame_or_frames
        ``(H, W)`` frame or ``(N, H, W)`` stack (raw counts or transmission).
    roi
        ``[z0, z1, x0, x1]`` (half-open) of a region without structure, e.g. open beam.

    Returns
    -------
    NoiseEstimate
        Mean, spatial and (for ``N >= 2``) temporal std.

    Raises
    ------
    ValueError
        When the data are not 2-D/3-D or not finite, or the ROI is outside the image or
        holds fewer than :data:`MIN_NOISE_PIXELS` pixels.
    """
    stack = np.asarray(frame_or_frames, dtype=np.float64)
    if stack.ndim == 2:
        stack = stack[np.newaxis]
    if stack.ndim != 3 or stack.shape[0] < 1:
        raise ValueError(f"expected an (H, W) frame or (N, H, W) stack, got shape {stack.shape}")
    rows, cols = roi_slices(roi, stack.shape, min_pixels=MIN_NOISE_PIXELS)
    data = stack[:, rows, cols]
    if not np.all(np.isfinite(data)):
        raise ValueError("the ROI holds NaN or infinite values")
    n_frames, height, width = data.shape
    zz, xx = np.meshgrid(np.arange(height) - (height - 1) / 2, np.arange(width) - (width - 1) / 2,
                         indexing="ij")
    design = np.column_stack([np.ones(zz.size), zz.ravel(), xx.ravel()])
    values = data.reshape(n_frames, -1).T                   # (pixels, frames)
    coefficients, *_ = np.linalg.lstsq(design, values, rcond=None)
    residual = values - design @ coefficients
    dof = max(zz.size - 3, 1)
    std = math.sqrt(float((residual**2).sum()) / (dof * n_frames))
    mean = float(data.mean())
    temporal = None
    if n_frames >= 2:
        differences = np.diff(data, axis=0)
        temporal = float(np.sqrt(np.mean(differences.var(axis=(1, 2), ddof=1)) / 2.0))
    offset, slope_z, slope_x = (float(c) for c in coefficients.mean(axis=1))
    return NoiseEstimate(mean=mean, std=std,
                         relative_std=std / mean if mean != 0 else math.inf,
                         temporal_std=temporal, plane=(offset, slope_z, slope_x),
                         n_pixels=zz.size, n_frames=n_frames)
