"""Where a live callback reads a frame: the detector's file, or the Tiled server."""

from __future__ import annotations

import threading
import time
from pathlib import Path
from typing import Any, Protocol, runtime_checkable

import h5py
import numpy as np

__all__ = ["FileFrameSource", "FrameRef", "FrameSource", "TiledFrameSource"]


class FrameRef(dict):
    """What identifies one frame: ``run_uid``, ``stream``, ``index`` (0-based), ``datum_id``."""


@runtime_checkable
class FrameSource(Protocol):
    """Reads frames announced by Resource/Datum documents."""

    def add_resource(self, doc: dict[str, Any]) -> None:
        """Remember a Resource document."""

    def add_datum(self, doc: dict[str, Any]) -> None:
        """Remember a Datum document."""

    def read(self, ref: FrameRef) -> np.ndarray:
        """Return the frame ``(H, W)``."""

    def close(self) -> None:
        """Release open files or connections."""


# A source may also have ``release(run_uid)``: LiveEnhancer calls it once the analysis of
# that run is over, so that what the source keeps per run (files, Resource and Datum
# documents) does not accumulate in a long-lived callback.


class FileFrameSource:
    """Read frames straight from the HDF5 files the documents point to (same machine).

    Files are opened read-only in SWMR mode, so frames can be read while the detector
    is still appending to the file. :meth:`release` closes a finished run's files and
    forgets its documents.
    """

    def __init__(self) -> None:
        self._resources: dict[str, dict[str, Any]] = {}
        self._datums: dict[str, tuple[str, int]] = {}
        self._files: dict[str, h5py.File] = {}
        self._run_resources: dict[str | None, list[str]] = {}
        self._resource_datums: dict[str, list[str]] = {}
        self._lock = threading.Lock()

    def add_resource(self, doc: dict[str, Any]) -> None:
        if doc.get("spec") not in ("AD_HDF5", "AD_HDF5_SWMR"):
            raise ValueError("FileFrameSource reads AD_HDF5 resources, "
                             f"got spec {doc.get('spec')!r}")
        self._resources[doc["uid"]] = doc
        self._run_resources.setdefault(doc.get("run_start"), []).append(doc["uid"])

    def add_datum(self, doc: dict[str, Any]) -> None:
        kwargs = doc.get("datum_kwargs", {})
        index = kwargs.get("point_number", kwargs.get("index"))
        if index is None:
            raise ValueError(f"datum {doc['datum_id']!r} has no point_number/index: {kwargs}")
        self._datums[doc["datum_id"]] = (doc["resource"], int(index))
        self._resource_datums.setdefault(doc["resource"], []).append(doc["datum_id"])

    def release(self, run_uid: str) -> None:
        """Close the files of run ``run_uid`` and forget its Resource and Datum documents."""
        with self._lock:
            for resource_uid in self._run_resources.pop(run_uid, []):
                self._resources.pop(resource_uid, None)
                for datum_id in self._resource_datums.pop(resource_uid, []):
                    self._datums.pop(datum_id, None)
                f = self._files.pop(resource_uid, None)
                if f is not None:
                    f.close()

    def path_of(self, resource_uid: str) -> Path:
        """Absolute path of a resource's file."""
        res = self._resources[resource_uid]
        return Path(res.get("root", "/")) / res["resource_path"]

    def read(self, ref: FrameRef) -> np.ndarray:
        try:
            resource_uid, index = self._datums[ref["datum_id"]]
        except KeyError:
            raise KeyError(f"no Datum document seen for {ref['datum_id']!r}") from None
        dataset = self._resources[resource_uid].get("resource_kwargs", {}).get(
            "dataset", "/entry/data/data")
        with self._lock:
            f = self._files.get(resource_uid)
            if f is None:
                f = self._files[resource_uid] = h5py.File(self.path_of(resource_uid), "r",
                                                          swmr=True)
            dset = f[dataset]
            dset.refresh()
            if index >= dset.shape[0]:
                raise IndexError(f"frame {index} not yet in {self.path_of(resource_uid)} "
                                 f"({dset.shape[0]} frames)")
            return np.asarray(dset[index])

    def close(self) -> None:
        with self._lock:
            for f in self._files.values():
                f.close()
            self._files.clear()


class TiledFrameSource:
    """Read frames through Tiled (an analysis node on another machine).

    Frames become visible in Tiled once TiledWriter has flushed them (its
    ``batch_size``); reads poll until then, up to ``timeout`` seconds.
    """

    def __init__(self, client: Any, *, container: str = "raw", timeout: float = 120.0,
                 poll: float = 0.2) -> None:
        self.client = client
        self.container = container
        self.timeout = float(timeout)
        self.poll = float(poll)
        self._keys: dict[str, str] = {}

    def add_resource(self, doc: dict[str, Any]) -> None:
        pass

    def add_datum(self, doc: dict[str, Any]) -> None:
        pass

    def set_data_key(self, run_uid: str, key: str) -> None:
        """Name of the image data key of a run."""
        self._keys[run_uid] = key

    def release(self, run_uid: str) -> None:
        """Forget run ``run_uid`` (its analysis is over)."""
        self._keys.pop(run_uid, None)

    def read(self, ref: FrameRef) -> np.ndarray:
        deadline = time.monotonic() + self.timeout
        key = self._keys[ref["run_uid"]]
        last: Exception | None = None
        while True:
            try:
                node = self.client[self.container][ref["run_uid"]][ref["stream"]][key]
                if node.shape[0] > ref["index"]:
                    return np.asarray(node[ref["index"]])
            except KeyError as exc:  # run, stream or key not written yet
                last = exc
            if time.monotonic() > deadline:
                raise TimeoutError(f"frame {ref['index']} of stream {ref['stream']!r} of run "
                                   f"{ref['run_uid']} did not appear in Tiled within "
                                   f"{self.timeout} s (last error: {last})")
            time.sleep(self.poll)

    def close(self) -> None:
        pass
