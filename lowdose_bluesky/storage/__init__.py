"""Tiled storage of runs and results, as one flat namespace.

Import public names from here (``from lowdose_bluesky.storage import connect``); the
modules hold one concept each:

- :mod:`~lowdose_bluesky.storage.tiled`: clients (:func:`connect`, an embedded server by
  default), containers (``RAW``, ``RESULTS``, :func:`ensure_container`) and
  :func:`subscribe_writer`.
- :mod:`~lowdose_bluesky.storage.run_writer`: :class:`BackgroundTiledWriter`, the
  ``TiledWriter`` thread behind :func:`subscribe_writer`.
- :mod:`~lowdose_bluesky.storage.derived`: analysis results under ``client["results"]``
  (:func:`write_result`, :func:`results`, :class:`LowDoseResult`).
- :mod:`~lowdose_bluesky.storage.backup`: results kept on local disk when Tiled cannot
  take them (:func:`save_result`, :func:`restore_results`).
- :mod:`~lowdose_bluesky.storage.restore`: runs restored from their JSON-lines backups
  (:func:`replay`).
- :mod:`~lowdose_bluesky.storage.server`: a persistent Tiled server over an embedded
  catalog (:func:`plan_server`, :func:`serve`).

Light to import: torch is never loaded from here.
"""

from .backup import RESULTS_SUBDIR, restore_results, save_result
from .derived import (
    CALIBRATION_KIND,
    RESULT_SPEC,
    RUNNING,
    UPLOAD_BLOCK_BYTES,
    LowDoseResult,
    find_calibration,
    is_result_uid,
    result_by_uid,
    results,
    write_result,
)
from .restore import ReplayReport, event_counts, read_backup, replay
from .run_writer import BackgroundTiledWriter, backup_path
from .server import ServerPlan, is_loopback, mask_key, plan_server, serve
from .tiled import (
    API_KEY_ENV,
    DEFAULT_BATCH_SIZE,
    RAW,
    RESULTS,
    STREAMING_CACHE_TTL_S,
    close,
    close_embedded_servers,
    connect,
    ensure_container,
    subscribe_writer,
)

__all__ = [
    "API_KEY_ENV",
    "CALIBRATION_KIND",
    "DEFAULT_BATCH_SIZE",
    "RAW",
    "RESULTS",
    "RESULTS_SUBDIR",
    "RESULT_SPEC",
    "RUNNING",
    "STREAMING_CACHE_TTL_S",
    "UPLOAD_BLOCK_BYTES",
    "BackgroundTiledWriter",
    "LowDoseResult",
    "ReplayReport",
    "ServerPlan",
    "backup_path",
    "close",
    "close_embedded_servers",
    "connect",
    "ensure_container",
    "event_counts",
    "find_calibration",
    "is_loopback",
    "is_result_uid",
    "mask_key",
    "plan_server",
    "read_backup",
    "replay",
    "restore_results",
    "result_by_uid",
    "results",
    "save_result",
    "serve",
    "subscribe_writer",
    "write_result",
]
