"""Factory for a simulated scanning X-ray fluorescence (XRF) microprobe."""

from __future__ import annotations

import tempfile
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
from bluesky.run_engine import get_bluesky_event_loop
from numpy.typing import ArrayLike
from ophyd_async.core import init_devices

from ....xrf import DEFAULT_ELEMENTS, SpectralModel, XRFCounting, cell_field, check_sample
from ....xrf.sample import check_shape
from ..async_devices import SimAsyncShutter, SimAxis, SimClock
from ..async_devices.loop import require_running_loop
from .detector import SimXRFDetector

__all__ = ["SimXRF", "make_sim_xrf"]


@dataclass
class SimXRF:
    """The simulated microprobe: detector, stages, shutter and the sample's ground truth.

    Attributes
    ----------
    detector
        Fluorescence detector (also records I0, transmission and positions).
    x, y
        Scan stages, µm; pixel ``(row, col)`` sits at ``x = col × pixel_size_um``,
        ``y = row × pixel_size_um``.
    shutter
        Beam shutter (closed at start).
    truth
        Element → areal density map ``(H, W)``, µg/cm², for every element of
        ``elements``.
    elements
        Mapped elements (the rows of ``spectra.reference`` before the scatter).
    energy_kev
        Incident energy, keV.
    spectra
        Reference spectra of the simulation (the design matrix of a linear fit).
    data_dir
        Root of the HDF5 files.
    pixel_size_um
        Stage travel between neighbouring pixels, µm.
    clock
        Time of the simulation.
    """

    detector: SimXRFDetector
    x: SimAxis
    y: SimAxis
    shutter: SimAsyncShutter
    truth: dict[str, np.ndarray]
    elements: tuple[str, ...]
    energy_kev: float
    spectra: SpectralModel
    data_dir: Path
    pixel_size_um: float
    clock: SimClock

    @property
    def devices(self) -> dict[str, Any]:
        """The devices by the argument names of a scan plan."""
        return {"detector": self.detector, "x": self.x, "y": self.y, "shutter": self.shutter}

    @property
    def shape(self) -> tuple[int, int]:
        """``(H, W)`` of the maps, pixels."""
        return self.detector.counting.shape

    def pixel_positions(self) -> tuple[np.ndarray, np.ndarray]:
        """Stage positions (µm) of the pixel centres: ``x`` of the columns, ``y`` of the rows."""
        h, w = self.shape
        return np.arange(w) * self.pixel_size_um, np.arange(h) * self.pixel_size_um


def require_bluesky_loop() -> None:
    """Raise ``RuntimeError`` unless a ``RunEngine`` runs bluesky's event loop.

    The devices of :func:`make_sim_xrf` connect on that loop.
    """
    require_running_loop(
        get_bluesky_event_loop(),
        "the simulated XRF microprobe connects its ophyd-async devices on bluesky's "
        "event loop, which is not running: create the RunEngine first "
        "(RE = RunEngine()), then call make_sim_xrf(...)")


