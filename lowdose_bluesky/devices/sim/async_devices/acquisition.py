"""The sequencer of the simulated ophyd-async camera: timed exposures written to a file."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
from ophyd_async.core import SignalR

from ..counting import CountingModel, transmission
from ..optics import SimOptics
from .clock import SimClock
from .frame_file import TXMFrameFile
from .sequencer import ClockedAcquisition

__all__ = ["FrameAcquisition"]


class FrameAcquisition(ClockedAcquisition[TXMFrameFile]):
    """Exposes ``num`` frames on the clock and appends them, with their angles, to a file.

    Frame ``i`` is exposed over the clock times ``[t0 + i * period, t0 + i * period +
    exposure]``, ``t0`` being the time :meth:`run` starts and ``period`` the exposure
    plus the gap set by :meth:`configure`. Its counts integrate the beam over that
    arc: the transmission is averaged over ``blur_samples`` angles of
    ``rotation.position_at`` spread across the exposure (midpoints of equal slices),
    and the angle recorded with it is the one at mid-exposure. The shutter and the
    sample position are those when the exposure ends.

    Parameters
    ----------
    counting
        The camera's photon counting (flat field, noise generators).
    optics
        Beam state and line integrals.
    rotation
        Rotation stage with ``position_at(t)`` (``None``: always at 0 degrees).
    clock
        Time of the simulation.
    exposure_time
        Signal holding the exposure in seconds.
    set_written
        Setter of the signal counting the frames in the current file.
    blur_samples
        Angles averaged per frame (1: no motion blur).
    """

    detector_kind = "simulated camera"

    def __init__(self, *, counting: CountingModel, optics: SimOptics, rotation: Any,
                 clock: SimClock, exposure_time: SignalR[float],
                 set_written: Callable[[int], None], blur_samples: int = 3) -> None:
        super().__init__(clock=clock, live_time=exposure_time, set_written=set_written,
                         blur_samples=blur_samples)
        self.counting = counting
        self.optics = optics
        self.rotation = rotation

    def new_file(self, path: Path) -> TXMFrameFile:
        """A file for frames of the camera's shape."""
        return TXMFrameFile(path, self.counting.frame_shape)

    # ------------------------------------------------------------- physics
    def angle_at(self, t: float) -> float:
        """Rotation angle (degrees) at clock time ``t``."""
        return 0.0 if self.rotation is None else float(self.rotation.position_at(t))

    def exposure_angles(self, start: float, exposure: float) -> list[float]:
        """The ``blur_samples`` angles averaged by an exposure beginning at ``start``."""
        n = self.blur_samples
        return [self.angle_at(start + exposure * (k + 0.5) / n) for k in range(n)]

    def draw_frame(self, angles: list[float], exposure: float, *, beam_open: bool,
                   offset: float) -> np.ndarray:
        """One noisy frame for the transmission averaged over ``angles``."""
        transmitted = None
        if beam_open:
            mu = self.optics.mu
            if all(a == angles[0] for a in angles):
                transmitted = transmission(self.optics.line_integrals_at(angles[0], offset), mu)
            else:
                transmitted = np.mean(
                    [transmission(self.optics.line_integrals_at(a, offset), mu) for a in angles],
                    axis=0, dtype=np.float32)
        return self.counting.draw(self.counting.expected_counts(exposure, transmitted),
                                  exposure)

    # ----------------------------------------------------------------- run
    async def acquire(self, file: TXMFrameFile, index: int, start: float,
                      duration: float) -> None:
        """Draw the frame exposed over ``[start, start + duration]`` and write it."""
        angles = self.exposure_angles(start, duration)
        middle = self.angle_at(start + duration / 2)
        beam_open = self.optics.beam_open()
        offset = self.optics.offset_pixels()
        frame = await asyncio.to_thread(self.draw_frame, angles, duration,
                                        beam_open=beam_open, offset=offset)
        file.write(frame, middle)
