"""Far-field forward model of ptychography: exit waves and Poisson diffraction patterns.

At each position the probe ``P`` (shape ``(h, w)``) illuminates the object
window ``O[y:y + h, x:x + w]``; the exit wave ``psi = P * O_window`` propagates
to the far field, where the detector records ``|F psi|^2`` with ``F`` the
unitary 2-D discrete Fourier transform, shifted so that zero frequency is at
the centre of the pattern (:func:`numpy.fft.fftshift`). Windows start at the
positions rounded half up to whole pixels (:func:`window_corners`): there is no
sub-pixel shift.
"""

from __future__ import annotations

import numpy as np
from numpy.typing import ArrayLike

from lowdose_bluesky.ptycho.objects import check_object
from lowdose_bluesky.ptycho.positions import check_positions, window_corners
from lowdose_bluesky.ptycho.probe import check_probe

__all__ = ["diffraction_patterns", "exit_waves", "expected_intensity", "object_windows",
           "window_intensity"]

_CHUNK = 256  # patterns computed at a time, to bound the memory of the complex stack


def _windows(obj: np.ndarray, corners: np.ndarray, shape: tuple[int, int]) -> np.ndarray:
    rows = corners[:, 0, None] + np.arange(shape[0])
    cols = corners[:, 1, None] + np.arange(shape[1])
    return obj[rows[:, :, None], cols[:, None, :]]


def object_windows(obj: ArrayLike, positions: ArrayLike, shape: tuple[int, int]
                   ) -> np.ndarray:
    """The patches ``(N, h, w)`` of ``obj`` under windows of ``shape`` at ``positions``.

    Corners as the forward model places them (:func:`window_corners`); every window
    must lie inside the object.
    """
    o = np.asarray(obj)
    points = check_positions(np.asarray(positions, dtype=np.float64), o.shape, shape)
    return _windows(o, window_corners(points), shape)


def exit_waves(obj: ArrayLike, probe: ArrayLike, positions: ArrayLike) -> np.ndarray:
    """Exit waves ``P * O_window`` at every position.

    Parameters
    ----------
    obj
        Complex transmission function ``(H, W)`` (see :func:`check_object`).
    probe
        Complex probe ``(h, w)``.
    positions
        ``(N, 2)`` ``(y, x)`` top-left corners of the probe window; rounded
        half up to whole pixels.

    Returns
    -------
    numpy.ndarray
        ``complex128`` array ``(N, h, w)``.
    """
    o = check_object(obj)
    p = np.asarray(probe)
    p = check_probe(p, p.shape)
    points = check_positions(positions, o.shape, p.shape)
    return p[None] * _windows(o, window_corners(points), p.shape)


def _photons(photons: float) -> float:
    value = float(photons)
    if not (np.isfinite(value) and value > 0):
        raise ValueError(f"photons must be a positive finite count per pattern, got {photons!r}")
    return value


def expected_intensity(obj: ArrayLike, probe: ArrayLike, positions: ArrayLike,
                       photons: float) -> np.ndarray:
    """Noise-free far-field intensities, scaled to ``photons`` per pattern for a clear object.

    Parameters
    ----------
    obj, probe, positions
        As for :func:`exit_waves`.
    photons
        Expected total count of a pattern when the object is fully transparent
        (the probe is normalised to unit energy first, so its own scale does
        not matter). Must be positive.

    Returns
    -------
    numpy.ndarray
        ``float64`` array ``(N, h, w)``, zero frequency at the centre.
    """
    scale = _photons(photons)
    o = check_object(obj)
    p = np.asarray(probe)
    p = check_probe(p, p.shape)
    points = check_positions(positions, o.shape, p.shape)
    corners = window_corners(points)
    out = np.empty((len(points), *p.shape), dtype=np.float64)
    for start in range(0, len(points), _CHUNK):
        out[start:start + _CHUNK] = window_intensity(
            _windows(o, corners[start:start + _CHUNK], p.shape), p, scale)
    return out


def window_intensity(windows: np.ndarray, probe: np.ndarray, photons: float) -> np.ndarray:
    """Noise-free far-field intensities of object patches ``(N, h, w)`` under ``probe``.

    The probe is normalised to unit energy, so that a clear patch gives ``photons``
    counts in all; no checks (callers validate).
    """
    p = probe / np.sqrt(np.sum(np.abs(probe) ** 2))
    far = np.fft.fftshift(np.fft.fft2(p[None] * windows, norm="ortho"), axes=(-2, -1))
    return photons * (far.real**2 + far.imag**2)


def diffraction_patterns(obj: ArrayLike, probe: ArrayLike, positions: ArrayLike,
                         photons: float, *,
                         rng: np.random.Generator | int | None = None) -> np.ndarray:
    """Poisson-noisy far-field diffraction patterns.

    Parameters
    ----------
    obj
        Complex transmission function ``(H, W)``, amplitude <= 1.
    probe
        Complex probe ``(h, w)``; the pattern shape is the probe shape.
    positions
        ``(N, 2)`` ``(y, x)`` top-left corners of the probe window, in object
        pixels; rounded half up to whole pixels (no sub-pixel shifts).
    photons
        Expected total count per pattern for a fully transparent object: the
        expected intensities of such a pattern sum to ``photons`` (an absorbing
        object gives fewer counts). Must be positive.
    rng
        A :class:`numpy.random.Generator`, or a seed for
        :func:`numpy.random.default_rng`.

    Returns
    -------
    numpy.ndarray
        ``float32`` counts ``(N, h, w)``, zero frequency at the centre.
    """
    intensity = expected_intensity(obj, probe, positions, photons)
    generator = rng if isinstance(rng, np.random.Generator) else np.random.default_rng(rng)
    return generator.poisson(intensity).astype(np.float32)
