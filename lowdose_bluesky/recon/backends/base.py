"""The reconstruction-backend protocol and the registry of backends."""

from __future__ import annotations

from collections.abc import Callable
from typing import Protocol, runtime_checkable

import numpy as np

__all__ = ["BACKENDS", "PREFERENCE", "ReconBackend", "available_backends", "get_backend",
           "register_backend"]


@runtime_checkable
class ReconBackend(Protocol):
    """A parallel-beam reconstruction engine.

    Geometry (the project's convention, see :mod:`lowdose_bluesky.phantoms`):
    at angle ``theta`` the point ``(x, y)`` of a slice, relative to the slice
    centre ``(W - 1) / 2``, lands on detector column
    ``center + x cos(theta) + y sin(theta)``. Backends convert internally.

    Attributes
    ----------
    name
        Registry name of the backend.
    """

    name: str

    def reconstruct(self, sinograms: np.ndarray, angles_rad: np.ndarray, center: float, *,
                    filter_name: str = "parzen") -> np.ndarray:
        """Reconstruct slices.

        Parameters
        ----------
        sinograms
            ``(N, Z, X)`` float32 line integrals (the sinogram of slice ``z``
            is ``sinograms[:, z, :]``), validated and finite.
        angles_rad
            ``(N,)`` float64 rotation angles in radians.
        center
            Detector column of the rotation axis.
        filter_name
            FBP filter (see :data:`lowdose_bluesky.recon.filters.FILTER_NAMES`).

        Returns
        -------
        numpy.ndarray
            ``(Z, X, X)`` float32 slices, axes ``(z, y, x)``, in units of the
            line integrals per pixel.
        """
        ...


#: Registered backends: name -> (factory, availability check).
BACKENDS: dict[str, tuple[Callable[[], ReconBackend], Callable[[], bool]]] = {}

#: Order in which ``backend="auto"`` tries backends (first available wins).
PREFERENCE: list[str] = []


def register_backend(name: str, factory: Callable[[], ReconBackend],
                     is_available: Callable[[], bool], *, preference: int | None = None
                     ) -> None:
    """Add a backend to :data:`BACKENDS`.

    Parameters
    ----------
    name
        Registry name.
    factory
        Zero-argument callable returning a :class:`ReconBackend`.
    is_available
        Zero-argument callable telling whether the backend can run here
        (typically whether its optional import succeeds).
    preference
        Position in :data:`PREFERENCE` (``None``: last).
    """
    BACKENDS[name] = (factory, is_available)
    if name in PREFERENCE:
        PREFERENCE.remove(name)
    PREFERENCE.insert(len(PREFERENCE) if preference is None else preference, name)


def available_backends() -> list[str]:
    """Names of the backends usable in this environment, in ``auto`` preference order."""
    return [name for name in PREFERENCE if BACKENDS[name][1]()]


def get_backend(name: str = "auto") -> ReconBackend:
    """Instantiate a backend by name.

    Parameters
    ----------
    name
        A key of :data:`BACKENDS`, or ``"auto"`` for the first available one in
        :data:`PREFERENCE` (TomoPy gridrec when importable, else the measured
        CPU default).

    Raises
    ------
    ValueError
        If the name is unknown or the backend cannot run here.
    """
    if name == "auto":
        usable = available_backends()
        if not usable:
            raise ValueError("no reconstruction backend is available")
        name = usable[0]
    if name not in BACKENDS:
        raise ValueError(
            f"unknown backend {name!r}; allowed: 'auto', {', '.join(map(repr, BACKENDS))}"
        )
    factory, is_available = BACKENDS[name]
    if not is_available():
        raise ValueError(
            f"backend {name!r} is not available here; available: "
            f"{', '.join(map(repr, available_backends()))}"
        )
    return factory()
