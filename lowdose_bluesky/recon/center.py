"""Finding the detector column of the rotation axis."""

from __future__ import annotations

import numpy as np
import scipy.fft
from numpy.typing import ArrayLike
from scipy.optimize import minimize_scalar

from lowdose_bluesky.recon._checks import as_angles_deg, as_projections
from lowdose_bluesky.recon.backends import get_backend

__all__ = ["find_center"]

#: Largest difference from exactly 180 deg for two projections to count as a mirror pair.
MIRROR_TOLERANCE_DEG = 0.05


def _shift_columns(rows: np.ndarray, shifts: np.ndarray) -> np.ndarray:
    """Sub-pixel shifts along the last axis (Fourier shift, edge-padded, no blur).

    ``rows`` is ``(..., X)``; ``shifts`` broadcasts against ``rows[..., 0]``.
    Returns rows ``r`` with ``out[..., j] = r[..., j - shift]``.
    """
    n_x = rows.shape[-1]
    n_pad = int(scipy.fft.next_fast_len(2 * n_x, real=True))
    half = (n_pad - n_x) // 2
    padded = np.empty((*rows.shape[:-1], n_pad), dtype=np.float64)
    padded[..., :n_x] = rows
    padded[..., n_x:n_x + half] = rows[..., -1:]
    padded[..., n_x + half:] = rows[..., :1]
    freq = np.fft.rfftfreq(n_pad)
    phase = np.exp(-2j * np.pi * freq * np.asarray(shifts, dtype=np.float64)[..., None])
    shifted = scipy.fft.irfft(scipy.fft.rfft(padded, axis=-1) * phase, n=n_pad, axis=-1)
    return shifted[..., :n_x]


def _mirror_pair(angles_deg: np.ndarray) -> tuple[int, int] | None:
    """Indices ``(i, j)`` with ``angles[j] - angles[i]`` closest to 180 deg, if within tolerance."""
    diff = np.abs(np.abs(angles_deg[None, :] - angles_deg[:, None]) - 180.0)
    i, j = np.unravel_index(np.argmin(diff), diff.shape)
    if diff[i, j] > MIRROR_TOLERANCE_DEG:
        return None
    return (int(i), int(j)) if angles_deg[i] <= angles_deg[j] else (int(j), int(i))


def _center_from_mirror(first: np.ndarray, second: np.ndarray) -> float:
    """Centre from two projections 180 deg apart, ``(Z, X)`` each.

    The projection at ``theta + 180`` is the one at ``theta`` mirrored about
    the centre ``c``: ``p2[j] = p1[2c - j]``, so ``p2[::-1]`` is ``p1`` moved by
    ``s = X - 1 - 2c``. ``s`` is found by cross-correlation to the nearest
    pixel, then refined by least squares on sub-pixel shifts.
    """
    n_x = first.shape[-1]
    a = first - first.mean(axis=-1, keepdims=True)
    b = second[..., ::-1] - second.mean(axis=-1, keepdims=True)
    n_fft = int(scipy.fft.next_fast_len(2 * n_x))
    corr = scipy.fft.irfft(
        (np.conj(scipy.fft.rfft(a, n_fft, axis=-1)) * scipy.fft.rfft(b, n_fft, axis=-1)).sum(0),
        n_fft,
    )
    lags = np.fft.fftfreq(n_fft, 1.0 / n_fft)
    allowed = np.abs(lags) < n_x // 2
    coarse = float(lags[allowed][np.argmax(corr[allowed])])  # b[j] ~ a[j - coarse]
    margin = int(np.ceil(abs(coarse))) + 2
    inner = slice(margin, n_x - margin) if n_x - 2 * margin > 4 else slice(None)

    def cost(shift: float) -> float:
        moved = _shift_columns(b, np.array(-shift))  # moved[j] = b[j + shift] ~ a[j]
        return float(np.mean((moved[..., inner] - a[..., inner]) ** 2))

    best = minimize_scalar(cost, bounds=(coarse - 1.0, coarse + 1.0), method="bounded",
                           options={"xatol": 1e-3})
    lag = float(best.x)
    # b[j] = p2[X-1-j] = p1[2c - X + 1 + j] = a[j - lag]  =>  2c - X + 1 = -lag
    return (n_x - 1 - lag) / 2


def _parabolic_minimum(xs: np.ndarray, values: np.ndarray) -> float:
    """Minimum of sampled values, refined by a parabola through its neighbours."""
    k = int(np.argmin(values))
    if 0 < k < xs.size - 1:
        y0, y1, y2 = values[k - 1 : k + 2]
        denom = y0 - 2 * y1 + y2
        if denom > 0:
            return float(xs[k] + 0.5 * (y0 - y2) / denom * (xs[1] - xs[0]))
    return float(xs[k])


