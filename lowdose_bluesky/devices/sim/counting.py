"""Photon counting of the simulated TXM camera, shared by its ophyd and ophyd-async twins.

The camera is lens-coupled: the X-ray image on the scintillator, sampled on the
*sensor* grid ``(H, W)`` (the phantom's projection grid), is blurred by the
scintillator and the objective, optionally binned, then counted. Counts per frame
pixel::

    lam = bin_b(G_sigma * (flux * exposure * flat_field * T))
    counts = Poisson(lam) + dark_current * exposure + Normal(0, read_noise)

clipped to ``[0, 65535]`` and stored as ``uint16`` (saturation is real). ``T`` is the
sample's transmission ``exp(-mu * L)`` for the line integrals ``L`` of the current
beam state, or 0 with the shutter closed; ``G_sigma *`` is a convolution with a
Gaussian point spread function of standard deviation ``psf_sigma_px`` sensor pixels
(edges continued with their nearest value; none for 0); ``bin_b`` sums blocks of
``binning x binning`` sensor pixels, so frames are ``(H // binning, W // binning)``.

``flux`` is per *sensor* pixel: a binned pixel collects ``binning**2`` times as many
photons, and saturation applies to the binned sum. ``dark_current`` and
``read_noise`` are per *frame* (binned) pixel, as a camera that bins on the chip
reads each binned pixel once.
"""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor
from typing import Any

import numpy as np
from scipy.ndimage import gaussian_filter

__all__ = ["UINT16_MAX", "CountingModel", "check_image_formation", "simulation_metadata",
           "smooth_flat_field", "transmission"]

UINT16_MAX = np.iinfo(np.uint16).max
_NOISE_BANDS = 2


def transmission(line_integrals: np.ndarray, mu: float) -> np.ndarray:
    """Fraction of the beam the sample lets through: ``exp(-mu * L)`` as ``float32``."""
    return np.exp(-mu * line_integrals, dtype=np.float32)


def check_image_formation(psf_sigma_px: float, binning: int, sensor_shape: tuple[int, int]
                          ) -> tuple[float, int]:
    """Check the blur and the binning of a camera of ``sensor_shape``.

    Parameters
    ----------
    psf_sigma_px
        Standard deviation of the Gaussian point spread function, in sensor pixels:
        a finite number >= 0.
    binning
        Side of the square blocks of sensor pixels summed into one frame pixel: an
        integer >= 1 dividing both sides of ``sensor_shape``.
    sensor_shape
        ``(H, W)`` of the sensor.

    Returns
    -------
    tuple
        ``(psf_sigma_px, binning)`` as ``(float, int)``.

    Raises
    ------
    ValueError
        For a value outside those ranges, saying what was received.
    """
    if (isinstance(psf_sigma_px, bool)
            or not isinstance(psf_sigma_px, int | float | np.integer | np.floating)
            or not np.isfinite(psf_sigma_px) or psf_sigma_px < 0):
        raise ValueError(f"psf_sigma_px must be a finite number >= 0 (sensor pixels; 0: no "
                         f"blur), got {psf_sigma_px!r}")
    if isinstance(binning, bool) or not isinstance(binning, int | np.integer) or binning < 1:
        raise ValueError(f"binning must be an integer >= 1 (1: no binning), got {binning!r}")
    h, w = (int(s) for s in sensor_shape)
    if h % binning or w % binning:
        raise ValueError(f"binning {int(binning)} must divide both sides of the sensor shape "
                         f"{(h, w)}: {h} % {int(binning)} = {h % binning}, "
                         f"{w} % {int(binning)} = {w % binning}")
    return float(psf_sigma_px), int(binning)


