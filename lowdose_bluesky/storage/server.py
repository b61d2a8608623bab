"""A persistent Tiled server over the catalog of an embedded one, for profiles and workers.

``connect(directory=DIR/"tiled", readable_storage=[DIR/"frames"])`` starts tiled's
:class:`tiled.server.SimpleTiledServer` on a random loopback port for one process. To share
that catalog between processes and machines (the beamline profile writing runs, the
analysis worker on a GPU node, ``lowdose-bluesky show``), :func:`serve` runs one server in
the foreground on a chosen host and port. It builds the catalog exactly as
``SimpleTiledServer`` does in tiled 0.2.20 (``catalog.db``, ``data/``,
``storage.duckdb`` under the directory, frames readable from ``readable_storage``), so an
embedded session and the server see the same runs. ``SimpleTiledServer`` itself always
listens on 127.0.0.1, hence this module.

Security: a non-loopback host needs an API key. On loopback without one, a random key is
kept in ``DIR/tiled/api_key`` (mode 0600) and reused on the next start. The key is never
printed; uvicorn's access log (which may hold ``?api_key=`` query strings) goes to
``access.log`` in the catalog directory, as with ``SimpleTiledServer``, readable by its owner
only (mode 0600).
"""

from __future__ import annotations

import copy
import ipaddress
import os
import secrets
import socket
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from .tiled import API_KEY_ENV, STREAMING_CACHE_TTL_S

__all__ = ["ServerPlan", "is_loopback", "mask_key", "plan_server", "serve"]

#: File (in the catalog directory) of the key generated for a loopback server.
KEY_FILE = "api_key"


def is_loopback(host: str) -> bool:
    """Whether ``host`` names this machine only (127.0.0.0/8, ::1 or ``localhost``)."""
    if host.lower() == "localhost":
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False


def mask_key(key: str) -> str:
    """A printable hint of an API key that does not reveal it."""
    if len(key) >= 16:
        return f"{key[:4]}… ({len(key)} characters)"
    return f"({len(key)} characters)"


@dataclass(frozen=True)
class ServerPlan:
    """What :func:`serve` will do: checked options, the key and where it came from."""

    directory: Path
    readable_storage: tuple[Path, ...]
    host: str
    port: int
    api_key: str
    key_source: str


def plan_server(directory: str | os.PathLike[str],
                readable_storage: Iterable[str | os.PathLike[str]] = (), *,
                host: str = "127.0.0.1", port: int = 8000, api_key: str | None = None,
                ) -> ServerPlan:
    """Check the options of :func:`serve` and settle the API key (nothing is started).

    Parameters
    ----------
    directory
        Catalog directory (created if missing).
    readable_storage
        Directories whose files (detector HDF5) the server may read (created if missing).
    host, port
        Where to listen; ``port=0`` picks a free port.
    api_key
        The single-user API key; default: ``$LOWDOSE_TILED_API_KEY``, else (loopback
        only) the key in ``directory/api_key``, generated on first use.

    Returns
    -------
    ServerPlan

    Raises
    ------
    ValueError
        For a port outside 0..65535, an empty key or one with characters other than
        letters and digits, or a non-loopback host without a key.
    """
    if isinstance(port, bool) or not isinstance(port, int) or not 0 <= port <= 65535:
        raise ValueError(f"port must be an integer from 0 to 65535, got {port!r}")
    if not host:
        raise ValueError("host must not be empty (use 127.0.0.1 for this machine only)")
    source = "--api-key"
    if api_key is None and os.environ.get(API_KEY_ENV):
        api_key, source = os.environ[API_KEY_ENV], f"${API_KEY_ENV}"
    if api_key is not None and not api_key.strip():
        raise ValueError("the API key must not be empty or blank")
    if api_key is not None and not (api_key.isascii() and api_key.isalnum()):
        raise ValueError(f"the API key ({source}) must hold only letters and digits (Tiled's "
                         f"rule), got {mask_key(api_key)} with other characters; e.g. "
                         "python -c 'import secrets; print(secrets.token_hex(32))'")
    root = Path(directory).expanduser().resolve()
    readable = [Path(p).expanduser().resolve() for p in readable_storage]
    for path in (root, *readable):
        if path.exists() and not path.is_dir():
            raise ValueError(f"{str(path)!r} exists and is not a directory")
    if api_key is None:
        if not is_loopback(host):
            raise ValueError(
                f"host {host!r} is reachable from other machines and needs an API key: pass "
                f"--api-key KEY or set {API_KEY_ENV} (only loopback hosts such as 127.0.0.1 "
                "may run without one)")
        api_key, source = _loopback_key(root), f"generated, kept in {root / KEY_FILE}"
    for path in readable:
        path.mkdir(parents=True, exist_ok=True)
    return ServerPlan(directory=root, readable_storage=tuple(readable), host=host, port=port,
                      api_key=api_key, key_source=source)


