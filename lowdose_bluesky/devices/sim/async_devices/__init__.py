"""The simulated TXM as ophyd-async devices, timed on a :class:`SimClock`.

Built by ``make_sim_txm(..., flavour="ophyd-async")`` once a ``RunEngine`` exists.
The camera counts photons with the same
:class:`~lowdose_bluesky.devices.sim.CountingModel` as the ophyd ``SimCamera``.
"""

from .acquisition import FrameAcquisition
from .axis import SimAxis
from .clock import SimClock
from .detector import SimTXMDetector
from .factory import build_async_devices, require_bluesky_loop
from .frame_file import ROTATION_DATASET, DatedPathProvider, TXMFrameFile
from .logics import ANGLE_SUFFIX, SimTXMAcquireLogic, SimTXMDataLogic, SimTXMTriggerLogic
from .optics import AsyncSimOptics
from .profile import MotionProfile
from .shutter import SimAsyncShutter

__all__ = [
    "ANGLE_SUFFIX",
    "ROTATION_DATASET",
    "AsyncSimOptics",
    "DatedPathProvider",
    "FrameAcquisition",
    "MotionProfile",
    "SimAsyncShutter",
    "SimAxis",
    "SimClock",
    "SimTXMAcquireLogic",
    "SimTXMDataLogic",
    "SimTXMDetector",
    "SimTXMTriggerLogic",
    "TXMFrameFile",
    "build_async_devices",
    "require_bluesky_loop",
]
