"""Stitching of per-position object patches into one image, at once or batch by batch.

Each patch (amplitude and phase of the object under the probe window) is
placed at its position (rounded half up, as in the forward model) and weighted
by the probe intensity ``|P|^2``, so that pixels the probe barely lit count
little. Amplitude is the weighted mean; phase is the angle of the weighted mean
of the unit phasors ``exp(i phase)``, so patches whose phases wrap at ``+-pi``
average correctly. Pixels whose summed weight is below ``threshold`` times the
largest summed weight are NaN.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
from numpy.typing import ArrayLike

from lowdose_bluesky.ptycho.positions import check_positions, window_corners
from lowdose_bluesky.ptycho.probe import check_probe

__all__ = ["Stitcher", "stitch"]


class Stitcher:
    """Accumulates patches as they arrive and returns the stitched image at any time.

    Parameters
    ----------
    obj_shape
        ``(H, W)`` of the stitched object.
    probe
        Complex probe ``(h, w)``; ``|probe|^2`` weights every patch.
    threshold
        Pixels whose summed weight is below ``threshold * max |probe|^2`` (a
        fraction of one probe's peak intensity, so that a pixel once stitched stays
        stitched as patches arrive, whatever the overlap) are NaN in :meth:`image`;
        in ``[0, 1]``.

    Attributes
    ----------
    count : int
        Number of patches added so far.

    Examples
    --------
    >>> stitcher = Stitcher((64, 64), probe)          # doctest: +SKIP
    >>> stitcher.add(amplitude, phase, positions)     # doctest: +SKIP
    >>> amplitude_image, phase_image = stitcher.image()  # doctest: +SKIP
    """

    def __init__(self, obj_shape: Sequence[int], probe: ArrayLike, threshold: float = 0.1
                 ) -> None:
        try:
            height, width = (int(s) for s in obj_shape)
        except (TypeError, ValueError):
            raise ValueError(f"obj_shape must be two integers, got {obj_shape!r}") from None
        if height < 1 or width < 1:
            raise ValueError(f"obj_shape must be positive, got {obj_shape!r}")
        if not (np.isfinite(threshold) and 0.0 <= threshold <= 1.0):
            raise ValueError(f"threshold must be in [0, 1], got {threshold!r}")
        p = np.asarray(probe)
        p = check_probe(p, p.shape)
        if p.shape[0] > height or p.shape[1] > width:
            raise ValueError(
                f"probe shape {p.shape} does not fit in the object shape {(height, width)}"
            )
        self.obj_shape: tuple[int, int] = (height, width)
        self.threshold = float(threshold)
        self._weight_patch = np.abs(p) ** 2
        self._weight = np.zeros(self.obj_shape)
        self._amplitude = np.zeros(self.obj_shape)
        self._phasor = np.zeros(self.obj_shape, dtype=np.complex128)
        self.count = 0

    @property
    def probe_shape(self) -> tuple[int, int]:
        """``(h, w)`` of the patches."""
        return self._weight_patch.shape  # type: ignore[return-value]

    @property
    def weight(self) -> np.ndarray:
        """Summed probe intensity ``sum |P|^2`` at each object pixel (a copy)."""
        return self._weight.copy()

    def add(self, amplitude: ArrayLike, phase: ArrayLike, positions: ArrayLike) -> None:
        """Add a batch of patches.

        Parameters
        ----------
        amplitude, phase
            Real arrays ``(N, h, w)`` (or ``(h, w)`` for one patch), finite;
            phase in radians.
        positions
            ``(N, 2)`` ``(y, x)`` top-left corners (or one ``(y, x)`` pair),
            with every window inside the object.
        """
        amp = np.asarray(amplitude, dtype=np.float64)
        ph = np.asarray(phase, dtype=np.float64)
        points = np.asarray(positions, dtype=np.float64)
        if amp.ndim == 2:
            amp, ph, points = amp[None], ph[None], points.reshape(1, -1)
        expected = (len(points), *self.probe_shape)
        for name, array in (("amplitude", amp), ("phase", ph)):
            if array.shape != expected:
                raise ValueError(
                    f"{name} must have shape (N, h, w) = {expected} for {len(points)} "
                    f"positions and a {self.probe_shape} probe, got {array.shape}"
                )
            if not np.all(np.isfinite(array)):
                raise ValueError(f"{name} must be finite, got NaN or infinite values")
        points = check_positions(points, self.obj_shape, self.probe_shape)
        w = self._weight_patch
        h, wd = self.probe_shape
        for (y, x), a, p in zip(window_corners(points), amp, ph, strict=True):
            window = (slice(y, y + h), slice(x, x + wd))
            self._weight[window] += w
            self._amplitude[window] += w * a
            self._phasor[window] += w * np.exp(1j * p)
        self.count += len(points)

    def mask(self) -> np.ndarray:
        """Boolean map of the pixels with enough summed weight to be stitched."""
        peak = float(self._weight_patch.max())
        return (self._weight >= self.threshold * peak) & (self._weight > 0)

    def image(self) -> tuple[np.ndarray, np.ndarray]:
        """Stitched amplitude and phase so far.

        Returns
        -------
        tuple of numpy.ndarray
            ``(amplitude, phase)``, each ``float64`` ``(H, W)``; phase in
            ``(-pi, pi]``; NaN where the summed weight is below the threshold
            (everywhere before the first :meth:`add`).
        """
        valid = self.mask()
        amplitude = np.full(self.obj_shape, np.nan)
        phase = np.full(self.obj_shape, np.nan)
        amplitude[valid] = self._amplitude[valid] / self._weight[valid]
        phase[valid] = np.angle(self._phasor[valid])
        return amplitude, phase


def stitch(amplitude: ArrayLike, phase: ArrayLike, positions: ArrayLike, probe: ArrayLike,
           obj_shape: Sequence[int], *, threshold: float = 0.1
           ) -> tuple[np.ndarray, np.ndarray]:
    """Stitch patches into one object image (see :class:`Stitcher`).

    Parameters
    ----------
    amplitude, phase
        Real arrays ``(N, h, w)``: the object's amplitude and phase (radians)
        under the probe window at each position.
    positions
        ``(N, 2)`` ``(y, x)`` top-left corners, rounded half up to whole pixels.
    probe
        Complex probe ``(h, w)``; ``|probe|^2`` weights every patch.
    obj_shape
        ``(H, W)`` of the result.
    threshold
        Pixels whose summed weight is below ``threshold * max |probe|^2`` are NaN.

    Returns
    -------
    tuple of numpy.ndarray
        ``(amplitude, phase)``, each ``float64`` ``(H, W)``.
    """
    stitcher = Stitcher(obj_shape, probe, threshold)
    stitcher.add(amplitude, phase, positions)
    return stitcher.image()
