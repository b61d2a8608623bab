"""Trigger, acquire and data logic of the simulated ophyd-async TXM camera."""

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

from ...hdf5_frames import DATASET
from .acquisition import FrameAcquisition
from .frame_file import ANGLE_CHUNK, ROTATION_DATASET

__all__ = ["ANGLE_SUFFIX", "SimTXMAcquireLogic", "SimTXMDataLogic", "SimTXMTriggerLogic"]

#: Appended to the detector name to give the data key of the per-frame rotation angle.
ANGLE_SUFFIX = "-rotation"


class SimTXMTriggerLogic(DetectorTriggerLogic):
    """INTERNAL triggering only: ``num`` exposures of ``livetime`` seconds.

    Parameters
    ----------
    acquisition
        The camera's sequencer.
    exposure_time
        Signal of the exposure (seconds), kept when ``livetime`` is 0.
    readout_time
        Signal of the camera's readout time: the dead time it reports, and the least
        gap between exposures.
    """

    def __init__(self, acquisition: FrameAcquisition, exposure_time: SignalRW[float],
                 readout_time: SignalR[float]) -> None:
        self.acquisition = acquisition
        self.exposure_time = exposure_time
        self.readout_time = readout_time

    def config_sigs(self) -> set[SignalR]:
        """The readout time decides the dead time."""
        return {self.readout_time}

    def get_deadtime(self, config_values: SignalDict) -> float:
        """The readout time, in seconds."""
        return float(config_values[self.readout_time])

    async def prepare_internal(self, num: int, livetime: float, deadtime: float) -> None:
        """Set up ``num`` exposures (0: until stopped) of ``livetime`` s (0: keep it).

        Consecutive exposures start ``livetime + max(deadtime, readout_time)`` apart.
        """
        if livetime > 0:
            await self.exposure_time.set(float(livetime))
        readout = float(await self.readout_time.get_value())
        self.acquisition.configure(num, max(float(deadtime), readout))

    async def default_trigger_info(self) -> TriggerInfo:
        """One frame at the current exposure."""
        return TriggerInfo(livetime=float(await self.exposure_time.get_value()))


class SimTXMAcquireLogic(DetectorAcquireLogic):
    """Runs the sequencer in a task: started on trigger/kickoff, cancelled on unstage."""

    def __init__(self, acquisition: FrameAcquisition) -> None:
        self.acquisition = acquisition
        self._task: asyncio.Task[None] | None = None

    async def start_acquiring(self) -> None:
        """Start exposing the configured frames."""
        await self.ensure_stopped()
        self._task = asyncio.create_task(self.acquisition.run())

    async def wait_for_idle(self) -> None:
        """Wait for the last frame (re-raising what stopped the acquisition)."""
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


class SimTXMDataLogic(DetectorDataLogic):
    """A new SWMR HDF5 file per stage, announced by StreamResource/StreamDatum documents.

    Two resources: ``<name>`` (frames ``(H, W)`` ``uint16``, dataset
    ``/entry/data/data``) and ``<name>-rotation`` (angle at mid-exposure, degrees,
    dataset ``/entry/instrument/NDAttributes/rotation``). Only the frames are hinted.

    Parameters
    ----------
    acquisition
        The camera's sequencer (owns the file).
    path_provider
        Where each new file goes.
    collections_written
        Signal counting the frames written to the current file.
    """

    def __init__(self, acquisition: FrameAcquisition, path_provider: PathProvider,
                 collections_written: SignalR[int]) -> None:
        self.acquisition = acquisition
        self.path_provider = path_provider
        self.collections_written = collections_written

    async def prepare_unbounded(self, datakey_name: str) -> StreamableDataProvider:
        """Open a new file and describe its two datasets."""
        info = self.path_provider(datakey_name)
        filename = f"{info.filename}.h5"
        self.acquisition.open_file(Path(info.directory_path) / filename)
        h, w = self.acquisition.counting.frame_shape
        resources = [
            StreamResourceInfo(data_key=datakey_name, shape=(h, w), chunk_shape=(1, h, w),
                               dtype_numpy=np.dtype(np.uint16).str,
                               parameters={"dataset": DATASET}),
            StreamResourceInfo(data_key=f"{datakey_name}{ANGLE_SUFFIX}", shape=(),
                               chunk_shape=(ANGLE_CHUNK,),
                               dtype_numpy=np.dtype(np.float64).str,
                               parameters={"dataset": ROTATION_DATASET}),
        ]
        return StreamResourceDataProvider(
            uri=f"{info.directory_uri}{filename}", resources=resources,
            mimetype="application/x-hdf5", collections_written_signal=self.collections_written)

    async def stop(self) -> None:
        """Close the file."""
        self.acquisition.close_file()

    def get_hinted_fields(self, datakey_name: str) -> Sequence[str]:
        """Only the frames."""
        return [datakey_name]
