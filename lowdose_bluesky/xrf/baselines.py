"""Classical denoising of fitted element maps: median filter, and BM3D through Anscombe.

The noise of a fitted map follows from the counting model: the fit's coefficients are
``c = S P`` (spectra ``S``, pseudo-inverse ``P`` of the reference spectra), so with
Poisson counts of expected spectrum ``lam = c R`` each coefficient has variance
``sum_b P[b, k]^2 lam_b``: affine in the coefficients, ``alpha_k c_k + beta_k`` (the
element's own counts, plus the background, scatter and other elements under its
lines). Dividing by ``alpha_k`` gives equivalent counts of Poisson-like variance,
shifted by ``beta_k / alpha_k^2`` (the Gaussian part); the Anscombe transform makes the
noise unit-variance, BM3D removes it, and the exact unbiased inverse (Makitalo & Foi)
comes back. The expected spectrum is estimated from the data (the fitted coefficients,
smoothed), not from the truth.
"""

from __future__ import annotations

import numpy as np
from scipy.ndimage import gaussian_filter, median_filter

from .fitting import LinearFit

__all__ = ["bm3d_anscombe_maps", "coefficient_variance", "median_maps"]


def median_maps(maps: np.ndarray, size: int = 3) -> np.ndarray:
    """Each element's map ``(elements, H, W)`` median-filtered over ``size`` pixels."""
    return np.stack([median_filter(m, size=size, mode="reflect") for m in maps])


def coefficient_variance(fit: LinearFit, coefficients: np.ndarray) -> np.ndarray:
    """Variance of each fitted coefficient, ``(..., K)``, under Poisson counting.

    ``coefficients`` ``(..., K)``: estimates of the fit's coefficients (all
    components, counts scale) that give the expected spectrum ``lam = c R``.
    """
    lam = np.clip(np.asarray(coefficients) @ fit.reference, 0.0, None)  # (..., bins)
    return lam @ (fit.pinv ** 2)


def bm3d_anscombe_maps(spectra: np.ndarray, photons: np.ndarray, fit: LinearFit, *,
                       smoothing_px: float = 2.0) -> np.ndarray:
    """BM3D-denoised element maps ``(elements, H, W)`` of summed spectra ``(H, W, bins)``.

    Parameters
    ----------
    spectra
        Counts of the whole detector, ``(H, W, bins)``.
    photons
        Incident photons of each pixel ``(H, W)`` (from I0).
    fit
        The linear fit of the reference spectra.
    smoothing_px
        Gaussian smoothing (pixels) of the coefficients used to estimate the
        expected spectrum of each pixel for the noise model.
    """
    from ..baselines import BM3DDenoiser, anscombe, inverse_anscombe

    coef = fit.coefficients(spectra)  # (H, W, K)
    smooth = np.stack([gaussian_filter(coef[..., k], smoothing_px) for k in
                       range(coef.shape[-1])], axis=-1)
    variance = coefficient_variance(fit, smooth)
    denoiser = BM3DDenoiser(sigma=1.0)
    out = []
    for k in fit.rows:
        mean_k = np.clip(smooth[..., k], 0.0, None).ravel()
        design = np.stack([mean_k, np.ones_like(mean_k)], axis=1)
        (alpha, beta), *_ = np.linalg.lstsq(design, variance[..., k].ravel(), rcond=None)
        alpha = max(float(alpha), 1e-12)
        shift = max(float(beta), 0.0) / alpha**2
        equivalent = np.clip(coef[..., k] / alpha + shift, 0.0, None)
        restored = inverse_anscombe(denoiser(anscombe(equivalent).astype(np.float32)))
        out.append(np.clip(restored - shift, 0.0, None) * alpha / photons)
    return np.stack(out).astype(np.float32)
