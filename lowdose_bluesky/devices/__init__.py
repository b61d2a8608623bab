"""Beamline devices: simulated twins (``devices.sim``) and EPICS classes."""

from .hdf5_frames import DATASET, HDF5FrameWriter

__all__ = ["DATASET", "HDF5FrameWriter"]
