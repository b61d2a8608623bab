"""Tiled storage: an embedded server (default) or a remote one, and the run writer.

``connect()`` with no URI starts a :class:`tiled.server.SimpleTiledServer` on
loopback with a random API key, able to read the detector's HDF5 files.
``subscribe_writer()`` streams every run into the ``raw`` container (spec
``CatalogOfBlueskyRuns``) with ``bluesky_tiled_plugins.TiledWriter``, so runs
are found from Tiled (``client["raw"][uid]``) and databroker
(``databroker.Broker(client["raw"])``).
"""

from __future__ import annotations

import copy
import logging
import os
import secrets
import threading
from collections.abc import Iterable
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import httpx
from tiled.client import from_uri
from tiled.client.container import Container
from tiled.server import SimpleTiledServer

__all__ = [
    "API_KEY_ENV",
    "RAW",
    "RESULTS",
    "close",
    "close_embedded_servers",
    "connect",
    "ensure_container",
    "subscribe_writer",
]

log = logging.getLogger(__name__)

#: Container of raw Bluesky runs.
RAW = "raw"
#: Container of derived (analysis) results.
RESULTS = "results"
#: Environment variable holding the API key of a non-embedded Tiled server.
API_KEY_ENV = "LOWDOSE_TILED_API_KEY"
#: Default number of events TiledWriter buffers before writing (see ADR 0003).
DEFAULT_BATCH_SIZE = 50

# tiled 0.2.20 keeps the single-user API key in process-wide settings: a second
# SimpleTiledServer in the same process makes the first one reject its own key. All
# embedded servers of this process therefore share one random key.
_PROCESS_API_KEY = secrets.token_hex(16)
_all_servers: list[SimpleTiledServer] = []
_shutdown_hook_installed = False
_lock = threading.Lock()


#: Read timeout of clients (seconds): an embedded server shares the process with
#: training threads and may answer slowly on a loaded machine.
CLIENT_TIMEOUT = 60.0


def _close_server(server: SimpleTiledServer) -> None:
    with _lock:
        if server not in _all_servers:
            return  # already closed
        _all_servers.remove(server)
    try:
        server.close()
    except Exception:  # pragma: no cover - best effort
        log.exception("closing embedded Tiled server failed")


def close(client: Container) -> None:
    """Stop the embedded server behind ``client``, if it has one (idempotent)."""
    server = getattr(client, "embedded_server", None)
    if server is not None:
        _close_server(server)


def close_embedded_servers() -> None:
    """Stop every embedded server started by :func:`connect` and still running."""
    for server in list(_all_servers):
        _close_server(server)


def _install_shutdown_hook() -> None:
    # SimpleTiledServer serves from a non-daemon thread, and Python joins those
    # *before* atexit handlers run: a plain atexit hook would never be reached.
    # threading's own pre-join hook (used by concurrent.futures) runs first.
    global _shutdown_hook_installed
    if not _shutdown_hook_installed:
        threading._register_atexit(close_embedded_servers)  # type: ignore[attr-defined]
        _shutdown_hook_installed = True


