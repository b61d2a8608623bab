"""Intensity normalisation learned from the training pairs.

The network works on data mapped to roughly ``[0, 1]``. Low- and high-exposure
frames are mapped with their own global, robust affine maps (percentiles over
all training frames), so the :class:`~lowdose_bluesky.model.Enhancer` accepts
frames in the units of ``low`` and returns them in the units of ``high``
(raw counts, flat-corrected transmission or line integrals alike).

Unlike the paper's per-image z-score + min-max, global statistics keep the
relation between frames (a darker projection stays darker after enhancement).
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any

import numpy as np

__all__ = ["Normalisation", "robust_range"]

_MAX_SAMPLES = 4_000_000


def robust_range(data: np.ndarray, percentiles: tuple[float, float]) -> tuple[float, float]:
    """Return ``(offset, scale)`` mapping the given percentiles of ``data`` to 0 and 1.

    Parameters
    ----------
    data
        Any real array; large arrays are sub-sampled on a regular stride.
    percentiles
        Lower and upper percentiles, e.g. ``(1.0, 99.0)``.

    Returns
    -------
    offset, scale : float
        ``(data - offset) / scale`` sends the percentiles to ``[0, 1]``; a
        constant array gets ``scale = 1``.
    """
    flat = np.asarray(data).reshape(-1)
    step = max(1, flat.size // _MAX_SAMPLES)
    lo, hi = np.percentile(flat[::step].astype(np.float64), percentiles)
    scale = float(hi - lo)
    if not np.isfinite(scale) or scale <= 0:
        scale = 1.0
    return float(lo), scale


@dataclass(frozen=True)
class Normalisation:
    """Affine maps of low-exposure inputs and high-exposure targets.

    Parameters
    ----------
    low_offset, low_scale
        ``x_norm = (x_low - low_offset) / low_scale``.
    high_offset, high_scale
        ``y = y_norm * high_scale + high_offset``.
    method
        Name of the statistic used, recorded in checkpoints.
    percentiles
        Percentiles mapped to 0 and 1.
    """

    low_offset: float
    low_scale: float
    high_offset: float
    high_scale: float
    method: str = "global_percentile"
    percentiles: tuple[float, float] = (1.0, 99.0)

    @classmethod
    def fit(
        cls, low: np.ndarray, high: np.ndarray, percentiles: tuple[float, float] = (1.0, 99.0)
    ) -> Normalisation:
        """Fit the maps to the training pairs.

        Parameters
        ----------
        low, high
            Training frames (any shape, same units within each array).
        percentiles
            Lower and upper percentiles mapped to 0 and 1.

        Returns
        -------
        Normalisation
        """
        low_offset, low_scale = robust_range(low, percentiles)
        high_offset, high_scale = robust_range(high, percentiles)
        return cls(low_offset, low_scale, high_offset, high_scale, percentiles=tuple(percentiles))

    @classmethod
    def identity(cls) -> Normalisation:
        """Return the map that leaves data unchanged."""
        return cls(0.0, 1.0, 0.0, 1.0, method="identity", percentiles=(0.0, 100.0))

    def normalise_low(self, x: np.ndarray) -> np.ndarray:
        """Map low-exposure data to network units (float32)."""
        out = np.asarray(x, dtype=np.float32) - np.float32(self.low_offset)
        out /= np.float32(self.low_scale)
        return out

    def normalise_high(self, y: np.ndarray) -> np.ndarray:
        """Map high-exposure data to network units (float32)."""
        out = np.asarray(y, dtype=np.float32) - np.float32(self.high_offset)
        out /= np.float32(self.high_scale)
        return out

    def denormalise_high(self, y: np.ndarray) -> np.ndarray:
        """Map network outputs back to the units of the high-exposure data (float32)."""
        out = np.asarray(y, dtype=np.float32) * np.float32(self.high_scale)
        out += np.float32(self.high_offset)
        return out

    def to_dict(self) -> dict[str, Any]:
        """Return a JSON-serialisable description."""
        out = asdict(self)
        out["percentiles"] = list(self.percentiles)
        return out

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Normalisation:
        """Rebuild from :meth:`to_dict` output.

        Raises
        ------
        ValueError
            If keys are missing or values are not finite numbers.
        """
        try:
            values = {
                key: float(data[key])
                for key in ("low_offset", "low_scale", "high_offset", "high_scale")
            }
            method = str(data.get("method", "global_percentile"))
            percentiles = tuple(float(p) for p in data.get("percentiles", (1.0, 99.0)))
        except (KeyError, TypeError, ValueError) as exc:
            raise ValueError(f"invalid normalisation metadata {data!r}: {exc}") from exc
        if not all(np.isfinite(v) for v in values.values()) or values["low_scale"] == 0:
            raise ValueError(f"invalid normalisation metadata {data!r}: non-finite or zero scale")
        if values["high_scale"] == 0 or len(percentiles) != 2:
            raise ValueError(f"invalid normalisation metadata {data!r}")
        return cls(**values, method=method, percentiles=percentiles)
