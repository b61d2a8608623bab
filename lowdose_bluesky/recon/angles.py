"""Quadrature weights of the back-projection over rotation angles."""

from __future__ import annotations

import numpy as np
from numpy.typing import ArrayLike

__all__ = ["WEDGE_RATIO", "angle_weights"]

#: Gaps wider than this many median gaps are treated as a missing wedge.
WEDGE_RATIO = 10.0


def angle_weights(angles_rad: ArrayLike) -> np.ndarray:
    """Angular integration weights (radians) for filtered back-projection.

    Parallel-beam projections ``theta`` and ``theta + pi`` carry the same rays,
    so angles are folded into ``[0, pi)`` and each gets half the angular gap to
    its two neighbours on that circle. This makes 0..180 deg with or without
    the 180 deg end point, 0..360 deg scans and irregular spacings all sum to
    ``pi`` (duplicated directions share their weight). A gap wider than
    ``WEDGE_RATIO`` times the median gap is a missing wedge (limited-angle
    scan): it counts as one median gap, so the projections next to it are not
    over-weighted.

    Parameters
    ----------
    angles_rad
        1-D array of rotation angles in radians.

    Returns
    -------
    numpy.ndarray
        float64 weights, one per angle, in the input order.
    """
    angles = np.asarray(angles_rad, dtype=np.float64)
    if angles.ndim != 1 or angles.size < 1:
        raise ValueError(f"angles_rad must be a non-empty 1-D array, got shape {angles.shape}")
    folded = np.mod(angles, np.pi)
    order = np.argsort(folded, kind="stable")
    ordered = folded[order]
    gaps = np.diff(np.append(ordered, ordered[0] + np.pi))  # gap after each sorted angle
    positive = gaps[gaps > 1e-9]
    if positive.size:
        median = np.median(positive)
        gaps = np.where(gaps > WEDGE_RATIO * median, median, gaps)
    sorted_weights = 0.5 * (gaps + np.roll(gaps, 1))
    weights = np.empty_like(sorted_weights)
    weights[order] = sorted_weights
    return weights
