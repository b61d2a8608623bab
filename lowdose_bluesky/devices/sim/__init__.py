"""Simulated TXM devices (ophyd v1) for tests, demos and CI."""

from .camera import SimCamera, smooth_flat_field
from .optics import SimOptics
from .shutter import SimShutter
from .txm import SimTXM, make_sim_txm

__all__ = ["SimCamera", "SimOptics", "SimShutter", "SimTXM", "make_sim_txm", "smooth_flat_field"]
