"""Running dark and flat means per exposure, and the flat-field correction they give."""

from __future__ import annotations

import numpy as np

__all__ = ["MAX_DEAD_FRACTION", "FlatField", "RunningMean"]

#: Largest fraction of pixels with flats minus darks <= 0 (dead pixels) at one exposure.
MAX_DEAD_FRACTION = 1e-3


class RunningMean:
    """Running mean of frames (no stack of copies is kept)."""

    def __init__(self) -> None:
        self.total: np.ndarray | None = None
        self.count = 0

    def add(self, frame: np.ndarray) -> None:
        """Add one frame."""
        f = frame.astype(np.float64)
        self.total = f if self.total is None else self.total + f
        self.count += 1

    @property
    def value(self) -> np.ndarray:
        """The mean so far (float32)."""
        assert self.total is not None
        return (self.total / self.count).astype(np.float32)


class FlatField:
    """Dark and flat frames of a run, averaged per exposure, checked once per exposure.

    Parameters
    ----------
    what
        How messages name the run (``"run <uid>"``).
    how_to_acquire
        Per missing stream (``"dark"``, ``"flat"``), how the plan acquires it.
    plan
        The plan those instructions are for (``"lowdose_tomo_plan"``).
    """

    def __init__(self, what: str, how_to_acquire: dict[str, str], plan: str) -> None:
        self.what = what
        self.how_to_acquire = how_to_acquire
        self.plan = plan
        self.darks: dict[float, RunningMean] = {}
        self.flats: dict[float, RunningMean] = {}
        self.dead: dict[float, int] = {}
        self._cache: dict[float, tuple[np.ndarray, np.ndarray]] = {}

    def add(self, stream: str, exposure: float, frame: np.ndarray) -> None:
        """Add a ``"dark"`` or ``"flat"`` frame taken at ``exposure`` seconds."""
        table = self.darks if stream == "dark" else self.flats
        table.setdefault(exposure, RunningMean()).add(frame)
        self._cache.clear()

    def has(self, exposure: float) -> bool:
        """Whether darks and flats at ``exposure`` were seen."""
        return exposure in self.darks and exposure in self.flats

    def correction(self, exposure: float) -> tuple[np.ndarray, np.ndarray]:
        """Mean flat and dark at ``exposure``.

        Raises
        ------
        ValueError
            If darks or flats at that exposure are missing, or more than
            :data:`MAX_DEAD_FRACTION` of the pixels have flats minus darks <= 0.
        """
        cached = self._cache.get(exposure)
        if cached is not None:
            return cached
        missing = [name for name, table in (("dark", self.darks), ("flat", self.flats))
                   if exposure not in table]
        if missing:
            raise ValueError(
                f"{self.what} has no {' and no '.join(missing)} frames at exposure {exposure} s "
                f"(darks at {sorted(self.darks)} s, flats at {sorted(self.flats)} s): "
                "flat-field correction needs dark and flat frames at every exposure; to acquire "
                "them " + " and ".join(self.how_to_acquire[m] for m in missing)
                + f" to {self.plan}")
        flat, dark = self.flats[exposure].value, self.darks[exposure].value
        dead = flat - dark <= 0
        n_dead, allowed = int(dead.sum()), int(MAX_DEAD_FRACTION * dead.size)
        if n_dead > allowed:
            raise ValueError(
                f"{self.what}: flats minus darks at exposure {exposure} s is <= 0 at "
                f"{n_dead} of {dead.size} pixels ({n_dead / dead.size:.1%}; mean flat "
                f"{flat.mean():.4g}, mean dark {dark.mean():.4g} counts); allowed: at most "
                f"{allowed} such dead pixels ({MAX_DEAD_FRACTION:.1%}): was the beam off or the "
                "shutter closed during the flats, or are darks and flats swapped?")
        self.dead[exposure] = n_dead
        self._cache[exposure] = (flat, dark)
        return flat, dark
