"""A synthetic test object for ptychography and the check every object passes.

The object is a complex transmission function ``O = exp((i - beta/delta) * phi)``:
the phase ``phi`` (radians) is proportional to the projected thickness of an
etched sample and the amplitude ``exp(-beta/delta * phi)`` follows from the
same thickness, as for a single material whose refractive index is
``1 - delta + i beta``. A transparent pixel has ``O = 1``.
"""

from __future__ import annotations

import numpy as np
from numpy.typing import ArrayLike
from scipy.ndimage import gaussian_filter

__all__ = ["check_object", "test_object"]

MIN_OBJECT_SIZE = 16
"""Smallest accepted object side, in pixels."""

# 3 x 5 bitmaps of a few glyphs, for the text-like blocks.
_GLYPHS = (
    ("111", "101", "101", "101", "111"),
    ("010", "110", "010", "010", "111"),
    ("111", "001", "111", "100", "111"),
    ("101", "101", "111", "001", "001"),
    ("111", "100", "111", "001", "111"),
    ("110", "101", "110", "101", "110"),
    ("111", "100", "100", "100", "111"),
    ("101", "111", "111", "101", "101"),
)


def _shape2(shape: tuple[int, int]) -> tuple[int, int]:
    try:
        height, width = (int(s) for s in shape)
    except (TypeError, ValueError):
        raise ValueError(f"shape must be two integers (height, width), got {shape!r}") from None
    if (height, width) != tuple(shape) or min(height, width) < MIN_OBJECT_SIZE:
        raise ValueError(
            f"shape must be two integers, each at least {MIN_OBJECT_SIZE}, got {shape!r}"
        )
    return height, width


def _bars(out: np.ndarray, y0: int, x0: int, height: int, width: int, *,
          vertical: bool) -> None:
    """Bars of widths 1..8 px, each followed by a gap of the same width."""
    position = 0
    limit = width if vertical else height
    for bar in range(1, 9):
        if position + bar > limit:
            break
        if vertical:
            out[y0:y0 + height, x0 + position:x0 + position + bar] = 1.0
        else:
            out[y0 + position:y0 + position + bar, x0:x0 + width] = 1.0
        position += 2 * bar


def _discs(out: np.ndarray, y0: int, x0: int, height: int, width: int,
           rng: np.random.Generator) -> None:
    yy, xx = np.mgrid[0:height, 0:width]
    size = min(height, width)
    radii = np.array([0.28, 0.16, 0.10, 0.06]) * size
    centres = np.array([[0.32, 0.32], [0.30, 0.78], [0.75, 0.28], [0.74, 0.72]])
    centres = centres + rng.uniform(-0.04, 0.04, centres.shape)
    for radius, (cy, cx), level in zip(radii, centres, (0.8, 1.0, 0.6, 0.9), strict=True):
        inside = (yy - cy * height) ** 2 + (xx - cx * width) ** 2 <= max(radius, 1.0) ** 2
        out[y0:y0 + height, x0:x0 + width][inside] = level


def _text(out: np.ndarray, y0: int, x0: int, height: int, width: int,
          rng: np.random.Generator) -> None:
    scale = 2 if min(height, width) >= 24 else 1
    glyph_h, glyph_w = 5 * scale, 3 * scale
    line = y0 + scale
    while line + glyph_h <= y0 + height:
        column = x0 + scale
        while column + glyph_w <= x0 + width:
            bitmap = _GLYPHS[int(rng.integers(len(_GLYPHS)))]
            block = np.kron(np.array([[c == "1" for c in row] for row in bitmap], float),
                            np.ones((scale, scale)))
            out[line:line + glyph_h, column:column + glyph_w] = 0.7 * block
            column += glyph_w + scale
        line += glyph_h + 2 * scale


def _texture(out: np.ndarray, y0: int, x0: int, height: int, width: int,
             rng: np.random.Generator) -> None:
    noise = gaussian_filter(rng.standard_normal((height, width)), sigma=2.0, mode="wrap")
    noise = (noise - noise.min()) / max(float(np.ptp(noise)), 1e-12)
    out[y0:y0 + height, x0:x0 + width] = 0.15 + 0.7 * noise


