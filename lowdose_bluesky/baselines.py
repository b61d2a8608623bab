"""Classical denoisers to compare with the CNN enhancer.

Each is a callable with the call shape of an enhancer: ``(N, H, W)`` or
``(H, W)`` frames in, float32 frames of the same shape out, frame by frame
(2-D filtering; never across frames), except :class:`AnscombeBM4D`, which
filters the stack as one volume. The paper compares against median and
total-variation filtering; BM3D is the usual strong reference.

:class:`AnscombeBM3D` and :class:`AnscombeBM4D` are for photon-counting data
(Poisson counts): the Anscombe transform makes the noise nearly Gaussian with
unit variance, BM3D/BM4D removes it, and the closed-form approximation of the
exact unbiased inverse (Makitalo & Foi, IEEE Trans. Image Process. 20:99, 2011)
maps the result back to counts.

The ``bm3d`` and ``bm4d`` packages are licensed for non-commercial use only and
are not dependencies of the core: they come with the ``baselines`` extra
(``pip install "lowdose_bluesky[baselines]"``) and are imported only when a
denoiser that needs them is created or called.
"""

from __future__ import annotations

import importlib
from concurrent.futures import ProcessPoolExecutor
from multiprocessing import get_context
from types import ModuleType

import numpy as np
from numpy.typing import ArrayLike
from scipy.ndimage import median_filter
from skimage.restoration import denoise_tv_chambolle, estimate_sigma

__all__ = ["AnscombeBM3D", "AnscombeBM4D", "BM3DDenoiser", "MedianFilter", "TVDenoiser",
           "anscombe", "inverse_anscombe"]

#: Smallest count the Anscombe transform ``2 sqrt(x + 3/8)`` is defined for.
ANSCOMBE_MIN_COUNT = -3.0 / 8.0
#: Below this transformed value the closed-form inverse diverges (it has poles at 0);
#: the algebraic inverse clipped at 0 is used there. Both are 0 from about 0.6 to 1.22
#: (the transform of 0 counts is 2 sqrt(3/8) = 1.22), so the switch is continuous.
CLOSED_FORM_MIN = 1.0


def _require(module: str) -> ModuleType:
    """Import an optional baseline package, or say which extra brings it."""
    try:
        return importlib.import_module(module)
    except ImportError as exc:
        raise ImportError(
            f"the {module!r} package is needed for this baseline but could not be imported "
            f"({exc}); install it with: pip install \"lowdose_bluesky[baselines]\" (bm3d and "
            "bm4d are licensed for non-commercial use only)") from exc


def _as_frames(frames: ArrayLike) -> tuple[np.ndarray, bool]:
    """``(N, H, W)`` float32 view of the input and whether it was 2-D."""
    arr = np.asarray(frames)
    if arr.ndim not in (2, 3) or min(arr.shape) < 1:
        raise ValueError(f"frames must be a non-empty (N, H, W) or (H, W) array, got {arr.shape}")
    if not (np.issubdtype(arr.dtype, np.floating) or np.issubdtype(arr.dtype, np.integer)):
        raise ValueError(f"frames must be real numbers, got dtype {arr.dtype}")
    arr = np.asarray(arr, dtype=np.float32)
    if not np.all(np.isfinite(arr)):
        raise ValueError("frames contain NaN or infinite values")
    single = arr.ndim == 2
    return (arr[np.newaxis] if single else arr), single


def _noise_sigma(frame: np.ndarray, sigma: float | None) -> float:
    """The given noise level, or one estimated from the frame (wavelet MAD)."""
    if sigma is not None:
        return float(sigma)
    return float(estimate_sigma(frame.astype(np.float64), channel_axis=None))


def _check_sigma(sigma: float | None) -> float | None:
    if sigma is not None and not (np.isfinite(sigma) and sigma > 0):
        raise ValueError(f"sigma must be a positive number or None (estimate), got {sigma!r}")
    return None if sigma is None else float(sigma)


class MedianFilter:
    """Median filter over a ``size x size`` window of each frame.

    Parameters
    ----------
    size
        Odd window width in pixels.
    """

    name = "median"

    def __init__(self, size: int = 3) -> None:
        if int(size) != size or size < 1 or size % 2 == 0:
            raise ValueError(f"size must be a positive odd integer, got {size!r}")
        self.size = int(size)

    def __call__(self, frames: ArrayLike) -> np.ndarray:
        """Filter ``(N, H, W)`` or ``(H, W)`` frames; returns float32 of the same shape."""
        stack, single = _as_frames(frames)
        # window of 1 along the frame axis: 2-D filtering of every frame at once
        out = median_filter(stack, size=(1, self.size, self.size), mode="reflect")
        return out[0] if single else out


