"""The analysis on another machine: LiveEnhancer fed by Bluesky's 0MQ streaming.

RunEngine side::

    from lowdose_bluesky.callbacks.remote import make_publisher
    RE.subscribe(make_publisher("proxy-host:5577"))

Relay: ``bluesky-0MQ-proxy 5577 5578``. Analysis node::

    lowdose-bluesky worker --zmq proxy-host:5578 --tiled http://tiled-host:8000/api

Frames are read through Tiled (:class:`TiledFrameSource`), so the analysis node needs
no access to the detector's file system.

Documents travel as JSON (:func:`serialize_document` / :func:`deserialize_document`), not
with bluesky's default ``pickle``: unpickling a message runs whatever code its sender put
in it, and anyone who can reach the proxy's input port can send one. A message that is not
JSON (e.g. from a ``Publisher`` left on the pickle default) is dropped with a message
saying so, never unpickled.
"""

from __future__ import annotations

import json
import logging
import signal
from typing import Any

import numpy as np
from bluesky.callbacks.zmq import Publisher, RemoteDispatcher

from ..engine import TiledFrameSource
from ..storage import connect
from ..storage.tiled import _redact
from .live_enhancer import LiveEnhancer

__all__ = ["deserialize_document", "make_dispatcher", "make_publisher", "parse_address",
           "run_worker", "serialize_document"]

log = logging.getLogger(__name__)


def _json_default(value: Any) -> Any:
    if isinstance(value, np.generic):
        return value.item()
    if isinstance(value, np.ndarray):
        return value.tolist()
    raise TypeError(f"a {type(value).__name__} in a document cannot be sent as JSON")


def serialize_document(doc: dict[str, Any]) -> bytes:
    """A Bluesky document as UTF-8 JSON (numpy scalars and arrays become numbers and lists).

    Raises
    ------
    TypeError
        For a value JSON cannot hold (the RunEngine then reports the failing callback).
    """
    return json.dumps(doc, default=_json_default, separators=(",", ":")).encode("utf-8")


def deserialize_document(data: bytes) -> dict[str, Any]:
    """The document of a :func:`serialize_document` message; nothing is unpickled.

    Raises
    ------
    ValueError
        If ``data`` is not a JSON object, e.g. a pickle from a ``Publisher`` left on
        bluesky's default serializer.
    """
    try:
        doc = json.loads(bytes(data).decode("utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError):
        hint = (" (it is a pickle: publish with lowdose_bluesky.callbacks.remote."
                "make_publisher or Publisher(..., serializer=serialize_document))"
                if bytes(data[:1]) == b"\x80" else "")
        raise ValueError(f"0MQ message is not a JSON document{hint}; dropped, not "
                         "unpickled") from None
    if not isinstance(doc, dict):
        raise ValueError(f"0MQ message is JSON but not a document (a {type(doc).__name__})")
    return doc


def make_publisher(address: str) -> Publisher:
    """A bluesky 0MQ ``Publisher`` to ``HOST:PORT`` (a proxy's input) sending JSON."""
    host, port = parse_address(address)
    return Publisher(f"{host}:{port}", serializer=serialize_document)


def make_dispatcher(address: str | tuple[str, int]) -> RemoteDispatcher:
    """A bluesky ``RemoteDispatcher`` of ``HOST:PORT`` (a proxy's output) reading JSON."""
    if isinstance(address, str):
        address = parse_address(address)
    return RemoteDispatcher(address, deserializer=deserialize_document)


def parse_address(text: str) -> tuple[str, int]:
    """``"host:port"`` -> ``(host, port)`` with a clear error for anything else."""
    host, sep, port = text.rpartition(":")
    if not sep or not host or not port.isdigit() or not 0 < int(port) < 65536:
        raise ValueError(f"expected HOST:PORT for the 0MQ proxy, got {text!r}")
    return host, int(port)


def run_worker(zmq_address: str, tiled_uri: str, *, frame_timeout: float = 300.0,
               **live_options: Any) -> None:
    """Run LiveEnhancer under a RemoteDispatcher until interrupted (SIGINT/SIGTERM)."""
    address = parse_address(zmq_address)
    client = connect(tiled_uri)
    source = TiledFrameSource(client, timeout=frame_timeout)
    live = LiveEnhancer(client, frame_source=source, process=False, **live_options)
    dispatcher = make_dispatcher(address)
    dispatcher.subscribe(live)

    def _stop(signum: int, frame: Any) -> None:
        log.info("worker stopping (signal %s)", signum)
        dispatcher.stop()

    signal.signal(signal.SIGTERM, _stop)
    log.info("worker listening on %s:%s, results to %s", *address, _redact(tiled_uri))
    try:
        dispatcher.start()
    except KeyboardInterrupt:
        pass
    finally:
        live.close()
