"""A new SWMR HDF5 file that simulated detectors append one acquisition to at a time."""

from __future__ import annotations

from collections.abc import Iterable
from pathlib import Path, PurePath
from typing import Any

import h5py

__all__ = ["SWMRFile"]


class SWMRFile:
    """An HDF5 file created for writing, its datasets growing along their first axis.

    Subclasses create their datasets, then call :meth:`start_swmr`, and write each
    acquisition with :meth:`append`, which flushes every dataset so that readers in
    other processes follow the acquisition.

    Parameters
    ----------
    path
        File to create (its directory is created if missing).
    """

    #: What one acquisition is called in error messages ("frame", "pixel").
    item = "item"

    def __init__(self, path: str | PurePath) -> None:
        self.path = Path(path)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._n = 0
        self._file: h5py.File | None = h5py.File(self.path, "w", libver="latest")

    def growing_dataset(self, name: str, item_shape: tuple[int, ...], chunk: int,
                        dtype: Any) -> h5py.Dataset:
        """A dataset ``(0, *item_shape)`` growing along its first axis in ``chunk`` s."""
        assert self._file is not None
        return self._file.create_dataset(
            name, shape=(0, *item_shape), maxshape=(None, *item_shape),
            chunks=(chunk, *item_shape), dtype=dtype)

    def start_swmr(self) -> None:
        """Let readers in other processes open the file (no new datasets after this)."""
        assert self._file is not None
        self._file.swmr_mode = True

    @property
    def num_written(self) -> int:
        """Acquisitions written so far."""
        return self._n

    @property
    def closed(self) -> bool:
        """Whether :meth:`close` was called."""
        return self._file is None

    def append(self, values: Iterable[tuple[h5py.Dataset, Any]]) -> int:
        """Append one value to each dataset, flushing each; return the new index.

        The values of one-dimensional datasets (one scalar per acquisition) are
        converted with ``float``.

        Raises
        ------
        OSError
            If the file is closed or cannot be written (the cause is chained).
        """
        if self._file is None:
            raise OSError(f"HDF5 file {self.path} is closed; stage the detector again")
        index = self._n
        try:
            for dataset, value in values:
                dataset.resize(index + 1, axis=0)
                dataset[index] = float(value) if dataset.ndim == 1 else value
                dataset.flush()
        except Exception as exc:
            raise OSError(f"could not write {self.item} {index} to {self.path}: {exc}") from exc
        self._n += 1
        return index

    def close(self) -> None:
        """Close the file (idempotent)."""
        if self._file is not None:
            try:
                self._file.close()
            finally:
                self._file = None
