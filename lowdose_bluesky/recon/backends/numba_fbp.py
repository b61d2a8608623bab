"""Filtered back-projection on the CPU with numba-compiled back-projectors.

The ramp filtering uses ``scipy.fft``; the back-projection (linear
interpolation on the detector) is compiled with numba and threaded over image
rows, so no two threads write the same voxel. For stacks of slices the
detector row axis is made the innermost one: interpolation positions and
weights are computed once per (angle, pixel) and applied to a contiguous run
of slices, which the compiler vectorises. That is what makes this backend
~5x faster per slice on volumes than on single slices (see ADR 0006).
"""

from __future__ import annotations

import importlib.util

import numpy as np

from lowdose_bluesky.recon.angles import angle_weights
from lowdose_bluesky.recon.filters import DEFAULT_FILTER, check_filter, filter_projections

__all__ = ["NumbaFBP"]

#: Slices per block in the slice-innermost back-projector (keeps a block in L2 cache).
SLAB = 32
#: Fewer slices than this use the slice-by-slice back-projector.
MIN_SLAB = 2

_KERNELS: dict[str, object] = {}


def _kernels() -> dict[str, object]:
    """Compile (or load from numba's cache) the back-projection kernels once."""
    if _KERNELS:
        return _KERNELS
    from numba import njit, prange

    @njit(parallel=True, fastmath=True, cache=True)
    def backproject_slab(q, cos_t, sin_t, center, out):  # pragma: no cover - compiled
        # q: (N, X, S) weighted filtered projections; out: (Y, X, S), accumulated
        n_ang, n_col, n_slab = q.shape
        n_y, n_x = out.shape[0], out.shape[1]
        c0 = np.float32((n_x - 1) * 0.5)
        last = n_col - 1
        for iy in prange(n_y):
            y = np.float32(iy) - c0
            for a in range(n_ang):
                ct = cos_t[a]
                base = center + y * sin_t[a] - c0 * ct
                for ix in range(n_x):
                    u = base + np.float32(ix) * ct
                    if u >= 0.0 and u < last:
                        i0 = int(u)
                        f = u - np.float32(i0)
                        for s in range(n_slab):
                            v0 = q[a, i0, s]
                            out[iy, ix, s] += v0 + f * (q[a, i0 + 1, s] - v0)
        return out

    @njit(parallel=True, fastmath=True, cache=True)
    def backproject_slices(q, cos_t, sin_t, center, out):  # pragma: no cover - compiled
        # q: (Z, N, X) weighted filtered sinograms; out: (Z, Y, X), accumulated
        n_z, n_ang, n_col = q.shape
        n_y, n_x = out.shape[1], out.shape[2]
        c0 = np.float32((n_x - 1) * 0.5)
        last = n_col - 1
        for k in prange(n_z * n_y):
            z = k // n_y
            iy = k - z * n_y
            y = np.float32(iy) - c0
            for a in range(n_ang):
                ct = cos_t[a]
                base = center + y * sin_t[a] - c0 * ct
                for ix in range(n_x):
                    u = base + np.float32(ix) * ct
                    if u >= 0.0 and u < last:
                        i0 = int(u)
                        f = u - np.float32(i0)
                        v0 = q[z, a, i0]
                        out[z, iy, ix] += v0 + f * (q[z, a, i0 + 1] - v0)
        return out

    _KERNELS["slab"] = backproject_slab
    _KERNELS["slices"] = backproject_slices
    return _KERNELS


class NumbaFBP:
    """FBP with a numba back-projector (the CPU default; see ADR 0006).

    Parameters
    ----------
    slab
        Slices per block of the slice-innermost back-projector.
    """

    name = "numba"

    def __init__(self, slab: int = SLAB) -> None:
        if slab < 1:
            raise ValueError(f"slab must be a positive integer, got {slab!r}")
        self.slab = int(slab)

    @staticmethod
    def is_available() -> bool:
        """Whether numba is importable."""
        return importlib.util.find_spec("numba") is not None

    def reconstruct(self, sinograms: np.ndarray, angles_rad: np.ndarray, center: float, *,
                    filter_name: str = DEFAULT_FILTER) -> np.ndarray:
        """Reconstruct ``(N, Z, X)`` line integrals into ``(Z, X, X)`` slices.

        See :meth:`lowdose_bluesky.recon.backends.base.ReconBackend.reconstruct`.
        """
        check_filter(filter_name)
        kernels = _kernels()
        angles = np.asarray(angles_rad, dtype=np.float64)
        weights = angle_weights(angles).astype(np.float32)
        # float32 geometry keeps the inner loops in single precision (vectorised);
        # positions are exact to ~1e-4 pixel on a 2048-pixel detector
        cos_t = np.cos(angles).astype(np.float32)
        sin_t = np.sin(angles).astype(np.float32)
        center = np.float32(center)
        _, n_z, n_x = sinograms.shape
        out = np.zeros((n_z, n_x, n_x), dtype=np.float32)
        if n_z < MIN_SLAB:
            q = filter_projections(sinograms, filter_name) * weights[:, None, None]
            q = np.ascontiguousarray(q.transpose(1, 0, 2))  # (Z, N, X)
            kernels["slices"](q, cos_t, sin_t, center, out)
            return out
        for z0 in range(0, n_z, self.slab):
            z1 = min(z0 + self.slab, n_z)
            q = filter_projections(sinograms[:, z0:z1], filter_name)
            q *= weights[:, None, None]
            q = np.ascontiguousarray(q.transpose(0, 2, 1))  # (N, X, S)
            block = np.zeros((n_x, n_x, z1 - z0), dtype=np.float32)
            kernels["slab"](q, cos_t, sin_t, center, block)
            out[z0:z1] = block.transpose(2, 0, 1)
        return out
