"""The APS-style beam shutter as an ophyd-async device (twin of :class:`TXMShutter`)."""

from __future__ import annotations

import asyncio
from typing import Any

from bluesky.protocols import Movable
from ophyd_async.core import (
    AsyncStatus,
    StandardReadable,
    derived_signal_r,
    set_and_wait_for_other_value,
)
from ophyd_async.core import StandardReadableFormat as Format
from ophyd_async.epics.core import epics_signal_r, epics_signal_w

from .config import ShutterConfig
from .shutter import shutter_target

__all__ = ["TXMShutterAsync"]


class TXMShutterAsync(StandardReadable, Movable[str]):
    """Beam shutter with ``Open``/``Close`` command PVs and a status PV.

    Same behaviour as the ophyd :class:`~lowdose_bluesky.devices.epics.TXMShutter`:
    ``set("open")`` writes ``command_value`` to ``open_command``, ``set("close")`` to
    ``close_command``; the status completes when ``status`` reports ``open_value`` (or
    ``closed_value``) and fails after ``timeout`` seconds otherwise. If the shutter
    already is in the requested state nothing is written.

    Parameters
    ----------
    open_pv, close_pv, status_pv
        Full names of the command and status PVs.
    command_value
        Value written to a command PV.
    open_value, closed_value
        Values of the status PV when the shutter is open or closed.
    timeout
        Seconds to wait for the status PV.
    settle_time
        Seconds to wait after the status PV has reported the requested state.
    name
        Device name.

    Attributes
    ----------
    status
        The status PV (hinted reading).
    state
        ``"open"``, ``"closed"`` or ``"unknown"``, derived from ``status`` (read too).
    """

    def __init__(self, *, open_pv: str, close_pv: str, status_pv: str,
                 command_value: int = 1, open_value: int = 1, closed_value: int = 0,
                 timeout: float = 20.0, settle_time: float = 0.0, name: str = "") -> None:
        if open_value == closed_value:
            raise ValueError(f"open_value and closed_value must differ, both are {open_value!r}")
        self.command_value = int(command_value)
        self.open_value = int(open_value)
        self.closed_value = int(closed_value)
        self.timeout = float(timeout)
        self.settle_time = float(settle_time)
        # Commands are written without waiting for completion, as the ophyd twin does:
        # the status PV says when the shutter has moved.
        self.open_command = epics_signal_w(int, open_pv, wait=False)
        self.close_command = epics_signal_w(int, close_pv, wait=False)
        with self.add_children_as_readables(Format.HINTED_SIGNAL):
            self.status = epics_signal_r(int, status_pv)
        opened, closed = self.open_value, self.closed_value

        def to_state(status: int) -> str:
            if status == opened:
                return "open"
            if status == closed:
                return "closed"
            return "unknown"

        with self.add_children_as_readables():
            self.state = derived_signal_r(to_state, status=self.status)
        super().__init__(name=name)

    @classmethod
    def from_config(cls, config: ShutterConfig) -> TXMShutterAsync:
        """Build the shutter of a configuration's ``shutter`` section."""
        return cls(open_pv=config.open_command_pv, close_pv=config.close_command_pv,
                   status_pv=config.status_pv, command_value=config.command_value,
                   open_value=config.open_value, closed_value=config.closed_value,
                   timeout=config.timeout, settle_time=config.settle_time, name=config.name)

    def set(self, value: Any) -> AsyncStatus:
        """Open or close the shutter.

        Parameters
        ----------
        value
            ``"open"`` or ``"close"`` (also ``"opened"``/``"closed"``, any case).

        Returns
        -------
        AsyncStatus
            Done when the status PV reports the requested state.

        Raises
        ------
        ValueError
            If ``value`` is anything else (raised before anything is written).
        """
        target = shutter_target(self.name, value)
        return AsyncStatus(self._move(target), name=self.name)

    async def _move(self, target: str) -> None:
        wanted = self.open_value if target == "open" else self.closed_value
        if await self.status.get_value() == wanted:
            return
        command = self.open_command if target == "open" else self.close_command
        try:
            # Monitors the status PV before the command is written.
            await set_and_wait_for_other_value(command, self.command_value, self.status,
                                               wanted, timeout=self.timeout,
                                               wait_for_set_completion=False)
        except TimeoutError as exc:
            raise TimeoutError(f"shutter {self.name!r} did not report {target} "
                               f"({self.status.source} == {wanted}) within {self.timeout} s"
                               ) from exc
        if self.settle_time:
            await asyncio.sleep(self.settle_time)

    async def stop(self, success: bool = False) -> None:
        """Nothing to stop: a shutter command cannot be interrupted."""
