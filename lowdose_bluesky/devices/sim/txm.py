"""Factory for a simulated transmission X-ray microscope (TXM)."""

from __future__ import annotations

import tempfile
from dataclasses import dataclass, field
from functools import cached_property
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
from ophyd.sim import SynAxis

from ...phantoms import Phantom, phantom_from_name, spheres_in_cube
from .camera import SimCamera
from .counting import check_image_formation
from .optics import SimOptics
from .shutter import SimShutter

if TYPE_CHECKING:
    from .async_devices import SimAsyncShutter, SimAxis, SimClock, SimTXMDetector

__all__ = ["FLAVOURS", "SimTXM", "make_sim_txm"]

#: Device flavours of :func:`make_sim_txm`: ophyd (v1) or ophyd-async.
FLAVOURS = ("ophyd", "ophyd-async")


@dataclass
class SimTXM:
    """The simulated beamline: camera, stages, shutter and the sample's ground truth.

    ``flavour`` tells which devices these are; ``clock`` is the
    :class:`~lowdose_bluesky.devices.sim.async_devices.SimClock` of the ophyd-async
    devices (``None`` for ophyd).
    """

    detector: SimCamera | SimTXMDetector
    rotation: SynAxis | SimAxis
    sample_x: SynAxis | SimAxis
    shutter: SimShutter | SimAsyncShutter
    phantom_model: Phantom
    optics: SimOptics
    data_dir: Path
    _phantom: np.ndarray | None = field(default=None, repr=False)
    flavour: str = "ophyd"
    clock: SimClock | None = None

    @cached_property
    def phantom(self) -> np.ndarray:
        """Ground-truth volume ``(H, W, W)`` (computed on first access)."""
        return self.phantom_model.volume()

    @property
    def devices(self) -> dict[str, Any]:
        """The devices by role."""
        return {"detector": self.detector, "rotation": self.rotation,
                "sample_x": self.sample_x, "shutter": self.shutter}


