"""Iterative refinement of the learned image: pty-chi on the sparse scan, started from it.

At little or no overlap, iterative phase retrieval started from a clear object has too
few constraints to find the object; started from the learned estimate it only has to
make that estimate agree with the measured patterns. Run at the end of the scan, on
all its sparse patterns.
"""

from __future__ import annotations

import time
from typing import Any

import numpy as np

from .labels import referred_reconstruction

__all__ = ["refine"]


def refine(patterns: np.ndarray, corners: np.ndarray, probe: np.ndarray,
           phase: np.ndarray, amplitude: np.ndarray | None, *, epochs: int,
           algorithm: str = "lsqml", photons: float | None = None, seed: int = 0
           ) -> tuple[np.ndarray, dict[str, Any]]:
    """The object reconstructed from ``patterns``, starting from the learned image.

    Parameters
    ----------
    patterns, corners, probe
        The sparse scan: counts ``(N, h, w)``, ``(N, 2)`` window corners, the probe.
    phase, amplitude
        The stitched learned image on the object grid (NaN where no pattern reached);
        ``amplitude`` ``None`` for a phase-only model (then 1). Unreached pixels start
        clear.
    epochs, algorithm, photons, seed
        Of the pty-chi reconstruction.

    Returns
    -------
    obj : numpy.ndarray
        Complex object, its phase referred as the labels are.
    record : dict
        ``epochs``, ``algorithm``, ``seconds``.
    """
    t = time.monotonic()
    start_phase = np.nan_to_num(np.asarray(phase, float), nan=0.0)
    start_amplitude = (np.ones_like(start_phase) if amplitude is None else
                       np.clip(np.nan_to_num(np.asarray(amplitude, float), nan=1.0), 0.0, 1.0))
    obj, _ = referred_reconstruction(
        patterns, corners, probe, start_phase.shape, algorithm=algorithm, epochs=epochs,
        seed=seed, photons=photons, initial_object=start_amplitude * np.exp(1j * start_phase))
    return obj, {"epochs": epochs, "algorithm": algorithm,
                 "seconds": time.monotonic() - t}
