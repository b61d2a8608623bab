"""A simulated scanning X-ray fluorescence (XRF) microprobe as ophyd-async devices.

Built by :func:`make_sim_xrf` once a ``RunEngine`` exists: a multi-element
fluorescence detector that also records the incident flux (I0), the transmitted
beam and the stage positions, two scan stages and a shutter, on a
:class:`~lowdose_bluesky.devices.sim.async_devices.SimClock`. The physics is
:mod:`lowdose_bluesky.xrf`.
"""

from .acquisition import XRFAcquisition
from .detector import SimXRFDetector
from .logics import (
    I0_SUFFIX,
    TRANSMISSION_SUFFIX,
    X_SUFFIX,
    Y_SUFFIX,
    XRFAcquireLogic,
    XRFDataLogic,
    XRFTriggerLogic,
)
from .microprobe import SimXRF, make_sim_xrf, require_bluesky_loop
from .spectrum_file import (
    I0_DATASET,
    TRANSMISSION_DATASET,
    X_DATASET,
    Y_DATASET,
    XRFSpectrumFile,
)

__all__ = [
    "I0_DATASET",
    "I0_SUFFIX",
    "TRANSMISSION_DATASET",
    "TRANSMISSION_SUFFIX",
    "X_DATASET",
    "X_SUFFIX",
    "Y_DATASET",
    "Y_SUFFIX",
    "SimXRF",
    "SimXRFDetector",
    "XRFAcquireLogic",
    "XRFAcquisition",
    "XRFDataLogic",
    "XRFSpectrumFile",
    "XRFTriggerLogic",
    "make_sim_xrf",
    "require_bluesky_loop",
]
