"""Regions of interest ``[z0, z1, x0, x1]`` (half-open, rows z, columns x) on 2-D images."""

from __future__ import annotations

import math
from collections.abc import Sequence

Roi = tuple[int, int, int, int]

__all__ = ["Roi", "check_roi", "roi_slices", "scale_roi"]


def check_roi(roi: Sequence[int], shape: tuple[int, ...], *, min_pixels: int = 1,
              name: str = "roi") -> Roi:
    """Validate a half-open ROI against the last two axes of ``shape``.

    Parameters
    ----------
    roi
        ``[z0, z1, x0, x1]``: rows ``z0 <= z < z1`` and columns ``x0 <= x < x1``.
    shape
        Shape of the image or stack; its last two entries are (rows, columns).
    min_pixels
        Fewest pixels the ROI must hold.
    name
        Name of the ROI in error messages.

    Returns
    -------
    tuple of int
        The ROI as four Python ints.

    Raises
    ------
    ValueError
        When the ROI is malformed, outside the image or smaller than ``min_pixels``.
    """
    values = tuple(roi)
    if len(values) != 4 or not all(float(v).is_integer() for v in values):
        raise ValueError(f"{name} must be four integers [z0, z1, x0, x1], got {roi!r}")
    z0, z1, x0, x1 = (int(v) for v in values)
    height, width = shape[-2], shape[-1]
    if not (0 <= z0 < z1 <= height and 0 <= x0 < x1 <= width):
        raise ValueError(f"{name} {[z0, z1, x0, x1]} is empty or outside the image of "
                         f"{height} x {width} pixels")
    n = (z1 - z0) * (x1 - x0)
    if n < min_pixels:
        raise ValueError(f"{name} {[z0, z1, x0, x1]} holds {n} pixels, need >= {min_pixels}")
    return z0, z1, x0, x1


def roi_slices(roi: Sequence[int], shape: tuple[int, ...], *, min_pixels: int = 1,
               name: str = "roi") -> tuple[slice, slice]:
    """Row and column slices of a validated ROI (see :func:`check_roi`)."""
    z0, z1, x0, x1 = check_roi(roi, shape, min_pixels=min_pixels, name=name)
    return slice(z0, z1), slice(x0, x1)


def scale_roi(roi: Sequence[int], scale: float) -> Roi:
    """Map a sensor-pixel ROI onto an image whose pixel is ``scale`` sensor pixels.

    A half-open bound ``k`` (the pixel border at sensor coordinate ``k - 1/2``) becomes
    ``k / scale``; lower bounds round up and upper bounds round down, so the scaled ROI
    lies inside the sensor ROI.
    """
    eps = 1e-9
    z0, z1, x0, x1 = (float(v) for v in roi)
    return (math.ceil(z0 / scale - eps), math.floor(z1 / scale + eps),
            math.ceil(x0 / scale - eps), math.floor(x1 / scale + eps))
