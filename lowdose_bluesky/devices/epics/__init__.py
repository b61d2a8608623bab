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

The ophyd-async twin (imported on first use, it needs ``ophyd-async``) is configured by
the same YAML file or ``LOWDOSE_PV_*`` variables::

    from lowdose_bluesky.devices.epics import emulate_ioc_async, make_epics_txm_async
    RE = RunEngine()                      # the devices connect in its event loop
    txm = make_epics_txm_async("pvs.yaml", mock=True, path_provider=data_dir)
    emulate_ioc_async(txm, data_dir)      # mock signals answer like the IOCs
"""

from importlib import import_module
from pathlib import Path
from typing import Any

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

#: ophyd-async names, by the module that defines them (imported on first use).
_ASYNC_NAMES: dict[str, str] = {
    "AsyncIOCEmulator": "async_ioc",
    "CameraPathProvider": "async_detector",
    "EpicsTXMAsync": "async_txm",
    "TXMDetectorAsync": "async_detector",
    "TXMShutterAsync": "async_shutter",
    "TXMTriggerLogic": "async_detector",
    "emulate_ioc_async": "async_ioc",
    "make_epics_txm_async": "async_txm",
}


def __getattr__(name: str) -> Any:
    """Import the ophyd-async names on first use (PEP 562)."""
    module = _ASYNC_NAMES.get(name)
    if module is None:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    value = getattr(import_module(f".{module}", __name__), name)
    globals()[name] = value
    return value


__all__ = [
    "ENV_CONFIG_FILE",
    "ENV_VARIABLES",
    "EXAMPLE_CONFIG",
    "SHUTTER_STATES",
    "AsyncIOCEmulator",
    "CameraConfig",
    "CameraPathProvider",
    "EpicsConfigError",
    "EpicsTXM",
    "EpicsTXMAsync",
    "EpicsTXMConfig",
    "ExposureTimeSignal",
    "FakeIOC",
    "MotorConfig",
    "ShutterConfig",
    "TXMDetector",
    "TXMDetectorAsync",
    "TXMHDF5Plugin",
    "TXMShutter",
    "TXMShutterAsync",
    "TXMTriggerLogic",
    "emulate_ioc",
    "emulate_ioc_async",
    "load_epics_config",
    "make_epics_txm",
    "make_epics_txm_async",
    "make_motor",
]
