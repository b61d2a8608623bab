"""Scan positions of the probe over the object, and the overlap between neighbours.

A position is the ``(y, x)`` top-left corner of the probe window on the object
grid, in object pixels: the window covers rows ``y .. y + h - 1`` and columns
``x .. x + w - 1`` for a probe of shape ``(h, w)``. Positions may be
fractional; the forward model and stitching use :func:`window_corners`
(round half up) to place windows on whole pixels.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
from numpy.typing import ArrayLike
from scipy.spatial import cKDTree

__all__ = [
    "check_positions",
    "mean_nearest_neighbour",
    "overlap",
    "raster_positions",
    "spiral_positions",
    "step_for_overlap",
    "window_corners",
]

_GOLDEN_ANGLE = np.pi * (3.0 - np.sqrt(5.0))
# Mean nearest-neighbour distance of a Fermat spiral r = c sqrt(n), in units of c
# (measured over the interior of a long spiral).
_SPIRAL_NN_PER_C = 1.70


def _region(region: Sequence[float]) -> tuple[float, float, float, float]:
    try:
        y0, x0, height, width = (float(v) for v in region)
    except (TypeError, ValueError):
        raise ValueError(
            f"region must be four numbers (y0, x0, height, width), got {region!r}"
        ) from None
    if not all(np.isfinite(v) for v in (y0, x0, height, width)) or height <= 0 or width <= 0:
        raise ValueError(
            f"region must be finite with positive height and width, got {region!r}"
        )
    return y0, x0, height, width


def _probe_shape(probe_shape: Sequence[int]) -> tuple[int, int]:
    try:
        h, w = (int(s) for s in probe_shape)
    except (TypeError, ValueError):
        raise ValueError(f"probe_shape must be two integers, got {probe_shape!r}") from None
    if h < 1 or w < 1:
        raise ValueError(f"probe_shape must be positive, got {probe_shape!r}")
    return h, w


def _step(step: float) -> float:
    if not (np.isfinite(step) and step > 0):
        raise ValueError(f"step must be a positive finite number of pixels, got {step!r}")
    return float(step)


def _corner_span(region: Sequence[float], probe_shape: Sequence[int]
                 ) -> tuple[float, float, float, float]:
    """Range ``(y0, x0, span_y, span_x)`` of corners keeping the window inside ``region``."""
    y0, x0, height, width = _region(region)
    h, w = _probe_shape(probe_shape)
    span_y, span_x = height - h, width - w
    if span_y < 0 or span_x < 0:
        raise ValueError(
            f"region {tuple(region)} (height, width = {height:g}, {width:g}) is smaller "
            f"than the probe window {(h, w)}"
        )
    return y0, x0, span_y, span_x


def raster_positions(region: Sequence[float], step: float, probe_shape: Sequence[int], *,
                     snake: bool = False) -> np.ndarray:
    """Positions on a square grid, row by row, with the whole window inside ``region``.

    The grid is centred in the available range of corners, so the margins left
    at both ends of a row (or column) are equal.

    Parameters
    ----------
    region
        ``(y0, x0, height, width)`` of the scanned area, in object pixels.
    step
        Grid spacing in pixels (positive).
    probe_shape
        ``(h, w)`` of the probe window.
    snake
        Reverse every other row (a serpentine scan) instead of starting each
        row from the left.

    Returns
    -------
    numpy.ndarray
        ``(N, 2)`` float array of ``(y, x)`` top-left corners.
    """
    y0, x0, span_y, span_x = _corner_span(region, probe_shape)
    step = _step(step)
    axes = []
    for start, span in ((y0, span_y), (x0, span_x)):
        n = int(np.floor(span / step + 1e-9)) + 1
        offset = (span - (n - 1) * step) / 2.0
        axes.append(start + offset + step * np.arange(n))
    rows = []
    for i, y in enumerate(axes[0]):
        xs = axes[1][::-1] if snake and i % 2 else axes[1]
        rows.append(np.column_stack([np.full(xs.size, y), xs]))
    return np.concatenate(rows).astype(np.float64)


def spiral_positions(region: Sequence[float], step: float, probe_shape: Sequence[int]
                     ) -> np.ndarray:
    """Positions on a Fermat spiral, with the whole window inside ``region``.

    The spiral ``r = c sqrt(n)``, ``theta = n * golden angle`` fills the plane
    with uniform density and no grid periodicity (which avoids the raster
    grid's ambiguities in ptychography). It is centred in the available range
    of corners; points whose window would leave ``region`` are dropped.

    Parameters
    ----------
    region
        ``(y0, x0, height, width)`` of the scanned area, in object pixels.
    step
        Mean distance of each position to its nearest neighbour, in pixels.
    probe_shape
        ``(h, w)`` of the probe window.

    Returns
    -------
    numpy.ndarray
        ``(N, 2)`` float array of ``(y, x)`` top-left corners, in spiral order
        (from the centre outwards).
    """
    y0, x0, span_y, span_x = _corner_span(region, probe_shape)
    step = _step(step)
    c = step / _SPIRAL_NN_PER_C
    points = _spiral(y0, x0, span_y, span_x, c)
    # Points near the edges have fewer neighbours: rescale once or twice so that
    # the mean nearest-neighbour distance of the clipped set equals ``step``.
    for _ in range(3):
        if len(points) < 2:
            break
        measured = mean_nearest_neighbour(points)
        if abs(measured - step) <= 0.005 * step:
            break
        c *= step / measured
        points = _spiral(y0, x0, span_y, span_x, c)
    return points


def _spiral(y0: float, x0: float, span_y: float, span_x: float, c: float) -> np.ndarray:
    half_diagonal = 0.5 * np.hypot(span_y, span_x)
    n_max = int(np.ceil((half_diagonal / c) ** 2)) + 1
    n = np.arange(n_max, dtype=np.float64)
    r = c * np.sqrt(n)
    theta = n * _GOLDEN_ANGLE
    y = y0 + span_y / 2.0 + r * np.sin(theta)
    x = x0 + span_x / 2.0 + r * np.cos(theta)
    tolerance = 1e-9
    keep = ((y >= y0 - tolerance) & (y <= y0 + span_y + tolerance)
            & (x >= x0 - tolerance) & (x <= x0 + span_x + tolerance))
    points = np.column_stack([y[keep], x[keep]])
    return np.clip(points, [y0, x0], [y0 + span_y, x0 + span_x])


def mean_nearest_neighbour(positions: ArrayLike) -> float:
    """Mean distance from each position to its nearest neighbour.

    Parameters
    ----------
    positions
        ``(N, 2)`` array of ``(y, x)`` positions, N >= 2.

    Returns
    -------
    float
        The mean nearest-neighbour distance in pixels.
    """
    points = np.asarray(positions, dtype=np.float64)
    if points.ndim != 2 or points.shape[1] != 2 or len(points) < 2:
        raise ValueError(f"need an (N, 2) array with N >= 2, got shape {points.shape}")
    distances, _ = cKDTree(points).query(points, k=2)
    return float(distances[:, 1].mean())


def overlap(step: float, diameter: float) -> float:
    """Linear overlap ``max(0, 1 - step / diameter)`` of two neighbouring probes.

    Parameters
    ----------
    step
        Distance between neighbouring positions (pixels, >= 0).
    diameter
        Probe diameter (pixels, > 0), e.g. :func:`lowdose_bluesky.ptycho.probe_diameter_px`.

    Returns
    -------
    float
        Overlap in ``[0, 1]``.
    """
    if not (np.isfinite(step) and step >= 0):
        raise ValueError(f"step must be a finite number >= 0, got {step!r}")
    if not (np.isfinite(diameter) and diameter > 0):
        raise ValueError(f"diameter must be a positive finite number, got {diameter!r}")
    return max(0.0, 1.0 - float(step) / float(diameter))


def step_for_overlap(overlap: float, diameter: float) -> float:
    """Step giving the linear ``overlap`` for a probe of ``diameter``: ``diameter * (1 - overlap)``.

    Parameters
    ----------
    overlap
        Wanted overlap in ``[0, 1)``.
    diameter
        Probe diameter (pixels, > 0).

    Returns
    -------
    float
        The step in pixels (> 0).
    """
    if not (np.isfinite(overlap) and 0.0 <= overlap < 1.0):
        raise ValueError(f"overlap must be in [0, 1), got {overlap!r}")
    if not (np.isfinite(diameter) and diameter > 0):
        raise ValueError(f"diameter must be a positive finite number, got {diameter!r}")
    return float(diameter) * (1.0 - float(overlap))


def window_corners(positions: ArrayLike) -> np.ndarray:
    """Integer top-left corners of the windows: positions rounded half up.

    Parameters
    ----------
    positions
        ``(N, 2)`` array of ``(y, x)`` positions.

    Returns
    -------
    numpy.ndarray
        ``(N, 2)`` ``int64`` array, ``floor(position + 0.5)``.
    """
    points = np.asarray(positions, dtype=np.float64)
    return np.floor(points + 0.5).astype(np.int64)


def check_positions(positions: ArrayLike, obj_shape: Sequence[int],
                    probe_shape: Sequence[int]) -> np.ndarray:
    """Validate positions: every (rounded) probe window must lie inside the object.

    Parameters
    ----------
    positions
        ``(N, 2)`` array of ``(y, x)`` top-left corners, N >= 1, finite.
    obj_shape
        ``(height, width)`` of the object.
    probe_shape
        ``(h, w)`` of the probe window.

    Returns
    -------
    numpy.ndarray
        The positions as an ``(N, 2)`` float64 array.

    Raises
    ------
    ValueError
        If the array is malformed, or naming the first position whose window
        (after :func:`window_corners`) leaves the object.
    """
    points = np.asarray(positions, dtype=np.float64)
    if points.ndim != 2 or points.shape[1] != 2 or points.shape[0] < 1:
        raise ValueError(f"positions must be an (N, 2) array with N >= 1, got shape {points.shape}")
    if not np.all(np.isfinite(points)):
        raise ValueError("positions must be finite, got NaN or infinite values")
    height, width = (int(s) for s in obj_shape)
    h, w = _probe_shape(probe_shape)
    corners = window_corners(points)
    outside = ((corners[:, 0] < 0) | (corners[:, 1] < 0)
               | (corners[:, 0] + h > height) | (corners[:, 1] + w > width))
    if np.any(outside):
        index = int(np.argmax(outside))
        y, x = points[index]
        raise ValueError(
            f"position {index} (y={y:g}, x={x:g}) puts the {h}x{w} probe window outside the "
            f"{height}x{width} object: corners must lie in y in [0, {height - h}], "
            f"x in [0, {width - w}]"
        )
    return points