class TVDenoiser:
    """Total-variation denoising (Chambolle) of each frame.

    Parameters
    ----------
    weight
        Regularisation weight, in the units of the data. ``None``:
        ``weight_per_sigma`` times the noise level estimated for each frame
        with :func:`skimage.restoration.estimate_sigma`.
    weight_per_sigma
        Factor used when ``weight`` is ``None`` (1.0 was best or near-best on
        phantom projections with 2-30 % Gaussian noise).
    """

    name = "tv"

    def __init__(self, weight: float | None = None, *, weight_per_sigma: float = 1.0) -> None:
        if weight is not None and not (np.isfinite(weight) and weight > 0):
            raise ValueError(f"weight must be a positive number or None (estimate), got {weight!r}")
        if not (np.isfinite(weight_per_sigma) and weight_per_sigma > 0):
            raise ValueError(f"weight_per_sigma must be positive, got {weight_per_sigma!r}")
        self.weight = None if weight is None else float(weight)
        self.weight_per_sigma = float(weight_per_sigma)

    def __call__(self, frames: ArrayLike) -> np.ndarray:
        """Denoise ``(N, H, W)`` or ``(H, W)`` frames; returns float32 of the same shape."""
        stack, single = _as_frames(frames)
        out = np.empty_like(stack)
        for k, frame in enumerate(stack):
            weight = self.weight
            if weight is None:
                weight = self.weight_per_sigma * _noise_sigma(frame, None)
            out[k] = frame if weight <= 0 else denoise_tv_chambolle(frame, weight=weight,
                                                                    channel_axis=None)
        return out[0] if single else out


class BM3DDenoiser:
    """BM3D denoising (``bm3d`` package) of each frame, for white Gaussian noise.

    Parameters
    ----------
    sigma
        Noise standard deviation, in the units of the data. ``None``: estimated
        for each frame with :func:`skimage.restoration.estimate_sigma`.

    Raises
    ------
    ImportError
        If ``bm3d`` is not installed (``pip install "lowdose_bluesky[baselines]"``).
    """

    name = "bm3d"

    def __init__(self, sigma: float | None = None) -> None:
        self.sigma = _check_sigma(sigma)
        _require("bm3d")

    def __call__(self, frames: ArrayLike) -> np.ndarray:
        """Denoise ``(N, H, W)`` or ``(H, W)`` frames; returns float32 of the same shape.

        Raises
        ------
        ImportError
            If ``bm3d`` is not installed (the ``baselines`` extra).
        """
        bm3d = _require("bm3d")
        stack, single = _as_frames(frames)
        out = np.empty_like(stack)
        for k, frame in enumerate(stack):
            sigma = _noise_sigma(frame, self.sigma)
            if sigma <= 0:
                out[k] = frame
                continue
            out[k] = np.asarray(bm3d.bm3d(frame.astype(np.float64), sigma_psd=sigma),
                                dtype=np.float32).reshape(frame.shape)
        return out[0] if single else out


def anscombe(counts: ArrayLike) -> np.ndarray:
    """The Anscombe transform ``2 sqrt(x + 3/8)`` of Poisson counts, in float64.

    For Poisson counts of mean above a few, the result has nearly Gaussian noise of
    unit standard deviation.

    Parameters
    ----------
    counts
        Counts (any shape), ``>= -3/8``.

    Returns
    -------
    numpy.ndarray

    Raises
    ------
    ValueError
        For NaN, infinite or non-real values, or counts below ``-3/8``.
    """
    arr = np.asarray(counts)
    if not (np.issubdtype(arr.dtype, np.floating) or np.issubdtype(arr.dtype, np.integer)):
        raise ValueError(f"counts must be real numbers, got dtype {arr.dtype}")
    arr = arr.astype(np.float64)
    _check_counts(arr)
    return 2.0 * np.sqrt(arr + 3.0 / 8.0)


