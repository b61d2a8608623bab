"""A second kind of sample: a thin section of packed tissue with a blood vessel.

Unlike :func:`~lowdose_bluesky.xrf.cell_field` (isolated cells on an empty film) the
section is filled with cells that touch (a Voronoi tiling), each with a nucleus; a
blood vessel crosses it, holding red blood cells (Fe-rich discs 2-4 px across), and
small granules (1-2 px) rich in Zn or Cu are scattered through the cytoplasm. It tests
a denoiser on structure it was not tuned on: no empty background, thin cell borders,
and the smallest features in the trace elements.
"""

from __future__ import annotations

from collections.abc import Iterable

import numpy as np
from scipy.spatial import cKDTree
from scipy.special import expit

from .elements import atomic_number, check_elements
from .sample import (
    CELL_LEVELS,
    DEFAULT_ELEMENTS,
    TRACE_LEVELS,
    add_spots,
    check_shape,
    scatter_spots,
    smooth_texture,
)

__all__ = ["GRANULE_LEVELS", "RBC_FE_UG_CM2", "tissue_section"]

#: Peak areal density (µg/cm²) of Fe in a red blood cell.
RBC_FE_UG_CM2 = 0.5
#: Peak areal densities (µg/cm²) of the two kinds of granules.
GRANULE_LEVELS: dict[str, dict[str, float]] = {"Zn": {"Zn": 0.5}, "Cu": {"Cu": 0.3}}
_EDGE_PX = 0.6
_CELL_AREA_PX = 110.0  # mean area of one tissue cell, pixels


def tissue_section(shape: tuple[int, int] = (64, 64),
                   elements: Iterable[str] = DEFAULT_ELEMENTS,
                   seed: int | None = None) -> dict[str, np.ndarray]:
    """Element maps (µg/cm²) of a section of packed tissue crossed by a blood vessel.

    Cells tile the field (one per about 110 pixels), each at the cytoplasm and
    nucleus levels of :data:`~lowdose_bluesky.xrf.sample.CELL_LEVELS` (±20 %) with
    a 1-px border of half density; a vessel about a sixth of the field wide runs
    across it, empty but for red blood cells (Fe :data:`RBC_FE_UG_CM2`, discs of
    radius 1-2 px); granules of Zn or Cu (:data:`GRANULE_LEVELS`, sigma 0.4-0.8 px)
    lie in the cytoplasm.

    Parameters
    ----------
    shape
        ``(H, W)`` in pixels.
    elements
        Chemical symbols to map.
    seed
        Seeds the geometry and the levels.

    Returns
    -------
    dict
        Element → ``float64`` map ``(H, W)``.
    """
    symbols = check_elements(elements)
    h, w = check_shape(shape)
    rng = np.random.default_rng(seed)
    yy, xx = np.mgrid[0:h, 0:w].astype(float)
    # the vessel: a band at a random angle through the field
    angle = rng.uniform(0, np.pi)
    offset = rng.uniform(-0.2, 0.2) * min(h, w)
    across = (yy - h / 2) * np.cos(angle) - (xx - w / 2) * np.sin(angle) - offset
    half_width = max(2.0, min(h, w) / 12)
    vessel = expit((half_width - np.abs(across)) / _EDGE_PX)
    # cells: a Voronoi tiling of random seeds, each cell's nucleus around its seed
    n_cells = max(1, round(h * w / _CELL_AREA_PX))
    seeds = np.column_stack([rng.uniform(0, h, n_cells), rng.uniform(0, w, n_cells)])
    points = np.column_stack([yy.ravel(), xx.ravel()])
    dist, owner = cKDTree(seeds).query(points, k=2)
    owner = owner[:, 0].reshape(h, w)
    border = expit((1.0 - (dist[:, 1] - dist[:, 0]).reshape(h, w)) / _EDGE_PX)
    tissue = (1.0 - vessel) * (1.0 - 0.5 * border)
    radius = np.sqrt(_CELL_AREA_PX / np.pi)
    nucleus_r = 0.45 * radius * rng.uniform(0.85, 1.15, n_cells)
    to_seed = np.hypot(yy - seeds[owner, 0], xx - seeds[owner, 1])
    nucleus = tissue * expit((nucleus_r[owner] - to_seed) / _EDGE_PX)
    cytoplasm = tissue - nucleus
    # red blood cells along the vessel, granules in the cytoplasm
    inside_vessel = np.flatnonzero(vessel.ravel() > 0.9)
    rbcs = scatter_spots(rng, inside_vessel, max(1, inside_vessel.size // 40), w, (1.0, 2.0))
    in_cyto = np.flatnonzero(cytoplasm.ravel() > 0.7)
    granules = scatter_spots(rng, in_cyto, max(1, in_cyto.size // 80), w, (0.4, 0.8),
                             ("Zn", "Cu"))
    base = int(rng.integers(2**32))
    maps: dict[str, np.ndarray] = {}
    for symbol in symbols:
        erng = np.random.default_rng([base, atomic_number(symbol)])
        cyto_level, nucleus_level = CELL_LEVELS.get(symbol, TRACE_LEVELS)
        per_cell = erng.uniform(0.8, 1.2, n_cells)[owner]
        texture = smooth_texture(erng, (h, w), 2.0)
        field = per_cell * texture * (cyto_level * cytoplasm + nucleus_level * nucleus)
        if symbol == "Fe":
            for y, x, r in rbcs:
                disc = expit((r - np.hypot(yy - y, xx - x)) / _EDGE_PX)
                field += RBC_FE_UG_CM2 * erng.uniform(0.8, 1.2) * disc * vessel
        add_spots(field, granules, GRANULE_LEVELS, symbol, erng)
        maps[symbol] = np.clip(field, 0.0, None)
    return maps