class CountingModel:
    """Mean counts and noisy ``uint16`` frames of one camera.

    Parameters
    ----------
    sensor_shape
        ``(H, W)`` of the sensor, the grid of the transmissions.
    flux
        Counts per sensor pixel per second of open beam at the flat-field maximum.
    dark_current
        Counts per frame pixel per second with the shutter closed.
    read_noise
        Standard deviation (counts) of the Gaussian read noise of a frame pixel.
    seed
        Seed of the noise generators and of the default flat field.
    flat_field
        Beam profile ``(H, W)`` on the sensor grid; default :func:`smooth_flat_field`
        of ``seed``.
    name
        Prefix of the noise threads' names.
    psf_sigma_px
        Standard deviation of the Gaussian blur, in sensor pixels (0: none).
    binning
        Sensor pixels summed per frame pixel along each axis; frames are
        ``(H // binning, W // binning)``.

    Raises
    ------
    ValueError
        For a ``psf_sigma_px`` or ``binning`` that :func:`check_image_formation` refuses.

    Notes
    -----
    One generator per band of rows: bands are drawn in parallel threads (numpy
    releases the GIL) and the frames do not depend on timing, so two models with
    the same seed draw the same frames from the same mean counts.
    """

    def __init__(self, sensor_shape: tuple[int, int], *, flux: float, dark_current: float,
                 read_noise: float, seed: int | None = None,
                 flat_field: np.ndarray | None = None, name: str = "camera",
                 psf_sigma_px: float = 0.0, binning: int = 1) -> None:
        self.sensor_shape = (int(sensor_shape[0]), int(sensor_shape[1]))
        self.psf_sigma_px, self.binning = check_image_formation(psf_sigma_px, binning,
                                                                self.sensor_shape)
        #: ``(H // binning, W // binning)``: the shape of the frames.
        self.frame_shape = (self.sensor_shape[0] // self.binning,
                            self.sensor_shape[1] // self.binning)
        self.flux = float(flux)
        self.dark_current = float(dark_current)
        self.read_noise = float(read_noise)
        self.seed = seed
        self._rngs = [np.random.default_rng(s)
                      for s in np.random.SeedSequence(seed).spawn(_NOISE_BANDS)]
        self._pool = ThreadPoolExecutor(_NOISE_BANDS, thread_name_prefix=f"{name}-noise")
        self.flat_field = (flat_field if flat_field is not None
                           else smooth_flat_field(self.sensor_shape, seed=seed)
                           ).astype(np.float32)

    def sensor_counts(self, exposure: float, transmitted: np.ndarray | None) -> np.ndarray:
        """Mean photons per sensor pixel reaching the scintillator, before blur and binning.

        Parameters
        ----------
        exposure
            Seconds.
        transmitted
            Transmission ``(H, W)`` of the sample on the sensor grid (see
            :func:`transmission`), or ``None`` when the beam is off.

        Returns
        -------
        numpy.ndarray
            ``float32`` array of :attr:`sensor_shape`.
        """
        if transmitted is None:
            return np.zeros(self.sensor_shape, dtype=np.float32)
        return (self.flux * exposure) * self.flat_field * transmitted

    def form_image(self, sensor_counts: np.ndarray) -> np.ndarray:
        """Blur mean counts of the sensor grid by the PSF and sum them into frame pixels.

        The Gaussian kernel is sampled at pixel centres (``scipy.ndimage.gaussian_filter``,
        truncated at 4 sigma), as a point-sampled image seen through the optics.

        Parameters
        ----------
        sensor_counts
            ``(H, W)`` mean counts (see :meth:`sensor_counts`).

        Returns
        -------
        numpy.ndarray
            Array of :attr:`frame_shape` (``float32`` when blurred or binned); the
            total is kept, up to what the blur moves across the sensor's edges, which
            continue with their nearest value.
        """
        image = np.asarray(sensor_counts)
        if image.shape != self.sensor_shape:
            raise ValueError(f"sensor counts of shape {image.shape} do not match the sensor "
                             f"shape {self.sensor_shape}")
        if self.psf_sigma_px > 0:
            image = gaussian_filter(image.astype(np.float32, copy=False), self.psf_sigma_px,
                                    mode="nearest")
        b = self.binning
        if b > 1:
            h, w = self.frame_shape
            image = image.reshape(h, b, w, b).sum(axis=(1, 3), dtype=np.float32)
        return image

    def expected_counts(self, exposure: float, transmitted: np.ndarray | None) -> np.ndarray:
        """Mean photon counts per frame pixel (no noise, no dark) for an exposure in seconds.

        Parameters
        ----------
        exposure
            Seconds.
        transmitted
            Transmission ``(H, W)`` of the sample on the sensor grid (see
            :func:`transmission`), or ``None`` when the beam is off.

        Returns
        -------
        numpy.ndarray
            ``float32`` array of :attr:`frame_shape`: :meth:`sensor_counts` blurred and
            binned by :meth:`form_image`.
        """
        if transmitted is None:
            return np.zeros(self.frame_shape, dtype=np.float32)
        return self.form_image(self.sensor_counts(exposure, transmitted))

    def draw(self, expected: np.ndarray, exposure: float) -> np.ndarray:
        """One noisy ``uint16`` frame around the mean counts ``expected`` (a frame's shape)."""
        if expected.shape != self.frame_shape:
            raise ValueError(f"mean counts of shape {expected.shape} do not match the frame "
                             f"shape {self.frame_shape}")
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
        "psf_sigma_px": counting.psf_sigma_px,
        "binning": counting.binning,
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
