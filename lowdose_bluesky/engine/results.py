"""Results of the engine in Tiled: a live node that grows during the scan, then the result.

At the start document the engine creates the run's result node with status
``"running"``; the recipe's growing arrays (the enhanced frames) are written into it as
they are made, and its ``progress`` metadata says how far the analysis is. The finished
result replaces it under the same uid (:func:`~lowdose_bluesky.storage.write_result`),
with two attempts; a result Tiled cannot take is saved in the backup directory for
``lowdose-bluesky replay``. Live writes that fail are logged once and stop: the live
view is a convenience, the final result is what counts.
"""

from __future__ import annotations

import logging
import time
import uuid
from pathlib import Path
from typing import Any

import numpy as np

from ..storage import RESULT_SPEC, RESULTS, RUNNING, ensure_container, save_result, write_result

__all__ = ["RUNNING", "STORE_RETRY_S", "LiveResult", "ResultNotStored", "store_result"]

log = logging.getLogger(__name__)

#: Seconds between the two attempts to write a result (each with tiled's own retries).
STORE_RETRY_S = 5.0
#: Least seconds between two updates of a live result's ``progress`` metadata.
PROGRESS_S = 1.0


class ResultNotStored(RuntimeError):
    """Tiled could not take an analysis result (saved locally when configured)."""


def store_result(client: Any, run_uid: str, md: dict[str, Any],
                 arrays: dict[str, np.ndarray] | None = None, checkpoint: bytes | None = None,
                 *, uid: str | None = None, backup_directory: Path | None = None) -> str:
    """Write a result to Tiled, trying twice; else save it locally and raise.

    Raises
    ------
    ResultNotStored
        If both attempts fail (naming the backup folder, or saying it is lost).
    """
    last: Exception | None = None
    for attempt in range(2):
        try:
            return write_result(client, parent_uid=run_uid, metadata=md, arrays=arrays,
                                checkpoint=checkpoint, uid=uid)
        except Exception as exc:  # tiled has already retried for ~30 s
            last = exc
            log.warning("could not write the result of run %s to Tiled (attempt %d): %s",
                        run_uid, attempt + 1, exc)
            time.sleep(STORE_RETRY_S if attempt == 0 else 0)
    where = "it is lost (no backup_directory); the raw run is not"
    if backup_directory is not None:
        folder = save_result(backup_directory, parent_uid=run_uid, metadata=md,
                             arrays=arrays, checkpoint=checkpoint)
        where = (f"it was saved in {folder}; restore it with: lowdose-bluesky replay "
                 f"{backup_directory}")
    raise ResultNotStored(f"the {md.get('status')} result of run {run_uid} could not be "
                          f"written to Tiled ({type(last).__name__}: {last}); {where}")


class LiveResult:
    """The result node of a run under way; every method swallows (and logs) Tiled errors.

    Parameters
    ----------
    client
        Root Tiled client.
    run_uid
        Uid of the raw run.
    metadata
        Initial metadata (recipe, settings); ``status`` is ``"running"``.
    """

    def __init__(self, client: Any, run_uid: str, metadata: dict[str, Any]) -> None:
        self.uid = str(uuid.uuid4())
        self.run_uid = run_uid
        self._md = {"parent_uid": run_uid, **metadata, "uid": self.uid, "status": RUNNING,
                    "started": time.time(), "progress": {}}
        self._arrays: dict[str, Any] = {}
        self._lengths: dict[str, int] = {}
        self._last_progress = 0.0
        self.node: Any = None
        #: Whether the live node exists and its writes work (a container client is falsy
        #: while it has no children, so the node itself is never tested for truth).
        self.ok = False
        try:
            container = ensure_container(client, RESULTS)
            self.node = container.create_container(self.uid, metadata=self._md,
                                                   specs=[RESULT_SPEC])
            self.ok = True
        except Exception as exc:
            self._broken(exc)

    def _broken(self, exc: Exception) -> None:
        if self.ok or self.node is None:
            log.warning("live result of run %s: Tiled write failed (%s: %s); the result is "
                        "stored when the analysis ends", self.run_uid, type(exc).__name__, exc)
        self.ok = False

    def publish(self, key: str, start: int, frames: np.ndarray) -> None:
        """Write ``frames`` at ``start`` of array ``key`` (growing it where needed)."""
        if not self.ok:
            return
        frames = np.ascontiguousarray(frames)
        try:
            length = self._lengths.get(key)
            if length is None:
                if start != 0:
                    return  # the array starts with its first frames
                self._arrays[key] = self.node.write_array(frames, key=key)
                self._lengths[key] = frames.shape[0]
                return
            if start > length:
                return  # not contiguous: published once the gap is filled
            offset = (start, *([0] * (frames.ndim - 1)))
            grows = start + frames.shape[0] > length
            self._arrays[key].patch(frames, offset=offset, extend=grows)
            self._lengths[key] = max(length, start + frames.shape[0])
        except Exception as exc:
            self._broken(exc)

    def length(self, key: str) -> int:
        """How many frames of ``key`` are in Tiled."""
        return self._lengths.get(key, 0)

    def progress(self, force: bool = False, **fields: Any) -> None:
        """Merge ``fields`` into the ``progress`` metadata (written at most every second)."""
        self._md["progress"].update(fields)
        now = time.monotonic()
        if not self.ok or (not force and now - self._last_progress < PROGRESS_S):
            return
        try:
            self.node.replace_metadata(metadata=self._md)
            self._last_progress = now
        except Exception as exc:
            self._broken(exc)
