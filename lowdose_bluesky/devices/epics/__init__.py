"""EPICS devices of a transmission X-ray microscope (APS 32-ID style), for real beamtime.

Classes mirror the simulated twin :mod:`lowdose_bluesky.devices.sim`, so
:func:`~lowdose_bluesky.plans.lowdose_tomo_plan` runs on either unchanged::

    from lowdose_bluesky.devices.epics import make_epics_txm
    txm = make_epics_txm("pvs.yaml")          # or None: LOWDOSE_PV_* variables
    RE(lowdose_tomo_plan(txm.detector, txm.rotation, sample_x=txm.sample_x,
                         shutter=txm.shutter))

``make_epics_txm(config, fake=True)`` builds the same classes on ophyd's fake
signals, and :func:`emulate_ioc` gives those the responses of an IOC (moves that
complete, a shutter status that follows its commands, HDF5 frames written), for
tests and dry runs without EPICS.
"""

from pathlib import Path

from .camera import ExposureTimeSignal, TXMDetector, TXMHDF5Plugin
from .config import (
    ENV_CONFIG_FILE,
    ENV_VARIABLES,
    CameraConfig,
    EpicsConfigError,
    EpicsTXMConfig,
    MotorConfig,
    ShutterConfig,
    load_epics_config,
)
from .fake_ioc import FakeIOC, emulate_ioc
from .motors import make_motor
from .shutter import SHUTTER_STATES, TXMShutter
from .txm import EpicsTXM, make_epics_txm

#: The example configuration shipped with the package (APS 32-ID TXM PV names).
EXAMPLE_CONFIG = Path(__file__).with_name("example_pvs.yaml")

__all__ = [
    "ENV_CONFIG_FILE",
    "ENV_VARIABLES",
    "EXAMPLE_CONFIG",
    "SHUTTER_STATES",
    "CameraConfig",
    "EpicsConfigError",
    "EpicsTXM",
    "EpicsTXMConfig",
    "ExposureTimeSignal",
    "FakeIOC",
    "MotorConfig",
    "ShutterConfig",
    "TXMDetector",
    "TXMHDF5Plugin",
    "TXMShutter",
    "emulate_ioc",
    "load_epics_config",
    "make_epics_txm",
    "make_motor",
]
