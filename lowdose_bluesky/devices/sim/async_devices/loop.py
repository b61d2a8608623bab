"""The check that bluesky's event loop runs before ophyd-async devices connect on it."""

from __future__ import annotations

import asyncio

__all__ = ["require_running_loop"]


def require_running_loop(loop: asyncio.AbstractEventLoop | None, message: str) -> None:
    """Raise ``RuntimeError(message)`` unless ``loop``, bluesky's event loop, runs.

    Raises
    ------
    RuntimeError
        If no ``RunEngine`` has started the loop.
    """
    if loop is None or not loop.is_running():
        raise RuntimeError(message)
