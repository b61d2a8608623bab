"""A simulated TXM area detector: noisy frames written to HDF5 like an AreaDetector.

Counts per pixel::

    Poisson(flux * exposure * flat_field(y, x) * exp(-mu * L(y, x)))
        + dark_current * exposure + Normal(0, read_noise)

clipped to ``[0, 65535]`` and stored as ``uint16`` (saturation is real). ``L``
is the exact line integral through the phantom for the current stage
positions, supplied by a :class:`~lowdose_bluesky.devices.sim.optics.SimOptics`.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import numpy as np
from ophyd import Component as Cpt
from ophyd import Device, Kind, Signal
from ophyd.status import DeviceStatus

from ..hdf5_frames import HDF5FrameWriter
from .optics import SimOptics

__all__ = ["SimCamera"]

UINT16_MAX = np.iinfo(np.uint16).max
_NOISE_BANDS = 2


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
    frame_shape
        ``(H, W)``.
    flux
        Counts per pixel per second of open beam at the flat-field maximum.
    dark_current
        Counts per pixel per second with the shutter closed.
    read_noise
        Standard deviation (counts) of the Gaussian read noise.
    data_dir
        Directory of the HDF5 files.
    realistic_timing
        If true, ``trigger()`` completes only after the exposure time has elapsed.
    seed
        Seed of the noise generator.
    """

    image = Cpt(_ImageSignal, value="", kind=Kind.normal)
    exposure_time = Cpt(Signal, value=1.0, kind=Kind.normal | Kind.config)

    def __init__(self, prefix: str = "", *, name: str, optics: SimOptics,
                 frame_shape: tuple[int, int], flux: float, dark_current: float,
                 read_noise: float, data_dir: str | Path, realistic_timing: bool = False,
                 seed: int | None = None, flat_field: np.ndarray | None = None,
                 **kwargs: Any) -> None:
        super().__init__(prefix, name=name, **kwargs)
        self.optics = optics
        self.frame_shape = (int(frame_shape[0]), int(frame_shape[1]))
        self.flux = float(flux)
        self.dark_current = float(dark_current)
        self.read_noise = float(read_noise)
        self.data_dir = Path(data_dir)
        self.realistic_timing = bool(realistic_timing)
        self.seed = seed
        # One generator per band of rows: bands are drawn in parallel threads
        # (numpy releases the GIL) and the result does not depend on timing.
        self._rngs = [np.random.default_rng(s)
                      for s in np.random.SeedSequence(seed).spawn(_NOISE_BANDS)]
        self._pool = ThreadPoolExecutor(_NOISE_BANDS, thread_name_prefix=f"{name}-noise")
        self.flat_field = (flat_field if flat_field is not None
                           else smooth_flat_field(self.frame_shape, seed=seed)).astype(np.float32)
        self._writer: HDF5FrameWriter | None = None
        self._lock = threading.Lock()

    # ------------------------------------------------------------- physics
    def expected_counts(self, exposure: float) -> np.ndarray:
        """Mean photon counts for the current beam state (no noise, no dark)."""
        line_integral = self.optics.line_integrals()
        if line_integral is None:
            return np.zeros(self.frame_shape, dtype=np.float32)
        transmission = np.exp(-self.optics.mu * line_integral, dtype=np.float32)
        return (self.flux * exposure) * self.flat_field * transmission

    def acquire_frame(self, exposure: float) -> np.ndarray:
        """Draw one noisy ``uint16`` frame for the current beam state."""
        lam = self.expected_counts(exposure)
        frame = np.empty(self.frame_shape, dtype=np.uint16)
        bands = np.array_split(np.arange(self.frame_shape[0]), _NOISE_BANDS)
        jobs = [self._pool.submit(self._noisy_band, lam[b[0]:b[-1] + 1], exposure, rng,
                                  frame[b[0]:b[-1] + 1])
                for b, rng in zip(bands, self._rngs, strict=True) if b.size]
        for job in jobs:
            job.result()
        return frame

    def _noisy_band(self, lam: np.ndarray, exposure: float, rng: np.random.Generator,
                    out: np.ndarray) -> None:
        counts = rng.poisson(lam).astype(np.float32)
        counts += self.dark_current * exposure
        if self.read_noise > 0:
            counts += self.read_noise * rng.standard_normal(lam.shape, dtype=np.float32)
        np.clip(np.rint(counts, out=counts), 0, UINT16_MAX, out=counts)
        out[...] = counts

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
        return {"simulation": {
            "phantom": self.optics.phantom.describe(),
            "seed": self.seed,
            "flux": self.flux,
            "dark_current": self.dark_current,
            "read_noise": self.read_noise,
            "mu": self.optics.mu,
        }}


def smooth_flat_field(shape: tuple[int, int], *, seed: int | None, amplitude: float = 0.15
                      ) -> np.ndarray:
    """A smooth beam profile in ``(1 - amplitude, 1]``: Gaussian envelope plus slow ripples."""
    rng = np.random.default_rng(None if seed is None else seed + 7919)
    h, w = shape
    y = np.linspace(-1, 1, h)[:, None]
    x = np.linspace(-1, 1, w)[None, :]
    envelope = np.exp(-(x**2 + (y * 1.3) ** 2) / 1.5)
    kx, ky, px, py = rng.uniform(1.0, 3.0), rng.uniform(1.0, 3.0), *rng.uniform(0, 2 * np.pi, 2)
    ripple = 0.5 + 0.25 * (np.sin(np.pi * kx * x + px) + np.sin(np.pi * ky * y + py))
    profile = 0.8 * envelope + 0.2 * ripple
    profile = (profile - profile.min()) / (profile.max() - profile.min())
    return 1.0 - amplitude + amplitude * profile
