"""Ramp filters for filtered back-projection (FBP).

The ramp is the band-limited one of Kak & Slaney (spatial samples
``h[0] = 1/4``, ``h[n odd] = -1/(pi n)^2``), which has no DC error, multiplied
by an apodisation window of the normalised frequency ``x = f / f_Nyquist``.
Window names follow TomoPy's gridrec so that a backend choice does not change
the meaning of ``filter_name``.
"""

from __future__ import annotations

from functools import lru_cache

import numpy as np
import scipy.fft

__all__ = ["DEFAULT_FILTER", "FILTER_NAMES", "check_filter", "filter_projections",
           "padded_width", "ramp_filter"]

#: Filter names understood by every FBP backend (TomoPy gridrec names).
FILTER_NAMES: tuple[str, ...] = ("ramlak", "shepp", "cosine", "hann", "hamming", "parzen")
#: The filter of the paper (TomoPy gridrec with a Parzen filter).
DEFAULT_FILTER = "parzen"


def check_filter(filter_name: str) -> str:
    """Return ``filter_name`` if known, else raise ``ValueError`` listing the allowed ones."""
    if filter_name not in FILTER_NAMES:
        raise ValueError(f"unknown filter {filter_name!r}; allowed: {', '.join(FILTER_NAMES)}")
    return filter_name


def padded_width(n_columns: int) -> int:
    """FFT length used to filter ``n_columns`` detector columns (at least twice as wide)."""
    return int(scipy.fft.next_fast_len(2 * int(n_columns), real=True))


def _window(x: np.ndarray, filter_name: str) -> np.ndarray:
    if filter_name == "ramlak":
        return np.ones_like(x)
    if filter_name == "shepp":
        return np.sinc(x / 2)
    if filter_name == "cosine":
        return np.cos(np.pi * x / 2)
    if filter_name == "hann":
        return 0.5 * (1 + np.cos(np.pi * x))
    if filter_name == "hamming":
        return 0.54 + 0.46 * np.cos(np.pi * x)
    # parzen
    return np.where(x <= 0.5, 1 - 6 * x**2 * (1 - x), 2 * (1 - x) ** 3)


@lru_cache(maxsize=32)
def _ramp_filter_cached(n_pad: int, filter_name: str) -> np.ndarray:
    offsets = np.fft.fftfreq(n_pad, 1.0 / n_pad)  # circular integer offsets
    kernel = np.zeros(n_pad)
    kernel[0] = 0.25
    odd = np.abs(offsets) % 2 == 1
    kernel[odd] = -1.0 / (np.pi * offsets[odd]) ** 2
    response = np.real(np.fft.rfft(kernel))
    x = np.fft.rfftfreq(n_pad) / 0.5
    out = (response * _window(x, filter_name)).astype(np.float32)
    out.flags.writeable = False
    return out


def ramp_filter(n_pad: int, filter_name: str = DEFAULT_FILTER) -> np.ndarray:
    """Frequency response of the windowed ramp filter.

    Parameters
    ----------
    n_pad
        FFT length (see :func:`padded_width`).
    filter_name
        One of :data:`FILTER_NAMES`.

    Returns
    -------
    numpy.ndarray
        Read-only float32 array of length ``n_pad // 2 + 1`` (``rfft`` layout),
        in units of 1/pixel.
    """
    check_filter(filter_name)
    if n_pad < 2:
        raise ValueError(f"n_pad must be at least 2, got {n_pad}")
    return _ramp_filter_cached(int(n_pad), filter_name)


def filter_projections(projections: np.ndarray, filter_name: str = DEFAULT_FILTER,
                       *, workers: int = -1) -> np.ndarray:
    """Apply the windowed ramp filter along the last (detector column) axis.

    The rows are padded to :func:`padded_width` with their edge values (half
    with the last column, half with the first, so the circular convolution
    sees a continuous signal), which limits cupping when the sample is wider
    than the field of view.

    Parameters
    ----------
    projections
        Array ``(..., X)`` of line integrals.
    filter_name
        One of :data:`FILTER_NAMES`.
    workers
        Threads for ``scipy.fft`` (-1: all cores).

    Returns
    -------
    numpy.ndarray
        float32 array of the input shape.
    """
    n_cols = projections.shape[-1]
    n_pad = padded_width(n_cols)
    response = ramp_filter(n_pad, filter_name)
    padded = np.empty((*projections.shape[:-1], n_pad), dtype=np.float32)
    padded[..., :n_cols] = projections
    half = (n_pad - n_cols) // 2
    padded[..., n_cols:n_cols + half] = projections[..., -1:]
    padded[..., n_cols + half:] = projections[..., :1]
    spectrum = scipy.fft.rfft(padded, axis=-1, workers=workers)
    spectrum *= response
    filtered = scipy.fft.irfft(spectrum, n=n_pad, axis=-1, workers=workers)
    return np.ascontiguousarray(filtered[..., :n_cols], dtype=np.float32)
