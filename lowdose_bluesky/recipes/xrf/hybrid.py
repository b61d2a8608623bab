"""The hybrid: Noise2Noise across the detector elements, then fine-tuned on reference rows.

Noise2Noise learns a denoiser from the whole map with no long dwell; the long-dwell
reference rows then correct it where they can (a supervised fine-tuning that starts
from the blind network and keeps it when the held-out reference pixels say the
fine-tuning did not help). The training time is shared: :data:`NOISE2NOISE_SHARE` to
Noise2Noise, the rest to the fine-tuning.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np

from .noise2noise import half_maps, noise2noise_maps
from .supervised import supervised_maps

__all__ = ["NOISE2NOISE_SHARE", "hybrid_maps"]

#: Share of the training time given to Noise2Noise (the rest fine-tunes).
NOISE2NOISE_SHARE = 0.6


def hybrid_maps(detector_maps: np.ndarray, live: Sequence[int], long_rows: np.ndarray,
                rows: Sequence[int], *, epochs: int = 30, seed: int = 0,
                max_seconds: float | None = 20.0, device: str = "auto",
                train_options: dict[str, Any] | None = None
                ) -> tuple[np.ndarray, Any, dict[str, Any]]:
    """Enhanced maps ``(elements, H, W)``: Noise2Noise, then the reference rows.

    Parameters
    ----------
    detector_maps
        ``(detector elements, elements, H, W)``, each detector element's unclipped maps.
    live
        The detector elements that counted.
    long_rows
        Unclipped long-dwell maps of the reference rows ``(elements, len(rows), W)``.
    rows
        Map row of each reference row.
    epochs, seed, max_seconds, device
        Noise2Noise's epochs; seed, total training time and torch device.
    train_options
        Options of the supervised fine-tuning (:func:`.supervised_maps`).

    Returns
    -------
    tuple
        The maps, the fine-tuned :class:`~lowdose_bluesky.model.Enhancer` and the
        Noise2Noise record.
    """
    share = None if max_seconds is None else NOISE2NOISE_SHARE * max_seconds
    rest = None if max_seconds is None else max_seconds - share
    _, blind, record = noise2noise_maps(detector_maps, live, epochs=epochs, seed=seed,
                                        max_seconds=share, device=device)
    maps, enhancer = supervised_maps(half_maps(detector_maps, live), long_rows, rows,
                                     seed=seed, max_seconds=rest, device=device, init=blind,
                                     **(train_options or {}))
    return maps, enhancer, record