def make_sim_txm(phantom: Phantom | str | None = None, *,
                 detector_shape: tuple[int, int] = (256, 256), flux: float = 300.0,
                 dark_current: float = 2.0, read_noise: float = 3.0, mu: float | None = None,
                 pixel_size: float = 0.001, seed: int | None = None,
                 data_dir: str | Path | None = None, realistic_timing: bool = False,
                 detector_name: str = "det", flavour: str = "ophyd",
                 psf_sigma_px: float = 0.0, binning: int = 1) -> SimTXM:
    """Build a simulated TXM.

    The camera is lens-coupled: the transmitted beam, on the sensor grid of
    ``detector_shape``, is blurred by a Gaussian point spread function of
    ``psf_sigma_px`` sensor pixels (scintillator and objective), summed over
    ``binning x binning`` blocks, then counted with noise (see
    :mod:`lowdose_bluesky.devices.sim.counting`).

    Parameters
    ----------
    phantom
        A :class:`~lowdose_bluesky.phantoms.Phantom` of shape ``(H, W, W)``, or a phantom
        name (one of :data:`~lowdose_bluesky.phantoms.PHANTOM_NAMES`, e.g.
        ``"spheres_in_cube"``, ``"resolution_chart"``), or ``None`` for the paper's
        spheres-in-cube phantom.
    detector_shape
        ``(H, W)`` of the camera's sensor, the grid of the projections; frames are
        ``(H // binning, W // binning)``.
    flux
        Open-beam counts per sensor pixel per second at the flat-field maximum (a
        binned pixel collects ``binning**2`` times as many). The camera saturates at
        65535 counts per frame pixel, binned or not.
    dark_current, read_noise
        Dark counts per second and Gaussian read noise (counts), per frame pixel
        (binned pixels are read once).
    mu
        Attenuation per voxel for phantom value 1.0; default: the sample's
        thickest projection transmits 10 %.
    pixel_size
        Millimetres per pixel (``sample_x`` moves in millimetres).
    seed
        Seeds the phantom, the flat field and the noise.
    data_dir
        Directory for the HDF5 frame files (default: a new temporary directory).
    realistic_timing
        Wait the real exposure time on every trigger (ophyd-async: time the moves and
        exposures on the real clock instead of a virtual one).
    detector_name
        Name of the camera (its image data key is ``<name>_image`` for ophyd,
        ``<name>`` for ophyd-async).
    flavour
        ``"ophyd"`` (default): ophyd (v1) devices. ``"ophyd-async"``: ophyd-async
        devices (:mod:`lowdose_bluesky.devices.sim.async_devices`) with the same
        counting physics, connected on bluesky's event loop, so a ``RunEngine`` must
        exist first.
    psf_sigma_px
        Standard deviation, in sensor pixels, of the Gaussian blur (0: none); a finite
        number >= 0.
    binning
        Sensor pixels summed per frame pixel along each axis (1: none); an integer
        >= 1 dividing both sides of ``detector_shape``.

    Returns
    -------
    SimTXM

    Raises
    ------
    ValueError
        For an invalid argument, naming it.
    RuntimeError
        For ``flavour="ophyd-async"`` when no ``RunEngine`` runs bluesky's event loop.
    """
    if flavour not in FLAVOURS:
        raise ValueError(f"flavour must be one of {FLAVOURS}, got {flavour!r}")
    if flavour == "ophyd-async":
        from .async_devices import require_bluesky_loop

        require_bluesky_loop()
    try:
        h, w = (int(s) for s in detector_shape)
    except (TypeError, ValueError):
        raise ValueError(f"detector_shape must be (H, W), got {detector_shape!r}") from None
    if h < 8 or w < 8:
        raise ValueError(f"detector_shape must be at least (8, 8), got {detector_shape!r}")
    for label, value in (("flux", flux), ("pixel_size", pixel_size)):
        if not np.isfinite(value) or value <= 0:
            raise ValueError(f"{label} must be a positive number, got {value!r}")
    for label, value in (("dark_current", dark_current), ("read_noise", read_noise)):
        if not np.isfinite(value) or value < 0:
            raise ValueError(f"{label} must be >= 0, got {value!r}")
    psf_sigma_px, binning = check_image_formation(psf_sigma_px, binning, (h, w))
    if phantom is None:
        phantom = spheres_in_cube((h, w), seed=seed)
    elif isinstance(phantom, str):
        phantom = phantom_from_name(phantom, (h, w), seed=seed)
    if tuple(phantom.shape) != (h, w, w):
        raise ValueError(f"phantom shape {phantom.shape} does not fit detector_shape {(h, w)}: "
                         f"expected {(h, w, w)}")
    if mu is None:
        thickest = float(phantom.project([0.0, 45.0]).max())
        mu = np.log(10.0) / thickest if thickest > 0 else 1.0
    elif not np.isfinite(mu) or mu <= 0:
        raise ValueError(f"mu must be a positive number, got {mu!r}")
    data_path = Path(data_dir) if data_dir is not None else Path(
        tempfile.mkdtemp(prefix="lowdose_sim_"))
    data_path.mkdir(parents=True, exist_ok=True)

    if flavour == "ophyd-async":
        from .async_devices import build_async_devices

        devices = build_async_devices(
            phantom, sensor_shape=(h, w), flux=flux, dark_current=dark_current,
            read_noise=read_noise, mu=mu, pixel_size=pixel_size, seed=seed,
            data_dir=data_path, realistic_timing=realistic_timing, detector_name=detector_name,
            psf_sigma_px=psf_sigma_px, binning=binning)
        return SimTXM(detector=devices["detector"], rotation=devices["rotation"],
                      sample_x=devices["sample_x"], shutter=devices["shutter"],
                      phantom_model=phantom, optics=devices["optics"],
                      data_dir=data_path.resolve(), flavour=flavour, clock=devices["clock"])

    rotation = SynAxis(name="rot", labels={"motors"})
    sample_x = SynAxis(name="sample_x", labels={"motors"})
    shutter = SimShutter(name="shutter", labels={"shutters"})
    optics = SimOptics(phantom, rotation, sample_x, shutter, mu=mu, pixel_size=pixel_size)
    detector = SimCamera(name=detector_name, optics=optics, sensor_shape=(h, w), flux=flux,
                         dark_current=dark_current, read_noise=read_noise, data_dir=data_path,
                         realistic_timing=realistic_timing, seed=seed,
                         psf_sigma_px=psf_sigma_px, binning=binning, labels={"detectors"})
    return SimTXM(detector=detector, rotation=rotation, sample_x=sample_x, shutter=shutter,
                  phantom_model=phantom, optics=optics, data_dir=data_path.resolve())
