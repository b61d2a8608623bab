"""The sequencer of the simulated ptychography detector: timed exposures written to a file."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

from ophyd_async.core import SignalR

from ..async_devices import SimClock
from ..async_devices.sequencer import ClockedAcquisition
from .counting import PtychoCounting
from .pattern_file import PatternFile

__all__ = ["PatternAcquisition"]


class PatternAcquisition(ClockedAcquisition[PatternFile]):
    """Exposes ``num`` patterns on the clock and appends them, with the positions, to a file.

    Pattern ``i`` is exposed over ``[t0 + i * period, t0 + i * period + exposure]``;
    the probe sits where the stages are at mid-exposure (step scans: the stages stand
    still), and the shutter state is the one when the exposure ends.

    Parameters
    ----------
    counting
        Far-field patterns of the object.
    x, y
        Stages with ``position_at(t)`` in µm (``None``: at 0).
    shutter
        Beam shutter with ``is_open`` (``None``: always open).
    clock
        Time of the simulation.
    exposure_time
        Signal holding the exposure in seconds.
    set_written
        Setter of the signal counting the patterns in the current file.
    """

    detector_kind = "simulated pixel detector"

    def __init__(self, *, counting: PtychoCounting, x: Any, y: Any, shutter: Any,
                 clock: SimClock, exposure_time: SignalR[float],
                 set_written: Callable[[int], None]) -> None:
        super().__init__(clock=clock, live_time=exposure_time, set_written=set_written,
                         blur_samples=1)
        self.counting = counting
        self.x = x
        self.y = y
        self.shutter = shutter

    def new_file(self, path: Path) -> PatternFile:
        """A file for patterns of the probe's shape."""
        return PatternFile(path, self.counting.pattern_shape)

    def position_at(self, t: float) -> tuple[float, float]:
        """Stage positions ``(x, y)`` in µm at clock time ``t``."""
        x = 0.0 if self.x is None else float(self.x.position_at(t))
        y = 0.0 if self.y is None else float(self.y.position_at(t))
        return x, y

    async def acquire(self, file: PatternFile, index: int, start: float,
                      duration: float) -> None:
        """Draw the pattern exposed over ``[start, start + duration]`` and write it."""
        x, y = self.position_at(start + duration / 2)
        beam = self.shutter is None or bool(self.shutter.is_open)
        # a pattern takes well under a millisecond to draw: on the loop, as the XRF
        # detector's pixels (a frame drawn in a thread let a pause land mid-trigger)
        file.write(self.counting.draw(x, y, duration, beam_open=beam), x=x, y=y)
