"""The simulated ptychography pixel detector as an ophyd-async ``StandardDetector``."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from ophyd_async.core import PathProvider, soft_signal_rw

from ....ptycho import probe_diameter_px
from ..async_devices import SimClock
from ..async_devices.file_detector import SimFileDetector
from ..async_devices.file_logics import TaskAcquireLogic, TimedTriggerLogic
from .acquisition import PatternAcquisition
from .counting import PtychoCounting
from .logics import X_SUFFIX, Y_SUFFIX, PatternDataLogic

__all__ = ["SimPtychoDetector"]


class SimPtychoDetector(SimFileDetector):
    """Simulated far-field pixel detector of a ptychography scan.

    Step scans: ``prepare(TriggerInfo(livetime=t))`` then each ``trigger()`` takes one
    diffraction pattern where the x and y stages hold the object (all zeros with the
    shutter closed). Each ``stage()`` + ``prepare()`` opens a new SWMR HDF5 file
    (``data_dir/YYYY/MM/DD/<uuid>.h5``, see
    :class:`~lowdose_bluesky.devices.sim.ptycho.PatternFile`), announced by
    StreamResource/StreamDatum documents: data keys ``<name>`` (patterns, the only
    hinted one), ``<name>-x`` and ``<name>-y`` (µm).

    Parameters
    ----------
    counting
        The patterns' physics (object, probe, flux, object pixel size).
    x, y
        Scan stages with ``position_at(t)`` in µm.
    shutter
        Beam shutter with ``is_open`` (``None``: beam always on).
    clock
        Time of the simulation (default: the x stage's clock, else a virtual one).
    data_dir
        Root of the dated directories of the files (with ``path_provider`` None).
    path_provider
        Where each new file goes.
    readout_time
        Least seconds between exposures; the reported trigger dead time.
    exposure_time
        Initial exposure per pattern, seconds.
    probe_file
        HDF5 file holding the probe (dataset ``probe``), named in :meth:`start_metadata`.
    energy_kev, distance_m, detector_pixel_um
        Beam energy and geometry, for the metadata.
    sample_description
        What the object is, for :meth:`start_metadata`.
    name
        Device name, the patterns' data key.
    """

    def __init__(self, *, counting: PtychoCounting, x: Any, y: Any, shutter: Any = None,
                 clock: SimClock | None = None, data_dir: str | Path | None = None,
                 path_provider: PathProvider | None = None, readout_time: float = 0.0,
                 exposure_time: float = 0.01, probe_file: str | Path | None = None,
                 energy_kev: float = 8.8, distance_m: float = 2.0,
                 detector_pixel_um: float = 75.0,
                 sample_description: dict[str, Any] | None = None,
                 name: str = "pixel") -> None:
        path_provider, clock = self.resolve_file_args(
            data_dir=data_dir, path_provider=path_provider, readout_time=readout_time,
            clock=clock, stage=x)
        self.exposure_time = soft_signal_rw(float, float(exposure_time), units="s")
        set_written = self.make_file_signals(readout_time)
        self.clock = clock
        self.counting = counting
        self.probe_file = None if probe_file is None else Path(probe_file).resolve()
        self.energy_kev = float(energy_kev)
        self.distance_m = float(distance_m)
        self.detector_pixel_um = float(detector_pixel_um)
        self.sample_description = dict(sample_description or {"name": "user object"})
        self.init_file_detector(
            PatternAcquisition(counting=counting, x=x, y=y, shutter=shutter, clock=clock,
                               exposure_time=self.exposure_time, set_written=set_written),
            self.exposure_time, path_provider, trigger_logic=TimedTriggerLogic,
            acquire_logic=TaskAcquireLogic, data_logic=PatternDataLogic, name=name)

    @property
    def position_data_keys(self) -> tuple[str, str]:
        """Data keys of the x and y positions (µm) recorded with each pattern."""
        return f"{self.name}{X_SUFFIX}", f"{self.name}{Y_SUFFIX}"

    @property
    def pattern_shape(self) -> tuple[int, int]:
        """``(H, W)`` of a pattern."""
        return self.counting.pattern_shape

    @property
    def pixel_size_um(self) -> float:
        """Object pixel size, µm (stage travel of one pixel)."""
        return self.counting.pixel_size_um

    @property
    def probe_diameter_um(self) -> float:
        """Diameter of the circle holding 90 % of the probe's intensity, µm."""
        return probe_diameter_px(self.counting.probe) * self.counting.pixel_size_um

    def position_limits_um(self) -> tuple[tuple[float, float], tuple[float, float]]:
        """``((x_min, x_max), (y_min, y_max))`` µm that keep the probe on the object."""
        return self.counting.position_limits_um()

    def start_metadata(self) -> dict[str, Any]:
        """Simulation facts for the run's start document (JSON-serialisable)."""
        return {"simulation": {
            "kind": "ptychography",
            "energy_kev": self.energy_kev,
            "distance_m": self.distance_m,
            "detector_pixel_um": self.detector_pixel_um,
            "probe_file": None if self.probe_file is None else str(self.probe_file),
            "sample": self.sample_description,
            **self.counting.describe(),
        }}
