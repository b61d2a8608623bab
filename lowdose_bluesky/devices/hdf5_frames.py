"""Frame files in the layout of an AreaDetector HDF5 plugin, announced by asset documents.

One :class:`HDF5FrameWriter` stands for one open HDF5 file: dataset
``entry/data/data`` of shape ``(n, H, W)``, one frame appended per trigger, a
Resource document (spec ``AD_HDF5``) for the file and a Datum document
(``datum_kwargs={"point_number": n}``) for each frame. Frames in a file always
start at index 0, so every stream that opens its own file reads back exactly
(see ``docs/decisions/0002-one-file-per-stage.md``).

A file removed while it is being written fails the next frame (or the close) instead
of swallowing frames into a deleted file: the frames already written are saved again
at the same path, so everything announced so far stays readable.
"""

from __future__ import annotations

import errno
import logging
import os
import uuid
from collections import deque
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import h5py
import numpy as np

__all__ = ["DATASET", "HDF5FrameWriter"]

log = logging.getLogger(__name__)

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
    the stream is still being acquired. A frame that cannot be written is not left
    in the file, so the file holds exactly the frames that have a Datum document.
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
        self._identity = _identity(self.path)
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
            If the file cannot be written (disk full, ...; the cause is chained).
        FileNotFoundError
            If the file was removed (or replaced) since it was opened; the frames
            written before are saved again at its path, and the file is closed.
        """
        if frame.shape != self.frame_shape:
            raise ValueError(f"frame shape {frame.shape} does not match {self.frame_shape}")
        if self._file is None:
            raise OSError(f"HDF5 file {self.path} is closed; stage the detector again")
        index = self._n
        self._check_not_removed(f"before frame {index} could be written")
        try:
            self._dset.resize(index + 1, axis=0)
            self._dset[index] = frame
            self._dset.flush()
        except Exception as exc:
            try:  # keep the file to the frames that have a datum
                self._dset.resize(index, axis=0)
            except Exception:
                log.exception("could not drop the failed frame %d from %s", index, self.path)
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
        """Close the file (idempotent); a file removed meanwhile is saved again first."""
        if self._file is not None:
            try:
                self._check_not_removed("before it was closed")
            except OSError as exc:
                log.error("%s", exc)
            if self._file is None:
                return
            try:
                self._file.close()
            finally:
                self._file = None

    def _check_not_removed(self, when: str) -> None:
        """Raise (after saving the frames again) if the file is no longer at its path."""
        try:
            same = _identity(self.path) == self._identity
        except FileNotFoundError:
            same = False
        if same:
            return
        try:
            outcome = self._save_again()
        finally:
            try:
                self._file.close()
            finally:
                self._file = None
        raise FileNotFoundError(errno.ENOENT, f"HDF5 file {self.path} was removed or replaced "
                                              f"{when}; {outcome}")

    def _save_again(self) -> str:
        """Copy the frames of the open, no longer linked file to a new file at its path."""
        n = self._n
        if self.path.exists():
            return f"another file has its name now, so its {n} frames written before are lost"
        try:
            frames = self._dset[:n]
            self.path.parent.mkdir(parents=True, exist_ok=True)
            with h5py.File(self.path, "x", libver="latest") as f:
                f.create_dataset(DATASET, data=frames, maxshape=(None, *self.frame_shape),
                                 chunks=(1, *self.frame_shape), dtype=self.dtype)
        except Exception as exc:
            return f"its {n} frames written before are lost (saving them again failed: {exc})"
        return f"its {n} frames written before were saved again under the same name"


def _identity(path: Path) -> tuple[int, int]:
    st = os.stat(path)
    return st.st_dev, st.st_ino
