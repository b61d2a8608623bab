"""Modulation of the line-pair groups of a resolution chart.

The chart layout is given in sensor pixels (rows z, columns x; pixel ``k`` centred at
coordinate ``k``; ROIs half-open ``[z0, z1, x0, x1]``)::

    {"groups": [{"bar_width_px": 3, "orientation": "vertical", "n_bars": 3,
                 "roi": [z0, z1, x0, x1], "bar_centres": [...]}, ...],
     "pad": [z0, z1, x0, x1],          # uniform absorbing material (dark level)
     "background": [z0, z1, x0, x1]}   # open beam (bright level)

Bar centres lie along the varying axis: x for vertical bars, z for horizontal ones.

The analysed image may be binned and/or super-resolved: its pixel is
``scale = binning / factor`` sensor pixels (a ``b``-binned frame super-resolved by ``f``).
Image pixel ``i`` covers sensor coordinates ``[scale * i - 1/2, scale * (i + 1) - 1/2]``,
so a sensor coordinate ``c`` sits at image coordinate ``(c + 1/2) / scale - 1/2``
(``(c - (b - 1) / 2) / b`` for binning ``b``), and ROI bounds divide by ``scale``,
rounded inward.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
from numpy.typing import ArrayLike

from ._roi import check_roi, scale_roi

__all__ = [
    "RAYLEIGH_CONTRAST",
    "chart_contrasts",
    "chart_levels",
    "group_contrast",
    "image_scale",
    "sensor_to_image",
    "smallest_resolved",
]

#: Modulation of two just-resolved lines (Rayleigh criterion).
RAYLEIGH_CONTRAST = 0.264


def image_scale(binning: int = 1, factor: float = 1) -> float:
    """Image pixel size in sensor pixels: ``binning / factor``.

    Parameters
    ----------
    binning
        Camera binning of the frame.
    factor
        Up-sampling factor of a super-resolved image (1 for a camera frame).

    Returns
    -------
    float
        Sensor pixels per image pixel.
    """
    if isinstance(binning, bool) or int(binning) != binning or binning < 1:
        raise ValueError(f"binning must be a positive integer, got {binning!r}")
    if not (np.isfinite(factor) and factor > 0):
        raise ValueError(f"factor must be positive, got {factor!r}")
    return float(binning) / float(factor)


def sensor_to_image(coordinate: ArrayLike, scale: float) -> np.ndarray:
    """Image pixel coordinate of a sensor pixel coordinate.

    Parameters
    ----------
    coordinate
        Sensor coordinate(s) (pixel ``k`` centred at ``k``).
    scale
        Image pixel size in sensor pixels (see :func:`image_scale`).

    Returns
    -------
    ndarray
        ``(coordinate + 1/2) / scale - 1/2``.
    """
    return (np.asarray(coordinate, dtype=np.float64) + 0.5) / scale - 0.5


def _image(image: ArrayLike) -> np.ndarray:
    array = np.asarray(image, dtype=np.float64)
    if array.ndim != 2:
        raise ValueError(f"image must be 2-D, got shape {array.shape}")
    return array


def _region(image: np.ndarray, roi: Sequence[int], scale: float, name: str) -> np.ndarray:
    z0, z1, x0, x1 = check_roi(scale_roi(roi, scale), image.shape, name=name)
    return image[z0:z1, x0:x1]


def chart_levels(image: ArrayLike, layout: Mapping[str, Any], *, binning: int = 1,
                 factor: float = 1) -> tuple[float, float]:
    """Dark (pad) and bright (background) mean levels of a chart image.

    Parameters
    ----------
    image
        2-D chart image.
    layout
        Chart layout with ``"pad"`` and ``"background"`` ROIs (sensor pixels).
    binning, factor
        Image pixel = ``binning / factor`` sensor pixels.

    Returns
    -------
    tuple of float
        ``(dark, bright)``.
    """
    array = _image(image)
    scale = image_scale(binning, factor)
    dark = float(_region(array, layout["pad"], scale, "pad").mean())
    bright = float(_region(array, layout["background"], scale, "background").mean())
    return dark, bright


def group_contrast(image: ArrayLike, group: Mapping[str, Any], *,
                   levels: tuple[float, float], binning: int = 1, factor: float = 1) -> float:
    """Modulation of one line-pair group, normalised by the chart's dark/bright levels.

    The image is averaged along the bars over the group's ROI (rows for vertical bars),
    the profile is linearly interpolated at the bar centres and at the space centres
    (midpoints of adjacent bars), and the contrast is
    ``(mean(space) - mean(bar)) / (bright - dark)``.

    Parameters
    ----------
    image
        2-D image (raw counts or transmission).
    group
        Group entry of the layout: ``orientation``, ``roi`` and ``bar_centres`` in sensor
        pixels.
    levels
        ``(dark, bright)`` mean levels of the pad and the background (same image units).
    binning, factor
        Image pixel = ``binning / factor`` sensor pixels.

    Returns
    -------
    float
        About 1 for fully resolved bars, 0 for a flat profile.

    Raises
    ------
    ValueError
        For a non-2-D image, an ROI outside the image, fewer than two bars, an unknown
        orientation or ``bright <= dark``.
    """
    array = _image(image)
    scale = image_scale(binning, factor)
    dark, bright = (float(v) for v in levels)
    if not bright > dark:
        raise ValueError(f"levels must be (dark, bright) with bright > dark, got {levels!r}")
    centres = np.sort(np.asarray(group["bar_centres"], dtype=np.float64))
    if centres.ndim != 1 or centres.size < 2:
        raise ValueError(f"a group needs >= 2 bar centres, got {group['bar_centres']!r}")
    orientation = group["orientation"]
    z0, z1, x0, x1 = check_roi(scale_roi(group["roi"], scale), array.shape, name="group roi")
    if orientation == "vertical":
        profile = array[z0:z1, :].mean(axis=0)
    elif orientation == "horizontal":
        profile = array[:, x0:x1].mean(axis=1)
    else:
        raise ValueError(f"orientation must be 'vertical' or 'horizontal', got {orientation!r}")
    spaces = 0.5 * (centres[1:] + centres[:-1])
    axis = np.arange(profile.size, dtype=np.float64)
    bar_values = np.interp(sensor_to_image(centres, scale), axis, profile)
    space_values = np.interp(sensor_to_image(spaces, scale), axis, profile)
    return float((space_values.mean() - bar_values.mean()) / (bright - dark))


def chart_contrasts(image: ArrayLike, layout: Mapping[str, Any], *, binning: int = 1,
                    factor: float = 1,
                    levels: tuple[float, float] | None = None) -> list[dict[str, Any]]:
    """Contrast of every line-pair group of a chart image.

    Parameters
    ----------
    image
        2-D chart image: a camera frame (``factor=1``) or a super-resolved one.
    layout
        Chart layout (sensor pixels, see the module docstring).
    binning
        Camera binning of the (input) frame.
    factor
        Up-sampling factor of a super-resolved image; its pixel is ``binning / factor``
        sensor pixels.
    levels
        ``(dark, bright)``; by default the means of the layout's pad and background.

    Returns
    -------
    list of dict
        Per group: ``group`` (index), ``orientation``, ``bar_width_px`` (sensor px),
        ``bar_width_image_px``, ``contrast`` and ``resolved``
        (``contrast >= RAYLEIGH_CONTRAST``).
    """
    scale = image_scale(binning, factor)
    if levels is None:
        levels = chart_levels(image, layout, binning=binning, factor=factor)
    results = []
    for index, group in enumerate(layout["groups"]):
        contrast = group_contrast(image, group, levels=levels, binning=binning, factor=factor)
        width = float(group["bar_width_px"])
        results.append({"group": index, "orientation": group["orientation"],
                        "bar_width_px": width, "bar_width_image_px": width / scale,
                        "contrast": contrast, "resolved": contrast >= RAYLEIGH_CONTRAST})
    return results


def smallest_resolved(contrasts: Sequence[Mapping[str, Any]],
                      orientation: str | None = None) -> float | None:
    """Finest bar width (sensor px) such that it and all coarser groups are resolved.

    Parameters
    ----------
    contrasts
        Output of :func:`chart_contrasts`.
    orientation
        Only groups of this orientation; all groups by default (then every group of a
        width must be resolved).

    Returns
    -------
    float or None
        The bar width, or ``None`` when the coarsest group is not resolved (or there are
        no groups).
    """
    selected = [c for c in contrasts if orientation is None or c["orientation"] == orientation]
    smallest = None
    for width in sorted({float(c["bar_width_px"]) for c in selected}, reverse=True):
        if not all(c["resolved"] for c in selected if float(c["bar_width_px"]) == width):
            break
        smallest = width
    return smallest
