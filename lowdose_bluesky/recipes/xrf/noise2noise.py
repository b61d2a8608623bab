"""Noise2Noise across the elements of one multi-element fluorescence detector.

Two halves of the detector elements see the same pixel with independent Poisson noise,
so the maps of one half are a noisy target for the maps of the other (Lehtinen et al.
2018). A network trained to map half A to half B (and B to A) learns the expected map
given a noisy one: a denoiser learnt from the run itself, with no long dwell. Each
element's maps are divided by their own scale first, so trace elements weigh as much as
major ones; the two directions' predictions are averaged.
"""

from __future__ import annotations

from typing import Any

import numpy as np

__all__ = ["detector_halves", "noise2noise_maps"]


def detector_halves(n: int, dead: list[int]) -> tuple[list[int], list[int]] | None:
    """Live detector elements split into two halves, or None if a half would be empty."""
    live = [k for k in range(n) if k not in dead]
    first, second = live[: len(live) // 2], live[len(live) // 2:]
    return (first, second) if first and second else None


def noise2noise_maps(half_a: np.ndarray, half_b: np.ndarray, *, epochs: int, seed: int,
                     max_seconds: float | None, device: str = "auto",
                     train_options: dict[str, Any] | None = None) -> tuple[np.ndarray, Any]:
    """Denoised maps ``(elements, H, W)`` from two half-detector maps of the same pixels.

    Both halves are maps of the full density (each scaled to the whole solid angle).
    Returns the maps and the trained :class:`~lowdose_bluesky.model.Enhancer`.
    """
    from ...model import train_enhancer

    scale = np.maximum(0.5 * (half_a + half_b).mean(axis=(1, 2)), 1e-12)[:, None, None]
    a, b = (half_a / scale).astype(np.float32), (half_b / scale).astype(np.float32)
    options = {"patch_size": 16, "batch_size": 32, "patience": None, "progress": False,
               **(train_options or {})}
    enhancer = train_enhancer(np.concatenate([a, b]), np.concatenate([b, a]), epochs=epochs,
                              seed=seed, max_seconds=max_seconds, device=device, **options)
    maps = 0.5 * (enhancer(a) + enhancer(b)) * scale
    return np.clip(maps, 0.0, None).astype(np.float32), enhancer
