"""Flat/dark normalisation and conversion of transmission to line integrals."""

from __future__ import annotations

import numpy as np
from numpy.typing import ArrayLike

from lowdose_bluesky.recon._checks import (
    MAX_SATURATED_FRACTION,
    blank_frames,
    detector_maximum,
    require_finite,
    saturated_fractions,
)

__all__ = ["minus_log", "normalize"]

#: Smallest transmission kept by :func:`normalize` and :func:`minus_log`.
TRANSMISSION_FLOOR = 1e-6


def _as_stack(data: ArrayLike, name: str) -> np.ndarray:
    arr = np.asarray(data, dtype=np.float32)
    if arr.ndim == 2:
        arr = arr[np.newaxis]
    if arr.ndim != 3 or min(arr.shape) < 1:
        raise ValueError(f"{name} must be a non-empty (N, H, W) or (H, W) array, got {arr.shape}")
    require_finite(arr, name)
    return arr


def _check_flats(flats: np.ndarray, dtype: np.dtype, saturation: float | None,
                 max_saturated_fraction: float) -> None:
    """Reject blank or saturated flat frames (``flats`` as float32, ``dtype`` as given)."""
    blank = blank_frames(flats)
    if blank.size:
        raise ValueError(
            f"flats: frame(s) {blank.tolist()} of {flats.shape[0]} are zero everywhere (was the "
            "beam off or the shutter closed?); every flat must be an open-beam frame with counts"
        )
    maximum = detector_maximum(dtype) if saturation is None else float(saturation)
    if maximum is None:
        return
    fractions = saturated_fractions(flats, maximum)
    worst = int(np.argmax(fractions))
    if fractions[worst] > max_saturated_fraction:
        raise ValueError(
            f"flats: frame {worst} of {flats.shape[0]} has {fractions[worst]:.1%} of its pixels "
            f"at the detector maximum {maximum:g} (saturated); at most "
            f"{max_saturated_fraction:.1%} are allowed: shorten the flat exposure or lower the flux"
        )


def normalize(frames: ArrayLike, flats: ArrayLike, darks: ArrayLike, *,
              max_bad_fraction: float = 1e-3, floor: float = TRANSMISSION_FLOOR,
              saturation: float | None = None,
              max_saturated_fraction: float = MAX_SATURATED_FRACTION) -> np.ndarray:
    """Flat- and dark-field correction: ``(frames - dark) / (flat - dark)``.

    ``dark`` and ``flat`` are the means of ``darks`` and ``flats`` over their
    first axis.

    Bad input is rejected: NaN or inf anywhere; a projection or a flat that
    is zero everywhere (beam off; darks may be all zero, a detector without
    offset gives that); a flat with more than ``max_saturated_fraction`` of
    its pixels at the detector maximum (the flat field is then wrong there).
    Saturated pixels in projections are not an error here: projections are
    the short exposures, and a few saturated pixels only clip their line
    integrals (the live callback records a warning for them).

    Parameters
    ----------
    frames
        Projections, ``(N, H, W)`` or ``(H, W)``.
    flats, darks
        Flat (open beam) and dark frames, ``(M, H, W)`` or ``(H, W)``.
    max_bad_fraction
        Largest fraction of pixels allowed to have ``mean(flat) - mean(dark) <= 0``
        (dead pixels). Such pixels get transmission 1 (they carry no
        information); more of them than this raises ``ValueError``.
    floor
        Transmission values below ``floor`` are clipped to it (so that a later
        logarithm stays finite).
    saturation
        Detector maximum (counts) for the saturation check of the flats;
        default: the largest value of the flats' integer dtype (65535 for
        ``uint16``), no check for float flats.
    max_saturated_fraction
        Largest fraction of a flat's pixels allowed at ``saturation``.

    Returns
    -------
    numpy.ndarray
        float32 transmission of the shape of ``frames``.

    Raises
    ------
    ValueError
        On NaN/inf input, all-zero projections or flats, saturated flats,
        mismatched frame shapes, or too many pixels with
        ``mean(flat) - mean(dark) <= 0``.
    """
    if not 0 <= max_bad_fraction < 1:
        raise ValueError(f"max_bad_fraction must be in [0, 1), got {max_bad_fraction!r}")
    if not floor > 0:
        raise ValueError(f"floor must be positive, got {floor!r}")
    if not 0 <= max_saturated_fraction < 1:
        raise ValueError(
            f"max_saturated_fraction must be in [0, 1), got {max_saturated_fraction!r}"
        )
    frames_arr = np.asarray(frames)
    squeeze = frames_arr.ndim == 2
    stack = _as_stack(frames_arr, "frames")
    flats_arr = np.asarray(flats)
    flat_stack = _as_stack(flats_arr, "flats")
    dark_stack = _as_stack(darks, "darks")
    frame_shape = stack.shape[1:]
    if flat_stack.shape[1:] != frame_shape or dark_stack.shape[1:] != frame_shape:
        raise ValueError(
            f"frame shapes differ: frames {frame_shape}, flats {flat_stack.shape[1:]}, darks "
            f"{dark_stack.shape[1:]} (H, W); flats and darks must have the projections' shape"
        )
    blank = blank_frames(stack)
    if blank.size:
        raise ValueError(
            f"frames: frame(s) {blank.tolist()} of {stack.shape[0]} are zero everywhere (was "
            "the beam off or the shutter closed?); projections must hold counts"
        )
    _check_flats(flat_stack, flats_arr.dtype, saturation, max_saturated_fraction)
    flat = flat_stack.mean(axis=0, dtype=np.float64)
    dark = dark_stack.mean(axis=0, dtype=np.float64)
    span = flat - dark
    bad = span <= 0
    n_bad = int(bad.sum())
    if n_bad > max_bad_fraction * bad.size:
        first = ", ".join(str(tuple(int(i) for i in rc)) for rc in np.argwhere(bad)[:5])
        raise ValueError(
            f"mean(flats) - mean(darks) <= 0 at {n_bad} of {bad.size} pixels "
            f"({n_bad / bad.size:.2%}; allowed: at most {int(max_bad_fraction * bad.size)} "
            f"dead pixels, max_bad_fraction={max_bad_fraction:.2%}; first (row, col): "
            f"{first}); check that flats and darks are not swapped and the beam was on"
        )
    span = np.where(bad, 1.0, span)
    out = ((stack - dark) / span).astype(np.float32)
    if n_bad:
        out[:, bad] = 1.0
    np.maximum(out, np.float32(floor), out=out)
    return out[0] if squeeze else out


def minus_log(transmission: ArrayLike, *, floor: float = TRANSMISSION_FLOOR) -> np.ndarray:
    """Line integrals ``-log(T)`` from a transmission array.

    Parameters
    ----------
    transmission
        Transmission (``1`` = no absorption), any shape.
    floor
        Values below ``floor`` are clipped to it before the logarithm.

    Returns
    -------
    numpy.ndarray
        float32 line integrals of the same shape.

    Raises
    ------
    ValueError
        On NaN/inf input or a non-positive ``floor``.
    """
    if not floor > 0:
        raise ValueError(f"floor must be positive, got {floor!r}")
    arr = np.asarray(transmission, dtype=np.float32)
    require_finite(arr, "transmission")
    out = np.maximum(arr, np.float32(floor))
    np.log(out, out=out)
    np.negative(out, out=out)
    return out
