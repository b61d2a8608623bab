"""Trigger, acquire and data logic of the simulated ophyd-async TXM camera."""

from __future__ import annotations

import numpy as np
from ophyd_async.core import SignalR, SignalRW, StreamResourceInfo

from ...hdf5_frames import DATASET
from .acquisition import FrameAcquisition
from .file_logics import FileDataLogic, TaskAcquireLogic, TimedTriggerLogic, scalar_resource
from .frame_file import ANGLE_CHUNK, ROTATION_DATASET

__all__ = ["ANGLE_SUFFIX", "SimTXMAcquireLogic", "SimTXMDataLogic", "SimTXMTriggerLogic"]

#: Appended to the detector name to give the data key of the per-frame rotation angle.
ANGLE_SUFFIX = "-rotation"


class SimTXMTriggerLogic(TimedTriggerLogic):
    """INTERNAL triggering only: ``num`` exposures of ``livetime`` seconds.

    Consecutive exposures start ``livetime + max(deadtime, readout_time)`` apart.

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
        super().__init__(acquisition, exposure_time, readout_time)

    @property
    def exposure_time(self) -> SignalRW[float]:
        """Signal of the exposure (seconds)."""
        return self.live_time


class SimTXMAcquireLogic(TaskAcquireLogic):
    """Runs the sequencer in a task: started on trigger/kickoff, cancelled on unstage."""


class SimTXMDataLogic(FileDataLogic):
    """A new SWMR HDF5 file per stage, announced by StreamResource/StreamDatum documents.

    Two resources: ``<name>`` (``uint16`` frames of the binned shape
    ``counting.frame_shape``, dataset ``/entry/data/data``) and ``<name>-rotation``
    (angle at mid-exposure, degrees, dataset ``/entry/instrument/NDAttributes/rotation``).
    Only the frames are hinted.

    Parameters are those of :class:`FileDataLogic`.
    """

    def resources(self, datakey_name: str) -> list[StreamResourceInfo]:
        """The frames and their rotation angles."""
        h, w = self.acquisition.counting.frame_shape
        return [
            StreamResourceInfo(data_key=datakey_name, shape=(h, w), chunk_shape=(1, h, w),
                               dtype_numpy=np.dtype(np.uint16).str,
                               parameters={"dataset": DATASET}),
            scalar_resource(f"{datakey_name}{ANGLE_SUFFIX}", ROTATION_DATASET, ANGLE_CHUNK),
        ]
