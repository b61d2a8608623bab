"""A simulated ophyd-async beam shutter following the ``set("open" | "close")`` convention."""

from __future__ import annotations

from typing import Any

from ophyd_async.core import AsyncStatus, StandardReadable, soft_signal_r_and_setter
from ophyd_async.core import StandardReadableFormat as Format

__all__ = ["SimAsyncShutter"]

_OPEN = ("open", "opened")
_CLOSE = ("close", "closed")


class SimAsyncShutter(StandardReadable):
    """Shutter with a ``state`` readback of ``"open"`` or ``"closed"``.

    ``set("open")`` / ``set("close")`` (also ``"opened"``/``"closed"``) move it at
    once; anything else raises ``ValueError`` before anything moves.

    Parameters
    ----------
    name
        Device name (the readback's data key is ``<name>-state``).
    """

    def __init__(self, name: str = "") -> None:
        with self.add_children_as_readables(Format.HINTED_SIGNAL):
            self.state, self._set_state = soft_signal_r_and_setter(str, "closed")
        self._state = "closed"
        super().__init__(name=name)

    @property
    def is_open(self) -> bool:
        """Whether the beam goes through, read synchronously."""
        return self._state == "open"

    def set(self, value: Any) -> AsyncStatus:
        """Open or close the shutter.

        Raises
        ------
        ValueError
            At once if ``value`` is not one of ``open``, ``opened``, ``close``, ``closed``.
        """
        text = str(value).lower()
        if text not in _OPEN + _CLOSE:
            raise ValueError(f"shutter accepts {_OPEN + _CLOSE}, got {value!r}")
        return AsyncStatus(self._move("open" if text in _OPEN else "closed"))

    async def _move(self, state: str) -> None:
        self._state = state
        self._set_state(state)
