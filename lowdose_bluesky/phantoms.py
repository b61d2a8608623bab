"""Ground-truth phantoms with exact (analytic) parallel-beam projections.

A :class:`Phantom` is a sum of solid primitives (boxes and ellipsoids) in voxel
units, centred on the volume centre. Its ground truth is a 3-D array with axes
``(z, y, x)``, ``z`` being the rotation axis. Projections are exact line
integrals through the primitives, sampled at detector-pixel centres, so a
512-wide projection costs milliseconds instead of a voxel rotation.

Geometry (parallel beam, rotation about ``z``): at rotation angle ``theta`` a
point ``(x, y)`` relative to the slice centre lands on detector column
``u = x cos(theta) + y sin(theta)`` (relative to the detector centre) and the
ray runs along ``(-sin(theta), cos(theta))``. At 0 deg the projection is the
sum of the volume along ``y``; at 90 deg the sum along ``x``.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

__all__ = ["PHANTOM_NAMES", "Phantom", "phantom_from_name", "shepp_logan_3d", "spheres_in_cube"]

# Columns of the primitive tables (all in voxels, relative to the volume centre).
# boxes:      cz, cy, cx, hz, hy, hx, phi_deg, value   (h*: half sizes)
# ellipsoids: cz, cy, cx, az, ay, ax, phi_deg, value   (a*: semi-axes)
_NCOL = 8


@dataclass(frozen=True)
class Phantom:
    """A volume made of additive solid primitives.

    Parameters
    ----------
    shape
        ``(Z, Y, X)`` of the ground-truth volume; ``Y == X`` (the slice is square).
    boxes, ellipsoids
        Arrays of shape ``(n, 8)``: centre ``(cz, cy, cx)`` relative to the
        volume centre, half sizes or semi-axes ``(z, y, x)``, rotation about
        ``z`` in degrees, and the value added inside the primitive.
    name
        Short name of the phantom family.
    params
        The parameters that generated it (recorded in run metadata).
    """

    shape: tuple[int, int, int]
    boxes: np.ndarray
    ellipsoids: np.ndarray
    name: str = "custom"
    params: dict[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        if len(self.shape) != 3 or self.shape[1] != self.shape[2] or min(self.shape) < 1:
            raise ValueError(f"Phantom shape must be (Z, Y, X) with Y == X >= 1, got {self.shape}")
        for label in ("boxes", "ellipsoids"):
            table = np.asarray(getattr(self, label), dtype=np.float64).reshape(-1, _NCOL)
            object.__setattr__(self, label, table)

    # ------------------------------------------------------------------ volume
    def volume(self, dtype: np.dtype | type = np.float32) -> np.ndarray:
        """Voxelise the phantom (a voxel takes the value at its centre).

        Returns
        -------
        numpy.ndarray
            Array of shape ``(Z, Y, X)``.
        """
        nz, ny, nx = self.shape
        vol = np.zeros(self.shape, dtype=np.float64)
        centre = np.array([(nz - 1) / 2, (ny - 1) / 2, (nx - 1) / 2])
        for row in self.boxes:
            self._fill(vol, row, centre, kind="box")
        for row in self.ellipsoids:
            self._fill(vol, row, centre, kind="ellipsoid")
        return vol.astype(dtype)

    @staticmethod
    def _fill(vol: np.ndarray, row: np.ndarray, centre: np.ndarray, *, kind: str) -> None:
        c = row[:3] + centre
        half = row[3:6]
        phi = np.deg2rad(row[6])
        # bounding radius in the slice plane covers any rotation about z
        rxy = float(np.hypot(half[1], half[2])) if kind == "box" else float(max(half[1], half[2]))
        ext = np.array([half[0], rxy, rxy])
        lo = np.maximum(np.floor(c - ext).astype(int), 0)
        hi = np.minimum(np.ceil(c + ext).astype(int) + 1, vol.shape)
        if np.any(hi <= lo):
            return
        z, y, x = np.meshgrid(
            *(np.arange(a, b) - cc for a, b, cc in zip(lo, hi, c, strict=True)), indexing="ij"
        )
        xr = x * np.cos(phi) + y * np.sin(phi)
        yr = -x * np.sin(phi) + y * np.cos(phi)
        if kind == "box":
            inside = (np.abs(z) <= half[0]) & (np.abs(yr) <= half[1]) & (np.abs(xr) <= half[2])
        else:
            inside = (z / half[0]) ** 2 + (yr / half[1]) ** 2 + (xr / half[2]) ** 2 <= 1.0
        vol[lo[0] : hi[0], lo[1] : hi[1], lo[2] : hi[2]] += row[7] * inside

    # ------------------------------------------------------------- projection
    def project(self, angles_deg: float | Sequence[float] | np.ndarray, *, offset: float = 0.0
                ) -> np.ndarray:
        """Exact line integrals at the given rotation angles.

        Parameters
        ----------
        angles_deg
            One angle or a sequence of angles, in degrees.
        offset
            Shift of the sample across the beam, in detector pixels (a sample
            translated by more than the detector width leaves the field of view).

        Returns
        -------
        numpy.ndarray
            ``(N, Z, X)`` float32 line integrals in voxel units (value x voxels).
        """
        angles = np.atleast_1d(np.asarray(angles_deg, dtype=np.float64))
        if angles.ndim != 1 or not np.all(np.isfinite(angles)):
            raise ValueError("angles_deg must be finite scalars or a 1-D sequence, "
                             f"got {angles_deg!r}")
        if not np.isfinite(offset):
            raise ValueError(f"offset must be finite, got {offset!r}")
        out = np.empty((angles.size, self.shape[0], self.shape[2]), dtype=np.float32)
        for k, theta in enumerate(np.deg2rad(angles)):
            out[k] = self._project_one(theta, float(offset))
        return out

    def _project_one(self, theta: float, offset: float) -> np.ndarray:
        nz, _, nx = self.shape
        zc, uc = (nz - 1) / 2, (nx - 1) / 2
        u_all = np.arange(nx) - uc - offset  # object-frame detector coordinate
        z_all = np.arange(nz) - zc
        if len(self.ellipsoids):
            img = _ellipsoid_image(self.ellipsoids, theta, offset, nz, nx).reshape(nz, nx)
        else:
            img = np.zeros((nz, nx))
        for row in self.boxes:
            zmask = np.abs(z_all - row[0]) <= row[3]
            img[zmask] += row[7] * _box_chord(row, theta, u_all)
        return img

    def describe(self) -> dict[str, Any]:
        """Metadata describing this phantom (JSON-serialisable)."""
        return {"name": self.name, "shape": list(self.shape), **self.params}


def _box_chord(row: np.ndarray, theta: float, u: np.ndarray) -> np.ndarray:
    """Length of the in-plane ray ``u`` through a box rotated by ``phi`` about z."""
    cy, cx, hy, hx = row[1], row[2], row[4], row[5]
    alpha = theta - np.deg2rad(row[6])
    w = u - (cx * np.cos(theta) + cy * np.sin(theta))  # offset from the box centre
    # ray in the box frame: p(s) = w*(cos a, sin a) + s*(-sin a, cos a), (x, y) components
    p = (w * np.cos(alpha), w * np.sin(alpha))
    d = (-np.sin(alpha), np.cos(alpha))
    t_lo = np.full_like(w, -np.inf)
    t_hi = np.full_like(w, np.inf)
    for pk, dk, hk in ((p[0], d[0], hx), (p[1], d[1], hy)):
        if abs(dk) < 1e-12:
            outside = np.abs(pk) > hk
            t_lo = np.where(outside, np.inf, t_lo)
            continue
        a = (-hk - pk) / dk
        b = (hk - pk) / dk
        t_lo = np.maximum(t_lo, np.minimum(a, b))
        t_hi = np.minimum(t_hi, np.maximum(a, b))
    return np.clip(t_hi - t_lo, 0.0, None)


def _ellipsoid_image(table: np.ndarray, theta: float, offset: float, nz: int, nx: int
                     ) -> np.ndarray:
    """Sum of ellipsoid line integrals on a ``(nz, nx)`` detector, vectorised over footprints.

    Ellipsoids are processed in groups of similar size so that each group's
    footprints are padded to a common, tight patch shape.
    """
    order = np.argsort(np.maximum(table[:, 3], np.maximum(table[:, 4], table[:, 5])))
    parts = [_group_footprints(table[group], theta, offset, nz, nx)
             for group in np.array_split(order, max(1, min(16, len(order) // 64))) if group.size]
    index = np.concatenate([p[0] for p in parts])
    weight = np.concatenate([p[1] for p in parts])
    return np.bincount(index, weights=weight, minlength=nz * nx).astype(np.float64, copy=False)


def _group_footprints(table: np.ndarray, theta: float, offset: float, nz: int, nx: int
                      ) -> tuple[np.ndarray, np.ndarray]:
    """Flat detector indices and line integrals of one group's footprints."""
    zc, uc = (nz - 1) / 2, (nx - 1) / 2
    cz, cy, cx, az, ay, ax, phi, val = table.T
    ucen = cx * np.cos(theta) + cy * np.sin(theta) + offset + uc  # column of the centre
    zcen = cz + zc
    r_u = np.maximum(ax, ay)
    pz = int(np.ceil(2 * az.max())) + 2
    pu = int(np.ceil(2 * r_u.max())) + 2
    ii = np.floor(zcen - az).astype(int)[:, None] + np.arange(pz)[None, :]  # (n, pz)
    jj = np.floor(ucen - r_u).astype(int)[:, None] + np.arange(pu)[None, :]  # (n, pu)
    dz = (ii - zcen[:, None]).astype(np.float32)
    w = (jj - ucen[:, None]).astype(np.float32)
    if np.array_equal(ax, ay) and np.array_equal(ax, az):
        # spheres: chord = 2 sqrt(r^2 - dz^2 - w^2), separable in dz and w
        r2 = (ax.astype(np.float32) ** 2)[:, None]
        inner = (r2 - dz**2)[:, :, None] - (w**2)[:, None, :]
        chord = 2 * np.sqrt(np.clip(inner, 0.0, None))
        hit = inner > 0
    else:
        alpha = theta - np.deg2rad(phi)
        ca, sa = np.cos(alpha)[:, None, None], np.sin(alpha)[:, None, None]
        ax3, ay3, az3 = ax[:, None, None], ay[:, None, None], az[:, None, None]
        w3, dz3 = w[:, None, :], dz[:, :, None]
        # ray p(s) = w (cos a, sin a) + s (-sin a, cos a) in the ellipsoid frame
        qa = (sa / ax3) ** 2 + (ca / ay3) ** 2
        qb = 2 * w3 * ca * sa * (1 / ay3**2 - 1 / ax3**2)
        qc = (w3 * ca / ax3) ** 2 + (w3 * sa / ay3) ** 2 + (dz3 / az3) ** 2 - 1
        disc = qb**2 - 4 * qa * qc
        chord = np.sqrt(np.clip(disc, 0.0, None)) / qa
        hit = disc > 0
    hit &= ((ii >= 0) & (ii < nz))[:, :, None] & ((jj >= 0) & (jj < nx))[:, None, :]
    flat = ii[:, :, None] * nx + jj[:, None, :]
    vals = np.broadcast_to(val[:, None, None].astype(np.float32), chord.shape)
    return flat[hit], (vals * chord)[hit]


