"""What the simulated ophyd-async camera sees, read from the ophyd-async stages."""

from __future__ import annotations

from ..optics import SimOptics

__all__ = ["AsyncSimOptics"]


class AsyncSimOptics(SimOptics):
    """:class:`~lowdose_bluesky.devices.sim.SimOptics` for the ophyd-async devices.

    Reads the latest readbacks synchronously: ``position`` of the
    :class:`~lowdose_bluesky.devices.sim.async_devices.SimAxis` stages (as an ophyd
    positioner's) and ``is_open`` of the
    :class:`~lowdose_bluesky.devices.sim.async_devices.SimAsyncShutter`, whose
    ``state`` is an ophyd-async signal without a synchronous ``get()``.
    """

    def beam_open(self) -> bool:
        """Whether the shutter lets the beam through."""
        return self.shutter is None or bool(self.shutter.is_open)
