"""Run the live analysis again on a run already stored in Tiled.

When the analysis process died (a worker killed mid-training, a node rebooted) or a
result should be recomputed with other settings, the raw run in Tiled holds all that
is needed: the start document (with its ``lowdose`` section), every stream's table and
the frames. :func:`stored_run_documents` rebuilds from them the document stream the
callback consumes (start, one descriptor per stream, one event per frame in the
plan's stream order, stop), and :func:`reprocess` feeds it to a :class:`LiveEnhancer`
reading the frames through Tiled.

Tiled's exporter of whole document streams is not enabled on an embedded server, so
the documents are rebuilt from the stored tables rather than exported.
"""

from __future__ import annotations

import logging
from collections.abc import Iterator
from typing import Any

import numpy as np

from ..engine import TiledFrameSource
from ..storage import RAW
from .live_enhancer import LiveEnhancer

__all__ = ["reprocess", "stored_run_documents"]

log = logging.getLogger(__name__)


def stored_run_documents(client: Any, run_uid: str) -> Iterator[tuple[str, dict[str, Any]]]:
    """The documents :class:`LiveEnhancer` needs, rebuilt from the stored run.

    Raises
    ------
    KeyError
        If there is no run ``run_uid`` in ``client["raw"]``.
    ValueError
        If the run was not acquired by ``lowdose_tomo_plan``.
    """
    try:
        run = client[RAW][run_uid]
    except (KeyError, ValueError) as exc:  # ValueError: tiled's partial-uid lookup
        raise KeyError(f"no raw run {run_uid!r} in Tiled (client[{RAW!r}]): "
                       f"{str(exc).strip(chr(34))}") from None
    start = dict(run.metadata["start"])
    if not start["uid"].startswith(run_uid):  # the catalog also resolves scan ids etc.
        raise KeyError(f"no raw run {run_uid!r} in Tiled (client[{RAW!r}])")
    run_uid = start["uid"]
    lowdose = start.get("lowdose")
    if not lowdose:
        raise ValueError(f"run {run_uid} was not acquired by lowdose_tomo_plan (no 'lowdose' "
                         "section in its start document); nothing to reprocess")
    image, rotation, exposure = (lowdose["image_key"], lowdose["rotation_key"],
                                 lowdose["exposure_key"])
    yield "start", start
    stored = set(run)
    for stream in lowdose["streams"]:
        if stream not in stored:
            continue
        node = run[stream]
        descriptor = {"uid": f"{run_uid}/{stream}", "name": stream, "run_start": run_uid}
        yield "descriptor", descriptor
        # A fly scan's rotation stream has no event columns: the analysis takes its
        # angles and exposure from the start document and the detector's readbacks.
        columns = {key: node[key].read() for key in (rotation, exposure) if key in node}
        for i in range(int(node[image].shape[0])):
            data = {image: f"{stream}/{i}"}
            data.update({key: float(np.asarray(values[i]).ravel()[0])
                         for key, values in columns.items()})
            yield "event", {"uid": f"{run_uid}/{stream}/{i}", "descriptor": descriptor["uid"],
                            "seq_num": i + 1, "data": data}
    stop = run.metadata.get("stop")
    if stop is None:
        log.warning("run %s has no stop document (the scan never ended cleanly); treating "
                    "it as aborted", run_uid)
        stop = {"run_start": run_uid, "exit_status": "abort",
                "reason": "no stop document stored"}
    yield "stop", dict(stop)


def reprocess(client: Any, run_uid: str, *, timeout: float | None = None,
              **live_options: Any) -> str:
    """Analyse the stored run ``run_uid`` again; return the uid of the new result.

    Parameters
    ----------
    client
        Root Tiled client holding the run (frames are read through it).
    run_uid
        Uid of the raw run.
    timeout
        Seconds to wait for the result (None: no limit).
    **live_options
        Options of :class:`LiveEnhancer`. ``training_budget`` defaults to None
        (the run is over: training is bounded by ``epochs`` and early stopping).

    Raises
    ------
    RuntimeError
        If the analysis fails (the failure is stored as a result too).
    """
    live_options.setdefault("training_budget", None)
    live_options.setdefault("frame_source", TiledFrameSource(client, timeout=30.0))
    live_options.setdefault("process", False)
    live = LiveEnhancer(client, **live_options)
    try:
        for name, doc in stored_run_documents(client, run_uid):
            live(name, doc)
        return live.wait(timeout)
    finally:
        live.close()
