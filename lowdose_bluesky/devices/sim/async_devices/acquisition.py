"""The sequencer of the simulated ophyd-async camera: timed exposures written to a file."""

from __future__ import annotations

import asyncio
import itertools
import logging
from collections.abc import Callable
from pathlib import Path, PurePath
from typing import Any

import numpy as np
from ophyd_async.core import SignalR

from ..counting import CountingModel, transmission
from ..optics import SimOptics
from .clock import SimClock
from .frame_file import TXMFrameFile

__all__ = ["FrameAcquisition"]

log = logging.getLogger(__name__)


class FrameAcquisition:
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

    def __init__(self, *, counting: CountingModel, optics: SimOptics, rotation: Any,
                 clock: SimClock, exposure_time: SignalR[float],
                 set_written: Callable[[int], None], blur_samples: int = 3) -> None:
        if int(blur_samples) < 1:
            raise ValueError(f"blur_samples must be >= 1, got {blur_samples!r}")
        self.counting = counting
        self.optics = optics
        self.rotation = rotation
        self.clock = clock
        self.blur_samples = int(blur_samples)
        self._exposure_time = exposure_time
        self._set_written = set_written
        self._num = 1
        self._gap = 0.0
        self._file: TXMFrameFile | None = None

    # ------------------------------------------------------------ settings
    def configure(self, num: int, gap: float) -> None:
        """Take ``num`` frames (0: until stopped), ``gap`` seconds between exposures."""
        self._num = int(num)
        self._gap = max(float(gap), 0.0)

    @property
    def num(self) -> int:
        """Frames per acquisition (0: until stopped)."""
        return self._num

    @property
    def gap(self) -> float:
        """Seconds between the end of an exposure and the start of the next."""
        return self._gap

    # ---------------------------------------------------------------- file
    def open_file(self, path: str | PurePath) -> TXMFrameFile:
        """Close the current file, open a new one and count its frames from 0."""
        self.close_file()
        self._file = TXMFrameFile(Path(path), self.counting.frame_shape)
        self._set_written(0)
        return self._file

    def close_file(self) -> None:
        """Close the current file, if any."""
        if self._file is not None:
            self._file.close()
            self._file = None

    @property
    def current_file(self) -> Path | None:
        """Path of the file being written, if any."""
        return None if self._file is None else self._file.path

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
    async def run(self) -> None:
        """Expose and write the configured frames, counting them as they are written."""
        if self._file is None:
            raise RuntimeError("no file is open: stage and prepare the detector first")
        file = self._file
        exposure = float(await self._exposure_time.get_value())
        period = exposure + self._gap
        t0 = self.clock.now()
        indices = range(self._num) if self._num > 0 else itertools.count()
        try:
            for i in indices:
                start = t0 + i * period
                await self.clock.sleep_until(start + exposure)
                angles = self.exposure_angles(start, exposure)
                middle = self.angle_at(start + exposure / 2)
                beam_open = self.optics.beam_open()
                offset = self.optics.offset_pixels()
                frame = await asyncio.to_thread(self.draw_frame, angles, exposure,
                                                beam_open=beam_open, offset=offset)
                file.write(frame, middle)
                self._set_written(file.num_frames)
        except Exception:
            log.exception("simulated camera: acquisition into %s failed", file.path)
            raise
