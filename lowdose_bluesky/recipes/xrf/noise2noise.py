"""Noise2Noise across the elements of one multi-element fluorescence detector.

Two halves of the detector elements see the same pixel with independent Poisson noise,
so the maps of one half are a noisy target for the maps of the other (Lehtinen et al.
2018). A network trained to map half A to half B (and B to A) learns the expected map
given a noisy one: a denoiser learnt from the run itself, with no long dwell.

* The maps are the fit's *unclipped* coefficients: their expectation is the true
  density, which Noise2Noise needs of its targets (clipping the noise of a faint
  element at 0 would teach the network a map biased upwards).
* A detector of four elements splits into halves in three ways ({0,1}|{2,3},
  {0,2}|{1,3}, {0,3}|{1,2}): the same counts, three different pairs of noise. All
  splits train the one network (three times the pairs), and the enhanced map is the
  mean of its outputs on every half, each also under the eight symmetries of the
  square (test-time averaging).
* Each element's maps are divided by their own scale first, so trace elements weigh as
  much as major ones.
"""

from __future__ import annotations

from collections.abc import Sequence
from itertools import combinations
from typing import Any

import numpy as np

__all__ = ["MAX_SPLITS", "detector_splits", "dihedral_mean", "element_scale",
           "noise2noise_maps"]

#: Splits of the detector elements into halves used at most (four elements have three).
MAX_SPLITS = 3


def detector_splits(live: Sequence[int], max_splits: int = MAX_SPLITS
                    ) -> list[tuple[tuple[int, ...], tuple[int, ...]]]:
    """Ways to split the live detector elements into two halves (at most ``max_splits``).

    Halves hold ``len(live) // 2`` and the rest; a split and its mirror count once.
    Empty when fewer than two elements are live.
    """
    live = tuple(int(k) for k in live)
    if len(live) < 2:
        return []
    out: list[tuple[tuple[int, ...], tuple[int, ...]]] = []
    for first in combinations(live, len(live) // 2):
        second = tuple(k for k in live if k not in first)
        if (second, first) not in out:
            out.append((first, second))
        if len(out) == max_splits:
            break
    return out


def element_scale(maps: np.ndarray) -> np.ndarray:
    """Each element's unit ``(elements, 1, 1)``: the mean of its non-negative part."""
    return np.maximum(np.clip(maps, 0.0, None).mean(axis=(-2, -1)), 1e-12)[..., None, None]


def dihedral_mean(model: Any, frames: np.ndarray) -> np.ndarray:
    """Mean of ``model`` over the eight symmetries of the square (each undone after)."""
    acc = np.zeros(frames.shape, np.float64)
    for code in range(8):
        x = frames[..., ::-1] if code >= 4 else frames
        y = np.rot90(model(np.ascontiguousarray(np.rot90(x, code % 4, axes=(-2, -1)))),
                     -(code % 4), axes=(-2, -1))
        acc += y[..., ::-1] if code >= 4 else y
    return (acc / 8).astype(np.float32)


def half_maps(detector_maps: np.ndarray, half: Sequence[int]) -> np.ndarray:
    """Density maps ``(elements, H, W)`` seen by a subset of the detector elements.

    ``detector_maps`` ``(detector elements, elements, H, W)``: each detector element's
    own fit (a ``1 / n`` share of the density); the subset's sum is scaled to the
    whole detector.
    """
    n = detector_maps.shape[0]
    return detector_maps[list(half)].sum(axis=0) * (n / len(half))


def noise2noise_maps(detector_maps: np.ndarray, live: Sequence[int], *, epochs: int,
                     seed: int, max_seconds: float | None, device: str = "auto",
                     max_splits: int = MAX_SPLITS, symmetric: bool = True,
                     train_options: dict[str, Any] | None = None
                     ) -> tuple[np.ndarray, Any, dict[str, Any]]:
    """Denoised maps ``(elements, H, W)`` from each detector element's unclipped maps.

    Parameters
    ----------
    detector_maps
        ``(detector elements, elements, H, W)``, unclipped.
    live
        The detector elements that counted.
    epochs, seed, max_seconds, device, train_options
        Training (:func:`~lowdose_bluesky.model.train_enhancer`).
    max_splits
        Splits of the live elements into halves used (see :func:`detector_splits`).
    symmetric
        Average the outputs over the eight symmetries of the square.

    Returns
    -------
    tuple
        The maps, the trained :class:`~lowdose_bluesky.model.Enhancer` (inputs in
        element units: maps divided by ``element_scale`` of the full map) and a record
        (splits, scale).
    """
    from ...model import train_enhancer

    splits = detector_splits(live, max_splits)
    if not splits:
        raise ValueError(f"Noise2Noise needs at least two live detector elements; live: "
                         f"{list(live)}")
    scale = element_scale(half_maps(detector_maps, live))
    pairs = [(half_maps(detector_maps, a) / scale, half_maps(detector_maps, b) / scale)
             for a, b in splits]
    low = np.concatenate([np.concatenate([a, b]) for a, b in pairs]).astype(np.float32)
    high = np.concatenate([np.concatenate([b, a]) for a, b in pairs]).astype(np.float32)
    options = {"patch_size": 16, "batch_size": 32, "patience": None, "progress": False,
               **(train_options or {})}
    enhancer = train_enhancer(low, high, epochs=epochs, seed=seed, max_seconds=max_seconds,
                              device=device, **options)
    run = (lambda x: dihedral_mean(enhancer, x)) if symmetric else enhancer
    maps = np.mean([run(half) for pair in pairs for half in pair], axis=0) * scale
    record = {"splits": [[list(a), list(b)] for a, b in splits],
              "symmetric_inference": symmetric, "scale": scale.ravel().tolist(),
              "training": training_summary(enhancer)}
    return np.clip(maps, 0.0, None).astype(np.float32), enhancer, record


def training_summary(enhancer: Any) -> dict[str, Any]:
    """How training went (for a result's provenance): epochs run, best epoch, stop cause,
    validation PSNR of the input and of the best model."""
    config = enhancer.config
    return {"epochs_run": len(enhancer.history), "best_epoch": config.get("best_epoch"),
            "stopped": config.get("stopped"), "seconds": config.get("seconds"),
            "baseline_val_psnr": config.get("baseline_val_psnr"),
            "best_val_psnr": config.get("best_val_psnr")}
