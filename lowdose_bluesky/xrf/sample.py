"""Element maps of a sample: checks, and a default field of biological cells.

A sample is a mapping element symbol → areal density map ``(H, W)`` in µg/cm².
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

import numpy as np
from scipy.ndimage import gaussian_filter
from scipy.special import expit

from .elements import atomic_number, check_elements

__all__ = [
    "CELL_LEVELS",
    "DEFAULT_ELEMENTS",
    "ORGANELLE_LEVELS",
    "TRACE_LEVELS",
    "cell_field",
    "check_sample",
    "check_shape",
]

#: Elements of the default cell field.
DEFAULT_ELEMENTS = ("P", "S", "K", "Ca", "Fe", "Cu", "Zn")
#: Areal densities (µg/cm²) in (cytoplasm, nucleus) of a dried cell.
CELL_LEVELS: dict[str, tuple[float, float]] = {
    "P": (2.0, 5.0), "S": (2.0, 1.5), "K": (4.0, 3.0), "Ca": (0.6, 0.3),
    "Fe": (0.05, 0.03), "Cu": (0.02, 0.015), "Zn": (0.05, 0.15),
}
#: Levels of the elements without an entry in :data:`CELL_LEVELS`.
TRACE_LEVELS = (0.02, 0.02)
#: Peak areal densities (µg/cm²) of the two kinds of small organelles.
ORGANELLE_LEVELS: dict[str, dict[str, float]] = {
    "Fe": {"Fe": 0.4, "Cu": 0.02}, "Cu": {"Cu": 0.25, "Fe": 0.05},
}
_EDGE_PX = 0.6  # width of the cells' soft outline, pixels


def check_sample(sample: Mapping[str, Any], *, ndim: int | None = 2
                 ) -> dict[str, np.ndarray]:
    """Element maps, checked and converted to ``float64`` arrays.

    Parameters
    ----------
    sample
        Element symbol → areal density, µg/cm².
    ndim
        Dimensions every map must have (``None``: any, scalars included; an empty
        mapping is then allowed).

    Raises
    ------
    ValueError
        For an unknown element, maps of different shapes or of the wrong
        dimensions, non-finite or negative densities, naming the element (and the
        pixel of the first negative value).
    TypeError
        If ``sample`` is not a mapping.
    """
    if not isinstance(sample, Mapping):
        raise TypeError(f"sample must map element symbols to maps, got {type(sample).__name__}")
    if ndim is not None and not sample:
        raise ValueError("sample holds no element maps")
    if sample:
        check_elements(sample.keys())
    out: dict[str, np.ndarray] = {}
    shape: tuple[int, ...] | None = None
    for symbol, values in sample.items():
        try:
            array = np.array(values, dtype=float)
        except (TypeError, ValueError):
            raise ValueError(f"areal densities of {symbol!r} are not numbers: "
                             f"{type(values).__name__}") from None
        if ndim is not None and array.ndim != ndim:
            raise ValueError(f"map of {symbol!r} must have {ndim} dimensions, got shape "
                             f"{array.shape}")
        if shape is not None and array.shape != shape:
            first = next(iter(out))
            raise ValueError(f"maps of different shapes: {first!r} {shape}, "
                             f"{symbol!r} {array.shape}")
        shape = array.shape
        if not np.all(np.isfinite(array)):
            raise ValueError(f"areal densities of {symbol!r} must be finite, found "
                             f"{array[~np.isfinite(array)].flat[0]!r}")
        if np.any(array < 0):
            where = np.unravel_index(int(np.argmin(array)), array.shape)
            at = f" at pixel {tuple(int(i) for i in where)}" if array.ndim else ""
            raise ValueError(f"negative areal density of {symbol!r}: "
                             f"{float(array[where])!r} µg/cm²{at}; densities must be >= 0")
        out[symbol] = array
    return out


def _soft_ellipse(yy: np.ndarray, xx: np.ndarray, centre: tuple[float, float],
                  radius: float, aspect: float, angle: float,
                  harmonics: list[tuple[int, float, float]]) -> np.ndarray:
    """Membership in (0, 1) of a wobbly ellipse with a soft edge."""
    dy, dx = yy - centre[0], xx - centre[1]
    u = dx * np.cos(angle) + dy * np.sin(angle)
    v = (-dx * np.sin(angle) + dy * np.cos(angle)) / aspect
    rho, theta = np.hypot(u, v), np.arctan2(v, u)
    outline = radius * (1 + sum(a * np.cos(k * theta + p) for k, a, p in harmonics))
    return expit((outline - rho) / _EDGE_PX)


def _place_cells(rng: np.random.Generator, shape: tuple[int, int], n: int,
                 radius: float) -> list[tuple[float, float, float]]:
    """Centres and radii of ``n`` cells, apart from each other where possible."""
    h, w = shape
    cells: list[tuple[float, float, float]] = []
    for _ in range(n):
        r = radius * rng.uniform(0.85, 1.15)
        best = None
        for _attempt in range(200):
            cy = rng.uniform(min(0.8 * r, h / 2), max(h - 0.8 * r, h / 2))
            cx = rng.uniform(min(0.8 * r, w / 2), max(w - 0.8 * r, w / 2))
            best = (cy, cx, r)
            if all(np.hypot(cy - y, cx - x) >= 0.95 * (r + s) for y, x, s in cells):
                break
        assert best is not None
        cells.append(best)
    return cells


def cell_field(shape: tuple[int, int] = (64, 64),
               elements: Iterable[str] = DEFAULT_ELEMENTS,
               seed: int | None = None) -> dict[str, np.ndarray]:
    """A field of dried biological cells on a support film, element maps in µg/cm².

    About one cell per 1400 pixels (at least one), each with a smooth, slightly
    irregular outline: nuclei rich in P and Zn, cytoplasm holding K, S and Ca, and a
    few small (1-3 px) organelles rich in Fe or in Cu. Levels (see
    :data:`CELL_LEVELS`, :data:`ORGANELLE_LEVELS`): P/S/K 1.5-5 µg/cm², Ca
    0.3-0.6, Fe/Cu/Zn 0.015-0.15 (organelles up to 0.4), each cell ±20 % and a
    ±15 % smooth texture per element; elements without an entry get
    :data:`TRACE_LEVELS`. Outside the cells: 0.

    Parameters
    ----------
    shape
        ``(H, W)`` in pixels.
    elements
        Chemical symbols to map.
    seed
        Seeds the geometry and the levels (``None``: a new field each call). For a
        given seed and shape the cells are the same whatever the elements, and each
        element's map does not depend on the others requested.

    Returns
    -------
    dict
        Element → ``float64`` map ``(H, W)``, in the order of ``elements``.

    Raises
    ------
    ValueError
        For an unknown element or a shape smaller than (4, 4).
    """
    symbols = check_elements(elements)
    h, w = check_shape(shape)
    rng = np.random.default_rng(seed)
    yy, xx = np.mgrid[0:h, 0:w].astype(float)
    n_cells = max(1, round(h * w / 1400))
    radius = 0.38 * np.sqrt(h * w / n_cells)
    cytoplasm, nuclei = [], []
    for cy, cx, r in _place_cells(rng, (h, w), n_cells, radius):
        wobble = [(k, rng.uniform(0.0, 0.08), rng.uniform(0, 2 * np.pi)) for k in (2, 3, 4)]
        cell = _soft_ellipse(yy, xx, (cy, cx), r, rng.uniform(0.75, 1.0),
                             rng.uniform(0, np.pi), wobble)
        off, direction = rng.uniform(0, 0.25 * r), rng.uniform(0, 2 * np.pi)
        nucleus = cell * _soft_ellipse(
            yy, xx, (cy + off * np.sin(direction), cx + off * np.cos(direction)),
            0.45 * r * rng.uniform(0.9, 1.1), rng.uniform(0.8, 1.0), rng.uniform(0, np.pi),
            [(2, rng.uniform(0.0, 0.05), rng.uniform(0, 2 * np.pi))])
        cytoplasm.append(cell - nucleus)
        nuclei.append(nucleus)
    inside = np.sum(cytoplasm, axis=0)
    candidates = np.flatnonzero(inside.ravel() > 0.5)
    organelles = scatter_spots(rng, candidates, max(1, round(candidates.size / 60)), w,
                               (0.4, 1.0), ("Fe", "Cu"))
    base = int(rng.integers(2**32))
    smooth = max(1.0, radius / 4)
    maps: dict[str, np.ndarray] = {}
    for symbol in symbols:
        erng = np.random.default_rng([base, atomic_number(symbol)])
        cyto_level, nucleus_level = CELL_LEVELS.get(symbol, TRACE_LEVELS)
        texture = smooth_texture(erng, (h, w), smooth)
        field = np.zeros((h, w))
        for cyto, nucleus in zip(cytoplasm, nuclei, strict=True):
            scale = erng.uniform(0.8, 1.2)
            field += scale * (cyto_level * cyto + nucleus_level * nucleus)
        field *= texture
        add_spots(field, organelles, ORGANELLE_LEVELS, symbol, erng)
        maps[symbol] = np.clip(field, 0.0, None)
    return maps


def scatter_spots(rng: np.random.Generator, candidates: np.ndarray, count: int, width: int,
                  size_range: tuple[float, float], kinds: tuple[str, str] | None = None
                  ) -> list[tuple[Any, ...]]:
    """``count`` spots at random flat pixel indices of ``candidates`` (with repeats).

    Each spot is ``(y, x, size)`` jittered within its pixel, ``size`` uniform in
    ``size_range``, followed by one of the two ``kinds`` at even odds where given.
    None where ``candidates`` is empty.
    """
    spots: list[tuple[Any, ...]] = []
    if not candidates.size:
        return spots
    for flat in rng.choice(candidates, size=count):
        y, x = divmod(int(flat), width)
        spot: tuple[Any, ...] = (y + rng.uniform(-0.5, 0.5), x + rng.uniform(-0.5, 0.5),
                                 rng.uniform(*size_range))
        if kinds is not None:
            spot += (kinds[0] if rng.random() < 0.5 else kinds[1],)
        spots.append(spot)
    return spots


def smooth_texture(rng: np.random.Generator, shape: tuple[int, int], sigma: float
                   ) -> np.ndarray:
    """A smooth multiplicative texture ``1 ± 0.15`` (Gaussian noise blurred by ``sigma`` px)."""
    texture = gaussian_filter(rng.standard_normal(shape), sigma)
    return 1.0 + 0.15 * texture / max(float(np.abs(texture).max()), 1e-12)


def add_spots(field: np.ndarray, spots: Iterable[tuple[float, float, float, str]],
              levels: Mapping[str, Mapping[str, float]], symbol: str,
              rng: np.random.Generator) -> None:
    """Add Gaussian spots ``(y, x, sigma, kind)`` of ``symbol`` to ``field`` in place.

    Each spot's peak is ``levels[kind][symbol]`` (0 where absent) times ``0.6-1.4``
    drawn from ``rng``.
    """
    yy, xx = np.mgrid[0:field.shape[0], 0:field.shape[1]].astype(float)
    for y, x, sigma, kind in spots:
        peak = levels[kind].get(symbol, 0.0) * rng.uniform(0.6, 1.4)
        if peak > 0:
            field += peak * np.exp(-((yy - y) ** 2 + (xx - x) ** 2) / (2 * sigma**2))


def check_shape(shape: Any) -> tuple[int, int]:
    """``(H, W)`` of a map, at least 4 x 4 pixels; ``ValueError`` naming ``shape`` otherwise."""
    try:
        h, w = (int(s) for s in shape)
    except (TypeError, ValueError):
        raise ValueError(f"shape must be (H, W), got {shape!r}") from None
    if h < 4 or w < 4:
        raise ValueError(f"shape must be at least (4, 4) pixels, got {shape!r}")
    return h, w
