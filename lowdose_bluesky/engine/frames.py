"""Where the engine reads a frame: the detector's file, or the Tiled server.

A frame source is handed every document that announces external data (``resource``,
``datum``, ``stream_resource``, ``stream_datum``) through :meth:`FrameSource.add`, so a
new way of announcing frames needs a new source, never a change to the engine.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any, Protocol, runtime_checkable
from urllib.parse import unquote, urlsplit

import h5py
import numpy as np

__all__ = ["FRAME_DOCUMENTS", "FileFrameSource", "FrameRef", "FrameSource", "TiledFrameSource",
           "read_frames"]

#: Document kinds that announce external data; the engine hands them to its source.
FRAME_DOCUMENTS = ("resource", "datum", "stream_resource", "stream_datum")
_HDF5_SPECS = ("AD_HDF5", "AD_HDF5_SWMR")
_HDF5_MIMETYPES = ("application/x-hdf5",)


class FrameRef(dict):
    """What identifies one frame.

    Keys: ``run_uid``, ``stream``, ``index`` (0-based within the stream),
    ``descriptor`` and ``seq_num`` of its event, ``key`` (the data key of the image)
    and ``datum_id`` (the event's value of ``key`` where Resource/Datum announced it;
    ``None`` where StreamResource/StreamDatum did).
    """

    def for_key(self, key: str, data: dict[str, Any]) -> FrameRef:
        """This event's frame of data key ``key`` (``data``: the event's readings)."""
        value = data.get(key)
        return FrameRef(self, key=key, datum_id=value if isinstance(value, str) else None)


@runtime_checkable
class FrameSource(Protocol):
    """Reads the frames a run's documents announce."""

    def add(self, name: str, doc: dict[str, Any]) -> None:
        """Remember a document of a kind in :data:`FRAME_DOCUMENTS`."""

    def read(self, ref: FrameRef) -> np.ndarray:
        """Return the frame ``(H, W)``."""

    def release(self, run_uid: str) -> None:
        """Forget run ``run_uid`` (its analysis is over): files, documents."""

    def close(self) -> None:
        """Release open files or connections."""


