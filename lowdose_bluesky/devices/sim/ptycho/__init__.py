"""A simulated scanning ptychography setup as ophyd-async devices.

Built by :func:`make_sim_ptycho` once a ``RunEngine`` exists: a far-field pixel
detector that also records the stage positions, two scan stages and a shutter, on a
:class:`~lowdose_bluesky.devices.sim.async_devices.SimClock`. The physics is
:mod:`lowdose_bluesky.ptycho`.
"""

from .acquisition import PatternAcquisition
from .counting import PtychoCounting
from .detector import SimPtychoDetector
from .logics import X_SUFFIX, Y_SUFFIX, PatternDataLogic
from .pattern_file import X_DATASET, Y_DATASET, PatternFile
from .ptychoscope import PROBE_DATASET, SimPtycho, make_sim_ptycho

__all__ = [
    "PROBE_DATASET",
    "X_DATASET",
    "X_SUFFIX",
    "Y_DATASET",
    "Y_SUFFIX",
    "PatternAcquisition",
    "PatternDataLogic",
    "PatternFile",
    "PtychoCounting",
    "SimPtycho",
    "SimPtychoDetector",
    "make_sim_ptycho",
]