def inverse_anscombe(transformed: ArrayLike) -> np.ndarray:
    """Closed-form approximation of the exact unbiased inverse Anscombe transform.

    Makitalo & Foi (IEEE Trans. Image Process. 20:99, 2011)::

        1/4 D^2 + 1/4 sqrt(3/2) D^-1 - 11/8 D^-2 + 5/8 sqrt(3/2) D^-3 - 1/8

    for ``D >= CLOSED_FORM_MIN``, the algebraic inverse ``(D / 2)^2 - 3/8`` below,
    clipped at 0 (counts are non-negative). Unlike the algebraic inverse it is
    unbiased for denoised (averaged) data, also at low counts.

    Parameters
    ----------
    transformed
        Values in the Anscombe domain (any shape).

    Returns
    -------
    numpy.ndarray
        Counts, float64, ``>= 0``.
    """
    d = np.asarray(transformed, dtype=np.float64)
    out = np.zeros_like(d)
    high = d >= CLOSED_FORM_MIN
    dh = d[high]
    root = np.sqrt(1.5)
    out[high] = (0.25 * dh**2 + 0.25 * root / dh - 11.0 / 8.0 / dh**2
                 + 5.0 / 8.0 * root / dh**3 - 1.0 / 8.0)
    out[~high] = (d[~high] / 2.0) ** 2 - 3.0 / 8.0
    return np.maximum(out, 0.0)


def _check_counts(arr: np.ndarray) -> None:
    """ValueError for values the Anscombe transform cannot take."""
    finite = np.isfinite(arr)
    if not np.all(finite):
        where = tuple(int(i) for i in np.argwhere(~finite)[0])
        raise ValueError(f"counts must be finite, got {arr[where]} at index {where} "
                         f"({int(np.count_nonzero(~finite))} non-finite values)")
    if arr.size and arr.min() < ANSCOMBE_MIN_COUNT:
        where = tuple(int(i) for i in np.unravel_index(np.argmin(arr), arr.shape))
        raise ValueError(f"counts must be >= -3/8 (the Anscombe transform is 2 sqrt(x + 3/8)), "
                         f"got {arr[where]:g} at index {where}; clip dark-subtracted counts at 0")


def _as_counts(frames: ArrayLike) -> tuple[np.ndarray, bool]:
    """``(N, H, W)`` float64 counts and whether the input was 2-D."""
    arr = np.asarray(frames)
    if arr.ndim not in (2, 3) or min(arr.shape) < 1:
        raise ValueError(f"counts must be a non-empty (N, H, W) or (H, W) array, got shape "
                         f"{arr.shape}")
    if not (np.issubdtype(arr.dtype, np.floating) or np.issubdtype(arr.dtype, np.integer)):
        raise ValueError(f"counts must be real numbers, got dtype {arr.dtype}")
    arr = arr.astype(np.float64)
    _check_counts(arr)
    single = arr.ndim == 2
    return (arr[np.newaxis] if single else arr), single


def _check_workers(workers: int) -> int:
    if isinstance(workers, bool) or not isinstance(workers, int | np.integer) or workers < 1:
        raise ValueError(f"workers must be a positive integer (1: no process pool), got "
                         f"{workers!r}")
    return int(workers)


def _bm3d_frame(frame: np.ndarray, sigma: float) -> np.ndarray:
    """BM3D of one Anscombe-domain frame (a module-level function, for process pools)."""
    if sigma <= 0:
        return frame
    bm3d = _require("bm3d")
    return np.asarray(bm3d.bm3d(frame, sigma_psd=sigma), dtype=np.float64).reshape(frame.shape)


