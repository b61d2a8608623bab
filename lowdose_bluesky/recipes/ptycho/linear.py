"""The learned linear retrieval of the recipe: fitted on the dense field plus simulated pairs."""

from __future__ import annotations

import time
from typing import Any

import numpy as np

from ...ptycho import probe_support
from ...ptycho.augment import synthetic_pairs

__all__ = ["SUPPORT_FRACTION", "clear_field_counts", "fit_linear"]

#: The probe support predicted: intensity at least this fraction of the peak.
SUPPORT_FRACTION = 0.02


def clear_field_counts(patterns: np.ndarray, windows: np.ndarray, probe: np.ndarray) -> float:
    """The counts a clear pattern would hold, from patterns and the object under them.

    Each pattern's total is ``photons * sum(|P|^2 |O|^2)`` with the probe normalised to
    unit energy; the median over the patterns of ``total / sum(|P|^2 |O|^2)``.
    """
    weight = np.abs(probe) ** 2 / np.sum(np.abs(probe) ** 2)
    transmitted = np.sum(weight * np.abs(windows) ** 2, axis=(1, 2))
    totals = np.asarray(patterns, np.float64).reshape(len(patterns), -1).sum(axis=1)
    ratios = totals[transmitted > 0] / transmitted[transmitted > 0]
    if not ratios.size or not np.median(ratios) > 0:
        raise ValueError("the dense field's patterns hold no counts: no dose to simulate")
    return float(np.median(ratios))


def fit_linear(patterns: np.ndarray, windows: np.ndarray, obj: np.ndarray, covered: np.ndarray,
               probe: np.ndarray, photons: float, *, pairs: int, ridge: float, seed: int
               ) -> tuple[Any, dict[str, Any]]:
    """Fit :class:`~lowdose_bluesky.model.linear_retrieval.LinearRetrievalModel`.

    Pairs: the measured ``patterns`` with the reconstruction's ``windows`` under them,
    plus ``pairs`` simulated from the reconstruction ``obj`` where ``covered``
    (:func:`~lowdose_bluesky.ptycho.augment.synthetic_pairs`) at ``photons``.
    """
    from ...model.linear_retrieval import fit_linear_retrieval

    t0 = time.monotonic()
    support = probe_support(probe, SUPPORT_FRACTION)
    counts, labels = np.asarray(patterns, np.float32), np.asarray(windows)
    if pairs:
        simulated = synthetic_pairs(obj, covered, probe, photons, pairs,
                                    support_fraction=SUPPORT_FRACTION, rng=seed)
        counts = np.concatenate([simulated.patterns, counts])
        labels = np.concatenate([simulated.windows, labels])
    model, record = fit_linear_retrieval(counts, np.angle(labels), support, ridge=ridge,
                                         scale=photons, seed=seed)
    # seconds: the whole fit, the simulation of the pairs included
    record = {**record, "model": "linear", "measured_pairs": len(patterns),
              "simulated_pairs": int(pairs), "photons": photons,
              "solve_s": record["seconds"], "seconds": time.monotonic() - t0}
    return model, record
