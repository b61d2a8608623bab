"""The run loop shared by the simulated ophyd-async detectors: timed acquisitions into a file."""

from __future__ import annotations

import itertools
import logging
from collections.abc import Callable
from pathlib import Path, PurePath
from typing import Generic, TypeVar

from ophyd_async.core import SignalR

from .clock import SimClock
from .swmr_file import SWMRFile

__all__ = ["ClockedAcquisition"]

FileT = TypeVar("FileT", bound=SWMRFile)


class ClockedAcquisition(Generic[FileT]):
    """Acquires ``num`` times on a clock and appends each acquisition to a file.

    Acquisition ``i`` lasts over the clock times ``[t0 + i * period, t0 + i * period +
    duration]``, ``t0`` being the time :meth:`run` starts, ``duration`` the value of
    the ``live_time`` signal and ``period`` the duration plus the gap set by
    :meth:`configure`. Subclasses make the file (:meth:`new_file`) and write one
    acquisition once its time has passed (:meth:`acquire`).

    Parameters
    ----------
    clock
        Time of the simulation.
    live_time
        Signal holding the duration of one acquisition in seconds.
    set_written
        Setter of the signal counting the acquisitions in the current file.
    blur_samples
        Samples of the moving stages averaged per acquisition (at least 1).
    """

    #: What the detector is called in the log.
    detector_kind = "simulated detector"

    def __init__(self, *, clock: SimClock, live_time: SignalR[float],
                 set_written: Callable[[int], None], blur_samples: int = 3) -> None:
        if int(blur_samples) < 1:
            raise ValueError(f"blur_samples must be >= 1, got {blur_samples!r}")
        self.clock = clock
        self.blur_samples = int(blur_samples)
        self._live_time = live_time
        self._set_written = set_written
        self._num = 1
        self._gap = 0.0
        self._file: FileT | None = None

    # ------------------------------------------------------------ settings
    def configure(self, num: int, gap: float) -> None:
        """Acquire ``num`` times (0: until stopped), ``gap`` seconds between acquisitions."""
        self._num = int(num)
        self._gap = max(float(gap), 0.0)

    @property
    def num(self) -> int:
        """Acquisitions per run (0: until stopped)."""
        return self._num

    @property
    def gap(self) -> float:
        """Seconds between the end of an acquisition and the start of the next."""
        return self._gap

    # ---------------------------------------------------------------- file
    def new_file(self, path: Path) -> FileT:
        """Create the file the acquisitions go to."""
        raise NotImplementedError

    def open_file(self, path: str | PurePath) -> FileT:
        """Close the current file, open a new one and count its acquisitions from 0."""
        self.close_file()
        self._file = self.new_file(Path(path))
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

    # ----------------------------------------------------------------- run
    async def acquire(self, file: FileT, index: int, start: float, duration: float) -> None:
        """Write acquisition ``index``, over ``[start, start + duration]``, to ``file``."""
        raise NotImplementedError

    async def run(self) -> None:
        """Acquire and write the configured acquisitions, counting them as they are written."""
        if self._file is None:
            raise RuntimeError("no file is open: stage and prepare the detector first")
        file = self._file
        duration = float(await self._live_time.get_value())
        period = duration + self._gap
        t0 = self.clock.now()
        indices = range(self._num) if self._num > 0 else itertools.count()
        try:
            for i in indices:
                start = t0 + i * period
                await self.clock.sleep_until(start + duration)
                await self.acquire(file, i, start, duration)
                self._set_written(file.num_written)
        except Exception:
            logging.getLogger(type(self).__module__).exception(
                f"{self.detector_kind}: acquisition into %s failed", file.path)
            raise
