"""A simulated beam shutter following the usual ``set("open" | "close")`` convention."""

from __future__ import annotations

from typing import Any

from ophyd import Component as Cpt
from ophyd import Device, Kind, Signal
from ophyd.status import DeviceStatus

__all__ = ["SimShutter"]

_OPEN = ("open", "opened")
_CLOSE = ("close", "closed")


class SimShutter(Device):
    """Shutter with a ``state`` readback of ``"open"`` or ``"closed"``.

    ``set("open")`` / ``set("close")`` (also ``"opened"``/``"closed"``) move it;
    anything else raises ``ValueError`` before anything moves.
    """

    state = Cpt(Signal, value="closed", kind=Kind.hinted)

    def set(self, value: Any) -> DeviceStatus:
        """Open or close the shutter."""
        text = str(value).lower()
        if text not in _OPEN + _CLOSE:
            raise ValueError(f"shutter accepts {_OPEN + _CLOSE}, got {value!r}")
        self.state.put("open" if text in _OPEN else "closed")
        status = DeviceStatus(self)
        status.set_finished()
        return status

    def stop(self, *, success: bool = False) -> None:
        """Nothing to stop: the simulated shutter moves instantly."""
