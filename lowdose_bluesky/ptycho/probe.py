"""A zone-plate-like focused probe, its size, and the check every probe passes.

The probe is built in the far field: the pupil of a Fresnel zone plate is an
annulus (an outer aperture with a central stop), multiplied by a defocus phase.
Its inverse Fourier transform is the probe in the sample plane, with the
central stop's shadow and the Fresnel fringes of an out-of-focus zone-plate
beam. The pupil radius is adjusted so that the circle holding 90 % of the
probe's intensity has the requested diameter (:func:`probe_diameter_px`).
"""

from __future__ import annotations

import numpy as np
from numpy.typing import ArrayLike

__all__ = ["check_probe", "focused_probe", "probe_diameter_px", "probe_support"]

ENERGY_FRACTION = 0.9
"""Fraction of ``|P|^2`` inside the circle whose diameter :func:`probe_diameter_px` returns."""


def probe_diameter_px(probe: ArrayLike, *, fraction: float = ENERGY_FRACTION) -> float:
    """Diameter of the circle, around the intensity centroid, holding 90 % of ``|P|^2``.

    This is the probe size used for the overlap of neighbouring positions
    (:func:`lowdose_bluesky.ptycho.overlap`).

    Parameters
    ----------
    probe
        2-D complex (or real) probe, not all zero.
    fraction
        Fraction of the total intensity inside the circle, in ``(0, 1)``.

    Returns
    -------
    float
        The diameter in pixels (interpolated between pixel radii).
    """
    if not 0.0 < fraction < 1.0:
        raise ValueError(f"fraction must be in (0, 1), got {fraction!r}")
    array = np.asarray(probe)
    if array.ndim != 2:
        raise ValueError(f"probe must be a 2-D array, got shape {array.shape}")
    intensity = np.abs(array).astype(np.float64) ** 2
    total = float(intensity.sum())
    if not (np.isfinite(total) and total > 0):
        raise ValueError(f"probe intensity must be finite and non-zero, got total {total!r}")
    yy, xx = np.indices(intensity.shape, dtype=np.float64)
    cy = float((yy * intensity).sum() / total)
    cx = float((xx * intensity).sum() / total)
    radius = np.hypot(yy - cy, xx - cx).ravel()
    order = np.argsort(radius, kind="stable")
    cumulative = np.cumsum(intensity.ravel()[order]) / total
    index = int(np.searchsorted(cumulative, fraction))
    r_sorted = radius[order]
    if index == 0:
        return float(2.0 * r_sorted[0])
    # Linear interpolation between the radii enclosing ``fraction``.
    c0, c1 = cumulative[index - 1], cumulative[min(index, cumulative.size - 1)]
    r0, r1 = r_sorted[index - 1], r_sorted[min(index, r_sorted.size - 1)]
    t = 0.0 if c1 <= c0 else (fraction - c0) / (c1 - c0)
    return float(2.0 * (r0 + t * (r1 - r0)))


def probe_support(probe: ArrayLike, fraction: float) -> np.ndarray:
    """Boolean mask of the pixels where ``|P|^2`` reaches ``fraction`` of its peak."""
    intensity = np.abs(np.asarray(probe)) ** 2
    return intensity >= fraction * intensity.max()


def _pupil_probe(shape: tuple[int, int], pupil_radius: float, defocus: float,
                 central_stop: float, aberration: np.ndarray | None) -> np.ndarray:
    height, width = shape
    ky = np.fft.fftfreq(height) * height
    kx = np.fft.fftfreq(width) * width
    k = np.hypot(ky[:, None], kx[None, :])
    rho = k / pupil_radius
    pupil = ((rho <= 1.0) & (rho >= central_stop)).astype(np.complex128)
    phase = 2.0 * np.pi * defocus * rho**2
    if aberration is not None:
        theta = np.arctan2(ky[:, None], kx[None, :])
        astig_0, astig_45, coma_x, coma_y = aberration
        phase = phase + 2.0 * np.pi * (
            rho**2 * (astig_0 * np.cos(2 * theta) + astig_45 * np.sin(2 * theta))
            + (3 * rho**3 - 2 * rho) * (coma_x * np.cos(theta) + coma_y * np.sin(theta))
        )
    field = np.fft.fftshift(np.fft.ifft2(pupil * np.exp(1j * phase)))
    return field / np.sqrt(np.sum(np.abs(field) ** 2))


