"""Frame files in the layout of an AreaDetector HDF5 plugin, announced by asset documents.

One :class:`HDF5FrameWriter` stands for one open HDF5 file: dataset
``entry/data/data`` of shape ``(n, H, W)``, one frame appended per trigger, a
Resource document (spec ``AD_HDF5``) for the file and a Datum document
(``datum_kwargs={"point_number": n}``) for each frame. Frames in a file always
start at index 0, so every stream that opens its own file reads back exactly
(see ``docs/decisions/0002-one-file-per-stage.md``).
"""

from __future__ import annotations

import os
import uuid
from collections import deque
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import h5py
import numpy as np

__all__ = ["DATASET", "HDF5FrameWriter"]

DATASET = "/entry/data/data"


class HDF5FrameWriter:
    """Append frames to a new HDF5 file and emit Resource/Datum documents.

    Parameters
    ----------
    root
        Directory the resource paths are relative to.
    frame_shape
        ``(H, W)`` of every frame.
    dtype
        Frame dtype (``uint16`` for the simulated camera).
    subdir
        Sub-directory (relative to ``root``) for this file.

    Notes
    -----
    The file is opened in SWMR mode and flushed after every frame, so readers in
    other processes (a Tiled server, an analysis worker) can read frames while
    the stream is still being acquired.
    """

    def __init__(self, root: str | os.PathLike[str], frame_shape: tuple[int, int], *,
                 dtype: np.dtype | type = np.uint16, subdir: str = "") -> None:
        self.root = Path(root).resolve()
        self.frame_shape = tuple(int(s) for s in frame_shape)
        self.dtype = np.dtype(dtype)
        rel = Path(subdir) / f"{uuid.uuid4()}.h5"
        self.resource_path = rel.as_posix()
        self.path = self.root / rel
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self.resource_uid = str(uuid.uuid4())
        self._n = 0
        self._pending: deque[tuple[str, dict[str, Any]]] = deque()
        self._file = h5py.File(self.path, "w", libver="latest")
        self._dset = self._file.create_dataset(
            DATASET, shape=(0, *self.frame_shape), maxshape=(None, *self.frame_shape),
            chunks=(1, *self.frame_shape), dtype=self.dtype,
        )
        self._file.swmr_mode = True
        self._pending.append(("resource", {
            "spec": "AD_HDF5",
            "root": str(self.root),
            "resource_path": self.resource_path,
            "resource_kwargs": {},
            "path_semantics": "posix",
            "uid": self.resource_uid,
        }))

    @property
    def num_frames(self) -> int:
        """Frames written so far."""
        return self._n

    def write(self, frame: np.ndarray) -> str:
        """Append one frame; return the datum id that refers to it.

        Raises
        ------
        ValueError
            If the frame has the wrong shape.
        OSError
            If the file cannot be written (disk full, file removed, ...).
        """
        if frame.shape != self.frame_shape:
            raise ValueError(f"frame shape {frame.shape} does not match {self.frame_shape}")
        if self._file is None:
            raise OSError(f"HDF5 file {self.path} is closed; stage the detector again")
        index = self._n
        try:
            self._dset.resize(index + 1, axis=0)
            self._dset[index] = frame
            self._dset.flush()
        except Exception as exc:
            raise OSError(f"could not write frame {index} to {self.path}: {exc}") from exc
        self._n += 1
        datum_id = f"{self.resource_uid}/{index}"
        self._pending.append(("datum", {
            "resource": self.resource_uid,
            "datum_id": datum_id,
            "datum_kwargs": {"point_number": index},
        }))
        return datum_id

    def collect_asset_docs(self) -> Iterator[tuple[str, dict[str, Any]]]:
        """Yield (and forget) the Resource/Datum documents not yet collected."""
        while self._pending:
            yield self._pending.popleft()

    def close(self) -> None:
        """Close the file (idempotent)."""
        if self._file is not None:
            try:
                self._file.close()
            finally:
                self._file = None
