"""Training labels of PtychoNN from an iterative reconstruction of the dense scan."""

from __future__ import annotations

from typing import Any

import numpy as np

from ...ptycho import reconstruct, window_corners

__all__ = ["illumination", "object_grid", "reference_phase", "referred_reconstruction"]


def reference_phase(obj: np.ndarray, weight: np.ndarray) -> np.ndarray:
    """``obj`` with its phase offset removed: the weighted mean phasor made real.

    Phase retrieval leaves a global phase free; the labels and the network's output
    are referred to the weighted circular mean of the reconstructed phase (the
    weights: where the probe lit the object).
    """
    phasor = np.sum(weight * obj)
    if abs(phasor) == 0:
        return obj
    return obj * np.conj(phasor / abs(phasor))


def object_grid(ptycho: dict, pattern_shape: tuple[int, int]) -> tuple[int, int]:
    """``(H, W)`` of the object grid of a scan: the simulation's, else the field's extent.

    The field's extent: the farthest position plus one probe window, in object pixels.
    """
    shape = ptycho.get("object_shape")
    if shape:
        return int(shape[0]), int(shape[1])
    ps = float(ptycho["pixel_size_um"])
    x0, y0, width, height = ptycho["field"]
    return (int(np.ceil((y0 + height) / ps)) + pattern_shape[0] + 1,
            int(np.ceil((x0 + width) / ps)) + pattern_shape[1] + 1)


def illumination(corners: np.ndarray, probe: np.ndarray, obj_shape: tuple[int, int]
                 ) -> np.ndarray:
    """Summed probe intensity ``|P|^2`` over the object at ``corners`` (placed as the
    forward model and the stitcher place windows)."""
    out = np.zeros(obj_shape)
    intensity = np.abs(probe) ** 2
    h, w = intensity.shape
    for row, col in window_corners(corners):
        out[row:row + h, col:col + w] += intensity
    return out


def referred_reconstruction(patterns: np.ndarray, corners: np.ndarray, probe: np.ndarray,
                            obj_shape: tuple[int, int], **options: Any
                            ) -> tuple[np.ndarray, np.ndarray]:
    """pty-chi's object (:func:`~lowdose_bluesky.ptycho.reconstruct` with ``options``),
    its phase referred to the illuminated mean (:func:`reference_phase`), and the
    illumination ``|P|^2`` summed over ``corners``."""
    result = reconstruct(patterns, corners, probe, obj_shape, **options)
    lit = illumination(corners, probe, obj_shape)
    return reference_phase(result.obj, lit), lit
