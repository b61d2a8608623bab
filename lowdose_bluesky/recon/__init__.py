"""Tomographic reconstruction: normalisation, centre finding and filtered back-projection.

Geometry (parallel beam, rotation about ``z``): at angle ``theta`` a point
``(x, y)`` of a slice, relative to the slice centre ``(X - 1) / 2``, lands on
detector column ``center + x cos(theta) + y sin(theta)``. At 0 deg the
projection is ``volume.sum(axis=1)``, at 90 deg ``volume.sum(axis=2)`` (the
convention of :mod:`lowdose_bluesky.phantoms`), and :func:`reconstruct` returns
slices ``(z, y, x)`` in that orientation and in attenuation per pixel.

This package never imports bluesky.
"""

from __future__ import annotations

from lowdose_bluesky.recon.angles import angle_weights
from lowdose_bluesky.recon.backends import (
    BACKENDS,
    ReconBackend,
    available_backends,
    get_backend,
    register_backend,
)
from lowdose_bluesky.recon.center import find_center
from lowdose_bluesky.recon.filters import DEFAULT_FILTER, FILTER_NAMES
from lowdose_bluesky.recon.preprocess import minus_log, normalize
from lowdose_bluesky.recon.reconstruct import reconstruct
from lowdose_bluesky.recon.splits import split_reconstructions

__all__ = [
    "BACKENDS",
    "DEFAULT_FILTER",
    "FILTER_NAMES",
    "ReconBackend",
    "angle_weights",
    "available_backends",
    "find_center",
    "get_backend",
    "minus_log",
    "normalize",
    "reconstruct",
    "register_backend",
    "split_reconstructions",
]
