"""Synthetic test images: slanted edges, bar charts and ramps built analytically."""

from __future__ import annotations

import math

import numpy as np
from scipy.special import erf

OPEN_COUNTS = 1000.0
DARK = 0.2


def slanted_edge(shape: tuple[int, int], sigma: float, *, angle_deg: float = 5.0,
                 x_edge: float | None = None, dark: float = DARK, bright: float = 1.0,
                 dark_left: bool = True) -> np.ndarray:
    """Point samples of a straight step blurred by a Gaussian of ``sigma`` px.

    The edge passes through ``(z_centre, x_edge)`` and its x grows with z by
    ``tan(angle_deg)``; ``sigma = 0`` gives the sharp step.
    """
    height, width = shape
    z, x = np.mgrid[:height, :width].astype(np.float64)
    theta = math.radians(angle_deg)
    centre = (width - 1) / 2 if x_edge is None else x_edge
    distance = ((x - centre) - (z - (height - 1) / 2) * math.tan(theta)) * math.cos(theta)
    if not dark_left:
        distance = -distance
    if sigma == 0:
        step = (distance >= 0).astype(np.float64)
    else:
        step = 0.5 * (1.0 + erf(distance / (math.sqrt(2.0) * sigma)))
    return dark + (bright - dark) * step


def poisson(mean: np.ndarray, seed: int) -> np.ndarray:
    """Poisson counts of ``mean`` (float64)."""
    return np.random.default_rng(seed).poisson(mean).astype(np.float64)


def bin_sum(image: np.ndarray, binning: int) -> np.ndarray:
    """Sum ``binning x binning`` blocks (camera binning)."""
    height, width = image.shape
    return image.reshape(height // binning, binning, width // binning, binning).sum(axis=(1, 3))


def bar_chart(shape: tuple[int, int], widths: list[int], *, dark: float = 0.2,
              bright: float = 1.0, n_bars: int = 3) -> tuple[np.ndarray, dict]:
    """Sensor image and layout of vertical and horizontal bar groups, a pad and background.

    Bars of width ``w`` are ``w`` dark pixels with ``w``-pixel spaces.
    """
    image = np.full(shape, bright)
    groups = []
    x = 4
    for width in widths:
        period = 2 * width
        span = n_bars * period - width
        z0, z1 = 4, 4 + 24
        starts = [x + k * period for k in range(n_bars)]
        for start in starts:
            image[z0:z1, start:start + width] = dark
        groups.append({"bar_width_px": width, "orientation": "vertical", "n_bars": n_bars,
                       "roi": [z0, z1, x, x + span],
                       "bar_centres": [s + (width - 1) / 2 for s in starts]})
        z0h = 40
        for start in [z0h + k * period for k in range(n_bars)]:
            image[start:start + width, x:x + 24] = dark
        groups.append({"bar_width_px": width, "orientation": "horizontal", "n_bars": n_bars,
                       "roi": [z0h, z0h + span, x, x + 24],
                       "bar_centres": [z0h + k * period + (width - 1) / 2
                                       for k in range(n_bars)]})
        x += max(span, 24) + 12
    pad = [shape[0] - 24, shape[0] - 4, 4, 28]
    image[pad[0]:pad[1], pad[2]:pad[3]] = dark
    layout = {"groups": groups, "pad": pad, "background": [shape[0] - 24, shape[0] - 4, 40, 64]}
    return image, layout