def focused_probe(shape: tuple[int, int] = (64, 64), *, diameter_px: float = 24.0,
                  defocus: float = 2.0, central_stop: float = 0.4, seed: int | None = None,
                  aberration: float = 0.1) -> np.ndarray:
    """Probe of a Fresnel zone plate out of focus, centred in its window.

    Parameters
    ----------
    shape
        ``(height, width)`` of the probe window, equal to the detector pattern
        shape, each at least 8.
    diameter_px
        Target diameter of the circle holding 90 % of the intensity
        (:func:`probe_diameter_px`), in pixels. It must be at most 3/4 of the
        smaller window side, so that the probe's fringes fit in the window.
    defocus
        Defocus phase at the edge of the pupil, in waves (``0``: in focus, an
        Airy-like spot with rings; ``2``: a ring-shaped beam about ``2.6 x``
        wider than the focus, the usual choice for ptychography).
    central_stop
        Radius of the central stop relative to the outer pupil radius, in ``[0, 1)``.
    seed
        ``None``: an ideal probe, identical on every call. An integer: small
        random astigmatism and coma (drawn with :func:`numpy.random.default_rng`)
        are added, reproducible for the same seed.
    aberration
        Standard deviation of the random aberration coefficients, in waves
        (used only with a ``seed``).

    Returns
    -------
    numpy.ndarray
        ``complex128`` array of ``shape``, normalised so that ``sum |P|^2 == 1``.
    """
    try:
        height, width = (int(s) for s in shape)
    except (TypeError, ValueError):
        raise ValueError(f"shape must be two integers (height, width), got {shape!r}") from None
    if (height, width) != tuple(shape) or min(height, width) < 8:
        raise ValueError(f"shape must be two integers, each at least 8, got {shape!r}")
    largest = 0.75 * min(height, width)
    if not (np.isfinite(diameter_px) and 2.0 <= diameter_px <= largest):
        raise ValueError(
            f"diameter_px must be in [2, {largest:g}] (3/4 of the window {shape}), "
            f"got {diameter_px!r}"
        )
    if not (np.isfinite(defocus) and 0.0 <= defocus <= 20.0):
        raise ValueError(f"defocus must be in [0, 20] waves, got {defocus!r}")
    if not 0.0 <= central_stop < 1.0:
        raise ValueError(f"central_stop must be in [0, 1), got {central_stop!r}")
    if not (np.isfinite(aberration) and aberration >= 0.0):
        raise ValueError(f"aberration must be a finite number >= 0 waves, got {aberration!r}")
    coefficients = None
    if seed is not None:
        coefficients = aberration * np.random.default_rng(seed).standard_normal(4)

    # The probe size scales as 1 / pupil radius at a fixed defocus in waves:
    # start from the geometric estimate and correct by the measured ratio.
    size = min(height, width)
    nyquist = size / 2.0 - 1.0
    radius = min(nyquist, max(2.0, (4.0 * defocus + 2.5) * size / diameter_px))
    for _ in range(8):
        probe = _pupil_probe((height, width), radius, defocus, central_stop, coefficients)
        measured = probe_diameter_px(probe)
        if abs(measured - diameter_px) <= 0.01 * diameter_px:
            break
        new_radius = float(np.clip(radius * measured / diameter_px, 1.0, nyquist))
        if new_radius == radius:
            break
        radius = new_radius
    if abs(measured - diameter_px) > 0.1 * diameter_px:
        raise ValueError(
            f"diameter_px={diameter_px!r} cannot be reached in a {shape} window with "
            f"defocus={defocus!r} (closest: {measured:.3g} px); use a larger window, "
            "a larger diameter or less defocus"
        )
    return probe


def check_probe(probe: ArrayLike, pattern_shape: tuple[int, int]) -> np.ndarray:
    """Validate a probe for patterns of ``pattern_shape`` and return it as ``complex128``.

    Parameters
    ----------
    probe
        2-D complex array, finite, not all zero, of shape ``pattern_shape``.
    pattern_shape
        ``(height, width)`` of the diffraction patterns.

    Returns
    -------
    numpy.ndarray
        The probe as a ``complex128`` array.

    Raises
    ------
    ValueError
        If any of the conditions above does not hold.
    """
    array = np.asarray(probe)
    expected = tuple(int(s) for s in pattern_shape)
    if array.ndim != 2:
        raise ValueError(f"probe must be a 2-D array, got shape {array.shape}")
    if array.shape != expected:
        raise ValueError(
            f"probe shape {array.shape} must equal the pattern shape {expected}"
        )
    if not np.iscomplexobj(array):
        raise ValueError(f"probe must be a complex array, got dtype {array.dtype}")
    array = array.astype(np.complex128, copy=False)
    if not np.all(np.isfinite(array)):
        raise ValueError("probe must be finite, got NaN or infinite values")
    if not np.any(array != 0):
        raise ValueError("probe must not be all zero")
    return array