def test_object(shape: tuple[int, int] = (192, 192), *, seed: int | None = None,
                max_phase: float = 1.8, beta_delta: float = 0.1) -> np.ndarray:
    """Complex transmission function of an etched test sample.

    The field of view is split into four quadrants: vertical bars of widths
    1 to 8 px (top left), horizontal bars of the same widths (top right),
    discs of several sizes above blocks of text-like glyphs (bottom left) and
    a smooth random texture (bottom right). Features are cut off where they
    would leave their quadrant, so small objects hold fewer of them.

    Parameters
    ----------
    shape
        ``(height, width)`` in pixels, each at least 16.
    seed
        Seed of :func:`numpy.random.default_rng` for the texture, the glyphs and
        small jitter of the discs; the same seed gives the same object.
    max_phase
        Phase of the thickest feature, in radians (positive).
    beta_delta
        Ratio ``beta / delta`` of the material: amplitude ``exp(-beta_delta * phase)``.

    Returns
    -------
    numpy.ndarray
        ``complex128`` array of ``shape``; amplitude in ``(0, 1]``, phase in
        ``[0, max_phase]`` radians, 1 (transparent) outside the features.
    """
    height, width = _shape2(shape)
    if not (np.isfinite(max_phase) and 0 < max_phase <= np.pi):
        raise ValueError(f"max_phase must be in (0, pi] radians, got {max_phase!r}")
    if not (np.isfinite(beta_delta) and beta_delta >= 0):
        raise ValueError(f"beta_delta must be a finite number >= 0, got {beta_delta!r}")
    rng = np.random.default_rng(seed)
    thickness = np.zeros((height, width))
    margin_y, margin_x = max(1, height // 32), max(1, width // 32)
    half_y, half_x = height // 2, width // 2
    inner = (half_y - 2 * margin_y, half_x - 2 * margin_x)
    top, left = margin_y, margin_x
    bottom, right = half_y + margin_y, half_x + margin_x
    _bars(thickness, top, left, inner[0], inner[1], vertical=True)
    _bars(thickness, top, right, inner[0], inner[1], vertical=False)
    disc_h = inner[0] // 2
    _discs(thickness, bottom, left, disc_h, inner[1], rng)
    _text(thickness, bottom + disc_h, left, inner[0] - disc_h, inner[1], rng)
    _texture(thickness, bottom, right, height - bottom - margin_y, width - right - margin_x, rng)
    phase = max_phase * np.clip(thickness, 0.0, 1.0)
    return np.exp((1j - beta_delta) * phase).astype(np.complex128)


# Not a test function, whatever the name says (pytest collects ``test_*`` callables).
test_object.__test__ = False  # type: ignore[attr-defined]


def check_object(obj: ArrayLike) -> np.ndarray:
    """Validate an object (transmission function) and return it as ``complex128``.

    Parameters
    ----------
    obj
        2-D complex array, finite, amplitude at most 1 (a passive sample), at
        least 16 x 16 pixels.

    Returns
    -------
    numpy.ndarray
        The object as a ``complex128`` array.

    Raises
    ------
    ValueError
        If any of the conditions above does not hold.
    """
    array = np.asarray(obj)
    if array.ndim != 2:
        raise ValueError(f"object must be a 2-D array, got shape {array.shape}")
    if min(array.shape) < MIN_OBJECT_SIZE:
        raise ValueError(
            f"object must be at least {MIN_OBJECT_SIZE}x{MIN_OBJECT_SIZE} pixels, "
            f"got shape {array.shape}"
        )
    if not np.iscomplexobj(array):
        raise ValueError(f"object must be a complex array, got dtype {array.dtype}")
    array = array.astype(np.complex128, copy=False)
    if not np.all(np.isfinite(array)):
        raise ValueError("object must be finite, got NaN or infinite values")
    peak = float(np.abs(array).max())
    if peak > 1.0 + 1e-9:
        raise ValueError(f"object amplitude must be <= 1 (passive sample), got maximum {peak:.6g}")
    return array
