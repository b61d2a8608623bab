"""Phantoms with fine structure and texture, for judging denoisers beyond spheres.

Each is a :class:`~lowdose_bluesky.phantoms.Phantom` (additive boxes and ellipsoids),
so its projections are exact line integrals and the detector never sees a voxel grid.

- :func:`foam`: a solid block riddled with non-touching bubbles; the walls between
  bubbles are 1-3 voxels thick (polymer foams, porous media).
- :func:`axons`: bundles of tubes along the rotation axis in a light matrix, each a
  dense sheath 1-2 voxels thick around a light core (stained myelinated axons in
  brain tissue); some tubes are only 2-3 voxels across.
- :func:`cells`: cells with a nucleus and a textured cytoplasm of granules 1-3 voxels
  across (cell pellets).
"""

from __future__ import annotations

import numpy as np

from .phantoms import Phantom, _shape_of

__all__ = ["axons", "cells", "foam"]


def _place(rng: np.random.Generator, n_max: int, radius: tuple[float, float],
           bounds: np.ndarray, gap: tuple[float, float], *, dims: int = 3,
           attempts: int = 40) -> tuple[np.ndarray, np.ndarray]:
    """Random sequential placement of non-touching balls (or discs for ``dims=2``).

    ``bounds`` is the half-extent of the region per axis; balls stay inside it.
    Returns centres ``(n, dims)`` and radii ``(n,)``.
    """
    centres = np.empty((0, dims))
    radii = np.empty(0)
    gaps = np.empty(0)
    for _ in range(attempts * n_max):
        if radii.size >= n_max:
            break
        r = rng.uniform(*radius)
        g = rng.uniform(*gap)
        room = bounds[:dims] - r - 0.5
        if np.any(room <= 0):
            continue
        c = rng.uniform(-room, room)
        if radii.size:
            dist = np.linalg.norm(centres - c, axis=1)
            if np.any(dist < radii + r + np.maximum(gaps, g)):
                continue
        centres = np.vstack([centres, c])
        radii = np.append(radii, r)
        gaps = np.append(gaps, g)
    return centres, radii


def foam(size: int | tuple[int, int], *, seed: int | None) -> Phantom:
    """A solid block (value 1.0) with non-touching empty bubbles and thin walls.

    Bubble radii are 4-20 % of the smaller side of the volume; the walls between
    neighbouring bubbles are 1-3 voxels thick. The block fills 76 % of the height and
    60 % of the slice width.
    """
    height, width = _shape_of(size)
    rng = np.random.default_rng(seed)
    bounds = np.array([0.38 * height, 0.3 * width, 0.3 * width])
    side = min(height, width)
    lo, hi = max(1.5, 0.04 * side), max(2.5, 0.2 * side)
    centres, radii = _place(rng, 500, (lo, hi), bounds - 1.0, (1.0, 3.0), attempts=60)
    boxes = np.array([[0, 0, 0, *bounds, 0.0, 1.0]])
    ell = np.column_stack([centres, radii, radii, radii, np.zeros_like(radii),
                           np.full_like(radii, -1.0)])
    return Phantom(shape=(height, width, width), boxes=boxes, ellipsoids=ell, name="foam",
                   params={"seed": seed, "n_bubbles": int(radii.size),
                           "wall_voxels": [1.0, 3.0]})


def axons(size: int | tuple[int, int], *, seed: int | None) -> Phantom:
    """Tubes along the rotation axis: dense sheaths around light cores in a light matrix.

    Matrix 0.2; sheath 1.0 (1-2 voxels thick); core 0.1. Outer radii 1.5-8 % of the
    slice width (the thinnest tubes are 2-3 voxels across at 64-128 wide slices).
    """
    height, width = _shape_of(size)
    rng = np.random.default_rng(seed)
    half_xy, half_z = 0.3 * width, 0.35 * height
    matrix = np.array([[0, 0, 0, half_z, half_xy, half_xy, 0.0, 0.2]])
    discs, radii = _place(rng, 300, (max(1.2, 0.015 * width), max(2.5, 0.08 * width)),
                          np.array([half_xy, half_xy]), (1.0, 2.5), dims=2)
    rows = []
    for (cy, cx), r in zip(discs, radii, strict=True):
        sheath = min(rng.uniform(1.0, 2.0), 0.6 * r)
        length = rng.uniform(0.7, 1.0) * half_z
        cz = rng.uniform(-(half_z - length), half_z - length) if length < half_z else 0.0
        rows.append([cz, cy, cx, length, r, r, 0.0, 0.8])                 # sheath: 0.2 -> 1.0
        rows.append([cz, cy, cx, length - sheath, r - sheath, r - sheath, 0.0, -0.9])  # core
    return Phantom(shape=(height, width, width), boxes=matrix,
                   ellipsoids=np.array(rows).reshape(-1, 8), name="axons",
                   params={"seed": seed, "n_tubes": int(radii.size),
                           "sheath_voxels": [1.0, 2.0]})


def cells(size: int | tuple[int, int], *, seed: int | None) -> Phantom:
    """Cells (cytoplasm 0.3) with a nucleus (0.6) and dense granules (1.0), 1-3 voxels.

    Cells are non-touching ellipsoids (radii 6-12 % of the slice width) packed in a
    slab; each holds an off-centre nucleus and granules scattered in the cytoplasm.
    """
    height, width = _shape_of(size)
    rng = np.random.default_rng(seed)
    bounds = np.array([0.35 * height, 0.33 * width, 0.33 * width])
    lo, hi = max(3.0, 0.06 * width), max(4.0, 0.12 * width)
    centres, radii = _place(rng, 80, (lo, hi), bounds, (1.0, 3.0), attempts=200)
    rows = []
    for c, r in zip(centres, radii, strict=True):
        shape = r * rng.uniform(0.8, 1.0, 3)
        rows.append([*c, *shape, rng.uniform(0, 180), 0.3])
        nucleus = 0.45 * shape
        offset = rng.uniform(-0.2, 0.2, 3) * shape
        rows.append([*(c + offset), *nucleus, 0.0, 0.3])
        n_granules = int(rng.integers(10, 25))
        for _ in range(n_granules):
            g = rng.uniform(0.6, 1.5)
            direction = rng.normal(size=3)
            direction /= np.linalg.norm(direction)
            # in the cytoplasm: between the nucleus and the membrane
            dist = rng.uniform(0.55, 0.85 - g / r)
            rows.append([*(c + direction * dist * shape), g, g, g, 0.0, 0.7])
    return Phantom(shape=(height, width, width), boxes=np.empty((0, 8)),
                   ellipsoids=np.array(rows).reshape(-1, 8), name="cells",
                   params={"seed": seed, "n_cells": int(radii.size)})
