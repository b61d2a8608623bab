"""Least-squares fits of edge profiles: a Gaussian line spread or an erf edge spread.

Both use :func:`scipy.optimize.curve_fit` and report 1-sigma uncertainties from its
covariance, scaled by the residuals (``absolute_sigma=False``). Fit failures (no
convergence, undetermined covariance) raise :class:`ValueError`.
"""

from __future__ import annotations

import math
import warnings
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
from numpy.typing import ArrayLike
from scipy.optimize import OptimizeWarning, curve_fit
from scipy.special import erf

__all__ = ["ProfileFit", "fit_erf_esf", "fit_gaussian_lsf"]

_SQRT2 = math.sqrt(2.0)


@dataclass(frozen=True, eq=False)
class ProfileFit:
    """Least-squares fit of a Gaussian LSF or an erf ESF, with 1-sigma uncertainties.

    For ``model == "gaussian"``: ``baseline + amplitude * exp(-(x - centre)**2 / (2 sigma**2))``.
    For ``model == "erf"``: ``baseline + amplitude * (1 + erf((x - centre) / (sqrt(2) sigma))) / 2``
    (``baseline`` the dark level, ``amplitude`` the step).
    """

    model: str
    sigma: float
    sigma_std: float
    centre: float
    centre_std: float
    amplitude: float
    amplitude_std: float
    baseline: float
    baseline_std: float

    def __call__(self, x: ArrayLike) -> np.ndarray:
        """Evaluate the fitted profile at ``x``."""
        function = _gaussian if self.model == "gaussian" else _erf_step
        return function(np.asarray(x, dtype=np.float64), self.baseline, self.amplitude,
                        self.centre, self.sigma)


def _gaussian(x: np.ndarray, baseline: float, amplitude: float, centre: float,
              sigma: float) -> np.ndarray:
    return baseline + amplitude * np.exp(-0.5 * ((x - centre) / sigma) ** 2)


def _erf_step(x: np.ndarray, baseline: float, amplitude: float, centre: float,
              sigma: float) -> np.ndarray:
    return baseline + 0.5 * amplitude * (1.0 + erf((x - centre) / (_SQRT2 * sigma)))


def _curve_fit(model: str, x: np.ndarray, y: np.ndarray, p0: Sequence[float],
               sigma: np.ndarray | None) -> ProfileFit:
    function = _gaussian if model == "gaussian" else _erf_step
    lower = [-np.inf, -np.inf, -np.inf, 1e-6]
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("error", OptimizeWarning)
            warnings.simplefilter("error", RuntimeWarning)
            params, cov = curve_fit(function, x, y, p0=list(p0), sigma=sigma,
                                    absolute_sigma=False, bounds=(lower, np.inf),
                                    max_nfev=2000)
    except (RuntimeError, ValueError, OptimizeWarning, RuntimeWarning,
            np.linalg.LinAlgError) as exc:
        raise ValueError(f"the {model} fit failed: {exc}") from exc
    errors = np.sqrt(np.clip(np.diag(cov), 0, None)) if np.all(np.isfinite(cov)) \
        else np.full(4, np.inf)
    baseline, amplitude, centre, sigma_fit = (float(p) for p in params)
    return ProfileFit(model=model, sigma=sigma_fit, sigma_std=float(errors[3]),
                      centre=centre, centre_std=float(errors[2]), amplitude=amplitude,
                      amplitude_std=float(errors[1]), baseline=baseline,
                      baseline_std=float(errors[0]))


def _as_profile(x: ArrayLike, y: ArrayLike, name: str) -> tuple[np.ndarray, np.ndarray]:
    xa = np.asarray(x, dtype=np.float64)
    ya = np.asarray(y, dtype=np.float64)
    if xa.ndim != 1 or xa.shape != ya.shape or xa.size < 8:
        raise ValueError(f"{name} needs 1-D x and values of equal length >= 8, got "
                         f"{xa.shape} and {ya.shape}")
    if not (np.all(np.isfinite(xa)) and np.all(np.isfinite(ya))):
        raise ValueError(f"{name} values must be finite")
    return xa, ya