def connect(uri: str | None = None, *, directory: str | os.PathLike[str] | None = None,
            readable_storage: Iterable[str | os.PathLike[str]] = (),
            api_key: str | None = None) -> Container:
    """Return a Tiled client, starting an embedded server when no URI is given.

    Parameters
    ----------
    uri
        URI of an existing Tiled server. Its API key comes from ``api_key``, the
        URI itself, or the environment variable ``LOWDOSE_TILED_API_KEY`` (never
        hard-coded).
    directory
        Embedded server only: keep catalog and written data here (persistent across
        sessions). Default: a temporary directory removed when the server stops.
    readable_storage
        Embedded server only: directories whose files (the detector's HDF5 files)
        the server may read.
    api_key
        API key for a remote server.

    Returns
    -------
    tiled.client.container.Container
        The root node. For an embedded server, ``client.embedded_server`` is the
        server object; :func:`close` stops it, and it is stopped automatically when
        the interpreter exits.

    Raises
    ------
    ValueError
        If arguments are inconsistent or a directory does not exist.
    ConnectionError
        If the server at ``uri`` cannot be reached.
    """
    if uri is not None:
        if directory is not None or tuple(readable_storage):
            raise ValueError("directory and readable_storage configure an embedded server; "
                             f"they cannot be used with uri={uri!r}")
        key = api_key or os.environ.get(API_KEY_ENV)
        _check_reachable(uri)
        try:
            return from_uri(uri, api_key=key, structure_clients=_own_structure_clients(),
                            timeout=httpx.Timeout(CLIENT_TIMEOUT, connect=5.0))
        except Exception as exc:
            raise ConnectionError(f"cannot reach Tiled at {_redact(uri)}: {exc}") from exc
    storage = []
    for path in readable_storage:
        p = Path(path).expanduser().resolve()
        if not p.is_dir():
            raise ValueError(f"readable_storage entry {str(path)!r} is not an existing directory")
        storage.append(p)
    if directory is not None:
        Path(directory).expanduser().mkdir(parents=True, exist_ok=True)
    server = SimpleTiledServer(directory=directory, readable_storage=storage or None,
                               api_key=_PROCESS_API_KEY)
    with _lock:
        _all_servers.append(server)
        _install_shutdown_hook()
    client = from_uri(server.uri, structure_clients=_own_structure_clients(),
                      timeout=httpx.Timeout(CLIENT_TIMEOUT, connect=5.0))
    client.embedded_server = server  # keep the server alive with the client
    log.info("embedded Tiled server at http://127.0.0.1:%s (data in %s)", server.port,
             server.directory)
    return client


def _own_structure_clients() -> Any:
    """A private copy of Tiled's client registry for each connection.

    ``databroker.Broker(client["raw"])`` switches the registry of the client it wraps to
    the v2 run layout (``run[stream]["data"][key]``) by mutating a registry that tiled
    shares between all clients by default. With its own copy, one connection's
    databroker view cannot change what ``client["raw"][uid][stream][key]`` means on
    another.
    """
    from tiled.client.constructors import DEFAULT_STRUCTURE_CLIENT_DISPATCH

    Container.discover_clients_from_entrypoints()  # register BlueskyRun & co. first
    return copy.deepcopy(DEFAULT_STRUCTURE_CLIENT_DISPATCH["numpy"])


def _check_reachable(uri: str, timeout: float = 5.0) -> None:
    """Fail fast (instead of the client's retries) when nothing answers at ``uri``."""
    parts = urlsplit(uri)
    if parts.scheme not in ("http", "https") or not parts.netloc:
        raise ValueError(f"Tiled URI must be http(s)://host:port/..., got {_redact(uri)!r}")
    try:
        httpx.get(f"{parts.scheme}://{parts.netloc}/healthz", timeout=timeout, trust_env=False)
    except httpx.HTTPError as exc:
        raise ConnectionError(f"cannot reach Tiled at {_redact(uri)}: {exc}") from None


def _redact(uri: str) -> str:
    """Drop query strings (they may hold an API key) before a URI is logged or shown."""
    return uri.split("?", 1)[0]


def ensure_container(client: Container, key: str, *, specs: list[str] | None = None,
                     metadata: dict[str, Any] | None = None) -> Container:
    """Return ``client[key]``, creating the container if it does not exist."""
    if key in client:
        return client[key]
    return client.create_container(key, specs=specs or [], metadata=metadata or {})


def subscribe_writer(RE: Any, client: Container, *, batch_size: int = DEFAULT_BATCH_SIZE,
                     backup_directory: str | os.PathLike[str] | None = None) -> int:
    """Subscribe a ``TiledWriter`` that stores every run in ``client["raw"]``.

    Parameters
    ----------
    RE
        The RunEngine.
    client
        Root Tiled client (from :func:`connect`).
    batch_size
        Events buffered before each write: small values make runs visible in Tiled
        sooner, larger ones acquire faster (see ``benchmarks/RESULTS.md``).
    backup_directory
        Where TiledWriter writes JSON-lines backups of runs it fails to store.

    Returns
    -------
    int
        The subscription token (for ``RE.unsubscribe``).
    """
    from bluesky_tiled_plugins import TiledWriter

    if isinstance(batch_size, bool) or not isinstance(batch_size, int) or batch_size < 1:
        raise ValueError(f"batch_size must be a positive integer, got {batch_size!r}")
    raw = ensure_container(client, RAW, specs=["CatalogOfBlueskyRuns"])
    writer = TiledWriter(raw, batch_size=batch_size,
                         backup_directory=None if backup_directory is None
                         else str(backup_directory))
    return RE.subscribe(writer)
