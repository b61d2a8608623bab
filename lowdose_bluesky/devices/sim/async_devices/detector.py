"""The simulated TXM camera as an ophyd-async ``StandardDetector``."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
from ophyd_async.core import PathProvider, soft_signal_rw

from ..counting import CountingModel, simulation_metadata
from ..optics import SimOptics
from .acquisition import FrameAcquisition
from .clock import SimClock
from .file_detector import SimFileDetector
from .logics import ANGLE_SUFFIX, SimTXMAcquireLogic, SimTXMDataLogic, SimTXMTriggerLogic

__all__ = ["SimTXMDetector"]


class SimTXMDetector(SimFileDetector):
    """Simulated TXM camera: the photon counting of ``SimCamera``, timed on a clock.

    Step scans: ``prepare(TriggerInfo(livetime=t))`` then ``trigger()`` takes one
    frame at the current angle, sample position and shutter state (a dark frame with
    the shutter closed). Fly scans: ``prepare(TriggerInfo(number_of_events=N,
    livetime=t, deadtime=d))``, ``kickoff()``, ``complete()`` take ``N`` frames
    exposed ``t + max(d, readout_time)`` apart from the detector's kickoff, each
    blurred over the arc the rotation stage turns during its exposure. Each
    ``stage()`` opens a new SWMR HDF5 file (``data_dir/YYYY/MM/DD/<uuid>.h5``) with
    the frames (data key ``<name>``, the only hinted one) and the rotation angle at
    mid-exposure of each (data key ``<name>-rotation``).

    Parameters
    ----------
    optics
        What the camera sees.
    rotation
        Rotation stage with ``position_at(t)`` (e.g. a
        :class:`~lowdose_bluesky.devices.sim.async_devices.SimAxis`).
    counting
        Photon counting (sensor and frame shapes, blur, binning, flux, noise, flat
        field, seed).
    clock
        Time of the simulation (default: the rotation's clock, else a virtual one).
    data_dir
        Root of the dated directories of the files (with ``path_provider`` None).
    path_provider
        Where each new file goes (default: :class:`DatedPathProvider` of ``data_dir``).
    readout_time
        Seconds between exposures at least; the reported trigger dead time.
    blur_samples
        Angles averaged per frame for the motion blur of a fly scan.
    exposure_time
        Initial exposure in seconds.
    name
        Device name, the frames' data key.
    """

    def __init__(self, *, optics: SimOptics, rotation: Any, counting: CountingModel,
                 clock: SimClock | None = None, data_dir: str | Path | None = None,
                 path_provider: PathProvider | None = None, readout_time: float = 0.005,
                 blur_samples: int = 3, exposure_time: float = 1.0, name: str = "det") -> None:
        path_provider, clock = self.resolve_file_args(
            data_dir=data_dir, path_provider=path_provider, readout_time=readout_time,
            clock=clock, stage=rotation)
        self.exposure_time = soft_signal_rw(float, float(exposure_time), units="s")
        set_written = self.make_file_signals(readout_time)
        self.clock = clock
        self.counting = counting
        self.optics = optics
        self.init_file_detector(
            FrameAcquisition(counting=counting, optics=optics, rotation=rotation, clock=clock,
                             exposure_time=self.exposure_time, set_written=set_written,
                             blur_samples=blur_samples),
            self.exposure_time, path_provider, trigger_logic=SimTXMTriggerLogic,
            acquire_logic=SimTXMAcquireLogic, data_logic=SimTXMDataLogic, name=name)

    @property
    def angle_data_key(self) -> str:
        """Data key of the rotation angle recorded with every frame."""
        return f"{self.name}{ANGLE_SUFFIX}"

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
    def rotation(self) -> Any:
        """The rotation stage whose angles the frames see."""
        return self._acquisition.rotation

    @property
    def blur_samples(self) -> int:
        """Angles averaged per frame."""
        return self._acquisition.blur_samples

    @property
    def flux(self) -> float:
        """Open-beam counts per sensor pixel per second at the flat-field maximum."""
        return self.counting.flux

    @property
    def dark_current(self) -> float:
        """Dark counts per frame pixel per second."""
        return self.counting.dark_current

    @property
    def read_noise(self) -> float:
        """Standard deviation (counts) of the Gaussian read noise."""
        return self.counting.read_noise

    @property
    def seed(self) -> int | None:
        """Seed of the noise and of the default flat field."""
        return self.counting.seed

    @property
    def flat_field(self) -> np.ndarray:
        """Beam profile ``(H, W)`` on the sensor grid (``float32``)."""
        return self.counting.flat_field

    def start_metadata(self) -> dict[str, Any]:
        """Simulation facts for the run's start document (as ``SimCamera``'s)."""
        return simulation_metadata(self.counting, self.optics)
