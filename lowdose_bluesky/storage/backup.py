"""Keep an analysis result on local disk when Tiled cannot take it, and restore it later.

Layout of one saved result (no pickles: JSON, ``.npy`` written with
``allow_pickle=False`` and the safetensors checkpoint bytes)::

    <backup dir>/results/<result uid>/
        metadata.json           parent_uid, status, model, timings, ...
        <name>.npy              enhanced, reconstruction, reconstruction_raw
        checkpoint.safetensors  the trained model
"""

from __future__ import annotations

import json
import shutil
import uuid
from pathlib import Path
from typing import Any

import numpy as np

from .derived import write_result

__all__ = ["RESULTS_SUBDIR", "restore_results", "save_result"]

#: Sub-directory of a backup directory holding saved results.
RESULTS_SUBDIR = "results"
_CHECKPOINT = "checkpoint.safetensors"


def save_result(directory: str | Path, *, parent_uid: str, metadata: dict[str, Any],
                arrays: dict[str, np.ndarray] | None = None,
                checkpoint: bytes | None = None) -> Path:
    """Write a result under ``directory/results/<new uid>/``; return that folder."""
    uid = str(uuid.uuid4())
    folder = Path(directory) / RESULTS_SUBDIR / uid
    partial = folder.with_name(uid + ".partial")
    partial.mkdir(parents=True)
    (partial / "metadata.json").write_text(json.dumps(
        {**metadata, "parent_uid": parent_uid, "uid": uid}, default=_jsonable))
    for key, array in (arrays or {}).items():
        np.save(partial / f"{key}.npy", np.ascontiguousarray(array), allow_pickle=False)
    if checkpoint is not None:
        (partial / _CHECKPOINT).write_bytes(checkpoint)
    partial.rename(folder)  # complete folders only ever appear under their uid
    return folder


def _jsonable(value: Any) -> Any:
    if isinstance(value, np.generic):
        return value.item()
    if isinstance(value, np.ndarray):
        return value.tolist()
    return str(value)


def restore_results(directory: str | Path, client: Any) -> list[tuple[str, str, str]]:
    """Upload every saved result in ``directory/results`` to Tiled.

    Returns
    -------
    list of (uid, outcome, detail)
        ``outcome`` is ``"restored"`` (the folder is then removed) or ``"failed"``.
    """
    root = Path(directory) / RESULTS_SUBDIR
    done = []
    for folder in sorted(p for p in root.glob("*") if p.is_dir()
                         and not p.name.endswith(".partial")):
        try:
            md = json.loads((folder / "metadata.json").read_text())
            arrays = {p.stem: np.load(p, allow_pickle=False)
                      for p in sorted(folder.glob("*.npy"))}
            ckpt = folder / _CHECKPOINT
            checkpoint = ckpt.read_bytes() if ckpt.exists() else None
            md = {**md, "restored_from_backup": True}
            uid = write_result(client, parent_uid=md.pop("parent_uid"), metadata=md,
                               arrays=arrays, checkpoint=checkpoint, uid=md.pop("uid"))
            shutil.rmtree(folder)
            done.append((uid, "restored", ""))
        except Exception as exc:  # report, keep the folder, go on
            done.append((folder.name, "failed", f"{type(exc).__name__}: {exc}"))
    return done
