"""The HDF5 file of the simulated ophyd-async camera: frames and the angle of each."""

from __future__ import annotations

import os
import time
import uuid
from pathlib import Path, PurePath

import h5py
import numpy as np
from ophyd_async.core import PathInfo, PathProvider

from ...hdf5_frames import DATASET

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


class TXMFrameFile:
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

    def __init__(self, path: str | PurePath, frame_shape: tuple[int, int]) -> None:
        self.path = Path(path)
        self.frame_shape = (int(frame_shape[0]), int(frame_shape[1]))
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._n = 0
        self._file: h5py.File | None = h5py.File(self.path, "w", libver="latest")
        self._data = self._file.create_dataset(
            DATASET, shape=(0, *self.frame_shape), maxshape=(None, *self.frame_shape),
            chunks=(1, *self.frame_shape), dtype=np.uint16)
        self._angles = self._file.create_dataset(
            ROTATION_DATASET, shape=(0,), maxshape=(None,), chunks=(ANGLE_CHUNK,),
            dtype=np.float64)
        self._file.swmr_mode = True

    @property
    def num_frames(self) -> int:
        """Frames written so far."""
        return self._n

    @property
    def closed(self) -> bool:
        """Whether :meth:`close` was called."""
        return self._file is None

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
        if self._file is None:
            raise OSError(f"HDF5 file {self.path} is closed; stage the detector again")
        index = self._n
        try:
            for dataset, value in ((self._data, frame), (self._angles, float(angle))):
                dataset.resize(index + 1, axis=0)
                dataset[index] = value
                dataset.flush()
        except Exception as exc:
            raise OSError(f"could not write frame {index} to {self.path}: {exc}") from exc
        self._n += 1
        return index

    def close(self) -> None:
        """Close the file (idempotent)."""
        if self._file is not None:
            try:
                self._file.close()
            finally:
                self._file = None
