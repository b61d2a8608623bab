"""Simulated TXM devices for tests, demos and CI: ophyd (v1) or ophyd-async.

``make_sim_txm(flavour="ophyd")`` builds the ophyd devices defined here;
``make_sim_txm(flavour="ophyd-async")`` builds those of
:mod:`lowdose_bluesky.devices.sim.async_devices` (imported on demand). Both count
photons with the same :class:`CountingModel`.
"""

from .camera import SimCamera
from .counting import CountingModel, smooth_flat_field
from .optics import SimOptics
from .shutter import SimShutter
from .txm import FLAVOURS, SimTXM, make_sim_txm

__all__ = ["FLAVOURS", "CountingModel", "SimCamera", "SimOptics", "SimShutter", "SimTXM",
           "make_sim_txm", "smooth_flat_field"]
