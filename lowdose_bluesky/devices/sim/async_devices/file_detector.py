"""The ophyd-async ``StandardDetector`` base of the simulated file-writing detectors."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
from ophyd_async.core import (
    PathProvider,
    SignalRW,
    StandardDetector,
    soft_signal_r_and_setter,
)

from .clock import SimClock
from .file_logics import FileDataLogic, TaskAcquireLogic, TimedTriggerLogic
from .frame_file import DatedPathProvider
from .sequencer import ClockedAcquisition

__all__ = ["SimFileDetector"]


class SimFileDetector(StandardDetector):
    """A detector whose :class:`ClockedAcquisition` writes a new SWMR HDF5 file per stage.

    Subclasses check their arguments with :meth:`resolve_file_args`, make their
    duration signal, call :meth:`make_file_signals`, build their sequencer with the
    setter it returns and finish with :meth:`init_file_detector`.
    """

    _acquisition: ClockedAcquisition

    @staticmethod
    def resolve_file_args(*, data_dir: str | Path | None, path_provider: PathProvider | None,
                          readout_time: float, clock: SimClock | None,
                          stage: Any) -> tuple[PathProvider, SimClock]:
        """The path provider and the clock, checked and defaulted.

        Raises
        ------
        ValueError
            Without ``data_dir`` and ``path_provider``, or for a negative readout time.
        """
        if path_provider is None:
            if data_dir is None:
                raise ValueError("give data_dir or path_provider: where the HDF5 files go")
            path_provider = DatedPathProvider(data_dir)
        if not np.isfinite(readout_time) or readout_time < 0:
            raise ValueError(f"readout_time must be >= 0 s, got {readout_time!r}")
        if clock is None:
            clock = getattr(stage, "clock", None) or SimClock()
        return path_provider, clock

    def make_file_signals(self, readout_time: float) -> Callable[[int], None]:
        """Make ``readout_time`` and ``collections_written``; return the latter's setter."""
        self.readout_time, _ = soft_signal_r_and_setter(float, float(readout_time), units="s")
        self.collections_written, set_written = soft_signal_r_and_setter(int, 0)
        return set_written

    def init_file_detector(self, acquisition: ClockedAcquisition, live_time: SignalRW[float],
                           path_provider: PathProvider, *,
                           trigger_logic: type[TimedTriggerLogic],
                           acquire_logic: type[TaskAcquireLogic],
                           data_logic: type[FileDataLogic], name: str) -> None:
        """Add the logics around ``acquisition`` and initialise the detector as ``name``."""
        self._acquisition = acquisition
        self.add_detector_logics(
            trigger_logic(acquisition, live_time, self.readout_time),
            acquire_logic(acquisition),
            data_logic(acquisition, path_provider, self.collections_written),
        )
        self.add_config_signals(live_time)
        StandardDetector.__init__(self, name=name)

    @property
    def current_file(self) -> Path | None:
        """Path of the HDF5 file being written, if any."""
        return self._acquisition.current_file
