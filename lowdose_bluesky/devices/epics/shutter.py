"""An APS-style beam shutter: ``Open``/``Close`` command PVs and a status PV."""

from __future__ import annotations

from typing import Any

from ophyd import Device, EpicsSignal, EpicsSignalRO, Kind
from ophyd import FormattedComponent as FCpt
from ophyd.status import DeviceStatus, StatusBase, SubscriptionStatus

__all__ = ["SHUTTER_STATES", "TXMShutter", "shutter_target"]


#: Values accepted by :meth:`TXMShutter.set` and the state each one requests.
SHUTTER_STATES: dict[str, str] = {
    "open": "open", "opened": "open",
    "close": "closed", "closed": "closed",
}


def shutter_target(name: str, value: Any) -> str:
    """``"open"`` or ``"closed"`` for a command ``value``; ``ValueError`` for anything else."""
    target = SHUTTER_STATES.get(value.lower()) if isinstance(value, str) else None
    if target is None:
        raise ValueError(f"shutter {name!r} accepts {', '.join(map(repr, SHUTTER_STATES))}, "
                         f"got {value!r}")
    return target


class TXMShutter(Device):
    """Beam shutter driven like the APS PSS shutters (``32idb:rshtrB:Open`` / ``...:Close``).

    ``set("open")`` writes ``command_value`` to ``open_signal``; ``set("close")`` writes it
    to ``close_signal``. The returned status completes when ``status`` reports
    ``open_value`` (or ``closed_value``), and fails after ``timeout`` seconds otherwise.
    If the shutter already is in the requested state, nothing is written and the status
    is already done.

    Parameters
    ----------
    prefix
        Unused (the PVs are given in full); kept for the ophyd signature.
    open_pv, close_pv, status_pv
        Full names of the command and status PVs.
    name
        ophyd name.
    command_value
        Value written to a command PV.
    open_value, closed_value
        Values of the status PV when the shutter is open or closed.
    timeout
        Seconds to wait for the status PV.
    settle_time
        Seconds to wait after the status PV has reported the requested state.
    **kwargs
        Passed on to :class:`ophyd.Device`.
    """

    open_signal = FCpt(EpicsSignal, "{_open_pv}", kind=Kind.omitted)
    close_signal = FCpt(EpicsSignal, "{_close_pv}", kind=Kind.omitted)
    status = FCpt(EpicsSignalRO, "{_status_pv}", kind=Kind.hinted, auto_monitor=True)

    def __init__(self, prefix: str = "", *, open_pv: str, close_pv: str, status_pv: str,
                 name: str, command_value: int = 1, open_value: int = 1,
                 closed_value: int = 0, timeout: float = 20.0, settle_time: float = 0.0,
                 **kwargs: Any) -> None:
        if open_value == closed_value:
            raise ValueError(f"open_value and closed_value must differ, both are {open_value!r}")
        self._open_pv = open_pv
        self._close_pv = close_pv
        self._status_pv = status_pv
        super().__init__(prefix, name=name, **kwargs)
        self.command_value = command_value
        self.open_value = open_value
        self.closed_value = closed_value
        self.timeout = float(timeout)
        self.settle_time = float(settle_time)

    @property
    def state(self) -> str:
        """``"open"``, ``"closed"`` or ``"unknown"`` (any other status value)."""
        value = self.status.get()
        if value == self.open_value:
            return "open"
        if value == self.closed_value:
            return "closed"
        return "unknown"

    def set(self, value: Any) -> StatusBase:
        """Open or close the shutter.

        Parameters
        ----------
        value
            ``"open"`` or ``"close"`` (also ``"opened"``/``"closed"``, any case).

        Returns
        -------
        StatusBase
            Done when the status PV reports the requested state.

        Raises
        ------
        ValueError
            If ``value`` is anything else (raised before anything is written).
        """
        target = shutter_target(self.name, value)
        wanted = self.open_value if target == "open" else self.closed_value
        if self.status.get() == wanted:
            done = DeviceStatus(self)
            done.set_finished()
            return done
        # Subscribed before the command is written; run=True also catches a status that
        # changed between the check above and the subscription.
        status = SubscriptionStatus(self.status, lambda value, **_: value == wanted,
                                    timeout=self.timeout, settle_time=self.settle_time,
                                    run=True)
        command = self.open_signal if target == "open" else self.close_signal
        try:
            command.put(self.command_value, wait=False)
        except Exception as exc:  # report through the status, as a failed move would
            status.set_exception(exc)
        return status

    def stop(self, *, success: bool = False) -> None:
        """Nothing to stop: a shutter command cannot be interrupted."""