class FileFrameSource:
    """Read frames straight from the HDF5 files the documents point to (same machine).

    Understands Resource/Datum (specs ``AD_HDF5``, ``AD_HDF5_SWMR``: ``datum_kwargs``
    ``point_number`` or ``index``) and StreamResource/StreamDatum (mimetype
    ``application/x-hdf5``, ``parameters["dataset"]``; a StreamDatum maps the event
    sequence numbers ``seq_nums`` of its descriptor to the file rows ``indices``).
    Files are opened read-only in SWMR mode, so frames can be read while the detector
    is still appending to the file. :meth:`release` closes a finished run's files and
    forgets its documents.
    """

    def __init__(self) -> None:
        self._resources: dict[str, tuple[Path, str]] = {}  # uid -> (file, dataset)
        self._datums: dict[str, tuple[str, int]] = {}
        # (descriptor, data key) -> [(first seq_num, last seq_num + 1, resource, first row)]
        self._streams: dict[tuple[str, str], list[tuple[int, int, str, int]]] = {}
        self._stream_keys: dict[str, str] = {}  # stream resource uid -> data key
        self._files: dict[str, h5py.File] = {}
        self._run_resources: dict[str | None, list[str]] = {}
        self._resource_datums: dict[str, list[str]] = {}
        self._lock = threading.Lock()

    def add(self, name: str, doc: dict[str, Any]) -> None:
        getattr(self, f"_add_{name}")(doc)

    # Resource/Datum ---------------------------------------------------------
    def _add_resource(self, doc: dict[str, Any]) -> None:
        if doc.get("spec") not in _HDF5_SPECS:
            raise ValueError(f"FileFrameSource reads resources of spec {' or '.join(_HDF5_SPECS)}"
                             f", got spec {doc.get('spec')!r}")
        path = Path(doc.get("root", "/")) / doc["resource_path"]
        dataset = doc.get("resource_kwargs", {}).get("dataset", "/entry/data/data")
        self._remember(doc, path, dataset)

    def _add_datum(self, doc: dict[str, Any]) -> None:
        kwargs = doc.get("datum_kwargs", {})
        index = kwargs.get("point_number", kwargs.get("index"))
        if index is None:
            raise ValueError(f"datum {doc['datum_id']!r} has no point_number/index: {kwargs}")
        self._datums[doc["datum_id"]] = (doc["resource"], int(index))
        self._resource_datums.setdefault(doc["resource"], []).append(doc["datum_id"])

    # StreamResource/StreamDatum ---------------------------------------------
    def _add_stream_resource(self, doc: dict[str, Any]) -> None:
        if doc.get("mimetype") not in _HDF5_MIMETYPES:
            raise ValueError("FileFrameSource reads stream resources of mimetype "
                             f"{_HDF5_MIMETYPES[0]}, got {doc.get('mimetype')!r}")
        parts = urlsplit(doc["uri"])
        if parts.scheme not in ("file", ""):
            raise ValueError(f"stream resource {doc['uid']} is at {doc['uri']!r}; "
                             "FileFrameSource reads file:// URIs only")
        self._remember(doc, Path(unquote(parts.path)), doc["parameters"]["dataset"])
        self._stream_keys[doc["uid"]] = doc["data_key"]

    def _add_stream_datum(self, doc: dict[str, Any]) -> None:
        resource = doc["stream_resource"]
        key = self._stream_keys.get(resource)
        if key is None:
            raise ValueError(f"stream datum {doc['uid']} refers to stream resource {resource}, "
                             "whose document was not seen")
        seq, rows = doc["seq_nums"], doc["indices"]
        entry = (int(seq["start"]), int(seq["stop"]), resource, int(rows["start"]))
        self._streams.setdefault((doc["descriptor"], key), []).append(entry)

    def _remember(self, doc: dict[str, Any], path: Path, dataset: str) -> None:
        self._resources[doc["uid"]] = (path, dataset)
        self._run_resources.setdefault(doc.get("run_start"), []).append(doc["uid"])

    # ---------------------------------------------------------------- reading
    def _locate(self, ref: FrameRef) -> tuple[str, int]:
        datum_id = ref.get("datum_id")
        if datum_id is not None:
            try:
                return self._datums[datum_id]
            except KeyError:
                raise KeyError(f"no Datum document seen for {datum_id!r}") from None
        seq_num = int(ref["seq_num"])
        for first, stop, resource, row in self._streams.get((ref["descriptor"], ref["key"]), ()):
            if first <= seq_num < stop:
                return resource, row + seq_num - first
        raise KeyError(f"no Datum or StreamDatum document seen for {ref['key']!r} of event "
                       f"{seq_num} of stream {ref['stream']!r}")

    def path_of(self, resource_uid: str) -> Path:
        """Absolute path of a resource's file."""
        return self._resources[resource_uid][0]

    def read(self, ref: FrameRef) -> np.ndarray:
        resource_uid, index = self._locate(ref)
        path, dataset = self._resources[resource_uid]
        with self._lock:
            f = self._files.get(resource_uid)
            if f is None:
                f = self._files[resource_uid] = h5py.File(path, "r", swmr=True)
            dset = f[dataset]
            dset.refresh()
            if index >= dset.shape[0]:
                raise IndexError(f"frame {index} not yet in {path} ({dset.shape[0]} frames)")
            return np.asarray(dset[index])

    def read_many(self, refs: Sequence[FrameRef]) -> np.ndarray:
        """Return the frames of ``refs`` stacked ``(len(refs), ...)``.

        Frames in consecutive rows of one file are read as one slice: one refresh and
        one hyperslab read per run of rows instead of one per frame (a scanning probe's
        line of spectra is hundreds of small frames).
        """
        located = [self._locate(ref) for ref in refs]
        if not located:
            raise ValueError("read_many needs at least one frame reference")
        out: list[np.ndarray] = []
        with self._lock:
            i = 0
            while i < len(located):
                resource_uid, first = located[i]
                j = i + 1
                while j < len(located) and located[j] == (resource_uid, first + j - i):
                    j += 1
                path, dataset = self._resources[resource_uid]
                f = self._files.get(resource_uid)
                if f is None:
                    f = self._files[resource_uid] = h5py.File(path, "r", swmr=True)
                dset = f[dataset]
                dset.refresh()
                last = first + j - i
                if last > dset.shape[0]:
                    raise IndexError(f"frames {first}..{last - 1} not yet all in {path} "
                                     f"({dset.shape[0]} frames)")
                out.append(np.asarray(dset[first:last]))
                i = j
        return np.concatenate(out)

    def release(self, run_uid: str) -> None:
        """Close the files of run ``run_uid`` and forget its documents."""
        with self._lock:
            for resource_uid in self._run_resources.pop(run_uid, []):
                self._resources.pop(resource_uid, None)
                self._stream_keys.pop(resource_uid, None)
                for datum_id in self._resource_datums.pop(resource_uid, []):
                    self._datums.pop(datum_id, None)
                f = self._files.pop(resource_uid, None)
                if f is not None:
                    f.close()
            for key, entries in list(self._streams.items()):
                kept = [e for e in entries if e[2] in self._resources]
                if kept:
                    self._streams[key] = kept
                else:
                    del self._streams[key]

    def close(self) -> None:
        with self._lock:
            for f in self._files.values():
                f.close()
            self._files.clear()


