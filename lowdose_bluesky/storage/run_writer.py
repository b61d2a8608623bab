"""Store runs in Tiled without ever holding up the RunEngine.

``TiledWriter`` called in the RunEngine's thread blocks the scan while it waits on
the server: when Tiled is slow, restarting or gone, tiled's client retries each
request for up to ``TILED_RETRY_TIMEOUT`` (about half a minute), with the shutter
open in the middle of the rotation. :class:`BackgroundTiledWriter` hands every
document to a ``TiledWriter`` running in its own thread instead. The RunEngine only
waits, at each run's stop document, for the run to be written (``flush_timeout``),
so a run is readable from Tiled as soon as ``RE(...)`` returns, as before.

With a ``backup_directory``, a run that Tiled fails to store (unreachable, killed,
full disk) is written there as JSON lines by TiledWriter's own backup
(``<first 8 characters of the uid>.jsonl``, the whole run from its start
document), and ``lowdose-bluesky replay DIR`` restores it into Tiled afterwards.
The detector frames themselves never pass through this path: they are in the
detector's HDF5 files, which the documents reference.
"""

from __future__ import annotations

import logging
import queue
import threading
from pathlib import Path
from typing import Any

__all__ = ["BackgroundTiledWriter", "backup_path"]

log = logging.getLogger(__name__)

_STOP = object()


def backup_path(backup_directory: str | Path, run_uid: str) -> Path:
    """The JSON-lines file TiledWriter's backup writes for the run ``run_uid``."""
    return Path(backup_directory) / f"{run_uid.split('-')[0]}.jsonl"


class BackgroundTiledWriter:
    """A ``TiledWriter`` fed from a queue by a daemon thread.

    Parameters
    ----------
    container
        The Tiled container that receives the runs (``client["raw"]``).
    batch_size
        Events TiledWriter buffers before each write.
    backup_directory
        Where runs that fail to be stored are written as JSON lines (None: nowhere;
        the frames stay in the detector's files but the documents would be lost).
    flush_timeout
        Seconds the RunEngine waits at a stop document for the run to be written.
        When exceeded, writing goes on in the background and a warning is logged.

    Notes
    -----
    Documents are handed over in order, one run after the other, so TiledWriter sees
    exactly the stream the RunEngine emitted. ``unstored`` lists the uids of runs whose
    storage failed, ``close()`` drains the queue and stops the thread.
    """

    def __init__(self, container: Any, *, batch_size: int,
                 backup_directory: str | Path | None = None,
                 flush_timeout: float = 60.0) -> None:
        from bluesky_tiled_plugins import TiledWriter

        if not flush_timeout > 0:
            raise ValueError(f"flush_timeout must be > 0 seconds, got {flush_timeout!r}")
        self.backup_directory = None if backup_directory is None else Path(backup_directory)
        if self.backup_directory is not None:
            self.backup_directory.mkdir(parents=True, exist_ok=True)
        self.flush_timeout = float(flush_timeout)
        self.unstored: list[str] = []
        self._writer = TiledWriter(container, batch_size=batch_size,
                                   backup_directory=None if backup_directory is None
                                   else str(backup_directory))
        self._queue: queue.Queue[Any] = queue.Queue()
        self._failed: set[str] = set()
        self._run_uid: str | None = None
        self._thread = threading.Thread(target=self._work, name="lowdose-tiled-writer",
                                        daemon=True)
        self._thread.start()

    def __call__(self, name: str, doc: dict[str, Any]) -> None:
        if not self._thread.is_alive():
            raise RuntimeError("BackgroundTiledWriter is closed")
        if name != "stop":
            self._queue.put((name, doc, None))
            return
        done = threading.Event()
        self._queue.put((name, doc, done))
        if not done.wait(self.flush_timeout):
            log.warning("run %s not yet written to Tiled %.0f s after its stop document; "
                        "writing goes on in the background", doc.get("run_start"),
                        self.flush_timeout)

    def flush(self, timeout: float | None = None) -> bool:
        """Wait until every document handed over so far is written (or failed).

        Returns
        -------
        bool
            False if ``timeout`` seconds passed first.
        """
        done = threading.Event()
        self._queue.put(("flush", None, done))
        return done.wait(timeout)

    def _work(self) -> None:
        while True:
            item = self._queue.get()
            if item is _STOP:
                return
            name, doc, done = item
            if name == "flush":
                done.set()
                continue
            try:
                self._write(name, doc)
            finally:
                if done is not None:
                    self._finish_run(doc)
                    done.set()

    def _write(self, name: str, doc: dict[str, Any]) -> None:
        if name == "start":
            self._run_uid = doc["uid"]
        try:
            self._writer(name, doc)
        except Exception:  # without a backup TiledWriter raises; never lose the thread
            if self._run_uid not in self._failed:
                log.exception("could not store run %s in Tiled (no backup_directory: its "
                              "documents are not kept; the frames stay in the detector's "
                              "files)", self._run_uid)
            if self._run_uid is not None:
                self._failed.add(self._run_uid)

    def _finish_run(self, stop: dict[str, Any]) -> None:
        uid = stop.get("run_start", "")
        backed_up = (self.backup_directory is not None
                     and backup_path(self.backup_directory, uid).exists())
        if uid in self._failed or backed_up:
            self.unstored.append(uid)
            where = (f"its documents are in {backup_path(self.backup_directory, uid)}; "
                     f"restore it with: lowdose-bluesky replay {self.backup_directory}"
                     if backed_up else "no backup directory was configured")
            log.error("run %s was NOT stored in Tiled: %s", uid, where)

    def close(self, timeout: float | None = None) -> None:
        """Write what is queued, then stop the thread."""
        if self._thread.is_alive():
            self._queue.put(_STOP)
            self._thread.join(timeout)
