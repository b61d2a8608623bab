"""Restore runs that Tiled failed to store from their JSON-lines backups.

:class:`~lowdose_bluesky.storage.run_writer.BackgroundTiledWriter` (through TiledWriter's
backup) writes a run that Tiled could not store to ``<backup dir>/<uid8>.jsonl``:
every document of the run, from its start document, with the frames referenced in
the detector's HDF5 files. :func:`replay` feeds those documents to a fresh
``TiledWriter`` once the server is back. A partial copy that reached the server
before it failed is replaced (the backup holds the whole run); a run already stored
completely is left as it is. Each file restored is checked event by event against
what Tiled then holds, and moved to ``<backup dir>/replayed/``. Analysis results that
``LiveEnhancer(backup_directory=...)`` saved there (``results/<uid>/``) are uploaded
too, under their own uids.
"""

from __future__ import annotations

import json
import logging
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from .backup import RESULTS_SUBDIR, restore_results
from .tiled import RAW, ensure_container

__all__ = ["ReplayReport", "event_counts", "read_backup", "replay"]

log = logging.getLogger(__name__)

#: Sub-directory of the backup directory that receives restored files.
REPLAYED = "replayed"


@dataclass
class ReplayReport:
    """What :func:`replay` did with one backup file."""

    path: Path
    uid: str | None
    outcome: str  # "restored", "already stored" or "failed"
    events: dict[str, int] = field(default_factory=dict)
    replaced_partial: bool = False
    detail: str = ""
    kind: str = "run"  # or "result": an analysis result saved by LiveEnhancer


def read_backup(path: str | Path) -> list[tuple[str, dict[str, Any]]]:
    """The ``(name, doc)`` pairs of one JSON-lines backup file.

    Raises
    ------
    ValueError
        If a line is not a ``{"name": ..., "doc": ...}`` JSON object, or the file
        holds no start document.
    """
    path = Path(path)
    docs = []
    with path.open() as f:
        for number, line in enumerate(f, 1):
            if not line.strip():
                continue
            try:
                item = json.loads(line)
                docs.append((str(item["name"]), dict(item["doc"])))
            except (ValueError, KeyError, TypeError) as exc:
                raise ValueError(f"{path}:{number} is not a Bluesky document line "
                                 f'({{"name": ..., "doc": ...}}): {exc}') from None
    starts = [doc for name, doc in docs if name == "start"]
    if len(starts) != 1:
        raise ValueError(f"{path} holds {len(starts)} start documents; a run backup holds "
                         "exactly one")
    return docs


def event_counts(docs: list[tuple[str, dict[str, Any]]]) -> dict[str, int]:
    streams = {doc["uid"]: doc.get("name", "primary") for name, doc in docs
               if name == "descriptor"}
    counts: Counter[str] = Counter()
    for name, doc in docs:
        if name == "event":
            counts[streams[doc["descriptor"]]] += 1
        elif name == "event_page":
            counts[streams[doc["descriptor"]]] += len(doc["seq_num"])
    return dict(counts)


def _stored_counts(run: Any, streams: dict[str, int]) -> dict[str, int]:
    counts = {}
    for stream in streams:
        try:
            node = run[stream]
        except KeyError:
            counts[stream] = 0
            continue
        key = next(iter(node))
        counts[stream] = int(node[key].shape[0])
    return counts


def _complete(run: Any, expected: dict[str, int]) -> bool:
    return (run.metadata.get("stop") is not None
            and _stored_counts(run, expected) == expected)


def replay(directory: str | Path, client: Any, *, batch_size: int = 500,
           move: bool = True) -> list[ReplayReport]:
    """Restore every run backed up in ``directory`` into ``client["raw"]``.

    Parameters
    ----------
    directory
        A backup directory (``subscribe_writer(..., backup_directory=)``).
    client
        Root Tiled client; the server must be able to read the detector's files.
    batch_size
        Events per write.
    move
        Move each restored (or already stored) file to ``directory/replayed``.

    Returns
    -------
    list of ReplayReport
        One per ``*.jsonl`` file, in name order. A file that fails is reported
        (outcome ``"failed"``, with the reason) and left in place.
    """
    from bluesky_tiled_plugins import TiledWriter

    directory = Path(directory)
    if not directory.is_dir():
        raise ValueError(f"backup directory {str(directory)!r} does not exist or is not a "
                         "directory")
    raw = ensure_container(client, RAW, specs=["CatalogOfBlueskyRuns"])
    reports = []
    for path in sorted(directory.glob("*.jsonl")):
        uid = None
        try:
            docs = read_backup(path)
            uid = next(doc["uid"] for name, doc in docs if name == "start")
            expected = event_counts(docs)
            replaced = False
            if uid in raw:
                if _complete(raw[uid], expected):
                    reports.append(ReplayReport(path, uid, "already stored", expected))
                    _move(path, move)
                    continue
                # A partial copy from before the failure: the backup holds the whole run.
                raw[uid].delete(recursive=True, external_only=False)
                replaced = True
            writer = TiledWriter(raw, batch_size=batch_size)
            for name, doc in docs:
                writer(name, doc)
            stored = _stored_counts(raw[uid], expected)
            if stored != expected:
                raise RuntimeError(f"after writing, Tiled holds {stored} events per stream, "
                                   f"the backup {expected}")
            reports.append(ReplayReport(path, uid, "restored", expected, replaced))
            log.info("restored run %s from %s (%s)", uid, path, expected)
            _move(path, move)
        except Exception as exc:  # report and go on with the next file
            log.exception("could not restore %s", path)
            reports.append(ReplayReport(path, uid, "failed", detail=str(exc)))
    for uid, outcome, detail in restore_results(directory, client):
        reports.append(ReplayReport(directory / RESULTS_SUBDIR / uid, uid, outcome,
                                    kind="result", detail=detail))
    return reports


def _move(path: Path, move: bool) -> None:
    if move:
        target = path.parent / REPLAYED
        target.mkdir(exist_ok=True)
        path.rename(target / path.name)