def _shape_of(size: int | tuple[int, int]) -> tuple[int, int]:
    if isinstance(size, int | np.integer):
        height = width = int(size)
    else:
        try:
            height, width = (int(s) for s in size)
        except (TypeError, ValueError):
            raise ValueError(
                f"size must be an int or a (height, width) pair, got {size!r}") from None
    if height < 8 or width < 8:
        raise ValueError(f"phantom size must be at least 8 voxels in each direction, got {size!r}")
    return height, width


def spheres_in_cube(size: int | tuple[int, int], n_spheres: int | None = None, *,
                    seed: int | None) -> Phantom:
    """The synthetic phantom of Yang et al. (2018): spheres inside a solid cube.

    Empty space is 0, the cube 0.3, the spheres 1.0. Sphere diameters are 4..20
    voxels at ``size=512`` and scale with ``size`` (at least 2 voxels); spheres
    are placed uniformly at random, fully inside the cube and not touching.

    Parameters
    ----------
    size
        Slice width ``W`` (volume ``(W, W, W)``), or ``(height, width)`` for a
        volume ``(height, width, width)``.
    n_spheres
        Number of spheres; default ``round(1000 * W / 512)`` (1000 at 512, as in
        the paper), capped so that spheres fill at most ~8 % of the cube.
    seed
        Seed of the random placement (``None`` for fresh entropy).

    Returns
    -------
    Phantom
    """
    height, width = _shape_of(size)
    side = 0.55 * min(height, width)
    scale = width / 512
    d_min, d_max = max(2.0, 4 * scale), max(2.5, 20 * scale)
    if n_spheres is None:
        # 1000 at 512 as in the paper, scaled with width, and never more than fill
        # ~8 % of the cube (so random placement of non-touching spheres succeeds)
        mean_volume = np.pi / 6 * ((d_min + d_max) / 2 + 1) ** 3
        n_spheres = max(1, min(round(1000 * scale), int(0.08 * side**3 / mean_volume)))
    if int(n_spheres) != n_spheres or n_spheres < 0:
        raise ValueError(f"n_spheres must be a non-negative integer, got {n_spheres!r}")
    n_spheres = int(n_spheres)
    rng = np.random.default_rng(seed)
    half = side / 2
    centres = np.empty((0, 3))
    radii = np.empty(0)
    attempts = 0
    max_attempts = 200 * max(n_spheres, 1)
    while len(radii) < n_spheres:
        attempts += 1
        if attempts > max_attempts:
            raise ValueError(
                f"could place only {len(radii)} of {n_spheres} non-overlapping spheres in a "
                f"cube of side {side:.1f} voxels; ask for fewer spheres or a larger size"
            )
        r = rng.uniform(d_min, d_max) / 2
        c = rng.uniform(-half + r + 0.5, half - r - 0.5, size=3)
        if radii.size and np.any(np.linalg.norm(centres - c, axis=1) < radii + r + 1.0):
            continue
        centres = np.vstack([centres, c])
        radii = np.append(radii, r)
    boxes = np.array([[0, 0, 0, half, half, half, 0.0, 0.3]])
    ell = np.column_stack([centres, radii, radii, radii, np.zeros_like(radii),
                           np.full_like(radii, 0.7)]) if n_spheres else np.empty((0, _NCOL))
    return Phantom(
        shape=(height, width, width), boxes=boxes, ellipsoids=ell, name="spheres_in_cube",
        params={"n_spheres": n_spheres, "seed": seed, "cube_side": side,
                "sphere_diameters": [d_min, d_max]},
    )


