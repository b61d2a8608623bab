"""Build the simulated TXM's ophyd-async devices, connected on bluesky's event loop."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from bluesky.run_engine import get_bluesky_event_loop
from ophyd_async.core import init_devices

from ....phantoms import Phantom
from ..counting import CountingModel
from .axis import SimAxis
from .clock import SimClock
from .detector import SimTXMDetector
from .loop import require_running_loop
from .optics import AsyncSimOptics
from .shutter import SimAsyncShutter

__all__ = ["build_async_devices", "require_bluesky_loop"]


def require_bluesky_loop() -> None:
    """Raise unless bluesky's event loop runs (ophyd-async devices connect on it).

    Raises
    ------
    RuntimeError
        If no ``RunEngine`` has started the loop.
    """
    require_running_loop(
        get_bluesky_event_loop(),
        "the ophyd-async simulated TXM connects its devices on bluesky's event loop, "
        "which is not running: create the RunEngine first (RE = RunEngine()), then "
        "call make_sim_txm(..., flavour='ophyd-async')")


def build_async_devices(phantom: Phantom, *, sensor_shape: tuple[int, int], flux: float,
                        dark_current: float, read_noise: float, mu: float, pixel_size: float,
                        seed: int | None, data_dir: Path, realistic_timing: bool,
                        detector_name: str, psf_sigma_px: float = 0.0,
                        binning: int = 1) -> dict[str, Any]:
    """The ophyd-async devices of a simulated TXM, named and connected.

    Parameters are those of :func:`~lowdose_bluesky.devices.sim.make_sim_txm`
    (already checked), ``sensor_shape`` being its ``detector_shape``.

    Returns
    -------
    dict
        ``detector``, ``rotation``, ``sample_x``, ``shutter``, ``optics`` and ``clock``.
    """
    require_bluesky_loop()
    clock = SimClock(realistic_timing=realistic_timing)
    counting = CountingModel(sensor_shape, flux=flux, dark_current=dark_current,
                             read_noise=read_noise, seed=seed, name=detector_name,
                             psf_sigma_px=psf_sigma_px, binning=binning)
    with init_devices():
        rotation = SimAxis("rot", clock=clock, units="deg", velocity=30.0, max_velocity=90.0,
                           acceleration_time=0.1)
        sample_x = SimAxis("sample_x", clock=clock, units="mm", velocity=0.0,
                           max_velocity=10.0, acceleration_time=0.0)
        shutter = SimAsyncShutter("shutter")
        optics = AsyncSimOptics(phantom, rotation, sample_x, shutter, mu=mu,
                                pixel_size=pixel_size)
        detector = SimTXMDetector(optics=optics, rotation=rotation, counting=counting,
                                  clock=clock, data_dir=data_dir, name=detector_name)
    return {"detector": detector, "rotation": rotation, "sample_x": sample_x,
            "shutter": shutter, "optics": optics, "clock": clock}
