"""Image-quality metrics (PSNR, SSIM, fine detail) with an explicit data range.

Both wrap :mod:`skimage.metrics`. The data range is never inferred from the
data: pass the range of the reference (e.g. ``1.0`` for the spheres-in-cube
phantom), so that numbers are comparable between methods and runs.
"""

from __future__ import annotations

import numpy as np
from numpy.typing import ArrayLike
from scipy.ndimage import gaussian_filter
from skimage.metrics import peak_signal_noise_ratio, structural_similarity

__all__ = ["fine_detail", "psnr", "ssim"]


def _prepare(test: ArrayLike, reference: ArrayLike, data_range: float | None,
             per_slice: bool) -> tuple[np.ndarray, np.ndarray, float]:
    if data_range is None:
        raise ValueError("data_range is required (e.g. reference.max() - reference.min())")
    value = float(data_range)
    if not (np.isfinite(value) and value > 0):
        raise ValueError(f"data_range must be a positive finite number, got {data_range!r}")
    a = np.asarray(test, dtype=np.float64)
    b = np.asarray(reference, dtype=np.float64)
    if a.shape != b.shape:
        raise ValueError(f"test and reference shapes differ: {a.shape} vs {b.shape}")
    if a.ndim not in (2, 3) or min(a.shape) < 1:
        raise ValueError(f"images must be non-empty 2-D or 3-D arrays, got shape {a.shape}")
    if per_slice and a.ndim != 3:
        raise ValueError(f"per_slice=True needs a 3-D stack (slices on axis 0), got {a.shape}")
    if not (np.all(np.isfinite(a)) and np.all(np.isfinite(b))):
        raise ValueError("test and reference must not contain NaN or infinite values")
    return a, b, value


def _psnr_one(a: np.ndarray, b: np.ndarray, data_range: float) -> float:
    if np.array_equal(a, b):
        return float("inf")  # skimage would divide by zero
    return float(peak_signal_noise_ratio(b, a, data_range=data_range))


def psnr(test: ArrayLike, reference: ArrayLike, *, data_range: float | None = None,
         per_slice: bool = False) -> float | np.ndarray:
    """Peak signal-to-noise ratio in dB, ``10 log10(data_range^2 / MSE)``.

    Parameters
    ----------
    test, reference
        Arrays of the same 2-D or 3-D shape.
    data_range
        Range of the reference values (required, positive).
    per_slice
        ``False``: one number, the MSE taken over the whole array.
        ``True``: an array with one PSNR per slice along axis 0 (3-D input).

    Returns
    -------
    float or numpy.ndarray
        PSNR (``inf`` where test equals reference).

    Raises
    ------
    ValueError
        If ``data_range`` is missing or not positive and finite, shapes differ,
        the input is not 2-D/3-D, or holds NaN/inf.
    """
    a, b, value = _prepare(test, reference, data_range, per_slice)
    if per_slice:
        return np.array([_psnr_one(x, y, value) for x, y in zip(a, b, strict=True)])
    return _psnr_one(a, b, value)


def ssim(test: ArrayLike, reference: ArrayLike, *, data_range: float | None = None,
         per_slice: bool = False, **kwargs: object) -> float | np.ndarray:
    """Structural similarity of 2-D images (scikit-image defaults, 7x7 window).

    Parameters
    ----------
    test, reference
        Arrays of the same 2-D or 3-D shape; 3-D arrays are stacks of 2-D
        slices along axis 0.
    data_range
        Range of the reference values (required, positive).
    per_slice
        ``False``: one number; for a 3-D stack the **mean over slices of the
        2-D SSIM** (not a 3-D SSIM). ``True``: an array of the per-slice SSIMs.
    **kwargs
        Passed on to :func:`skimage.metrics.structural_similarity`
        (e.g. ``gaussian_weights=True``).

    Returns
    -------
    float or numpy.ndarray
        SSIM, 1.0 for identical images.

    Raises
    ------
    ValueError
        If ``data_range`` is missing or not positive and finite, shapes differ,
        the input is not 2-D/3-D, or holds NaN/inf.
    """
    a, b, value = _prepare(test, reference, data_range, per_slice)
    if a.ndim == 2:
        return float(structural_similarity(b, a, data_range=value, **kwargs))
    values = np.array([structural_similarity(y, x, data_range=value, **kwargs)
                       for x, y in zip(a, b, strict=True)])
    return values if per_slice else float(values.mean())


def fine_detail(test: ArrayLike, reference: ArrayLike, *, sigmas: tuple[float, float] = (0.7, 2.0)
                ) -> float:
    """Correlation of the band-passed volumes: how much 1-3-voxel structure is kept.

    Both arrays are filtered with a difference of Gaussians (``sigmas`` in voxels,
    in every dimension), which keeps features about 1-4 voxels across and removes
    both the mean and large shapes; the score is the Pearson correlation of the two
    results. 1 means all fine structure kept; blurring and noise both lower it.

    Raises
    ------
    ValueError
        If shapes differ, the input is not 2-D/3-D, holds NaN/inf, or ``sigmas`` is
        not two increasing positive numbers.
    """
    a, b, _ = _prepare(test, reference, 1.0, False)
    small, large = (float(x) for x in sigmas)
    if not 0 < small < large:
        raise ValueError(f"sigmas must be two increasing positive numbers, got {sigmas!r}")

    def band(v: np.ndarray) -> np.ndarray:
        v = np.asarray(v, dtype=np.float64)
        return (gaussian_filter(v, small) - gaussian_filter(v, large)).ravel()

    x, y = band(a), band(b)
    if not (x.std() > 0 and y.std() > 0):
        return 0.0
    return float(np.corrcoef(x, y)[0, 1])
