"""Tiled storage: an embedded server (default) or a remote one, and the run writer.

``connect()`` with no URI starts a :class:`tiled.server.SimpleTiledServer` on
loopback with a random API key, able to read the detector's HDF5 files.
``subscribe_writer()`` streams every run into the ``raw`` container (spec
``CatalogOfBlueskyRuns``) with ``bluesky_tiled_plugins.TiledWriter`` (in a background
thread, :mod:`lowdose_bluesky.storage.run_writer`), so runs
are found from Tiled (``client["raw"][uid]``) and databroker
(``databroker.Broker(client["raw"])``).
"""

from __future__ import annotations

import copy
import logging
import os
import re
import secrets
import threading
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

import httpx
from tiled.client import from_uri
from tiled.client.container import Container
from tiled.server import SimpleTiledServer

__all__ = [
    "API_KEY_ENV",
    "DEFAULT_BATCH_SIZE",
    "RAW",
    "RESULTS",
    "STREAMING_CACHE_TTL_S",
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


#: Seconds an embedded server keeps each write in tiled's in-memory streaming cache
#: (what websocket subscribers are sent). tiled keeps every payload, whole arrays
#: included, for an hour by default (up to 1000 writes), so each stored result would stay
#: in this process's memory that long; expired entries are dropped at the next write.
#: ``TILED_STREAMING_CACHE_DATA_TTL``, when set, is used instead.
STREAMING_CACHE_TTL_S = 10
_env_lock = threading.Lock()


@contextmanager
def _streaming_cache_ttl(seconds: int) -> Iterator[None]:
    """Servers built in this block keep streaming-cache entries ``seconds`` long."""
    name = "TILED_STREAMING_CACHE_DATA_TTL"
    with _env_lock:
        if name in os.environ:  # the user's own setting wins
            yield
            return
        os.environ[name] = str(int(seconds))
        try:
            yield
        finally:
            os.environ.pop(name, None)


#: Read timeout of clients (seconds): an embedded server shares the process with
#: training threads and may answer slowly on a loaded machine.
CLIENT_TIMEOUT = 60.0


def _close_server(server: SimpleTiledServer) -> None:
    with _lock:
        if server not in _all_servers:
            return  # already closed
        _all_servers.remove(server)
    _drop_log_files(Path(server.directory))
    try:
        server.close()
    except Exception:  # pragma: no cover - best effort
        log.exception("closing embedded Tiled server failed")


def _drop_log_files(directory: Path) -> None:
    """Detach the log files a server's uvicorn configuration put in ``directory``.

    ``SimpleTiledServer`` configures uvicorn's loggers process-wide with file handlers in
    its directory. A temporary directory is removed when the server closes; a handler left
    on a logger would then fail on the next record any later server logs.
    """
    loggers = [logging.getLogger(), *(obj for obj in logging.Logger.manager.loggerDict.values()
                                      if isinstance(obj, logging.Logger))]
    for logger in loggers:
        for handler in list(logger.handlers):
            if (isinstance(handler, logging.FileHandler)
                    and Path(handler.baseFilename).is_relative_to(directory.resolve())):
                logger.removeHandler(handler)
                handler.close()


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
        URI itself (``?api_key=``), or the environment variable ``LOWDOSE_TILED_API_KEY``
        (never hard-coded). The key is sent in a header and never shown: messages and
        logs name the URI without its query string.
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
        If the server at ``uri`` cannot be reached, requires an API key and none was
        given, or refuses the key.
    """
    if uri is not None:
        if directory is not None or tuple(readable_storage):
            raise ValueError("directory and readable_storage configure an embedded server; "
                             f"they cannot be used with uri={_redact(uri)!r}")
        return _connect_remote(uri, api_key)
    storage = []
    for path in readable_storage:
        p = Path(path).expanduser().resolve()
        if not p.is_dir():
            raise ValueError(f"readable_storage entry {str(path)!r} is not an existing directory")
        storage.append(p)
    if directory is not None:
        Path(directory).expanduser().mkdir(parents=True, exist_ok=True)
    with _streaming_cache_ttl(STREAMING_CACHE_TTL_S):
        server = _EmbeddedServer(directory=directory, readable_storage=storage or None,
                                 api_key=_PROCESS_API_KEY)
    with _lock:
        _all_servers.append(server)
        _install_shutdown_hook()
    # the key goes in a header: in a query string (server.uri) httpx would log it
    client = from_uri(_redact(server.uri), api_key=_PROCESS_API_KEY,
                      structure_clients=_own_structure_clients(),
                      timeout=httpx.Timeout(CLIENT_TIMEOUT, connect=5.0))
    client.embedded_server = server  # keep the server alive with the client
    log.info("embedded Tiled server at http://127.0.0.1:%s (data in %s)", server.port,
             server.directory)
    return client


class _EmbeddedServer(SimpleTiledServer):
    """``SimpleTiledServer`` whose repr (shown by IPython, logs, tracebacks) hides the key.

    ``uri`` keeps tiled's form (with ``?api_key=``) for code that passes it on.
    """

    def __repr__(self) -> str:
        return f"<embedded Tiled server {_redact(self.uri)} (API key hidden)>"

    def _repr_html_(self) -> str:
        import html

        return f"<code>{html.escape(repr(self))}</code>"


def _connect_remote(uri: str, api_key: str | None) -> Container:
    """Client of the Tiled server at ``uri``; errors name the URI without any key."""
    base, key_in_uri = _split_key(uri)
    if api_key:
        key, source = api_key, "the api_key argument"
    elif key_in_uri:
        key, source = key_in_uri, "the URI"
    elif os.environ.get(API_KEY_ENV):
        key, source = os.environ[API_KEY_ENV], f"${API_KEY_ENV}"
    else:
        key, source = None, None
    _check_reachable(base)
    shown = _redact(base)
    try:
        # the key goes in a header, never in a URL that httpx would log
        return from_uri(base, api_key=key, structure_clients=_own_structure_clients(),
                        timeout=httpx.Timeout(CLIENT_TIMEOUT, connect=5.0))
    except Exception as exc:
        status = getattr(getattr(exc, "response", None), "status_code", None)
        detail = _scrub(str(exc), key)
        if key is None and (status in (401, 403) or "requires API key" in str(exc)):
            raise ConnectionError(
                f"Tiled at {shown} requires an API key and none was given: set {API_KEY_ENV} "
                "to the server's key (or pass api_key=...)") from None
        if key is not None and status in (401, 403):
            raise ConnectionError(
                f"Tiled at {shown} refused the API key from {source} ({status}): check that "
                f"it is this server's key") from None
        raise ConnectionError(f"cannot reach Tiled at {shown}: {detail}") from None


def _split_key(uri: str) -> tuple[str, str | None]:
    """``uri`` without its ``api_key`` query parameter, and that key (or None)."""
    parts = urlsplit(uri)
    query = parse_qsl(parts.query, keep_blank_values=True)
    keys = [v for k, v in query if k == "api_key"]
    rest = urlencode([(k, v) for k, v in query if k != "api_key"])
    return urlunsplit(parts._replace(query=rest)), (keys[-1] if keys else None) or None


def _scrub(text: str, key: str | None) -> str:
    """``text`` with ``api_key=...`` values and ``key`` itself replaced by ``***``."""
    text = re.sub(r"(api_key=)[^&\s'\"]+", r"\1***", text)
    return text.replace(key, "***") if key else text


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
    """Drop query strings (they may hold an API key) and user:password before a URI is
    logged or shown."""
    base = uri.split("?", 1)[0].split("#", 1)[0]
    scheme, sep, rest = base.partition("://")
    if sep and "@" in rest.split("/", 1)[0]:
        base = f"{scheme}://***@{rest.split('@', 1)[1]}"
    return base


def ensure_container(client: Container, key: str, *, specs: list[str] | None = None,
                     metadata: dict[str, Any] | None = None) -> Container:
    """Return ``client[key]``, creating the container if it does not exist."""
    if key in client:
        return client[key]
    return client.create_container(key, specs=specs or [], metadata=metadata or {})


def subscribe_writer(RE: Any, client: Container, *, batch_size: int = DEFAULT_BATCH_SIZE,
                     backup_directory: str | os.PathLike[str] | None = None,
                     flush_timeout: float = 60.0) -> int:
    """Subscribe a writer that stores every run in ``client["raw"]``.

    The writer (:class:`~lowdose_bluesky.storage.run_writer.BackgroundTiledWriter`) runs
    ``TiledWriter`` in its own thread, so a slow or unreachable server never holds up
    the scan; the RunEngine waits for each run to be written at its stop document.

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
        Where runs that Tiled fails to store are written as JSON lines, for
        ``lowdose-bluesky replay``. Strongly advised with a non-embedded server.
    flush_timeout
        Seconds the RunEngine waits at a stop document for the run to be written.

    Returns
    -------
    int
        The subscription token (for ``RE.unsubscribe``).
    """
    from .run_writer import BackgroundTiledWriter

    if isinstance(batch_size, bool) or not isinstance(batch_size, int) or batch_size < 1:
        raise ValueError(f"batch_size must be a positive integer, got {batch_size!r}")
    raw = ensure_container(client, RAW, specs=["CatalogOfBlueskyRuns"])
    if backup_directory is None and getattr(client, "embedded_server", None) is None:
        log.warning("runs are written to a Tiled server without a backup_directory: a run "
                    "the server fails to store keeps its frames but loses its documents")
    writer = BackgroundTiledWriter(raw, batch_size=batch_size,
                                   backup_directory=backup_directory,
                                   flush_timeout=flush_timeout)
    return RE.subscribe(writer)
