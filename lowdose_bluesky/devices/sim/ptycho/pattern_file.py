"""The HDF5 file of the simulated ptychography detector, laid out as AreaDetector writes it."""

from __future__ import annotations

from pathlib import PurePath

import numpy as np

from ...hdf5_frames import DATASET
from ..async_devices.swmr_file import SWMRFile

__all__ = ["ATTRIBUTE_CHUNK", "X_DATASET", "Y_DATASET", "PatternFile"]

_ATTRIBUTES = "/entry/instrument/NDAttributes"
#: Stage positions (µm) at mid-exposure of each pattern.
X_DATASET = f"{_ATTRIBUTES}/x"
Y_DATASET = f"{_ATTRIBUTES}/y"
#: Chunk length of the per-pattern attribute datasets.
ATTRIBUTE_CHUNK = 1024


class PatternFile(SWMRFile):
    """A new SWMR HDF5 file: far-field diffraction patterns and the stage positions.

    ``/entry/data/data`` ``uint32 (N, H, W)`` (chunks ``(1, H, W)``, zero frequency at
    the centre) and ``float64 (N,)`` datasets ``x`` and ``y`` (µm) under
    ``/entry/instrument/NDAttributes``, flushed after every pattern so that readers in
    other processes follow the scan.

    Parameters
    ----------
    path
        File to create (its directory is created if missing).
    pattern_shape
        ``(H, W)`` of a pattern, pixels.
    """

    item = "pattern"

    def __init__(self, path: str | PurePath, pattern_shape: tuple[int, int]) -> None:
        self.pattern_shape = (int(pattern_shape[0]), int(pattern_shape[1]))
        super().__init__(path)
        self._data = self.growing_dataset(DATASET, self.pattern_shape, 1, np.uint32)
        self._x = self.growing_dataset(X_DATASET, (), ATTRIBUTE_CHUNK, np.float64)
        self._y = self.growing_dataset(Y_DATASET, (), ATTRIBUTE_CHUNK, np.float64)
        self.start_swmr()

    def write(self, pattern: np.ndarray, *, x: float, y: float) -> int:
        """Append one pattern and where it was taken; return its index.

        Raises
        ------
        ValueError
            If the pattern has the wrong shape.
        OSError
            If the file is closed or cannot be written (the cause is chained).
        """
        if pattern.shape != self.pattern_shape:
            raise ValueError(f"pattern shape {pattern.shape} does not match "
                             f"{self.pattern_shape}")
        return self.append([(self._data, pattern), (self._x, x), (self._y, y)])
