"""Trigger, acquire and data logic of the simulated fluorescence detector."""

from __future__ import annotations

import numpy as np
from ophyd_async.core import SignalR, SignalRW, StreamResourceInfo

from ...hdf5_frames import DATASET
from ..async_devices.file_logics import (
    FileDataLogic,
    TaskAcquireLogic,
    TimedTriggerLogic,
    scalar_resource,
)
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


class XRFTriggerLogic(TimedTriggerLogic):
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
        super().__init__(acquisition, dwell_time, readout_time)

    @property
    def dwell_time(self) -> SignalRW[float]:
        """Signal of the dwell (seconds)."""
        return self.live_time


class XRFAcquireLogic(TaskAcquireLogic):
    """Runs the sequencer in a task: started on trigger/kickoff, cancelled on unstage."""


class XRFDataLogic(FileDataLogic):
    """A new SWMR HDF5 file per stage, announced by StreamResource/StreamDatum documents.

    Resources: ``<name>`` (spectra ``(detector_elements, bins)`` ``uint32``, dataset
    ``/entry/data/data``, the only hinted one), ``<name>-I0`` and
    ``<name>-transmission`` (counts), ``<name>-x`` and ``<name>-y`` (stage positions
    at mid-dwell, µm), datasets under ``/entry/instrument/NDAttributes``.

    Parameters are those of :class:`FileDataLogic`.
    """

    def resources(self, datakey_name: str) -> list[StreamResourceInfo]:
        """The spectra, then the per-pixel scalars."""
        counting = self.acquisition.counting
        shape = (counting.detector_elements, counting.model.bins)
        resources = [StreamResourceInfo(data_key=datakey_name, shape=shape,
                                        chunk_shape=(1, *shape),
                                        dtype_numpy=np.dtype(np.uint32).str,
                                        parameters={"dataset": DATASET})]
        resources += [
            scalar_resource(f"{datakey_name}{suffix}", dataset, ATTRIBUTE_CHUNK)
            for suffix, dataset in ((I0_SUFFIX, I0_DATASET),
                                    (TRANSMISSION_SUFFIX, TRANSMISSION_DATASET),
                                    (X_SUFFIX, X_DATASET), (Y_SUFFIX, Y_DATASET))]
        return resources