def _loopback_key(root: Path) -> str:
    """The key kept in ``root/api_key`` (owner-readable only), created if missing."""
    root.mkdir(parents=True, exist_ok=True)
    path = root / KEY_FILE
    if path.is_file():
        key = path.read_text().strip()
        if key:
            return key
    key = secrets.token_hex(16)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as f:
        f.write(key + "\n")
    return key


def build_app(plan: ServerPlan) -> Any:
    """The Tiled ASGI app over the catalog of ``plan.directory`` (SimpleTiledServer's layout)."""
    from tiled.catalog import from_uri as catalog_from_uri
    from tiled.config import Authentication, StreamingCacheConfig
    from tiled.server.app import build_app as tiled_app
    from tiled.utils import ensure_uri

    directory = plan.directory
    (directory / "data").mkdir(parents=True, exist_ok=True)
    storage_uri = ensure_uri(f"duckdb:///{directory / 'storage.duckdb'}")
    catalog = catalog_from_uri(
        directory / "catalog.db",
        writable_storage=[directory / "data", storage_uri],
        init_if_not_exists=True,
        readable_storage=[str(p) for p in plan.readable_storage] or None,
        cache_config=StreamingCacheConfig(uri="memory",
                                          data_ttl=STREAMING_CACHE_TTL_S).model_dump(),
    )
    return tiled_app(catalog, authentication=Authentication(single_user_api_key=plan.api_key))


def _log_config(directory: Path) -> dict[str, Any]:
    from tiled.server.logging_config import LOGGING_CONFIG

    config = copy.deepcopy(LOGGING_CONFIG)
    access = config["handlers"]["access"]
    access["class"] = "logging.FileHandler"
    del access["stream"]
    access["filename"] = str(_private_file(directory / "access.log"))
    for formatter in config["formatters"].values():
        formatter["use_colors"] = False
    return config


def _private_file(path: Path) -> Path:
    """Create ``path`` (or restrict it) readable and writable by its owner only (0600).

    The access log records request lines, which hold the key of clients that put it in
    the URI (``?api_key=``); logging's FileHandler appends and keeps the mode.
    """
    path.parent.mkdir(parents=True, exist_ok=True)
    os.close(os.open(path, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o600))
    os.chmod(path, 0o600)
    return path


def _bind(host: str, port: int) -> socket.socket:
    family = socket.AF_INET6 if ":" in host.strip("[]") else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM)
    try:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind((host.strip("[]"), port))
    except OSError as exc:
        sock.close()
        raise ValueError(f"cannot listen on {host}:{port}: {exc.strerror or exc}") from None
    sock.set_inheritable(True)
    return sock


def public_uri(host: str, port: int) -> str:
    """The API URI clients use (no key in it)."""
    shown = socket.getfqdn() if host in ("0.0.0.0", "::") else host
    if ":" in shown and not shown.startswith("["):
        shown = f"[{shown}]"
    return f"http://{shown}:{port}/api/v1"


def serve(plan: ServerPlan, *, on_ready: Callable[[str], None] | None = None) -> None:
    """Serve the catalog of ``plan`` in the foreground until SIGINT or SIGTERM.

    Parameters
    ----------
    plan
        From :func:`plan_server`.
    on_ready
        Called with the API URI once the port is bound (before requests are served).

    Raises
    ------
    ValueError
        If the host/port cannot be bound (in use, unknown address).
    RuntimeError
        If the Tiled application fails to start.
    """
    import uvicorn

    sock = _bind(plan.host, plan.port)
    port = sock.getsockname()[1]
    try:
        app = build_app(plan)
        config = uvicorn.Config(app, loop="asyncio", log_config=_log_config(plan.directory))
        server = uvicorn.Server(config)
        if on_ready is not None:
            on_ready(public_uri(plan.host, port))
        try:
            server.run(sockets=[sock])
        except SystemExit as exc:  # uvicorn exits when the app fails to start
            raise RuntimeError(f"the Tiled server failed to start (exit status {exc.code}); "
                               "see the messages above") from None
    finally:
        sock.close()
