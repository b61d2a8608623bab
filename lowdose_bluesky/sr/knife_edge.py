"""Slanted-edge (knife-edge) PSF measurement after the ISO 12233 e-SFR method.

Steps, for one frame or a stack of frames of the same edge:

1. Per line across the edge (a row for a near-vertical edge), the edge position is the
   centroid of the derivative of the lightly smoothed line; a first pass uses the whole
   line, a second one a Hamming window centred on the first pass's edge line.
2. A straight line is least-squares fitted to the positions (outliers beyond 3 robust
   standard deviations are dropped); its slope gives the slant angle.
3. Every ROI pixel is projected onto the edge normal; the distances are binned at
   ``1 / oversampling`` px and averaged, giving the oversampled edge spread function
   (ESF), dark side at negative distance. Empty bins are filled by linear interpolation.
4. The line spread function (LSF) is the two-tap difference of the ESF (ISO's
   ``[-1/2, 1/2]`` FIR, scaled to a derivative per pixel), optionally Hamming windowed.
5. A Gaussian is fitted to the LSF (generalised least squares with the noise covariance
   of a differenced ESF), its sigma is the PSF sigma; an erf step fitted to the ESF is the
   cross-check.

Sampling correction: averaging in bins of width ``d = 1 / oversampling`` and the
two-tap difference each widen the profile by a box of width ``d`` (variance ``d**2 / 12``),
so the reported sigmas are ``sqrt(sigma_fit**2 - d**2 / 6)`` (LSF) and
``sqrt(sigma_fit**2 - d**2 / 12)`` (ESF).

Pixels are taken as point samples of the blurred image (as on the simulated camera's
sensor grid); a sensor that integrates over its pixel area adds ``1/12`` px² to the
measured variance.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Literal

import numpy as np
from numpy.typing import ArrayLike
from scipy.ndimage import gaussian_filter1d

from ._roi import roi_slices
from .profile_fit import ProfileFit, fit_erf_esf, fit_gaussian_lsf

__all__ = [
    "MAX_EMPTY_FRACTION",
    "MAX_LINE_RMS_PX",
    "MAX_RELATIVE_UNCERTAINTY",
    "MIN_EDGE_SNR",
    "EdgeSpread",
    "KnifeEdgeResult",
    "edge_spread",
    "knife_edge_sigma",
    "line_spread",
]

#: Smallest accepted ratio of the edge step to the per-pixel noise std.
MIN_EDGE_SNR = 5.0
#: Largest accepted relative 1-sigma uncertainty of the fitted PSF sigma.
MAX_RELATIVE_UNCERTAINTY = 0.10
#: Largest accepted robust RMS (px) of the per-line edge positions about their line.
MAX_LINE_RMS_PX = 1.5
#: Largest accepted fraction of empty bins in the central half of the oversampled ESF.
MAX_EMPTY_FRACTION = 0.25

_STANDARD = "ISO 12233 slanted-edge (e-SFR) ESF/LSF"
_SQRT2 = math.sqrt(2.0)
_FWHM_PER_SIGMA = 2.0 * math.sqrt(2.0 * math.log(2.0))

Orientation = Literal["auto", "vertical", "horizontal"]


@dataclass(frozen=True, eq=False)
class EdgeSpread:
    """Oversampled edge spread function of a slanted edge.

    Attributes
    ----------
    x
        Bin centres: signed distance from the edge along its normal (px), dark side < 0.
    esf
        Mean image value per bin (empty bins interpolated).
    counts
        Pixels averaged per bin (0 where interpolated).
    oversampling
        Bins per pixel.
    angle_deg
        Slant of the edge from the image axis it runs along (vertical: from the z axis,
        positive when the edge's x grows with z; horizontal: from the x axis, positive when
        its z grows with x).
    orientation
        ``"vertical"`` (edge runs along z, profile along x) or ``"horizontal"``.
    dark_side
        ``"left"``/``"right"`` (vertical) or ``"top"``/``"bottom"`` (horizontal).
    intercept, slope
        Edge line ``v = intercept + slope * u`` in image pixel coordinates, ``u`` along the
        edge and ``v`` across it (vertical: ``x = intercept + slope * z``).
    line_rms_px
        Robust RMS of the per-line edge positions about the line.
    step
        Bright minus dark level (image units).
    noise_std
        Per-pixel noise std in the ROI (robust, from differences along the edge).
    n_frames
        Frames combined.
    width_px
        ROI extent across the edge (px).
    """

    x: np.ndarray
    esf: np.ndarray
    counts: np.ndarray
    oversampling: int
    angle_deg: float
    orientation: str
    dark_side: str
    intercept: float
    slope: float
    line_rms_px: float
    step: float
    noise_std: float
    n_frames: int
    width_px: int

    @property
    def bin_width(self) -> float:
        """Bin width of the ESF (px)."""
        return 1.0 / self.oversampling

    @property
    def snr(self) -> float:
        """Edge step over per-pixel noise std."""
        return self.step / self.noise_std if self.noise_std > 0 else math.inf


@dataclass(frozen=True, eq=False)
class KnifeEdgeResult:
    """PSF sigma from a slanted knife edge.

    Attributes
    ----------
    sigma_px, sigma_std_px
        Gaussian-LSF sigma (px, sampling corrected) and its 1-sigma uncertainty.
    angle_deg
        Edge slant (see :class:`EdgeSpread`).
    esf_x, esf
        Oversampled ESF (distance px, value), dark side at negative distance.
    lsf_x, lsf
        LSF (derivative of the ESF per px) at the midpoints of the ESF bins.
    edge_contrast
        Michelson contrast of the edge, ``(bright - dark) / (bright + dark)`` from the
        erf fit.
    edge_step, noise_std
        Bright minus dark level and per-pixel noise std (image units).
    erf_sigma_px, erf_sigma_std_px
        Cross-check: sigma of an erf fitted to the ESF (px, sampling corrected).
    lsf_fit, esf_fit
        The two fits (uncorrected sigmas).
    orientation, dark_side, n_frames, oversampling
        As in :class:`EdgeSpread`.
    method, standard
        Description of the method and the standard it follows.
    """

    sigma_px: float
    sigma_std_px: float
    angle_deg: float
    esf_x: np.ndarray
    esf: np.ndarray
    lsf_x: np.ndarray
    lsf: np.ndarray
    edge_contrast: float
    edge_step: float
    noise_std: float
    erf_sigma_px: float
    erf_sigma_std_px: float
    lsf_fit: ProfileFit
    esf_fit: ProfileFit
    orientation: str
    dark_side: str
    n_frames: int
    oversampling: int
    method: str
    standard: str = _STANDARD

    @property
    def fwhm_px(self) -> float:
        """Full width at half maximum of the Gaussian PSF (px)."""
        return _FWHM_PER_SIGMA * self.sigma_px


def _stack(frames: ArrayLike) -> np.ndarray:
    stack = np.asarray(frames, dtype=np.float64)
    if stack.ndim == 2:
        stack = stack[np.newaxis]
    if stack.ndim != 3 or min(stack.shape) < 1:
        raise ValueError(f"frames must be (H, W) or (N, H, W), got shape {stack.shape}")
    if not np.all(np.isfinite(stack)):
        raise ValueError("frames must not contain NaN or infinite values")
    return stack


def _offsets(offsets_px: ArrayLike | None, n_frames: int) -> np.ndarray:
    if offsets_px is None:
        return np.zeros(n_frames)
    offsets = np.atleast_1d(np.asarray(offsets_px, dtype=np.float64))
    if offsets.shape != (n_frames,) or not np.all(np.isfinite(offsets)):
        raise ValueError(f"offsets_px must hold one finite value per frame ({n_frames}), "
                         f"got {np.asarray(offsets_px).shape}")
    return offsets


def _edge_orientation(mean_roi: np.ndarray) -> str:
    smooth = gaussian_filter1d(gaussian_filter1d(mean_roi, 1.0, axis=0), 1.0, axis=1)
    along_x = float(np.ptp(smooth.mean(axis=0)))
    along_z = float(np.ptp(smooth.mean(axis=1)))
    return "vertical" if along_x >= along_z else "horizontal"


def _centroids(derivative: np.ndarray, centre: np.ndarray | None) -> np.ndarray:
    """Centroid (index of the derivative samples) per line, optionally Hamming windowed."""
    length = derivative.shape[-1]
    j = np.arange(length, dtype=np.float64)
    weights = derivative
    if centre is not None:
        phase = np.clip((j - centre[..., np.newaxis]) / length, -0.5, 0.5)
        weights = derivative * (0.54 + 0.46 * np.cos(2 * np.pi * phase))
    total = weights.sum(axis=-1)
    with np.errstate(divide="ignore", invalid="ignore"):
        return (weights * j).sum(axis=-1) / total


def _fit_line(u: np.ndarray, v: np.ndarray) -> tuple[float, float, float, float]:
    """Robust straight line ``v = a + b u``: (a, b, robust rms, inlier fraction)."""
    good = np.isfinite(v)
    if good.sum() < 3:
        return math.nan, math.nan, math.inf, 0.0
    keep = good.copy()
    a = b = math.nan
    for _ in range(3):
        b, a = np.polyfit(u[keep], v[keep], 1)
        residual = np.where(good, v - (a + b * u), np.inf)
        core = residual[keep]
        spread = 1.4826 * float(np.median(np.abs(core - np.median(core))))
        keep = good & (np.abs(residual) <= max(3.0 * spread, 0.25))
        if keep.sum() < 3:
            return math.nan, math.nan, math.inf, 0.0
    b, a = np.polyfit(u[keep], v[keep], 1)
    residual = v[keep] - (a + b * u[keep])
    rms = float(np.sqrt(np.mean(residual**2)))
    return float(a), float(b), rms, float(keep.sum() / u.size)


def edge_spread(frames: ArrayLike, *, roi: Sequence[int] | None = None,
                offsets_px: ArrayLike | None = None, oversampling: int = 4,
                orientation: Orientation = "auto", min_snr: float = MIN_EDGE_SNR,
                max_line_rms_px: float = MAX_LINE_RMS_PX,
                max_empty_fraction: float = MAX_EMPTY_FRACTION) -> EdgeSpread:
    """Oversampled ESF of a slanted edge (ISO 12233 projection and binning).

    Parameters
    ----------
    frames
        ``(H, W)`` image or ``(N, H, W)`` stack of the same edge (raw counts or
        transmission).
    roi
        ``[z0, z1, x0, x1]`` (half-open) holding the edge and flat regions on both sides;
        the whole frame by default.
    offsets_px
        Per-frame shift of the image content along x in pixels (positive = content moved
        to +x), e.g. sub-pixel stage steps of the edge; frames are combined in the content
        frame. Default: all zero.
    oversampling
        ESF bins per pixel.
    orientation
        ``"vertical"`` (edge runs along z, within ~45 deg), ``"horizontal"`` or
        ``"auto"`` (from the mean image's profiles).
    min_snr
        Smallest accepted edge step over the per-pixel noise std.
    max_line_rms_px
        Largest accepted robust RMS of the per-line edge positions about a line.
    max_empty_fraction
        Largest accepted fraction of empty bins in the central half of the ESF (the slant,
        or the frames' offsets, must sample the sub-pixel phases).

    Returns
    -------
    EdgeSpread
        The binned ESF with the edge geometry.

    Raises
    ------
    ValueError
        When there is no edge (step below ``min_snr`` x noise), the per-line edge
        positions do not follow a straight line, or too many ESF bins are empty.
    """
    stack = _stack(frames)
    n_frames, height, width = stack.shape
    offsets = _offsets(offsets_px, n_frames)
    if isinstance(oversampling, bool) or not isinstance(oversampling, int) or oversampling < 1:
        raise ValueError(f"oversampling must be a positive integer, got {oversampling!r}")
    rows, cols = roi_slices(roi if roi is not None else (0, height, 0, width), stack.shape,
                            min_pixels=64)
    data = stack[:, rows, cols]
    if orientation == "auto":
        orientation = _edge_orientation(data.mean(axis=0))
    z = np.arange(rows.start, rows.stop, dtype=np.float64)
    x = np.arange(cols.start, cols.stop, dtype=np.float64)
    if orientation == "vertical":
        u = np.broadcast_to(z, (n_frames, z.size))               # along the edge
        v = x[np.newaxis, :] - offsets[:, np.newaxis]            # across the edge
    elif orientation == "horizontal":
        data = data.transpose(0, 2, 1)
        u = x[np.newaxis, :] - offsets[:, np.newaxis]
        v = np.broadcast_to(z, (n_frames, z.size))
    else:
        raise ValueError(f"orientation must be 'auto', 'vertical' or 'horizontal', "
                         f"got {orientation!r}")
    n_lines, length = data.shape[1], data.shape[2]
    if n_lines < 4 or length < 8:
        raise ValueError(f"the ROI needs >= 4 lines along the edge and >= 8 pixels across "
                         f"it, got {n_lines} x {length}")

    # No edge: step between the two ends of the mean profile vs the per-pixel noise.
    along = np.diff(data, axis=1)
    noise = 1.4826 * float(np.median(np.abs(along - np.median(along)))) / _SQRT2
    profile = data.mean(axis=(0, 1))
    quarter = max(1, length // 4)
    step = float(profile[-quarter:].mean() - profile[:quarter].mean())
    if not abs(step) >= min_snr * noise or step == 0:
        raise ValueError(f"no edge in the ROI: the measured edge step {abs(step):.4g} is "
                         f"{abs(step) / noise if noise > 0 else math.inf:.3g} x the noise std"
                         f" {noise:.4g}; an edge needs a step >= {min_snr:g} x the noise")
    sign = 1.0 if step > 0 else -1.0

    # Edge position per line: centroid of the derivative (two passes), then a line fit.
    derivative = sign * np.diff(gaussian_filter1d(data, 1.0, axis=2), axis=2)
    first = _centroids(derivative, None)
    a, b, _, _ = _fit_line(u.ravel(), (first + 0.5 + v[:, :1]).ravel())
    predicted = (a + b * u - v[:, :1]) - 0.5
    second = _centroids(derivative, predicted if np.isfinite(a) else None)
    a, b, rms, inliers = _fit_line(u.ravel(), (second + 0.5 + v[:, :1]).ravel())
    if not (np.isfinite(a) and rms <= max_line_rms_px and inliers >= 0.5):
        raise ValueError(f"the per-line edge positions do not fit a straight line: robust "
                         f"RMS {rms:.3g} px with {100 * inliers:.0f} % of lines within 3 "
                         f"robust std (need RMS <= {max_line_rms_px:g} px and >= 50 %)")

    # Project onto the edge normal, dark side negative, and bin.
    distance = sign * (v[:, np.newaxis, :] - (a + b * u)[:, :, np.newaxis]) / math.hypot(1, b)
    index = np.floor(distance.ravel() * oversampling).astype(np.int64)
    first_bin = int(index.min())
    index -= first_bin
    counts = np.bincount(index).astype(np.int64)
    sums = np.bincount(index, weights=data.ravel())
    centres = (np.arange(counts.size) + first_bin + 0.5) / oversampling
    filled = counts > 0
    central = filled[counts.size // 4: counts.size - counts.size // 4]
    empty = 1.0 - float(central.mean()) if central.size else 1.0
    if empty > max_empty_fraction:
        raise ValueError(f"the edge does not sample the sub-pixel phases: {100 * empty:.0f} % "
                         f"of the central ESF bins are empty (need <= "
                         f"{100 * max_empty_fraction:.0f} %); the edge must shift by >= 1 px "
                         f"over the ROI's lines (slant {math.degrees(math.atan(b)):.2f} deg "
                         f"over {n_lines} lines): tilt it, use more lines, frames with "
                         f"sub-pixel offsets, or a lower oversampling")
    esf = np.interp(centres, centres[filled], sums[filled] / counts[filled])
    if orientation == "vertical":
        dark_side = "left" if sign > 0 else "right"
    else:
        dark_side = "top" if sign > 0 else "bottom"
    return EdgeSpread(x=centres, esf=esf, counts=counts, oversampling=oversampling,
                      angle_deg=math.degrees(math.atan(b)), orientation=orientation,
                      dark_side=dark_side, intercept=a, slope=b, line_rms_px=rms,
                      step=abs(step), noise_std=noise, n_frames=n_frames, width_px=length)


def line_spread(esf: EdgeSpread, *, window: bool = False) -> tuple[np.ndarray, np.ndarray]:
    """LSF: derivative of the ESF per pixel at the midpoints of adjacent bins.

    Parameters
    ----------
    esf
        Oversampled ESF from :func:`edge_spread`.
    window
        Multiply by a Hamming window of the ESF's length centred on the LSF centroid
        (as ISO 12233 does before the FFT for the MTF). It narrows the tails, so it is
        off for the Gaussian fit.

    Returns
    -------
    x, lsf : ndarray
        Positions (px) and values (image units per px).
    """
    step = esf.bin_width
    lsf = np.diff(esf.esf) / step
    x = 0.5 * (esf.x[1:] + esf.x[:-1])
    if window:
        weights = np.clip(lsf, 0, None)
        centre = float((weights * x).sum() / weights.sum()) if weights.sum() > 0 else 0.0
        extent = x[-1] - x[0] + step
        phase = np.clip((x - centre) / extent, -0.5, 0.5)
        lsf = lsf * (0.54 + 0.46 * np.cos(2 * np.pi * phase))
    return x, lsf


def _corrected(fit: ProfileFit, variance: float, what: str) -> tuple[float, float]:
    corrected = fit.sigma**2 - variance
    if not corrected > 0:
        raise ValueError(f"the {what} sigma {fit.sigma:.3g} px is not wider than the "
                         f"sampling ({math.sqrt(variance):.3g} px); raise oversampling")
    sigma = math.sqrt(corrected)
    return sigma, fit.sigma_std * fit.sigma / sigma


def knife_edge_sigma(frames: ArrayLike, *, roi: Sequence[int] | None = None,
                     offsets_px: ArrayLike | None = None, oversampling: int = 4,
                     orientation: Orientation = "auto", min_snr: float = MIN_EDGE_SNR,
                     max_relative_uncertainty: float = MAX_RELATIVE_UNCERTAINTY,
                     max_line_rms_px: float = MAX_LINE_RMS_PX,
                     max_empty_fraction: float = MAX_EMPTY_FRACTION) -> KnifeEdgeResult:
    """Gaussian PSF sigma (px) of an imaging system from a slanted knife edge.

    Parameters
    ----------
    frames, roi, offsets_px, oversampling, orientation
        See :func:`edge_spread`.
    min_snr, max_line_rms_px, max_empty_fraction
        Acceptance bounds of the edge, see :func:`edge_spread`.
    max_relative_uncertainty
        Largest accepted ``sigma_std_px / sigma_px`` (default 10 %).

    Returns
    -------
    KnifeEdgeResult
        Sigma with its uncertainty, the ESF and LSF, and the erf cross-check.

    Raises
    ------
    ValueError
        When there is no edge in the ROI (step below ``min_snr`` x noise), the edge is
        not straight or does not sample the sub-pixel phases, a fit fails, or the sigma
        does not fit: not finite, below 0.1 px, above a quarter of the ROI extent across the
        edge, or relative uncertainty above ``max_relative_uncertainty``.
    """
    spread = edge_spread(frames, roi=roi, offsets_px=offsets_px, oversampling=oversampling,
                         orientation=orientation, min_snr=min_snr,
                         max_line_rms_px=max_line_rms_px,
                         max_empty_fraction=max_empty_fraction)
    step_variance = spread.bin_width**2 / 12.0
    esf_fit = fit_erf_esf(spread.x, spread.esf, counts=spread.counts)
    lsf_x, lsf = line_spread(spread)
    # Fit near the edge: +-max(8 sigma, 5 px) around the erf fit's centre.
    half = max(8.0 * abs(esf_fit.sigma), 5.0)
    near = np.abs(lsf_x - esf_fit.centre) <= half
    if near.sum() < 8:
        near = np.ones_like(near)
    lo, hi = int(np.argmax(near)), int(near.size - np.argmax(near[::-1]))
    peak = esf_fit.amplitude / (math.sqrt(2 * math.pi) * max(abs(esf_fit.sigma), 0.05))
    lsf_fit = fit_gaussian_lsf(lsf_x[lo:hi], lsf[lo:hi], esf_counts=spread.counts[lo:hi + 1],
                               p0=(0.0, peak, esf_fit.centre, max(abs(esf_fit.sigma), 0.3)))
    if not (math.isfinite(lsf_fit.sigma) and math.isfinite(lsf_fit.sigma_std)):
        raise ValueError(f"the LSF sigma does not fit: {lsf_fit.sigma} +- {lsf_fit.sigma_std}")
    sigma, sigma_std = _corrected(lsf_fit, 2.0 * step_variance, "LSF")
    erf_sigma, erf_std = _corrected(esf_fit, step_variance, "ESF")
    limit = spread.width_px / 4.0
    if not 0.1 <= sigma <= limit:
        raise ValueError(f"the LSF sigma {sigma:.3g} px is outside the measurable range "
                         f"[0.1, {limit:.3g}] px (a quarter of the ROI's {spread.width_px} px "
                         f"across the edge)")
    relative = sigma_std / sigma
    if not relative <= max_relative_uncertainty:
        raise ValueError(f"the LSF sigma does not fit: {sigma:.3g} +- {sigma_std:.2g} px, "
                         f"relative uncertainty {100 * relative:.1f} % (need <= "
                         f"{100 * max_relative_uncertainty:.3g} %); edge step "
                         f"{spread.step:.4g}, noise std {spread.noise_std:.4g}")
    dark, bright = esf_fit.baseline, esf_fit.baseline + esf_fit.amplitude
    contrast = (bright - dark) / (bright + dark) if bright + dark != 0 else math.nan
    method = (f"slanted edge, {spread.n_frames} frame(s), {spread.orientation} edge at "
              f"{spread.angle_deg:.2f} deg, ESF oversampled x{oversampling}, two-tap "
              f"derivative, Gaussian LSF fit (GLS), sampling-corrected")
    return KnifeEdgeResult(sigma_px=sigma, sigma_std_px=sigma_std, angle_deg=spread.angle_deg,
                           esf_x=spread.x, esf=spread.esf, lsf_x=lsf_x, lsf=lsf,
                           edge_contrast=float(contrast), edge_step=spread.step,
                           noise_std=spread.noise_std, erf_sigma_px=erf_sigma,
                           erf_sigma_std_px=erf_std, lsf_fit=lsf_fit, esf_fit=esf_fit,
                           orientation=spread.orientation, dark_side=spread.dark_side,
                           n_frames=spread.n_frames, oversampling=oversampling,
                           method=method)
