"""Input validation shared by the reconstruction functions."""

from __future__ import annotations

import numpy as np
from numpy.typing import ArrayLike

__all__ = ["as_angles_deg", "as_projections", "require_finite"]


def require_finite(array: np.ndarray, name: str) -> None:
    """Raise ``ValueError`` if ``array`` holds NaN or infinite values.

    Parameters
    ----------
    array
        Array to check.
    name
        Name used in the error message.
    """
    if not np.all(np.isfinite(array)):
        n_bad = int(np.size(array) - np.count_nonzero(np.isfinite(array)))
        raise ValueError(f"{name} contains {n_bad} NaN or infinite value(s)")


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
        If the angles are not 1-D, hold NaN/inf, number fewer than 2, or
        differ in length from the projections.
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
    return angles
