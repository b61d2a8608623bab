"""Reconstructions of interleaved subsets of the angles (input of Noise2Inverse)."""

from __future__ import annotations

import numpy as np
from numpy.typing import ArrayLike

from .reconstruct import reconstruct

__all__ = ["split_reconstructions"]


def split_reconstructions(line_integrals: ArrayLike, angles_deg: ArrayLike, splits: int, *,
                          center: float | None = None, filter: str = "parzen",
                          backend: str = "auto") -> np.ndarray:
    """Reconstruct each of ``splits`` interleaved subsets of the projections.

    Subset ``j`` holds projections ``j, j + K, j + 2K, ...``; its counting noise is
    independent of the others', its noise-free reconstruction nearly the same.

    Parameters
    ----------
    line_integrals
        ``(N, Z, X)`` line integrals.
    angles_deg
        ``(N,)`` angles in degrees.
    splits
        ``K >= 2``; every subset needs at least 2 projections.
    center, filter, backend
        As for :func:`lowdose_bluesky.recon.reconstruct`.

    Returns
    -------
    numpy.ndarray
        ``(K, Z, X, X)`` float32.

    Raises
    ------
    ValueError
        For ``splits`` below 2 or above ``N // 2``, or any error of
        :func:`~lowdose_bluesky.recon.reconstruct`.
    """
    data = np.asarray(line_integrals)
    angles = np.asarray(angles_deg, dtype=np.float64)
    n = data.shape[0] if data.ndim else 0
    if isinstance(splits, bool) or int(splits) != splits or not 2 <= splits <= max(n // 2, 1):
        raise ValueError(f"splits must be an integer from 2 to N // 2 = {n // 2} for {n} "
                         f"projections, got {splits!r}")
    k = int(splits)
    subs = [reconstruct(data[j::k], angles[j::k], center=center, filter=filter,
                        backend=backend) for j in range(k)]
    return np.stack(subs).astype(np.float32, copy=False)
