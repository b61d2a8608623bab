"""Sampling of overlapping training patches with a held-out validation split.

Patch positions lie on a grid of step ``stride`` over each frame; the patches
themselves are gathered from a :func:`numpy.lib.stride_tricks.sliding_window_view`
so only the sampled ones are copied.

Validation split: when every frame is tall enough, a horizontal band of
``max(patch, ceil(val_fraction * H))`` rows of each frame, at a random height
(leaving either no rows or at least one patch height above and below it), is
held out and training patches never overlap it (``split="spatial"``).
Otherwise validation patches are a random subset of all positions
(``split="random"``); they overlap training patches, so validation scores are
then optimistic.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
from numpy.lib.stride_tricks import sliding_window_view

__all__ = ["PatchSet", "sample_training_patches"]


@dataclass(frozen=True)
class PatchSet:
    """Training and validation patch pairs, float32 arrays of shape ``(n, p, p)``."""

    train_low: np.ndarray
    train_high: np.ndarray
    val_low: np.ndarray
    val_high: np.ndarray
    split: str


@dataclass(frozen=True)
class _Region:
    frame: int
    row0: int
    n_rows: int
    n_cols: int

    @property
    def count(self) -> int:
        return self.n_rows * self.n_cols


def _region(frame: int, row0: int, row1: int, width: int, patch: int, stride: int) -> _Region:
    n_rows = (row1 - row0 - patch) // stride + 1 if row1 - row0 >= patch else 0
    n_cols = (width - patch) // stride + 1
    return _Region(frame, row0, n_rows, n_cols)


def _positions(
    regions: list[_Region], limit: int | None, stride: int, rng: np.random.Generator
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Sample up to ``limit`` distinct positions ``(k, i, j)`` from ``regions``."""
    counts = np.array([r.count for r in regions], dtype=np.int64)
    total = int(counts.sum())
    if limit is not None and total > limit:
        flat = np.sort(rng.choice(total, size=limit, replace=False))
    else:
        flat = np.arange(total, dtype=np.int64)
    starts = np.concatenate([[0], np.cumsum(counts)[:-1]])
    which = np.searchsorted(np.cumsum(counts), flat, side="right")
    local = flat - starts[which]
    n_cols = np.array([r.n_cols for r in regions], dtype=np.int64)[which]
    row0 = np.array([r.row0 for r in regions], dtype=np.int64)[which]
    frame = np.array([r.frame for r in regions], dtype=np.int64)[which]
    return frame, row0 + (local // n_cols) * stride, (local % n_cols) * stride


def _gather(
    stack: np.ndarray, patch: int, where: tuple[np.ndarray, np.ndarray, np.ndarray]
) -> np.ndarray:
    view = sliding_window_view(stack, (patch, patch), axis=(1, 2))
    return np.ascontiguousarray(view[where], dtype=np.float32)


def sample_training_patches(
    low: np.ndarray,
    high: np.ndarray,
    patch_size: int,
    stride: int,
    val_fraction: float,
    max_patches: int | None,
    rng: np.random.Generator,
) -> PatchSet:
    """Sample overlapping patch pairs and split them into training and validation.

    Parameters
    ----------
    low, high
        Normalised frames, shape ``(K, H, W)`` with ``H, W >= patch_size``.
    patch_size
        Side of the square patches.
    stride
        Step of the grid of patch positions.
    val_fraction
        Fraction of the data held out for validation (0 for none).
    max_patches
        Maximum number of training patches (sampled at random without
        replacement from the grid); ``None`` for all.
    rng
        Source of randomness.

    Returns
    -------
    PatchSet
    """
    n_frames, height, width = low.shape
    band = max(patch_size, math.ceil(val_fraction * height))
    max_val = None
    if max_patches is not None and val_fraction > 0:
        max_val = max(1, math.ceil(max_patches * val_fraction / (1 - val_fraction)))
    if val_fraction > 0 and height - band >= patch_size:
        split = "spatial"
        train_regions, val_regions = [], []
        free = height - band
        starts = np.arange(free + 1)
        starts = starts[
            ((starts == 0) | (starts >= patch_size))
            & ((starts == free) | (free - starts >= patch_size))
        ]
        for k in range(n_frames):
            top = int(rng.choice(starts))
            val_regions.append(_region(k, top, top + band, width, patch_size, stride))
            for row0, row1 in ((0, top), (top + band, height)):
                if row1 - row0 >= patch_size:
                    train_regions.append(_region(k, row0, row1, width, patch_size, stride))
        train_at = _positions(train_regions, max_patches, stride, rng)
        val_at = _positions(val_regions, max_val, stride, rng)
    else:
        split = "random" if val_fraction > 0 else "none"
        regions = [_region(k, 0, height, width, patch_size, stride) for k in range(n_frames)]
        limit = None if max_patches is None else max_patches + (max_val or 0)
        frame, rows, cols = _positions(regions, limit, stride, rng)
        order = rng.permutation(frame.size)
        n_val = 0
        if val_fraction > 0 and frame.size >= 2:
            n_val = min(frame.size - 1, max(1, round(val_fraction * frame.size)))
        val_idx, train_idx = order[:n_val], order[n_val:]
        if max_patches is not None:
            train_idx = train_idx[:max_patches]
        train_at = (frame[train_idx], rows[train_idx], cols[train_idx])
        val_at = (frame[val_idx], rows[val_idx], cols[val_idx])
    return PatchSet(
        train_low=_gather(low, patch_size, train_at),
        train_high=_gather(high, patch_size, train_at),
        val_low=_gather(low, patch_size, val_at),
        val_high=_gather(high, patch_size, val_at),
        split=split,
    )
