"""Parallel-beam reconstruction of projection stacks."""

from __future__ import annotations

import numpy as np
from numpy.typing import ArrayLike

from lowdose_bluesky.recon._checks import as_angles_deg, as_projections
from lowdose_bluesky.recon.backends import get_backend
from lowdose_bluesky.recon.filters import DEFAULT_FILTER, check_filter

__all__ = ["check_center", "reconstruct"]


def check_center(center: float | None, n_columns: int) -> float:
    """Return the rotation-centre column, defaulting to the detector centre.

    Raises
    ------
    ValueError
        If ``center`` is not finite or lies outside ``[0, n_columns - 1]``.
    """
    if center is None:
        return (n_columns - 1) / 2
    value = float(center)
    if not np.isfinite(value) or not 0 <= value <= n_columns - 1:
        raise ValueError(
            f"center must be a finite detector column in [0, {n_columns - 1}], got {center!r}"
        )
    return value


def reconstruct(line_integrals: ArrayLike, angles_deg: ArrayLike, *,
                center: float | None = None, backend: str = "auto",
                filter: str = DEFAULT_FILTER) -> np.ndarray:
    """Reconstruct slices from parallel-beam line integrals.

    Geometry: at angle ``theta`` a point ``(x, y)`` of slice ``z`` (relative
    to the slice centre ``(X - 1) / 2``) is seen on detector column
    ``center + x cos(theta) + y sin(theta)`` of row ``z``; the output has the
    orientation of :meth:`lowdose_bluesky.phantoms.Phantom.volume`, so
    ``reconstruct(ph.project(a), a)`` approximates ``ph.volume()`` voxel for
    voxel.

    Parameters
    ----------
    line_integrals
        ``(N, Z, X)`` line integrals (``-log`` of the transmission), in units
        of attenuation x pixel.
    angles_deg
        ``(N,)`` rotation angles in degrees (any range; 0..180 and 0..360 scans
        are weighted correctly).
    center
        Detector column of the rotation axis (``None``: ``(X - 1) / 2``).
        See :func:`lowdose_bluesky.recon.find_center`.
    backend
        ``"auto"`` (TomoPy gridrec when importable, else the measured CPU
        default) or a name from :func:`lowdose_bluesky.recon.available_backends`.
    filter
        FBP filter: one of :data:`lowdose_bluesky.recon.FILTER_NAMES`; Parzen
        (the paper's) by default. ``"ramlak"`` is the sharpest.

    Returns
    -------
    numpy.ndarray
        ``(Z, X, X)`` float32 slices ``(z, y, x)``, attenuation per pixel.

    Raises
    ------
    ValueError
        For non-3-D or non-finite projections, angles that are fewer than 2,
        non-finite or not one per projection, an unknown backend or filter, or
        a centre outside the detector.
    """
    data = as_projections(line_integrals)
    angles = as_angles_deg(angles_deg, data.shape[0])
    check_filter(filter)
    centre = check_center(center, data.shape[2])
    engine = get_backend(backend)
    out = engine.reconstruct(data, np.deg2rad(angles), centre, filter_name=filter)
    return np.asarray(out, dtype=np.float32)