def fit_gaussian_lsf(x: ArrayLike, lsf: ArrayLike, *, esf_counts: ArrayLike | None = None,
                     p0: Sequence[float] | None = None) -> ProfileFit:
    """Fit ``baseline + amplitude * exp(-(x - centre)**2 / (2 sigma**2))`` to an LSF.

    Parameters
    ----------
    x, lsf
        LSF samples.
    esf_counts
        Samples averaged in each ESF bin the LSF was differenced from
        (``len(lsf) + 1`` values). With it the fit uses the noise covariance of a
        differenced ESF (bin variance proportional to ``1 / count``), so neighbouring LSF
        samples are not treated as independent; without it, ordinary least squares.
    p0
        Initial ``(baseline, amplitude, centre, sigma)``; by default from the moments of
        the LSF.

    Returns
    -------
    ProfileFit
        Parameters with 1-sigma uncertainties from the covariance scaled by the residuals.

    Raises
    ------
    ValueError
        When the inputs are malformed or the fit does not converge.
    """
    xa, ya = _as_profile(x, lsf, "fit_gaussian_lsf")
    covariance = None
    if esf_counts is not None:
        counts = np.asarray(esf_counts, dtype=np.float64)
        if counts.shape != (xa.size + 1,):
            raise ValueError(f"esf_counts must hold len(lsf) + 1 = {xa.size + 1} values, "
                             f"got {counts.shape}")
        variance = 1.0 / np.maximum(counts, 1.0)
        covariance = (np.diag(variance[:-1] + variance[1:])
                      - np.diag(variance[1:-1], 1) - np.diag(variance[1:-1], -1))
    if p0 is None:
        weights = np.clip(ya - np.median(ya), 0, None)
        total = weights.sum()
        if total <= 0:
            raise ValueError("fit_gaussian_lsf: the LSF has no positive peak")
        centre = float((weights * xa).sum() / total)
        width = float(np.sqrt((weights * (xa - centre) ** 2).sum() / total))
        p0 = (float(np.median(ya)), float(ya.max() - np.median(ya)), centre,
              max(width, 0.3))
    return _curve_fit("gaussian", xa, ya, p0, covariance)


def fit_erf_esf(x: ArrayLike, esf: ArrayLike, *, counts: ArrayLike | None = None,
                p0: Sequence[float] | None = None) -> ProfileFit:
    """Fit an erf step ``baseline + amplitude * (1 + erf((x - c) / (sqrt(2) sigma))) / 2``.

    Fitting the ESF directly needs no derivative and is often more robust to noise than
    the LSF fit; it serves as a cross-check.

    Parameters
    ----------
    x, esf
        ESF samples (dark side at low ``x`` for a positive ``amplitude``).
    counts
        Samples averaged in each ESF bin; weights the fit by ``sqrt(counts)``.
    p0
        Initial ``(baseline, amplitude, centre, sigma)``; by default from the ESF's
        end levels and its 10-90 % rise.

    Returns
    -------
    ProfileFit
        Parameters with 1-sigma uncertainties.

    Raises
    ------
    ValueError
        When the inputs are malformed or the fit does not converge.
    """
    xa, ya = _as_profile(x, esf, "fit_erf_esf")
    sigma = None
    if counts is not None:
        weights = np.asarray(counts, dtype=np.float64)
        if weights.shape != xa.shape:
            raise ValueError(f"counts must match the ESF's length {xa.size}, got "
                             f"{weights.shape}")
        sigma = 1.0 / np.sqrt(np.maximum(weights, 1.0))
    if p0 is None:
        n_end = max(2, xa.size // 10)
        low, high = float(np.median(ya[:n_end])), float(np.median(ya[-n_end:]))
        rel = (ya - low) / (high - low) if high != low else np.zeros_like(ya)
        centre = float(xa[np.argmin(np.abs(rel - 0.5))])
        x10, x90 = xa[np.argmin(np.abs(rel - 0.1))], xa[np.argmin(np.abs(rel - 0.9))]
        p0 = (low, high - low, centre, max(abs(float(x90 - x10)) / 2.563, 0.3))
    return _curve_fit("erf", xa, ya, p0, sigma)