def _covers_half_turn(angles_deg: np.ndarray) -> bool:
    """Whether sorted angles step evenly-ish over [a, a + 180) (one step short of 180)."""
    ordered = np.sort(angles_deg)
    step = float(np.median(np.diff(ordered)))
    if step <= 0:
        return False
    return abs(ordered[-1] - ordered[0] + step - 180.0) <= 1.5 * step


def _center_from_consistency(sinograms: np.ndarray, angles_deg: np.ndarray,
                             radius: float) -> float:
    """Centre that makes the half-turn sinogram continue consistently to a full turn.

    After the model of Vo, Atwood & Drakopoulos (Opt. Express 22, 19078, 2014):
    the sinogram over ``[0, 180)`` followed by its mirror about a candidate
    centre is a 360 deg sinogram; only at the right centre is it continuous
    at the seams, and a consistent sinogram of an object of radius ``R`` has
    (almost) no energy at angular harmonics ``|k| > 2 pi R |f|``. The cost is
    the mean Fourier magnitude there (``R`` = a quarter of the detector);
    noise spreads evenly over all harmonics, which makes this robust.
    ``sinograms`` is ``(N, R, X)``; whole-pixel candidates within ``radius``,
    then 0.25-pixel steps and a parabola.
    """
    order = np.argsort(angles_deg, kind="stable")
    sino = sinograms[order]
    n_ang, _, n_x = sino.shape
    mid = (n_x - 1) / 2
    flipped = sino[:, :, ::-1]
    harmonic = np.fft.fftfreq(2 * n_ang, 1.0 / (2 * n_ang))[:, None, None]
    freq = np.fft.fftfreq(n_x)[None, None, :]
    outside = np.abs(harmonic) > 2 * np.pi * (n_x / 4) * np.abs(freq) + 1
    outside = np.broadcast_to(outside, (2 * n_ang, *sino.shape[1:]))

    def cost(centre: float) -> float:
        # p(theta + 180, u) = p(theta, 2c - u); flipped[j] = p[X - 1 - j]
        mirrored = _shift_columns(flipped, np.array(2 * centre - (n_x - 1)))
        full = np.concatenate([sino, mirrored], axis=0)
        full -= full.mean(axis=(0, 2), keepdims=True)
        return float(np.abs(scipy.fft.fft2(full, axes=(0, 2)))[outside].mean())

    coarse = mid + np.arange(-np.floor(radius), np.floor(radius) + 1)
    best = coarse[int(np.argmin([cost(c) for c in coarse]))]
    fine = best + np.arange(-1.0, 1.0001, 0.25)
    return _parabolic_minimum(fine, np.array([cost(c) for c in fine]))


def _negativity(slices: np.ndarray, radius: float) -> np.ndarray:
    """Sum of negative values inside a centred disc, per slice (0 for a perfect one).

    Attenuation is non-negative; a wrong centre adds arcs with negative lobes.
    Of the classic criteria (entropy, L1, total variation, negativity; Donath
    et al. 2006) this was the most robust to noise on the phantoms here.
    """
    n_x = slices.shape[-1]
    coords = np.arange(n_x) - (n_x - 1) / 2
    disc = np.hypot(coords[:, None], coords[None, :]) < radius
    return -np.minimum(slices[..., disc], 0.0).sum(axis=-1)


def _center_from_search(sinograms: np.ndarray, angles_deg: np.ndarray, radius: float,
                        backend: str, filter_name: str) -> float:
    """Centre minimising the negativity of a few reconstructed slices.

    ``sinograms`` is ``(N, R, X)`` (a band of ``R`` detector rows; their costs
    are summed, which averages noise). Whole-pixel candidates are one batched
    reconstruction: sinograms moved by ``k`` whole columns (exact,
    edge-padded) and reconstructed at the detector centre ``m`` are the slices
    for centre ``m + k``. The best one is refined with a bounded scalar search
    over sub-pixel centres passed to the backend (moving the data by
    fractions of a pixel would blur or ring and bias the cost). The cost only
    looks at the disc whose rays stay on the detector for every candidate, so
    edge padding cannot lower it.
    """
    n_ang, n_rows, n_x = sinograms.shape
    mid = (n_x - 1) / 2
    engine = get_backend(backend)
    angles_rad = np.deg2rad(angles_deg)
    steps = np.arange(-int(np.floor(radius)), int(np.floor(radius)) + 1)
    disc = (n_x - 1) / 2 - steps.max() - 2
    columns = np.clip(np.arange(n_x)[None, :] + steps[:, None], 0, n_x - 1)  # (K, X)
    stack = sinograms[:, :, columns].reshape(n_ang, n_rows * steps.size, n_x)  # (N, R*K, X)
    rec = engine.reconstruct(np.ascontiguousarray(stack, dtype=np.float32), angles_rad, mid,
                             filter_name=filter_name)
    coarse = _negativity(rec, disc).reshape(n_rows, steps.size).sum(axis=0)
    best = mid + steps[int(np.argmin(coarse))]
    band = np.ascontiguousarray(sinograms, dtype=np.float32)

    def cost(centre: float) -> float:
        slices = engine.reconstruct(band, angles_rad, centre, filter_name=filter_name)
        return float(_negativity(slices, disc).sum())

    lo, hi = max(best - 1.0, 0.0), min(best + 1.0, n_x - 1.0)
    fine = minimize_scalar(cost, bounds=(lo, hi), method="bounded", options={"xatol": 0.02})
    return float(fine.x)


