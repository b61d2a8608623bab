"""The analysis on another machine: LiveEnhancer fed by Bluesky's 0MQ streaming.

RunEngine side::

    from bluesky.callbacks.zmq import Publisher
    RE.subscribe(Publisher("proxy-host:5577"))

Relay: ``bluesky-0MQ-proxy 5577 5578``. Analysis node::

    lowdose-bluesky worker --zmq proxy-host:5578 --tiled http://tiled-host:8000/api

Frames are read through Tiled (:class:`TiledFrameSource`), so the analysis node needs
no access to the detector's file system.
"""

from __future__ import annotations

import logging
import signal
from typing import Any

from bluesky.callbacks.zmq import RemoteDispatcher

from ..storage import connect
from .frame_source import TiledFrameSource
from .live_enhancer import LiveEnhancer

__all__ = ["parse_address", "run_worker"]

log = logging.getLogger(__name__)


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
    live = LiveEnhancer(client, frame_source=source, **live_options)
    dispatcher = RemoteDispatcher(address)
    dispatcher.subscribe(live)

    def _stop(signum: int, frame: Any) -> None:
        log.info("worker stopping (signal %s)", signum)
        dispatcher.stop()

    signal.signal(signal.SIGTERM, _stop)
    log.info("worker listening on %s:%s, results to %s", *address, tiled_uri.split("?")[0])
    try:
        dispatcher.start()
    except KeyboardInterrupt:
        pass
    finally:
        live.close()
