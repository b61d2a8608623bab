"""Input validation shared by training and inference.

Every check raises :class:`ValueError` with a message that says what was
received and what is allowed.
"""

from __future__ import annotations

from collections.abc import Iterable
from numbers import Integral, Real
from typing import Any

import numpy as np

from ..recon._checks import (
    MAX_SATURATED_FRACTION,
    blank_frames,
    detector_maximum,
    saturated_fractions,
)

__all__ = [
    "as_frame_stack",
    "check_choice",
    "check_finite",
    "check_fraction",
    "check_frames_hold_signal",
    "check_positive_float",
    "check_positive_int",
]


def as_frame_stack(data: Any, name: str) -> tuple[np.ndarray, bool]:
    """Return ``data`` as a ``(K, H, W)`` real array and whether it was 2-D.

    Parameters
    ----------
    data
        Array-like of shape ``(H, W)`` or ``(K, H, W)`` with a real numeric dtype.
    name
        Name used in error messages.

    Returns
    -------
    stack : numpy.ndarray
        A view (no copy when possible) of shape ``(K, H, W)``.
    was_2d : bool
        ``True`` when ``data`` was a single ``(H, W)`` frame.

    Raises
    ------
    ValueError
        For a non-numeric or complex dtype, a wrong number of dimensions, or
        an empty axis (``K == 0``, ``H == 0`` or ``W == 0``).
    """
    try:
        array = np.asarray(data)
    except Exception as exc:  # ragged nested lists and the like
        raise ValueError(f"{name} could not be converted to an array: {exc}") from exc
    if array.dtype.kind not in "biuf":
        raise ValueError(
            f"{name} must hold real numbers (bool, integer or float dtype); got dtype {array.dtype}"
        )
    if array.ndim == 2:
        array, was_2d = array[np.newaxis], True
    elif array.ndim == 3:
        was_2d = False
    else:
        raise ValueError(
            f"{name} must be one frame (H, W) or a stack of frames (K, H, W); "
            f"got an array of shape {array.shape}"
        )
    if array.shape[0] == 0:
        raise ValueError(f"{name} holds no frames (K = 0, shape {array.shape}); need K >= 1")
    if array.shape[1] == 0 or array.shape[2] == 0:
        raise ValueError(f"{name} has empty frames (shape {array.shape}); need H >= 1 and W >= 1")
    return array, was_2d


def check_finite(array: np.ndarray, name: str) -> None:
    """Raise ``ValueError`` if ``array`` holds NaN or infinite values."""
    if array.dtype.kind != "f":
        return
    finite = np.isfinite(array)
    if not finite.all():
        n_nan = int(np.isnan(array).sum())
        n_inf = int(array.size - finite.sum()) - n_nan
        raise ValueError(
            f"{name} contains {n_nan} NaN and {n_inf} infinite values "
            f"(of {array.size}); only finite values are allowed"
        )


def check_frames_hold_signal(stack: np.ndarray, name: str) -> None:
    """Reject training frames that carry no usable signal.

    A frame that is zero everywhere (the beam was off, the shutter closed) is
    an error. Integer frames are taken as raw detector counts: a frame with
    more than :data:`~lowdose_bluesky.recon._checks.MAX_SATURATED_FRACTION`
    of its pixels at the type's maximum (65535 for ``uint16``) is saturated
    and an error too. Float frames (counts or transmission) carry no
    detector maximum and are not checked for saturation.

    Parameters
    ----------
    stack
        ``(K, H, W)`` finite frames.
    name
        Name used in error messages.

    Raises
    ------
    ValueError
        Naming the frames at fault and what is allowed.
    """
    blank = blank_frames(stack)
    if blank.size:
        raise ValueError(
            f"{name} frame(s) {blank.tolist()} of {stack.shape[0]} are zero everywhere (was the "
            "beam off or the shutter closed?); every training frame must hold signal"
        )
    maximum = detector_maximum(stack.dtype)
    if maximum is None:
        return
    fractions = saturated_fractions(stack, maximum)
    worst = int(np.argmax(fractions))
    if fractions[worst] > MAX_SATURATED_FRACTION:
        raise ValueError(
            f"{name} frame {worst} of {stack.shape[0]} has {fractions[worst]:.1%} of its pixels "
            f"at the {stack.dtype} maximum {maximum:g} (saturated); at most "
            f"{MAX_SATURATED_FRACTION:.0%} are allowed: shorten the exposure or lower the flux"
        )


def check_positive_int(value: Any, name: str) -> int:
    """Return ``value`` as ``int`` if it is an integer >= 1, else raise ``ValueError``."""
    if isinstance(value, bool) or not isinstance(value, Integral) or value < 1:
        raise ValueError(f"{name} must be a positive integer (>= 1); got {value!r}")
    return int(value)


def check_positive_float(value: Any, name: str) -> float:
    """Return ``value`` as ``float`` if it is a finite number > 0, else raise ``ValueError``."""
    if (
        isinstance(value, bool)
        or not isinstance(value, Real)
        or not np.isfinite(float(value))
        or value <= 0
    ):
        raise ValueError(f"{name} must be a finite number > 0; got {value!r}")
    return float(value)


def check_fraction(value: Any, name: str) -> float:
    """Return ``value`` as ``float`` if ``0 <= value < 1``, else raise ``ValueError``."""
    if isinstance(value, bool) or not isinstance(value, Real) or not 0 <= float(value) < 1:
        raise ValueError(f"{name} must be a number in [0, 1); got {value!r}")
    return float(value)


def check_choice(value: Any, name: str, allowed: Iterable[str]) -> str:
    """Return ``value`` if it is one of ``allowed``, else raise ``ValueError``."""
    allowed = tuple(allowed)
    if not isinstance(value, str) or value not in allowed:
        raise ValueError(f"unknown {name} {value!r}; allowed: {', '.join(map(repr, allowed))}")
    return value