def make_sim_xrf(sample: Mapping[str, ArrayLike] | None = None, *,
                 shape: tuple[int, int] | None = None,
                 elements: Iterable[str] | None = None, energy_kev: float = 10.0,
                 detector_elements: int = 4, flux: float = 1e9, pixel_size_um: float = 0.5,
                 seed: int | None = None, data_dir: str | Path | None = None,
                 dead_elements: Iterable[int] = (), realistic_timing: bool = False,
                 bins: int = 1024, bin_kev: float = 0.012,
                 detector_name: str = "xrf") -> SimXRF:
    """Build a simulated scanning XRF microprobe (ophyd-async devices).

    Count levels with the defaults (1e9 photons/s at 10 keV, 1.26 sr in all, the
    64 × 64 cells of :func:`~lowdose_bluesky.xrf.cell_field`), counts per cell pixel
    within ±1 FWHM of Kα1 (Kα2 included), summed over the detector elements, median
    (10th-90th percentile): at 10 ms Fe 2 (0-5), Cu 1 (0-4), Zn 5 (2-11), Fe/Cu
    organelles about 14: noisy maps; at 200 ms Fe 46 (30-66), Cu 28 (19-43), Zn 88
    (58-220), organelles about 250: good maps. About 90 counts per cell pixel in the
    whole spectrum at 10 ms. I0 counts 1 % of the incident photons (1e5 at 10 ms),
    the transmission detector half of the transmitted ones (5e6 at 10 ms; the cells
    absorb about 0.1 %).

    Parameters
    ----------
    sample
        Element → areal density map ``(H, W)`` in µg/cm², or ``None`` for
        :func:`~lowdose_bluesky.xrf.cell_field` of ``shape``, ``elements``, ``seed``.
    shape
        ``(H, W)`` of the maps, pixels (default: the sample's, else (64, 64)).
    elements
        Elements of the spectral model (default: the sample's, else
        ``("P", "S", "K", "Ca", "Fe", "Cu", "Zn")``); a given sample's elements must
        be among them.
    energy_kev
        Incident photon energy, keV.
    detector_elements
        Elements of the fluorescence detector, each seeing an equal share of the
        solid angle and counting independently.
    flux
        Incident photons per second.
    pixel_size_um
        Stage travel between neighbouring pixels, µm (the stages move in µm).
    seed
        Seeds the default sample and the Poisson noise.
    data_dir
        Directory of the HDF5 files (default: a new temporary directory).
    dead_elements
        Indices (from 0) of detector elements that count nothing.
    realistic_timing
        Time the moves and dwells on the real clock instead of a virtual one.
    bins, bin_kev
        Channels per spectrum and their width, keV (default 0-12.3 keV).
    detector_name
        Name of the detector, the spectra's data key.

    Returns
    -------
    SimXRF

    Raises
    ------
    ValueError
        For an invalid argument, naming it.
    RuntimeError
        When no ``RunEngine`` runs bluesky's event loop.
    """
    require_bluesky_loop()
    if not np.isfinite(pixel_size_um) or pixel_size_um <= 0:
        raise ValueError(f"pixel_size_um must be a positive number, got {pixel_size_um!r}")
    if sample is None:
        h, w = check_shape((64, 64) if shape is None else shape)
        symbols = tuple(DEFAULT_ELEMENTS if elements is None else elements)
        maps = cell_field((h, w), symbols, seed=seed)
        description: dict[str, Any] = {"name": "cell_field", "shape": [h, w], "seed": seed,
                                       "description": "dried cells on a polymer film: "
                                       "P/Zn-rich nuclei, K/S/Ca cytoplasm, Fe/Cu organelles"}
    else:
        maps = check_sample(sample)
        h, w = check_shape(next(iter(maps.values())).shape)
        if shape is not None and check_shape(shape) != (h, w):
            raise ValueError(f"shape {tuple(shape)} does not match the sample's maps {(h, w)}")
        symbols = tuple(maps) if elements is None else tuple(elements)
        description = {"name": "user maps", "shape": [h, w]}
    model = SpectralModel(symbols, energy_kev, bins=bins, bin_kev=bin_kev)
    counting = XRFCounting(model, maps, flux=flux, detector_elements=detector_elements,
                           dead_elements=dead_elements, seed=seed)
    truth = {s: maps.get(s, np.zeros((h, w))) for s in model.elements}
    data_path = Path(data_dir) if data_dir is not None else Path(
        tempfile.mkdtemp(prefix="lowdose_xrf_"))
    data_path.mkdir(parents=True, exist_ok=True)
    clock = SimClock(realistic_timing=realistic_timing)
    with init_devices():
        x = SimAxis("sample_x", clock=clock, units="um", velocity=100.0, max_velocity=1000.0,
                    acceleration_time=0.01, update_period=0.01)
        y = SimAxis("sample_y", clock=clock, units="um", velocity=100.0, max_velocity=1000.0,
                    acceleration_time=0.01, update_period=0.01)
        shutter = SimAsyncShutter("shutter")
        detector = SimXRFDetector(counting=counting, x=x, y=y, shutter=shutter,
                                  pixel_size_um=pixel_size_um, clock=clock,
                                  data_dir=data_path, sample_description=description,
                                  name=detector_name)
    return SimXRF(detector=detector, x=x, y=y, shutter=shutter, truth=truth,
                  elements=model.elements, energy_kev=model.energy_kev, spectra=model,
                  data_dir=data_path.resolve(), pixel_size_um=float(pixel_size_um),
                  clock=clock)