_METHODS = ("auto", "mirror", "consistency", "search")


def find_center(line_integrals: ArrayLike, angles_deg: ArrayLike, *, method: str = "auto",
                slice_index: int | None = None, n_rows: int = 1,
                search_radius: float | None = None, backend: str = "auto",
                filter: str = "parzen") -> float:
    """Detector column of the rotation axis.

    Parameters
    ----------
    line_integrals
        ``(N, Z, X)`` line integrals.
    angles_deg
        ``(N,)`` angles in degrees.
    method
        ``"mirror"``: register the projection at ``theta + 180`` deg (mirrored)
        on the one at ``theta`` (needs such a pair within 0.05 deg; uses all
        detector rows; cross-correlation, then sub-pixel least squares).
        ``"consistency"``: for angles stepping over ``[a, a + 180)`` without
        the end point, the centre whose mirrored sinogram continues the
        measured one into a consistent 360 deg sinogram (Fourier criterion
        of Vo et al. 2014; robust to noise).
        ``"search"``: reconstruct slices at candidate centres with ``backend``
        and take the centre with the least negativity (sum of negative
        values); works for any angle set.
        ``"auto"``: ``"mirror"`` when a 180 deg pair exists, else
        ``"consistency"`` when the angles cover a half turn, else ``"search"``.
    slice_index
        Middle detector row of the band used by ``"consistency"`` and
        ``"search"`` (default: the middle row).
    n_rows
        Rows in that band (their costs are summed, averaging noise).
    search_radius
        Largest distance, in pixels, of the centre from the detector centre
        for ``"consistency"`` and ``"search"`` (default: ``X / 8``).
    backend
        Reconstruction backend for ``"search"``.
    filter
        FBP filter for ``"search"`` (a smoothing one resists noise best).

    Returns
    -------
    float
        Rotation-centre column; ``(X - 1) / 2`` when the axis projects on the
        detector centre.

    Raises
    ------
    ValueError
        On invalid projections/angles, an unknown method, a missing mirror
        pair for ``"mirror"``, angles not covering a half turn for
        ``"consistency"``, or an out-of-range slice index, row count or radius.
    """
    data = as_projections(line_integrals)
    angles = as_angles_deg(angles_deg, data.shape[0])
    n_z, n_x = data.shape[1:]
    if method not in _METHODS:
        raise ValueError(f"unknown method {method!r}; allowed: {', '.join(map(repr, _METHODS))}")
    pair = _mirror_pair(angles) if method in ("auto", "mirror") else None
    if method == "mirror" and pair is None:
        raise ValueError(
            f"no two projections are 180 deg apart (within {MIRROR_TOLERANCE_DEG} deg); "
            "use method='consistency' or 'search'"
        )
    if pair is not None:
        return _center_from_mirror(data[pair[0]].astype(np.float64),
                                   data[pair[1]].astype(np.float64))
    half_turn = _covers_half_turn(angles)
    if method == "consistency" and not half_turn:
        raise ValueError("method='consistency' needs angles stepping over [a, a + 180) deg")
    row = n_z // 2 if slice_index is None else int(slice_index)
    if not 0 <= row < n_z:
        raise ValueError(f"slice_index must be in [0, {n_z - 1}], got {slice_index!r}")
    if int(n_rows) != n_rows or n_rows < 1:
        raise ValueError(f"n_rows must be a positive integer, got {n_rows!r}")
    radius = n_x / 8 if search_radius is None else float(search_radius)
    if not 1 <= radius < n_x / 2 - 4:
        raise ValueError(f"search_radius must be in [1, {n_x / 2 - 4}), got {search_radius!r}")
    first = int(np.clip(row - int(n_rows) // 2, 0, max(n_z - int(n_rows), 0)))
    band = data[:, first:first + int(n_rows), :].astype(np.float64)
    if method == "consistency" or (method == "auto" and half_turn):
        return _center_from_consistency(band, angles, radius)
    return _center_from_search(band, angles, radius, backend, filter)
