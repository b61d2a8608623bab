"""Factory for a simulated scanning ptychography setup."""

from __future__ import annotations

import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import h5py
import numpy as np
from bluesky.run_engine import get_bluesky_event_loop
from ophyd_async.core import init_devices

from ....ptycho import check_object, check_probe, focused_probe, test_object
from ..async_devices import SimAsyncShutter, SimAxis, SimClock
from ..async_devices.loop import require_running_loop
from .counting import PtychoCounting
from .detector import SimPtychoDetector

__all__ = ["PROBE_DATASET", "SimPtycho", "make_sim_ptycho"]

#: Dataset of the probe in the probe file.
PROBE_DATASET = "probe"


@dataclass
class SimPtycho:
    """The simulated ptychography setup: detector, stages, shutter and the true object.

    Attributes
    ----------
    detector
        Far-field pixel detector (also records the stage positions).
    x, y
        Scan stages, µm; stage ``(x, y)`` puts the probe window's top-left corner on
        object pixel ``(y / pixel_size_um, x / pixel_size_um)``.
    shutter
        Beam shutter (closed at start).
    obj
        The true complex object ``(H, W)``.
    probe
        The complex probe (the pattern shape).
    probe_file
        HDF5 file holding the probe (dataset :data:`PROBE_DATASET`).
    data_dir
        Root of the HDF5 files.
    pixel_size_um
        Object pixel size, µm.
    clock
        Time of the simulation.
    """

    detector: SimPtychoDetector
    x: SimAxis
    y: SimAxis
    shutter: SimAsyncShutter
    obj: np.ndarray
    probe: np.ndarray
    probe_file: Path
    data_dir: Path
    pixel_size_um: float
    clock: SimClock

    @property
    def devices(self) -> dict[str, Any]:
        """The devices by the argument names of ``lowdose_ptycho_plan``."""
        return {"detector": self.detector, "x": self.x, "y": self.y, "shutter": self.shutter}


def make_sim_ptycho(obj: np.ndarray | None = None, *, probe: np.ndarray | None = None,
                    pattern_shape: tuple[int, int] = (64, 64), photons: float = 1e7,
                    pixel_size_um: float = 0.05, seed: int | None = None,
                    data_dir: str | Path | None = None, realistic_timing: bool = False,
                    detector_name: str = "pixel") -> SimPtycho:
    """Build a simulated ptychography setup (ophyd-async devices).

    Parameters
    ----------
    obj
        Complex transmission function ``(H, W)`` (amplitude <= 1, phase in radians)
        on a grid finer than the scan, or ``None`` for
        :func:`~lowdose_bluesky.ptycho.test_object` (seeded by ``seed``).
    probe
        Complex probe of ``pattern_shape``, or ``None`` for
        :func:`~lowdose_bluesky.ptycho.focused_probe` (a zone-plate focus with its
        rings, 3/8 of the window across).
    pattern_shape
        ``(H, W)`` of a diffraction pattern, pixels (the probe's shape).
    photons
        Photons per second in the probe: a pattern of a transparent object holds
        ``photons * exposure`` counts on average (1e5 at the plan's 10 ms).
    pixel_size_um
        Object pixel size, µm (the stages move in µm).
    seed
        Seeds the default object and the Poisson noise.
    data_dir
        Directory of the HDF5 files and the probe file (default: a new temporary one).
    realistic_timing
        Time moves and exposures on the real clock instead of a virtual one.
    detector_name
        Name of the detector, the patterns' data key.

    Returns
    -------
    SimPtycho

    Raises
    ------
    ValueError
        For an invalid argument (a probe that does not fit the pattern shape, photons
        <= 0, ...), naming it.
    RuntimeError
        When no ``RunEngine`` runs bluesky's event loop.
    """
    require_running_loop(
        get_bluesky_event_loop(),
        "the simulated ptychography setup connects its ophyd-async devices on bluesky's "
        "event loop, which is not running: create the RunEngine first (RE = RunEngine()), "
        "then call make_sim_ptycho(...)")
    try:
        shape = (int(pattern_shape[0]), int(pattern_shape[1]))
    except (TypeError, ValueError, IndexError):
        raise ValueError(f"pattern_shape must be (H, W), got {pattern_shape!r}") from None
    if len(pattern_shape) != 2 or min(shape) < 8:
        raise ValueError(f"pattern_shape must be (H, W) of at least 8 x 8, got "
                         f"{pattern_shape!r}")
    # the probe's focus spans 3/8 of the window (24 of 64 pixels); a smaller window
    # takes less defocus (a focus of a few pixels cannot carry 2 waves of it)
    size = min(shape)
    probe = (focused_probe(shape, diameter_px=0.375 * size,
                           defocus=min(2.0, 2.0 * (size / 64) ** 2))
             if probe is None else check_probe(probe, shape))
    if obj is None:
        obj = test_object(seed=seed)
        description: dict[str, Any] = {"name": "test_object", "seed": seed,
                                       "description": "etched features of 1-8 px and a "
                                       "textured region"}
    else:
        obj = check_object(obj)
        description = {"name": "user object"}
    description["shape"] = list(obj.shape)
    counting = PtychoCounting(obj, probe, flux=photons, pixel_size_um=pixel_size_um, seed=seed)
    data_path = Path(data_dir) if data_dir is not None else Path(
        tempfile.mkdtemp(prefix="lowdose_ptycho_"))
    data_path.mkdir(parents=True, exist_ok=True)
    probe_file = (data_path / "probe.h5").resolve()
    with h5py.File(probe_file, "w") as f:
        f.create_dataset(PROBE_DATASET, data=counting.probe)
    clock = SimClock(realistic_timing=realistic_timing)
    with init_devices():
        x = SimAxis("sample_x", clock=clock, units="um", velocity=100.0, max_velocity=1000.0,
                    acceleration_time=0.01, update_period=0.01)
        y = SimAxis("sample_y", clock=clock, units="um", velocity=100.0, max_velocity=1000.0,
                    acceleration_time=0.01, update_period=0.01)
        shutter = SimAsyncShutter("shutter")
        detector = SimPtychoDetector(counting=counting, x=x, y=y, shutter=shutter,
                                     clock=clock, data_dir=data_path, probe_file=probe_file,
                                     sample_description=description, name=detector_name)
    return SimPtycho(detector=detector, x=x, y=y, shutter=shutter, obj=counting.obj,
                     probe=counting.probe, probe_file=probe_file,
                     data_dir=data_path.resolve(), pixel_size_um=float(pixel_size_um),
                     clock=clock)
