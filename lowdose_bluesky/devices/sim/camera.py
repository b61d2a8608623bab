"""A simulated TXM area detector: noisy frames written to HDF5 like an AreaDetector.

The counts follow :mod:`lowdose_bluesky.devices.sim.counting` (Gaussian blur of the
lens-coupled optics, binning, Poisson photon counts, dark current, read noise,
``uint16`` saturation) for the line integrals through the phantom at the current
stage positions, supplied by a :class:`~lowdose_bluesky.devices.sim.optics.SimOptics`.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
from ophyd import Component as Cpt
from ophyd import Device, Kind, Signal
from ophyd.status import DeviceStatus

from ..hdf5_frames import HDF5FrameWriter
from .counting import CountingModel, simulation_metadata, transmission
from .optics import SimOptics

__all__ = ["SimCamera"]


class _ImageSignal(Signal):
    """Holds the datum id of the latest frame; describes the frame it points to."""

    def describe(self) -> dict[str, dict[str, Any]]:
        desc = super().describe()
        cam = self.parent
        desc[self.name].update(
            shape=list(cam.frame_shape), dtype="array", dtype_numpy=np.dtype("<u2").str,
            external="FILESTORE:", source=f"SIM:{cam.name}:image",
        )
        return desc


class SimCamera(Device):
    """Simulated area detector with an ``exposure_time`` (seconds).

    Frames go to one HDF5 file per ``stage()`` (dataset ``entry/data/data``), announced
    by ``AD_HDF5`` Resource and Datum documents. Never puts arrays in events.

    Parameters
    ----------
    optics
        What the camera sees: beam on/off and line integrals for the current positions.
    sensor_shape
        ``(H, W)`` of the sensor (the projections' grid); frames are
        ``(H // binning, W // binning)``.
    flux
        Counts per sensor pixel per second of open beam at the flat-field maximum.
    dark_current
        Counts per frame (binned) pixel per second with the shutter closed.
    read_noise
        Standard deviation (counts) of the Gaussian read noise of a frame pixel.
    data_dir
        Directory of the HDF5 files.
    realistic_timing
        If true, ``trigger()`` completes only after the exposure time has elapsed.
    seed
        Seed of the noise generator.
    flat_field
        Beam profile ``(H, W)`` on the sensor grid (default: a smooth one of ``seed``).
    psf_sigma_px
        Standard deviation (sensor pixels) of the Gaussian blur of scintillator and
        objective (0: none).
    binning
        Sensor pixels summed per frame pixel along each axis (1: none).
    """

    image = Cpt(_ImageSignal, value="", kind=Kind.normal)
    exposure_time = Cpt(Signal, value=1.0, kind=Kind.normal | Kind.config)

    def __init__(self, prefix: str = "", *, name: str, optics: SimOptics,
                 sensor_shape: tuple[int, int], flux: float, dark_current: float,
                 read_noise: float, data_dir: str | Path, realistic_timing: bool = False,
                 seed: int | None = None, flat_field: np.ndarray | None = None,
                 psf_sigma_px: float = 0.0, binning: int = 1, **kwargs: Any) -> None:
        counting = CountingModel(sensor_shape, flux=flux, dark_current=dark_current,
                                 read_noise=read_noise, seed=seed, flat_field=flat_field,
                                 name=name, psf_sigma_px=psf_sigma_px, binning=binning)
        super().__init__(prefix, name=name, **kwargs)
        self.optics = optics
        self.counting = counting
        self.data_dir = Path(data_dir)
        self.realistic_timing = bool(realistic_timing)
        self._writer: HDF5FrameWriter | None = None
        self._lock = threading.Lock()

    # ------------------------------------------------------------- physics
    @property
    def frame_shape(self) -> tuple[int, int]:
        """``(H, W)`` of a frame: the sensor's shape divided by :attr:`binning`."""
        return self.counting.frame_shape

    @property
    def sensor_shape(self) -> tuple[int, int]:
        """``(H, W)`` of the sensor, the grid of the projections and the flat field."""
        return self.counting.sensor_shape

    @property
    def psf_sigma_px(self) -> float:
        """Standard deviation (sensor pixels) of the Gaussian blur (0: none)."""
        return self.counting.psf_sigma_px

    @property
    def binning(self) -> int:
        """Sensor pixels summed per frame pixel along each axis."""
        return self.counting.binning

    @property
    def flux(self) -> float:
        """Open-beam counts per sensor pixel per second at the flat-field maximum."""
        return self.counting.flux

    @flux.setter
    def flux(self, value: float) -> None:
        self.counting.flux = float(value)

    @property
    def dark_current(self) -> float:
        """Dark counts per frame pixel per second."""
        return self.counting.dark_current

    @dark_current.setter
    def dark_current(self, value: float) -> None:
        self.counting.dark_current = float(value)

    @property
    def read_noise(self) -> float:
        """Standard deviation (counts) of the Gaussian read noise."""
        return self.counting.read_noise

    @read_noise.setter
    def read_noise(self, value: float) -> None:
        self.counting.read_noise = float(value)

    @property
    def seed(self) -> int | None:
        """Seed of the noise and of the default flat field."""
        return self.counting.seed

    @property
    def flat_field(self) -> np.ndarray:
        """Beam profile ``(H, W)`` on the sensor grid (``float32``)."""
        return self.counting.flat_field

    @flat_field.setter
    def flat_field(self, value: np.ndarray) -> None:
        self.counting.flat_field = np.asarray(value, dtype=np.float32)

    def expected_counts(self, exposure: float) -> np.ndarray:
        """Mean photon counts per frame pixel for the current beam state (no noise, no dark)."""
        line_integral = self.optics.line_integrals()
        transmitted = None if line_integral is None else transmission(line_integral,
                                                                      self.optics.mu)
        return self.counting.expected_counts(exposure, transmitted)

    def acquire_frame(self, exposure: float) -> np.ndarray:
        """Draw one noisy ``uint16`` frame for the current beam state."""
        return self.counting.draw(self.expected_counts(exposure), exposure)

    # -------------------------------------------------------- bluesky protocol
    def stage(self) -> list[Any]:
        """Open a new HDF5 file (one resource per stage, frames from index 0)."""
        staged = super().stage()
        with self._lock:
            self._writer = HDF5FrameWriter(self.data_dir, self.frame_shape,
                                           subdir=time.strftime("%Y/%m/%d"))
        return staged

    def unstage(self) -> list[Any]:
        """Close the current HDF5 file."""
        with self._lock:
            if self._writer is not None:
                self._writer.close()
                self._writer = None
        return super().unstage()

    def trigger(self) -> DeviceStatus:
        """Acquire one frame at the current exposure time and write it to the file."""
        status = DeviceStatus(self)
        if self._writer is None:
            status.set_exception(RuntimeError(
                f"{self.name} is not staged: stage it so that frames have a file to go to"))
            return status
        exposure = float(self.exposure_time.get())
        try:
            frame = self.acquire_frame(exposure)
            with self._lock:
                datum_id = self._writer.write(frame)
            self.image.put(datum_id)
        except Exception as exc:  # report through the status, as hardware would
            status.set_exception(exc)
            return status
        if self.realistic_timing and exposure > 0:
            timer = threading.Timer(exposure, status.set_finished)
            timer.daemon = True
            timer.start()
        else:
            status.set_finished()
        return status

    def collect_asset_docs(self) -> Iterator[tuple[str, dict[str, Any]]]:
        """Yield the Resource/Datum documents of frames written since the last call."""
        if self._writer is not None:
            yield from self._writer.collect_asset_docs()

    @property
    def current_file(self) -> Path | None:
        """Path of the HDF5 file being written, if staged."""
        return None if self._writer is None else self._writer.path

    def start_metadata(self) -> dict[str, Any]:
        """Simulation facts for the run's start document."""
        return simulation_metadata(self.counting, self.optics)