# Modified (high-contrast) 3-D Shepp-Logan, Kak & Slaney / Toft values, in units of the
# half-size: value, semi-axes (x, y, z), centre (x, y, z), rotation about z (deg).
_SHEPP = np.array([
    [1.0, 0.6900, 0.920, 0.810, 0.00, 0.0000, 0.00, 0],
    [-0.8, 0.6624, 0.874, 0.780, 0.00, -0.0184, 0.00, 0],
    [-0.2, 0.1100, 0.310, 0.220, 0.22, 0.0000, 0.00, -18],
    [-0.2, 0.1600, 0.410, 0.280, -0.22, 0.0000, 0.00, 18],
    [0.1, 0.2100, 0.250, 0.410, 0.00, 0.3500, -0.15, 0],
    [0.1, 0.0460, 0.046, 0.050, 0.00, 0.1000, 0.25, 0],
    [0.1, 0.0460, 0.046, 0.050, 0.00, -0.1000, 0.25, 0],
    [0.1, 0.0460, 0.023, 0.050, -0.08, -0.6050, 0.00, 0],
    [0.1, 0.0230, 0.023, 0.020, 0.00, -0.6060, 0.00, 0],
    [0.1, 0.0230, 0.046, 0.020, 0.06, -0.6050, 0.00, 0],
])


