"""Trigger, acquire and data logic of the simulated fluorescence detector."""

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
from .acquisition import XRFAcquisition
from .spectrum_file import (
    ATTRIBUTE_CHUNK,
    I0_DATASET,
    TRANSMISSION_DATASET,
    X_DATASET,
    Y_DATASET,
)

__all__ = [
    "I0_SUFFIX",
    "TRANSMISSION_SUFFIX",
    "X_SUFFIX",
    "Y_SUFFIX",
    "XRFAcquireLogic",
    "XRFDataLogic",
    "XRFTriggerLogic",
]

#: Appended to the detector name: data keys of the per-pixel scalars.
I0_SUFFIX = "-I0"
TRANSMISSION_SUFFIX = "-transmission"
X_SUFFIX = "-x"
Y_SUFFIX = "-y"


class XRFTriggerLogic(DetectorTriggerLogic):
    """INTERNAL triggering only: ``num`` dwells of ``livetime`` seconds.

    Parameters
    ----------
    acquisition
        The detector's sequencer.
    dwell_time
        Signal of the dwell (seconds), kept when ``livetime`` is 0.
    readout_time
        Signal of the readout time: the dead time reported, and the least gap
        between dwells.
    """

    def __init__(self, acquisition: XRFAcquisition, dwell_time: SignalRW[float],
                 readout_time: SignalR[float]) -> None:
        self.acquisition = acquisition
        self.dwell_time = dwell_time
        self.readout_time = readout_time

    def config_sigs(self) -> set[SignalR]:
        """The readout time decides the dead time."""
        return {self.readout_time}

    def get_deadtime(self, config_values: SignalDict) -> float:
        """The readout time, in seconds."""
        return float(config_values[self.readout_time])

    async def prepare_internal(self, num: int, livetime: float, deadtime: float) -> None:
        """Set up ``num`` dwells (0: until stopped) of ``livetime`` s (0: keep it)."""
        if livetime > 0:
            await self.dwell_time.set(float(livetime))
        readout = float(await self.readout_time.get_value())
        self.acquisition.configure(num, max(float(deadtime), readout))

    async def default_trigger_info(self) -> TriggerInfo:
        """One pixel at the current dwell."""
        return TriggerInfo(livetime=float(await self.dwell_time.get_value()))


class XRFAcquireLogic(DetectorAcquireLogic):
    """Runs the sequencer in a task: started on trigger/kickoff, cancelled on unstage."""

    def __init__(self, acquisition: XRFAcquisition) -> None:
        self.acquisition = acquisition
        self._task: asyncio.Task[None] | None = None

    async def start_acquiring(self) -> None:
        """Start counting the configured pixels."""
        await self.ensure_stopped()
        self._task = asyncio.create_task(self.acquisition.run())

    async def wait_for_idle(self) -> None:
        """Wait for the last pixel (re-raising what stopped the acquisition)."""
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


class XRFDataLogic(DetectorDataLogic):
    """A new SWMR HDF5 file per stage, announced by StreamResource/StreamDatum documents.

    Resources: ``<name>`` (spectra ``(detector_elements, bins)`` ``uint32``, dataset
    ``/entry/data/data``, the only hinted one), ``<name>-I0`` and
    ``<name>-transmission`` (counts), ``<name>-x`` and ``<name>-y`` (stage positions
    at mid-dwell, µm), datasets under ``/entry/instrument/NDAttributes``.

    Parameters
    ----------
    acquisition
        The detector's sequencer (owns the file).
    path_provider
        Where each new file goes.
    collections_written
        Signal counting the pixels written to the current file.
    """

    def __init__(self, acquisition: XRFAcquisition, path_provider: PathProvider,
                 collections_written: SignalR[int]) -> None:
        self.acquisition = acquisition
        self.path_provider = path_provider
        self.collections_written = collections_written

    async def prepare_unbounded(self, datakey_name: str) -> StreamableDataProvider:
        """Open a new file and describe its datasets."""
        info = self.path_provider(datakey_name)
        filename = f"{info.filename}.h5"
        self.acquisition.open_file(Path(info.directory_path) / filename)
        counting = self.acquisition.counting
        shape = (counting.detector_elements, counting.model.bins)
        resources = [StreamResourceInfo(data_key=datakey_name, shape=shape,
                                        chunk_shape=(1, *shape),
                                        dtype_numpy=np.dtype(np.uint32).str,
                                        parameters={"dataset": DATASET})]
        resources += [
            StreamResourceInfo(data_key=f"{datakey_name}{suffix}", shape=(),
                               chunk_shape=(ATTRIBUTE_CHUNK,),
                               dtype_numpy=np.dtype(np.float64).str,
                               parameters={"dataset": dataset})
            for suffix, dataset in ((I0_SUFFIX, I0_DATASET),
                                    (TRANSMISSION_SUFFIX, TRANSMISSION_DATASET),
                                    (X_SUFFIX, X_DATASET), (Y_SUFFIX, Y_DATASET))]
        return StreamResourceDataProvider(
            uri=f"{info.directory_uri}{filename}", resources=resources,
            mimetype="application/x-hdf5", collections_written_signal=self.collections_written)

    async def stop(self) -> None:
        """Close the file."""
        self.acquisition.close_file()

    def get_hinted_fields(self, datakey_name: str) -> Sequence[str]:
        """Only the spectra."""
        return [datakey_name]
