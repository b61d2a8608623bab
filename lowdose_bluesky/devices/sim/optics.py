"""What the simulated camera sees: shutter, sample position and rotation combined."""

from __future__ import annotations

from typing import Any

import numpy as np

from ...phantoms import Phantom

__all__ = ["SimOptics"]


class SimOptics:
    """Line integrals through the sample for the current positions of the stages.

    Parameters
    ----------
    phantom
        The sample.
    rotation, sample_x, shutter
        Devices whose readbacks define the beam state (``rotation`` in degrees,
        ``sample_x`` in millimetres, ``shutter`` reading ``"open"``/``"closed"``).
    mu
        Attenuation per voxel of value 1.0 (the phantom's values are relative).
    pixel_size
        Detector pixel size in millimetres (converts ``sample_x`` to pixels).
    sample_in
        Position of ``sample_x`` at which the sample is centred in the beam.

    Notes
    -----
    Projections are cached per (angle, offset): repeated angles (reference
    pairs at long and short exposure) cost nothing the second time.

    The current state is read through :meth:`beam_open`, :meth:`angle` and
    :meth:`offset_pixels`, from ophyd (v1) devices (``position`` and
    ``state.get()``); a subclass reads other devices, e.g.
    :class:`~lowdose_bluesky.devices.sim.async_devices.AsyncSimOptics`.
    """

    def __init__(self, phantom: Phantom, rotation: Any, sample_x: Any, shutter: Any, *,
                 mu: float, pixel_size: float, sample_in: float = 0.0,
                 cache_size: int = 32) -> None:
        self.phantom = phantom
        self.rotation = rotation
        self.sample_x = sample_x
        self.shutter = shutter
        self.mu = float(mu)
        self.pixel_size = float(pixel_size)
        self.sample_in = float(sample_in)
        self._cache: dict[tuple[float, float], np.ndarray] = {}
        self._cache_size = int(cache_size)

    def beam_open(self) -> bool:
        """Whether the shutter lets the beam through."""
        return self.shutter is None or self.shutter.state.get() == "open"

    def angle(self) -> float:
        """Current rotation angle in degrees."""
        return 0.0 if self.rotation is None else float(self.rotation.position)

    def offset_pixels(self) -> float:
        """Horizontal sample shift in detector pixels."""
        if self.sample_x is None:
            return 0.0
        return (float(self.sample_x.position) - self.sample_in) / self.pixel_size

    def line_integrals(self) -> np.ndarray | None:
        """Line integrals ``(H, W)`` for the current positions; ``None`` if the beam is off."""
        if not self.beam_open():
            return None
        return self.line_integrals_at(self.angle())

    def line_integrals_at(self, angle: float, offset: float | None = None) -> np.ndarray:
        """Line integrals ``(H, W)`` at an explicit angle, whatever the shutter.

        Parameters
        ----------
        angle
            Rotation angle in degrees.
        offset
            Horizontal sample shift in detector pixels; default: the current one
            (:meth:`offset_pixels`).
        """
        offset = round(self.offset_pixels() if offset is None else float(offset), 3)
        if abs(offset) >= self.phantom.shape[2]:
            return np.zeros(self.phantom.shape[::2], dtype=np.float32)
        key = (round(float(angle), 6), offset)
        cached = self._cache.get(key)
        if cached is None:
            cached = self.phantom.project(key[0], offset=offset)[0]
            if len(self._cache) >= self._cache_size:
                self._cache.pop(next(iter(self._cache)))
            self._cache[key] = cached
        return cached