def shepp_logan_3d(size: int | tuple[int, int], *, scale: float = 0.45) -> Phantom:
    """A 3-D modified Shepp-Logan head phantom of nested ellipsoids.

    Ellipsoid rotations are about ``z`` only (the tilt angles of some published
    variants are dropped). Values are the high-contrast ones (1.0 skull ... 0.2
    inner structures) and are non-negative everywhere.

    Parameters
    ----------
    size
        Slice width, or ``(height, width)``.
    scale
        Half-size of the head relative to the slice width (keeps every rotation
        inside the field of view).
    """
    height, width = _shape_of(size)
    if not 0 < scale <= 0.5:
        raise ValueError(f"scale must be in (0, 0.5], got {scale!r}")
    r = scale * min(height, width)
    val, ax, ay, az, x0, y0, z0, phi = _SHEPP.T
    ell = np.column_stack([z0 * r, y0 * r, x0 * r, az * r, ay * r, ax * r, phi, val])
    return Phantom(shape=(height, width, width), boxes=np.empty((0, _NCOL)), ellipsoids=ell,
                   name="shepp_logan_3d", params={"scale": scale, "seed": None})


def phantom_from_name(name: str, size: int | tuple[int, int], *, seed: int | None = None
                      ) -> Phantom:
    """Build a phantom by name (one of :data:`PHANTOM_NAMES`)."""
    from . import chart_phantoms, fine_phantoms

    if name == "spheres_in_cube":
        return spheres_in_cube(size, seed=seed)
    if name == "shepp_logan_3d":
        return shepp_logan_3d(size)
    if name in ("foam", "axons", "cells"):
        return getattr(fine_phantoms, name)(size, seed=seed)
    if name == "resolution_chart":
        return chart_phantoms.resolution_chart(size, seed=seed)
    raise ValueError(f"unknown phantom {name!r}; allowed: "
                     + ", ".join(map(repr, PHANTOM_NAMES)))


#: Names accepted by :func:`phantom_from_name`.
PHANTOM_NAMES = ("spheres_in_cube", "shepp_logan_3d", "foam", "axons", "cells",
                 "resolution_chart")
