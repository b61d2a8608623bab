"""Data logic of the simulated ptychography detector."""

from __future__ import annotations

import numpy as np
from ophyd_async.core import StreamResourceInfo

from ...hdf5_frames import DATASET
from ..async_devices.file_logics import FileDataLogic, scalar_resource
from .pattern_file import ATTRIBUTE_CHUNK, X_DATASET, Y_DATASET

__all__ = ["X_SUFFIX", "Y_SUFFIX", "PatternDataLogic"]

#: Appended to the detector name: data keys of the positions recorded with each pattern.
X_SUFFIX = "-x"
Y_SUFFIX = "-y"


class PatternDataLogic(FileDataLogic):
    """A new SWMR HDF5 file per stage, announced by StreamResource/StreamDatum documents.

    Resources: ``<name>`` (patterns ``(H, W)`` ``uint32``, dataset ``/entry/data/data``,
    the only hinted one), ``<name>-x`` and ``<name>-y`` (stage positions at
    mid-exposure, µm).

    Parameters are those of :class:`FileDataLogic`.
    """

    def resources(self, datakey_name: str) -> list[StreamResourceInfo]:
        """The patterns, then the positions."""
        shape = self.acquisition.counting.pattern_shape
        return [
            StreamResourceInfo(data_key=datakey_name, shape=shape, chunk_shape=(1, *shape),
                               dtype_numpy=np.dtype(np.uint32).str,
                               parameters={"dataset": DATASET}),
            scalar_resource(f"{datakey_name}{X_SUFFIX}", X_DATASET, ATTRIBUTE_CHUNK),
            scalar_resource(f"{datakey_name}{Y_SUFFIX}", Y_DATASET, ATTRIBUTE_CHUNK),
        ]
