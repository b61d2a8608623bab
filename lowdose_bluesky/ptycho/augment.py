"""Training pairs from an object estimate through the forward model (physics augmentation).

A dense scan gives a few hundred patterns, strongly overlapping: too few distinct
patches to learn the inverse of the far-field forward model. Its iterative
reconstruction, however, is a whole object. :func:`synthetic_pairs` cuts random
windows from the part of it the probe lit, turns each by one of the eight symmetries
of the square, scales its thickness, and computes the pattern the probe would give
through the forward model (:func:`~lowdose_bluesky.ptycho.forward.window_intensity`)
with Poisson counts at the scan's dose. Nothing the experiment did not measure is
used: the reconstruction, the probe and the dose.

The thickness scaling ``O ** g`` multiplies both the phase and the log-amplitude by
``g``: the same material, ``g`` times thicker, for an object whose amplitude follows
its phase (a single material, ``O = exp((i - beta/delta) * phi)``).
"""

from __future__ import annotations

from typing import NamedTuple

import numpy as np

from lowdose_bluesky.ptycho.forward import window_intensity
from lowdose_bluesky.ptycho.probe import probe_support

__all__ = ["SyntheticPairs", "synthetic_pairs"]

#: Default range of the thickness factor ``g``.
GAIN_RANGE = (0.6, 1.4)


class SyntheticPairs(NamedTuple):
    """Patterns and the object patches that gave them."""

    #: float32 Poisson counts ``(N, h, w)``, zero frequency at the centre.
    patterns: np.ndarray
    #: complex128 object patches ``(N, h, w)``.
    windows: np.ndarray


def _lit_corners(covered: np.ndarray, support: np.ndarray) -> np.ndarray:
    """``(K, 2)`` corners where every pixel of ``support`` falls on ``covered``."""
    h, w = support.shape
    rows, cols = covered.shape[0] - h + 1, covered.shape[1] - w + 1
    if rows < 1 or cols < 1:
        return np.empty((0, 2), int)
    ok = np.ones((rows, cols), bool)
    dead = ~covered
    for dy, dx in np.argwhere(support):
        ok &= ~dead[dy:dy + rows, dx:dx + cols]
    return np.argwhere(ok)


def synthetic_pairs(obj: np.ndarray, covered: np.ndarray, probe: np.ndarray, photons: float,
                    n: int, *, support_fraction: float = 0.02,
                    gain_range: tuple[float, float] = GAIN_RANGE,
                    rng: np.random.Generator | int | None = None) -> SyntheticPairs:
    """``n`` simulated patterns of patches of ``obj``, with the patches.

    Parameters
    ----------
    obj
        Complex object estimate ``(H, W)`` (e.g. the dense field's reconstruction).
    covered
        Boolean ``(H, W)``: where ``obj`` is trusted (the probe lit it). A window is
        used only if its probe support lies wholly on it.
    probe
        Complex probe ``(h, w)``.
    photons
        Counts of a clear patch (the scan's dose per pattern); positive.
    n
        Number of pairs.
    support_fraction
        Probe support: pixels whose intensity is at least this fraction of the peak.
    gain_range
        ``(low, high)``: each patch's thickness is scaled by a factor drawn uniformly
        from it (``(1, 1)``: no scaling).
    rng
        Generator or seed.

    Returns
    -------
    SyntheticPairs

    Raises
    ------
    ValueError
        For shapes that disagree, ``photons <= 0``, ``n < 1``, a bad gain range, or
        when no window's probe support lies wholly on ``covered``.
    """
    o = np.asarray(obj)
    lit = np.asarray(covered, bool)
    p = np.asarray(probe)
    if o.ndim != 2 or lit.shape != o.shape:
        raise ValueError(f"obj and covered must be 2-D arrays of one shape; got {o.shape} "
                         f"and {lit.shape}")
    if p.ndim != 2:
        raise ValueError(f"probe must be a 2-D array; got shape {p.shape}")
    if not (np.isfinite(photons) and photons > 0):
        raise ValueError(f"photons must be a positive count per pattern; got {photons!r}")
    if isinstance(n, bool) or not isinstance(n, int | np.integer) or n < 1:
        raise ValueError(f"n must be a positive integer; got {n!r}")
    low, high = (float(g) for g in gain_range)
    if not 0 < low <= high:
        raise ValueError(f"gain_range must be (low, high) with 0 < low <= high; got "
                         f"{gain_range!r}")
    support = probe_support(p, support_fraction)
    corners = _lit_corners(lit, support)
    if len(corners) == 0:
        raise ValueError(f"no {p.shape} window of the {o.shape} object has its probe support "
                         f"({int(support.sum())} pixels) wholly on the covered area "
                         f"({int(lit.sum())} pixels)")
    generator = rng if isinstance(rng, np.random.Generator) else np.random.default_rng(rng)
    h, w = p.shape
    picks = corners[generator.integers(0, len(corners), n)]
    turns = generator.integers(0, 8, n)
    gains = generator.uniform(low, high, n)
    windows = np.empty((n, h, w), np.complex128)
    for i, ((y, x), turn, gain) in enumerate(zip(picks, turns, gains, strict=True)):
        patch = np.rot90(o[y:y + h, x:x + w], turn % 4)
        if turn >= 4:
            patch = patch[:, ::-1]
        amplitude = np.clip(np.abs(patch), 1e-6, None)
        windows[i] = amplitude ** gain * np.exp(1j * gain * np.angle(patch))
    patterns = generator.poisson(window_intensity(windows, p, float(photons)))
    return SyntheticPairs(patterns.astype(np.float32), windows)
