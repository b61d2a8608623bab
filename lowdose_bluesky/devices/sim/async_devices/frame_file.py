"""The HDF5 file of the simulated ophyd-async camera: frames and the angle of each."""

from __future__ import annotations

import os
import time
import uuid
from pathlib import Path, PurePath

import numpy as np
from ophyd_async.core import PathInfo, PathProvider

from ...hdf5_frames import DATASET
from .swmr_file import SWMRFile

__all__ = ["ANGLE_CHUNK", "ROTATION_DATASET", "DatedPathProvider", "TXMFrameFile"]

#: Dataset of the rotation angle (degrees) at mid-exposure of each frame.
ROTATION_DATASET = "/entry/instrument/NDAttributes/rotation"
#: Chunk length of the per-frame attribute datasets, as AreaDetector writes them.
ANGLE_CHUNK = 1024


class DatedPathProvider(PathProvider):
    """Files under ``root/YYYY/MM/DD/<uuid>.h5``: a new name on every call.

    Parameters
    ----------
    root
        Directory the dated directories are made in.
    """

    def __init__(self, root: str | os.PathLike[str]) -> None:
        self.root = Path(root).resolve()

    def __call__(self, datakey_name: str | None = None) -> PathInfo:
        """Directory and file name (without extension) for the next file."""
        return PathInfo(directory_path=self.root / time.strftime("%Y/%m/%d"),
                        filename=str(uuid.uuid4()), create_dir_depth=-3)


class TXMFrameFile(SWMRFile):
    """A new SWMR HDF5 file: ``uint16`` frames and their rotation angles.

    Datasets ``/entry/data/data`` ``(N, H, W)`` (chunks ``(1, H, W)``) and
    ``/entry/instrument/NDAttributes/rotation`` ``float64 (N,)``, both flushed after
    every frame so that readers in other processes follow the acquisition.

    Parameters
    ----------
    path
        File to create (its directory is created if missing).
    frame_shape
        ``(H, W)``.
    """

    item = "frame"

    def __init__(self, path: str | PurePath, frame_shape: tuple[int, int]) -> None:
        self.frame_shape = (int(frame_shape[0]), int(frame_shape[1]))
        super().__init__(path)
        self._data = self.growing_dataset(DATASET, self.frame_shape, 1, np.uint16)
        self._angles = self.growing_dataset(ROTATION_DATASET, (), ANGLE_CHUNK, np.float64)
        self.start_swmr()

    @property
    def num_frames(self) -> int:
        """Frames written so far."""
        return self.num_written

    def write(self, frame: np.ndarray, angle: float) -> int:
        """Append one frame and its angle (degrees); return the frame's index.

        Raises
        ------
        ValueError
            If the frame has the wrong shape.
        OSError
            If the file is closed or cannot be written (the cause is chained).
        """
        if frame.shape != self.frame_shape:
            raise ValueError(f"frame shape {frame.shape} does not match {self.frame_shape}")
        return self.append(((self._data, frame), (self._angles, angle)))