class TiledFrameSource:
    """Read frames through Tiled (an analysis node on another machine).

    Frames become visible in Tiled once TiledWriter has flushed them (its
    ``batch_size``); reads poll until then, up to ``timeout`` seconds. The frame
    documents are not needed: frames are found by run, stream, data key and index.
    """

    def __init__(self, client: Any, *, container: str = "raw", timeout: float = 120.0,
                 poll: float = 0.2) -> None:
        self.client = client
        self.container = container
        self.timeout = float(timeout)
        self.poll = float(poll)

    def add(self, name: str, doc: dict[str, Any]) -> None:
        pass

    def release(self, run_uid: str) -> None:
        pass

    def read(self, ref: FrameRef) -> np.ndarray:
        index = int(ref["index"])
        return self._read_slice(ref["run_uid"], ref["stream"], ref["key"], index, index + 1)[0]

    def read_many(self, refs: Sequence[FrameRef]) -> np.ndarray:
        """Return the frames of ``refs`` stacked ``(len(refs), ...)``.

        Consecutive indices of one run, stream and key are read as one slice (one
        request instead of one per frame).
        """
        if not refs:
            raise ValueError("read_many needs at least one frame reference")
        out: list[np.ndarray] = []
        i = 0
        while i < len(refs):
            where = (refs[i]["run_uid"], refs[i]["stream"], refs[i]["key"])
            first, j = int(refs[i]["index"]), i + 1
            while (j < len(refs) and (refs[j]["run_uid"], refs[j]["stream"], refs[j]["key"])
                   == where and int(refs[j]["index"]) == first + j - i):
                j += 1
            out.append(self._read_slice(*where, first, first + j - i))
            i = j
        return np.concatenate(out)

    def _read_slice(self, run_uid: str, stream: str, key: str, first: int,
                    stop: int) -> np.ndarray:
        deadline = time.monotonic() + self.timeout
        last: Exception | None = None
        while True:
            try:
                node = self.client[self.container][run_uid][stream][key]
                if node.shape[0] >= stop:
                    value = np.asarray(node[first:stop])
                    # StreamResource data keys of one collection per event: (n, 1, H, W)
                    return value[:, 0] if value.ndim == 4 and value.shape[1] == 1 else value
            except KeyError as exc:  # run, stream or key not written yet
                last = exc
            if time.monotonic() > deadline:
                which = f"frame {first}" if stop == first + 1 else f"frames {first}..{stop - 1}"
                raise TimeoutError(f"{which} of stream {stream!r} of run {run_uid} did not "
                                   f"all appear in Tiled within "
                                   f"{self.timeout} s (last error: {last})")
            time.sleep(self.poll)

    def close(self) -> None:
        pass


def read_each(source: FrameSource, refs: Sequence[FrameRef]) -> np.ndarray:
    """The frames of ``refs`` stacked, read one by one (a source with no batch read)."""
    if not refs:
        raise ValueError("read_many needs at least one frame reference")
    return np.stack([np.asarray(source.read(ref)) for ref in refs])


def read_frames(source: FrameSource, refs: Sequence[FrameRef]) -> np.ndarray:
    """The frames of ``refs`` stacked: the source's batch read where it has one."""
    batch = getattr(source, "read_many", None)
    return batch(refs) if batch is not None else read_each(source, refs)
