"""Trigger, acquire and data logic shared by the simulated ophyd-async detectors."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Sequence
from pathlib import Path

import numpy as np
from ophyd_async.core import (
    DetectorAcquireLogic,
    DetectorDataLogic,
    DetectorTriggerLogic,
    PathProvider,
    SignalDict,
    SignalR,
    SignalRW,
    StreamableDataProvider,
    StreamResourceDataProvider,
    StreamResourceInfo,
    TriggerInfo,
)

from .sequencer import ClockedAcquisition

__all__ = ["FileDataLogic", "TaskAcquireLogic", "TimedTriggerLogic", "scalar_resource"]


def scalar_resource(data_key: str, dataset: str, chunk: int) -> StreamResourceInfo:
    """A ``float64`` value per acquisition in ``dataset``, in chunks of ``chunk``."""
    return StreamResourceInfo(data_key=data_key, shape=(), chunk_shape=(chunk,),
                              dtype_numpy=np.dtype(np.float64).str,
                              parameters={"dataset": dataset})


class TimedTriggerLogic(DetectorTriggerLogic):
    """INTERNAL triggering only: ``num`` acquisitions of ``livetime`` seconds.

    Parameters
    ----------
    acquisition
        The detector's sequencer.
    live_time
        Signal of the duration of one acquisition (seconds), kept when ``livetime``
        is 0.
    readout_time
        Signal of the readout time: the dead time reported, and the least gap
        between acquisitions.
    """

    def __init__(self, acquisition: ClockedAcquisition, live_time: SignalRW[float],
                 readout_time: SignalR[float]) -> None:
        self.acquisition = acquisition
        self.live_time = live_time
        self.readout_time = readout_time

    def config_sigs(self) -> set[SignalR]:
        """The readout time decides the dead time."""
        return {self.readout_time}

    def get_deadtime(self, config_values: SignalDict) -> float:
        """The readout time, in seconds."""
        return float(config_values[self.readout_time])

    async def prepare_internal(self, num: int, livetime: float, deadtime: float) -> None:
        """Set up ``num`` acquisitions (0: until stopped) of ``livetime`` s (0: keep it).

        Consecutive acquisitions start ``livetime + max(deadtime, readout_time)`` apart.
        """
        if livetime > 0:
            await self.live_time.set(float(livetime))
        readout = float(await self.readout_time.get_value())
        self.acquisition.configure(num, max(float(deadtime), readout))

    async def default_trigger_info(self) -> TriggerInfo:
        """One acquisition of the current duration."""
        return TriggerInfo(livetime=float(await self.live_time.get_value()))


class TaskAcquireLogic(DetectorAcquireLogic):
    """Runs the sequencer in a task: started on trigger/kickoff, cancelled on unstage."""

    def __init__(self, acquisition: ClockedAcquisition) -> None:
        self.acquisition = acquisition
        self._task: asyncio.Task[None] | None = None

    async def start_acquiring(self) -> None:
        """Start the configured acquisitions."""
        await self.ensure_stopped()
        self._task = asyncio.create_task(self.acquisition.run())

    async def wait_for_idle(self) -> None:
        """Wait for the last acquisition (re-raising what stopped the run)."""
        if self._task is not None:
            task, self._task = self._task, None
            await task

    async def ensure_stopped(self) -> None:
        """Stop an acquisition in progress."""
        if self._task is not None:
            task, self._task = self._task, None
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task


class FileDataLogic(DetectorDataLogic):
    """A new SWMR HDF5 file per stage, announced by StreamResource/StreamDatum documents.

    Subclasses describe the file's datasets (:meth:`resources`); only the main data
    key (the detector's name) is hinted.

    Parameters
    ----------
    acquisition
        The detector's sequencer (owns the file).
    path_provider
        Where each new file goes.
    collections_written
        Signal counting the acquisitions written to the current file.
    """

    def __init__(self, acquisition: ClockedAcquisition, path_provider: PathProvider,
                 collections_written: SignalR[int]) -> None:
        self.acquisition = acquisition
        self.path_provider = path_provider
        self.collections_written = collections_written

    def resources(self, datakey_name: str) -> list[StreamResourceInfo]:
        """The datasets of a file, the first one under the data key ``datakey_name``."""
        raise NotImplementedError

    async def prepare_unbounded(self, datakey_name: str) -> StreamableDataProvider:
        """Open a new file and describe its datasets."""
        info = self.path_provider(datakey_name)
        filename = f"{info.filename}.h5"
        self.acquisition.open_file(Path(info.directory_path) / filename)
        return StreamResourceDataProvider(
            uri=f"{info.directory_uri}{filename}", resources=self.resources(datakey_name),
            mimetype="application/x-hdf5", collections_written_signal=self.collections_written)

    async def stop(self) -> None:
        """Close the file."""
        self.acquisition.close_file()

    def get_hinted_fields(self, datakey_name: str) -> Sequence[str]:
        """Only the main data key."""
        return [datakey_name]
