"""Scores of a retrieved phase against the true phase.

Ptychography determines the object phase only up to a constant offset, so the
offset is removed first (:func:`remove_phase_offset`). Scores are taken only
over pixels the estimate covers (finite values, and the optional mask): a
stitched or reconstructed image is NaN where the probe never went.
"""

from __future__ import annotations

import numpy as np
from numpy.typing import ArrayLike
from scipy.ndimage import binary_erosion
from skimage.metrics import structural_similarity

__all__ = ["phase_scores", "remove_phase_offset"]

SSIM_WINDOW = 7
"""Side of the SSIM window (scikit-image's default)."""


def _weights(estimate: np.ndarray, truth: np.ndarray, mask: ArrayLike | None) -> np.ndarray:
    """Non-negative weights: the mask (boolean or weights) on pixels finite in both images."""
    if estimate.shape != truth.shape or estimate.ndim != 2:
        raise ValueError(
            f"estimate and truth must be 2-D arrays of the same shape, got {estimate.shape} "
            f"and {truth.shape}"
        )
    finite = np.isfinite(estimate) & np.isfinite(truth)
    if mask is None:
        weights = finite.astype(np.float64)
    else:
        m = np.asarray(mask)
        if m.shape != estimate.shape:
            raise ValueError(f"mask shape {m.shape} must equal the image shape {estimate.shape}")
        m = m.astype(np.float64)
        if not np.all(np.isfinite(m)) or np.any(m < 0):
            raise ValueError("mask must be boolean or finite non-negative weights")
        weights = np.where(finite, m, 0.0)
    if not np.any(weights > 0):
        raise ValueError("no pixel is finite in both images (and inside the mask)")
    return weights


def remove_phase_offset(estimate_phase: ArrayLike, true_phase: ArrayLike,
                        mask: ArrayLike | None = None) -> np.ndarray:
    """Remove the constant phase offset between an estimate and the truth.

    The offset is the circular mean of ``estimate - truth`` over the pixels
    finite in both (weighted by ``mask``), i.e. the angle of
    ``sum(w * exp(i (estimate - truth)))``; it is insensitive to phase wrapping.

    Parameters
    ----------
    estimate_phase, true_phase
        2-D phase images in radians, same shape; NaN marks pixels without an estimate.
    mask
        Optional boolean mask or non-negative weights of the same shape.

    Returns
    -------
    numpy.ndarray
        ``estimate - offset`` wrapped to ``(-pi, pi]`` (NaN stays NaN).
    """
    estimate = np.asarray(estimate_phase, dtype=np.float64)
    truth = np.asarray(true_phase, dtype=np.float64)
    weights = _weights(estimate, truth, mask)
    valid = weights > 0
    offset = np.angle(np.sum(weights[valid] * np.exp(1j * (estimate[valid] - truth[valid]))))
    shifted = estimate - offset
    wrapped = np.angle(np.exp(1j * shifted))
    # np.angle maps exactly -pi to -pi; the interval is (-pi, pi].
    wrapped = np.where(wrapped <= -np.pi, np.pi, wrapped)
    return np.where(np.isfinite(estimate), wrapped, np.nan)


def phase_scores(estimate_phase: ArrayLike, true_phase: ArrayLike,
                 mask: ArrayLike | None = None) -> dict[str, float]:
    """SSIM, PSNR and correlation of a phase estimate after removing its offset.

    Only pixels finite in the estimate (and inside ``mask``) count. SSIM is the
    mean of scikit-image's SSIM map over those pixels whose whole 7 x 7 window
    is valid (over all valid pixels if none is), with NaN pixels set to the
    estimate's mean beforehand. PSNR uses the range of the truth over the valid
    pixels as data range.

    Parameters
    ----------
    estimate_phase, true_phase
        2-D phase images in radians, same shape.
    mask
        Optional boolean mask of the pixels to score.

    Returns
    -------
    dict
        ``ssim``, ``psnr`` (dB), ``correlation`` (Pearson), ``rmse`` (radians)
        and ``n_pixels`` (number of scored pixels).
    """
    truth = np.asarray(true_phase, dtype=np.float64)
    aligned = remove_phase_offset(estimate_phase, truth, mask)
    valid = _weights(aligned, truth, None if mask is None else np.asarray(mask, bool)) > 0
    t = truth[valid]
    e = aligned[valid]
    data_range = float(t.max() - t.min())
    if data_range <= 0:
        raise ValueError("the true phase is constant over the scored pixels: no data range")
    filled = np.where(valid, aligned, e.mean())
    _, ssim_map = structural_similarity(filled, np.where(valid, truth, t.mean()),
                                        data_range=data_range, win_size=SSIM_WINDOW, full=True)
    inner = binary_erosion(valid, structure=np.ones((SSIM_WINDOW, SSIM_WINDOW), bool))
    region = inner if np.any(inner) else valid
    mse = float(np.mean((e - t) ** 2))
    psnr = float("inf") if mse == 0 else float(10.0 * np.log10(data_range**2 / mse))
    if np.std(e) > 0 and np.std(t) > 0:
        correlation = float(np.corrcoef(e, t)[0, 1])
    else:
        correlation = float("nan")
    return {
        "ssim": float(ssim_map[region].mean()),
        "psnr": psnr,
        "correlation": correlation,
        "rmse": float(np.sqrt(mse)),
        "n_pixels": int(valid.sum()),
    }
