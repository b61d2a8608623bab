"""Photon counting of the simulated TXM camera, shared by its ophyd and ophyd-async twins.

Counts per pixel::

    Poisson(flux * exposure * flat_field(y, x) * T(y, x))
        + dark_current * exposure + Normal(0, read_noise)

clipped to ``[0, 65535]`` and stored as ``uint16`` (saturation is real). ``T`` is the
sample's transmission ``exp(-mu * L)`` for the line integrals ``L`` of the current
beam state, or 0 with the shutter closed.
"""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor
from typing import Any

import numpy as np

__all__ = ["UINT16_MAX", "CountingModel", "simulation_metadata", "smooth_flat_field",
           "transmission"]

UINT16_MAX = np.iinfo(np.uint16).max
_NOISE_BANDS = 2


def transmission(line_integrals: np.ndarray, mu: float) -> np.ndarray:
    """Fraction of the beam the sample lets through: ``exp(-mu * L)`` as ``float32``."""
    return np.exp(-mu * line_integrals, dtype=np.float32)


class CountingModel:
    """Mean counts and noisy ``uint16`` frames of one camera.

    Parameters
    ----------
    frame_shape
        ``(H, W)``.
    flux
        Counts per pixel per second of open beam at the flat-field maximum.
    dark_current
        Counts per pixel per second with the shutter closed.
    read_noise
        Standard deviation (counts) of the Gaussian read noise.
    seed
        Seed of the noise generators and of the default flat field.
    flat_field
        Beam profile ``(H, W)``; default :func:`smooth_flat_field` of ``seed``.
    name
        Prefix of the noise threads' names.

    Notes
    -----
    One generator per band of rows: bands are drawn in parallel threads (numpy
    releases the GIL) and the frames do not depend on timing, so two models with
    the same seed draw the same frames from the same mean counts.
    """

    def __init__(self, frame_shape: tuple[int, int], *, flux: float, dark_current: float,
                 read_noise: float, seed: int | None = None,
                 flat_field: np.ndarray | None = None, name: str = "camera") -> None:
        self.frame_shape = (int(frame_shape[0]), int(frame_shape[1]))
        self.flux = float(flux)
        self.dark_current = float(dark_current)
        self.read_noise = float(read_noise)
        self.seed = seed
        self._rngs = [np.random.default_rng(s)
                      for s in np.random.SeedSequence(seed).spawn(_NOISE_BANDS)]
        self._pool = ThreadPoolExecutor(_NOISE_BANDS, thread_name_prefix=f"{name}-noise")
        self.flat_field = (flat_field if flat_field is not None
                           else smooth_flat_field(self.frame_shape, seed=seed)).astype(np.float32)

    def expected_counts(self, exposure: float, transmitted: np.ndarray | None) -> np.ndarray:
        """Mean photon counts (no noise, no dark) for an exposure in seconds.

        Parameters
        ----------
        exposure
            Seconds.
        transmitted
            Transmission ``(H, W)`` of the sample (see :func:`transmission`), or
            ``None`` when the beam is off.
        """
        if transmitted is None:
            return np.zeros(self.frame_shape, dtype=np.float32)
        return (self.flux * exposure) * self.flat_field * transmitted

    def draw(self, expected: np.ndarray, exposure: float) -> np.ndarray:
        """One noisy ``uint16`` frame around the mean counts ``expected``."""
        frame = np.empty(self.frame_shape, dtype=np.uint16)
        bands = np.array_split(np.arange(self.frame_shape[0]), _NOISE_BANDS)
        jobs = [self._pool.submit(self._noisy_band, expected[b[0]:b[-1] + 1], exposure, rng,
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


def simulation_metadata(counting: CountingModel, optics: Any) -> dict[str, Any]:
    """Simulation facts for a run's start document (the same for both device flavours)."""
    return {"simulation": {
        "phantom": optics.phantom.describe(),
        "seed": counting.seed,
        "flux": counting.flux,
        "dark_current": counting.dark_current,
        "read_noise": counting.read_noise,
        "mu": optics.mu,
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