class AnscombeBM3D:
    """BM3D of photon-counting frames in the Anscombe domain, with the unbiased inverse.

    Each frame of counts ``x`` (Poisson, e.g. dark-subtracted detector counts; non-negative
    floats allowed) becomes ``2 sqrt(x + 3/8)``, whose noise is nearly Gaussian of unit
    standard deviation; BM3D removes it with ``sigma_psd`` estimated from that frame
    (:func:`skimage.restoration.estimate_sigma`) unless ``sigma`` is given; and
    :func:`inverse_anscombe` maps the result back to counts.

    Parameters
    ----------
    sigma
        Noise standard deviation in the Anscombe domain (about 1 for Poisson counts
        of mean above a few). ``None``: estimated for each frame.
    workers
        Process-pool size for the frames of one call (``concurrent.futures``, spawned
        processes); 1 denoises in this process. A script using more than 1 must guard
        its main code with ``if __name__ == "__main__":``.

    Attributes
    ----------
    last_sigmas : numpy.ndarray or None
        The Anscombe-domain sigma used for each frame of the last call.

    Raises
    ------
    ImportError
        If ``bm3d`` is not installed (``pip install "lowdose_bluesky[baselines]"``).
    """

    name = "anscombe_bm3d"

    def __init__(self, sigma: float | None = None, *, workers: int = 1) -> None:
        self.sigma = _check_sigma(sigma)
        self.workers = _check_workers(workers)
        _require("bm3d")
        self.last_sigmas: np.ndarray | None = None

    def __call__(self, frames: ArrayLike) -> np.ndarray:
        """Denoise ``(N, H, W)`` or ``(H, W)`` counts; returns float32 counts, same shape.

        Raises
        ------
        ValueError
            For a wrong shape or dtype, NaN or infinite values, or counts below ``-3/8``.
        """
        _require("bm3d")
        stack, single = _as_counts(frames)
        transformed = anscombe(stack)
        sigmas = np.array([_noise_sigma(frame, self.sigma) for frame in transformed])
        if self.workers > 1 and len(transformed) > 1:
            with ProcessPoolExecutor(min(self.workers, len(transformed)),
                                     mp_context=get_context("spawn")) as pool:
                denoised = list(pool.map(_bm3d_frame, transformed, sigmas))
        else:
            denoised = [_bm3d_frame(frame, sigma) for frame, sigma in zip(transformed, sigmas,
                                                                         strict=True)]
        self.last_sigmas = sigmas
        out = np.empty(stack.shape, np.float32)
        for k, (frame, sigma) in enumerate(zip(denoised, sigmas, strict=True)):
            # a frame without noise (e.g. constant) is returned as it came
            out[k] = stack[k] if sigma <= 0 else inverse_anscombe(frame)
        return out[0] if single else out


class AnscombeBM4D:
    """BM4D of a stack of photon-counting frames as one volume, in the Anscombe domain.

    As :class:`AnscombeBM3D`, but the Anscombe-transformed ``(N, H, W)`` stack is
    denoised as one volume by ``bm4d.bm4d`` (so it filters across frames, which helps
    when neighbouring frames are similar, e.g. closely spaced projection angles). With
    fewer than 5 frames BM4D uses 2-D blocks, still grouped across frames.

    Parameters
    ----------
    sigma
        Noise standard deviation in the Anscombe domain. ``None``: the median of the
        per-frame estimates (:func:`skimage.restoration.estimate_sigma`).

    Attributes
    ----------
    last_sigmas : numpy.ndarray or None
        The per-frame Anscombe-domain estimates of the last call (each equal to
        ``sigma`` when it is given).
    last_sigma : float or None
        The sigma used for the volume in the last call.

    Raises
    ------
    ImportError
        If ``bm4d`` is not installed (``pip install "lowdose_bluesky[baselines]"``).
    """

    name = "anscombe_bm4d"

    def __init__(self, sigma: float | None = None) -> None:
        self.sigma = _check_sigma(sigma)
        _require("bm4d")
        self.last_sigmas: np.ndarray | None = None
        self.last_sigma: float | None = None

    def __call__(self, frames: ArrayLike) -> np.ndarray:
        """Denoise ``(N, H, W)`` or ``(H, W)`` counts; returns float32 counts, same shape.

        Raises
        ------
        ValueError
            For a wrong shape or dtype, NaN or infinite values, or counts below ``-3/8``.
        """
        bm4d = _require("bm4d")
        stack, single = _as_counts(frames)
        transformed = anscombe(stack)
        sigmas = np.array([_noise_sigma(frame, self.sigma) for frame in transformed])
        sigma = float(np.median(sigmas))
        self.last_sigmas, self.last_sigma = sigmas, sigma
        if sigma <= 0:
            out = stack
        else:
            # bm4d's volumes are (y, x, z): frames along the last axis (fewer than 5 frames
            # get its 8x8x1 blocks, still matched across frames)
            volume = np.moveaxis(transformed, 0, -1)
            try:
                denoised = np.asarray(bm4d.bm4d(volume, sigma_psd=sigma), dtype=np.float64)
            except ValueError as exc:
                raise ValueError(f"BM4D cannot denoise counts of shape {stack.shape}: {exc} "
                                 "(frames of at least 8x8 pixels are needed)") from exc
            out = inverse_anscombe(np.moveaxis(denoised.reshape(volume.shape), -1, 0))
        out = out.astype(np.float32)
        return out[0] if single else out
