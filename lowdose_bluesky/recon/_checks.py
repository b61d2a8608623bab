"""Input validation shared by the reconstruction functions."""

from __future__ import annotations

import numpy as np
from numpy.typing import ArrayLike

__all__ = [
    "ANGLE_TOLERANCE_DEG",
    "MAX_SATURATED_FRACTION",
    "as_angles_deg",
    "as_projections",
    "blank_frames",
    "detector_maximum",
    "require_finite",
    "saturated_fractions",
]

#: Two rotation angles closer than this (degrees) count as the same angle.
ANGLE_TOLERANCE_DEG = 1e-6

#: Largest fraction of a flat or reference frame's pixels allowed at the detector maximum.
MAX_SATURATED_FRACTION = 0.01


def require_finite(array: np.ndarray, name: str) -> None:
    """Raise ``ValueError`` if ``array`` holds NaN or infinite values.

    Parameters
    ----------
    array
        Array to check.
    name
        Name used in the error message.
    """
    finite = np.isfinite(array)
    if not np.all(finite):
        n_bad = int(np.size(array) - np.count_nonzero(finite))
        first = tuple(int(i) for i in np.argwhere(~finite)[0])
        raise ValueError(f"{name} contains {n_bad} NaN or infinite value(s) (first at index "
                         f"{first}); only finite values are allowed")


def blank_frames(stack: np.ndarray) -> np.ndarray:
    """Indices of the frames of a ``(K, H, W)`` stack that are zero everywhere."""
    return np.flatnonzero(~stack.reshape(stack.shape[0], -1).any(axis=1))


def detector_maximum(dtype: np.dtype) -> float | None:
    """Saturation value of a detector writing ``dtype`` (``None`` for float data).

    Integer frames are raw counts: the detector saturates at the largest value
    of the type (65535 for ``uint16``). Float frames carry no such limit.
    """
    dtype = np.dtype(dtype)
    if dtype.kind in "ui":
        return float(np.iinfo(dtype).max)
    return None


def saturated_fractions(stack: np.ndarray, maximum: float) -> np.ndarray:
    """Fraction of the pixels of each frame of a ``(K, H, W)`` stack at ``maximum``."""
    return (stack.reshape(stack.shape[0], -1) >= maximum).mean(axis=1)


def as_projections(data: ArrayLike, name: str = "line_integrals") -> np.ndarray:
    """Validate a projection stack and return it as C-contiguous float32.

    Parameters
    ----------
    data
        Array of shape ``(N, Z, X)``: ``N`` angles, ``Z`` detector rows
        (slices), ``X`` detector columns.
    name
        Name used in error messages.

    Returns
    -------
    numpy.ndarray
        ``(N, Z, X)`` float32 array.

    Raises
    ------
    ValueError
        If the array is not 3-D, is empty, or holds NaN/inf.
    """
    arr = np.asarray(data)
    if arr.ndim != 3:
        raise ValueError(f"{name} must be 3-D (angles, rows, columns), got shape {arr.shape}")
    if min(arr.shape) < 1:
        raise ValueError(f"{name} must not be empty, got shape {arr.shape}")
    if not (np.issubdtype(arr.dtype, np.floating) or np.issubdtype(arr.dtype, np.integer)):
        raise ValueError(f"{name} must be a real numeric array, got dtype {arr.dtype}")
    arr = np.ascontiguousarray(arr, dtype=np.float32)
    require_finite(arr, name)
    return arr


def as_angles_deg(angles_deg: ArrayLike, n_projections: int) -> np.ndarray:
    """Validate rotation angles in degrees against the number of projections.

    The angles may come in any order: increasing, decreasing, interlaced or
    golden-angle sequences are all valid, since the back-projection weights
    each angle by its neighbours after sorting (see
    :func:`lowdose_bluesky.recon.angle_weights`). Two angles closer than
    :data:`ANGLE_TOLERANCE_DEG` are rejected: a repeated angle usually means
    that the rotation readback did not update. Different angles giving the
    same direction (0 and 180, 0 and 360 deg) are distinct and allowed.

    Parameters
    ----------
    angles_deg
        1-D sequence of angles in degrees.
    n_projections
        Number of projections the angles must match.

    Returns
    -------
    numpy.ndarray
        float64 angles in degrees.

    Raises
    ------
    ValueError
        If the angles are not 1-D, hold NaN/inf, number fewer than 2,
        differ in length from the projections, or repeat an angle.
    """
    angles = np.asarray(angles_deg, dtype=np.float64)
    if angles.ndim != 1:
        raise ValueError(f"angles_deg must be 1-D, got shape {angles.shape}")
    require_finite(angles, "angles_deg")
    if angles.size < 2:
        raise ValueError(f"at least 2 angles are needed, got {angles.size}")
    if angles.size != n_projections:
        raise ValueError(
            f"got {angles.size} angles but {n_projections} projections; they must match"
        )
    order = np.argsort(angles, kind="stable")
    repeats = np.flatnonzero(np.diff(angles[order]) <= ANGLE_TOLERANCE_DEG)
    if repeats.size:
        i, j = sorted((int(order[repeats[0]]), int(order[repeats[0] + 1])))
        raise ValueError(
            f"angles_deg must be distinct: angles_deg[{j}] = {float(angles[j])} deg repeats "
            f"angles_deg[{i}] = {float(angles[i])} deg ({repeats.size} repeated angle(s) in all; "
            "was the rotation readback stuck?); allowed: angles at least "
            f"{ANGLE_TOLERANCE_DEG} deg apart, in any order (0 and 180 deg are distinct)"
        )
    return angles
