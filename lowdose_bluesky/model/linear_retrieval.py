"""Learned linear phase retrieval: the phase under the beam as a linear map of one pattern.

For a known probe and an object of moderate phase, the diffraction amplitude is close
to a linear function of the object's phase and log-amplitude under the probe (the
weak-object expansion of ``|F(P O)|``). :func:`fit_linear_retrieval` learns that map
from example pairs by ridge regression (one linear solve): features are the amplitudes
``sqrt(counts / photons)`` of every detector pixel, divided by the dose (the counts of
a clear pattern) rather than by each pattern's own total, so that the transmitted
intensity, which tells the absolute thickness under the beam, is kept; targets are the
phase on the probe's support. Patterns taken at another dose are predicted with that
dose (``predict(..., photons=)``).

It is the fast learned alternative to PtychoNN on a CPU: it fits in seconds on the
dense field's patterns plus simulated ones
(:func:`~lowdose_bluesky.ptycho.augment.synthetic_pairs`), and one matrix product
infers a batch. Same interface as
:class:`~lowdose_bluesky.model.ptychonn.PtychoNNModel` (``predict`` returns
``(None, phase)``; ``to_bytes``/``from_bytes`` safetensors checkpoints).

Examples
--------
>>> model, record = fit_linear_retrieval(counts, phase, support)
>>> _, phase = model.predict(new_counts)          # (N, h, w) float32, 0 off the support
"""

from __future__ import annotations

import time
from typing import Any

import numpy as np
import scipy.linalg
import torch

from ._checks import check_positive_float, check_positive_int
from .checkpoint import json_safe, package_version, read_checkpoint, write_checkpoint

__all__ = ["DEFAULT_RIDGE", "MAX_PIXELS", "LinearRetrievalModel", "fit_linear_retrieval"]

_KIND = "linear_retrieval"
#: Ridge strength, relative to the mean eigenvalue of the features' covariance.
DEFAULT_RIDGE = 0.3
#: Most detector pixels a pattern may have: the fit solves a (pixels x pixels) system in
#: float64, 2 GiB at 128 x 128 (and 32 GiB at 256 x 256).
MAX_PIXELS = 128 * 128


def _counts(patterns: Any, name: str = "patterns") -> np.ndarray:
    arr = np.asarray(patterns)
    if arr.dtype.kind not in "biuf" or arr.ndim != 3 or 0 in arr.shape:
        raise ValueError(f"{name} must be a non-empty real (N, H, W) stack of counts; got "
                         f"dtype {arr.dtype}, shape {arr.shape}")
    if not np.isfinite(arr).all() or arr.min() < 0:
        raise ValueError(f"{name} must be finite, non-negative counts; got a minimum of "
                         f"{np.nanmin(arr):g} and {int((~np.isfinite(arr)).sum())} non-finite "
                         "values")
    return arr


def _amplitudes(counts: np.ndarray, dose: float) -> np.ndarray:
    """``(N, H * W)`` float32 features ``sqrt(counts / dose)`` of checked counts."""
    flat = counts.reshape(len(counts), -1).astype(np.float32)
    return np.sqrt(flat / np.float32(dose))


class LinearRetrievalModel:
    """A fitted linear map from one pattern's amplitudes to the phase on the probe support.

    Parameters
    ----------
    weights
        ``(H * W, K)`` map from the centred features to the centred phases.
    feature_mean, phase_mean
        ``(H * W,)`` and ``(K,)`` means removed before the map.
    support
        Boolean ``(H, W)``: the ``K`` pixels predicted.
    scale
        The dose of the training patterns: counts of a clear pattern
        (``sqrt(counts / scale)``), also used for patterns of unknown dose.
    history
        What fitted it (kept in checkpoints).
    """

    phase_only = True

    def __init__(self, weights: np.ndarray, feature_mean: np.ndarray, phase_mean: np.ndarray,
                 support: np.ndarray, scale: float, history: list[dict] | None = None) -> None:
        self.support = np.asarray(support, bool)
        k = int(self.support.sum())
        n = self.support.size
        self.weights = np.asarray(weights, np.float32)
        if self.weights.shape != (n, k):
            raise ValueError(f"weights must have shape ({n}, {k}) for a {self.support.shape} "
                             f"support of {k} pixels; got {self.weights.shape}")
        self.feature_mean = np.asarray(feature_mean, np.float32).reshape(n)
        self.phase_mean = np.asarray(phase_mean, np.float32).reshape(k)
        self.scale = check_positive_float(scale, "scale")
        self.history = list(history or [])

    @property
    def shape(self) -> tuple[int, int]:
        """``(H, W)`` of the patterns and patches."""
        return (int(self.support.shape[0]), int(self.support.shape[1]))

    @property
    def size(self) -> int:
        """Side of the (square) patterns."""
        return self.shape[0]

    @property
    def settings(self) -> dict[str, Any]:
        """The model's shape, support size and scale."""
        return {"shape": list(self.shape), "support_pixels": int(self.support.sum()),
                "scale": self.scale}

    def features(self, patterns: np.ndarray, photons: float | None = None) -> np.ndarray:
        """``(N, H * W)`` float32 amplitudes ``sqrt(counts / photons)``.

        ``photons``: the dose of ``patterns`` (counts of a clear pattern); ``None``: the
        training dose (:attr:`scale`).
        """
        counts = _counts(patterns)
        if counts.shape[1:] != self.shape:
            raise ValueError(f"patterns must be {self.shape}; got {counts.shape[1:]}")
        dose = self.scale if photons is None else check_positive_float(photons, "photons")
        return _amplitudes(counts, dose)

    def predict(self, patterns: np.ndarray, batch_size: int = 4096, *,
                photons: float | None = None) -> tuple[None, np.ndarray]:
        """``(None, phase)``: the phase ``(N, H, W)`` float32, 0 off the probe support.

        Parameters
        ----------
        patterns
            Counts ``(N, H, W)`` (or one ``(H, W)`` pattern, giving ``(H, W)``).
        batch_size
            Patterns per matrix product.
        photons
            Dose of ``patterns`` (counts of a clear pattern); ``None``: the same as the
            training patterns'.
        """
        arr = np.asarray(patterns)
        single = arr.ndim == 2
        stack = arr[None] if single else arr
        check_positive_int(batch_size, "batch_size")
        out = np.zeros((len(stack), *self.shape), np.float32)
        for i in range(0, len(stack), batch_size):
            x = self.features(stack[i:i + batch_size], photons) - self.feature_mean
            out[i:i + batch_size, self.support] = x @ self.weights + self.phase_mean
        return None, out[0] if single else out

    def to_bytes(self) -> bytes:
        """A safetensors checkpoint of the map, its means, support and scale."""
        state = {name: torch.from_numpy(np.ascontiguousarray(value)) for name, value in (
            ("weights", self.weights), ("feature_mean", self.feature_mean),
            ("phase_mean", self.phase_mean), ("support", self.support.astype(np.uint8)))}
        meta = {"kind": _KIND, "settings": self.settings, "history": self.history,
                "package_version": package_version()}
        return write_checkpoint(state, json_safe(meta))

    @classmethod
    def from_bytes(cls, data: bytes) -> LinearRetrievalModel:
        """Rebuild a model written by :meth:`to_bytes`.

        Raises
        ------
        ValueError
            If the data is not a checkpoint of this kind or is corrupted.
        """
        state, meta = read_checkpoint(data, source="linear retrieval checkpoint")
        if meta.get("kind") != _KIND:
            raise ValueError(f"linear retrieval checkpoint: holds a {meta.get('kind')!r} "
                             f"model, not a {_KIND!r} model")
        try:
            return cls(state["weights"].numpy(), state["feature_mean"].numpy(),
                       state["phase_mean"].numpy(), state["support"].numpy().astype(bool),
                       meta["settings"]["scale"], history=meta.get("history"))
        except (KeyError, TypeError) as exc:
            raise ValueError(f"linear retrieval checkpoint: invalid contents "
                             f"({type(exc).__name__}: {exc})") from None

    def __repr__(self) -> str:
        return (f"LinearRetrievalModel(shape={self.shape}, "
                f"support_pixels={int(self.support.sum())}, scale={self.scale:g})")


def fit_linear_retrieval(patterns: np.ndarray, phase: np.ndarray, support: np.ndarray, *,
                         ridge: float = DEFAULT_RIDGE, scale: float | None = None,
                         validation_fraction: float = 0.1, seed: int = 0
                         ) -> tuple[LinearRetrievalModel, dict[str, Any]]:
    """Fit the map from patterns to the phase on ``support`` by ridge regression.

    Parameters
    ----------
    patterns
        Counts ``(N, H, W)``.
    phase
        Phase labels ``(N, H, W)``, radians (only the support is used).
    support
        Boolean ``(H, W)``: the pixels to predict (where the probe lights the object).
    ridge
        Regularisation, relative to the mean eigenvalue of the features' covariance.
    scale
        Dose of ``patterns``: counts of a clear pattern; default: their mean total
        counts (the dose, when the object absorbs little).
    validation_fraction
        Fraction of pairs held out to report the validation error (then refitted on all).
    seed
        Seed of the validation split.

    Returns
    -------
    model : LinearRetrievalModel
    record : dict
        ``pairs``, ``seconds``, ``ridge``, ``scale``, ``validation_mae`` (mean absolute
        phase error on the held-out pairs, radians) and ``validation_mae_mean``
        (the same for predicting the mean phase: the error with nothing learned).

    Raises
    ------
    ValueError
        For shapes that disagree, bad counts or labels, an empty support, or bad
        ``ridge``, ``scale`` or ``validation_fraction``.
    """
    t0 = time.perf_counter()
    counts = _counts(patterns)
    labels = np.asarray(phase)
    mask = np.asarray(support, bool)
    if labels.shape != counts.shape or mask.shape != counts.shape[1:]:
        raise ValueError(f"patterns {counts.shape}, phase {labels.shape} and support "
                         f"{mask.shape} must agree: (N, H, W), (N, H, W) and (H, W)")
    if not mask.any():
        raise ValueError("support is empty: no pixel to predict")
    if mask.size > MAX_PIXELS:
        raise ValueError(f"patterns of {mask.shape[0]} x {mask.shape[1]} pixels are too large "
                         f"for the linear retrieval (at most {MAX_PIXELS} pixels, e.g. "
                         "128 x 128: its fit solves a pixels x pixels system); bin the "
                         "patterns or use PtychoNN")
    if labels.dtype.kind not in "biuf" or not np.isfinite(labels).all():
        raise ValueError(f"phase must be finite real radians; got dtype {labels.dtype}")
    ridge = check_positive_float(ridge, "ridge")
    if not 0 <= validation_fraction < 1:
        raise ValueError(f"validation_fraction must be in [0, 1); got {validation_fraction!r}")
    if scale is None:
        scale = float(counts.reshape(len(counts), -1).sum(axis=1).mean())
        if scale <= 0:
            raise ValueError("patterns hold no counts: no scale to normalise them by")
    x = _amplitudes(counts, check_positive_float(scale, "scale"))
    y = labels[:, mask].astype(np.float32)
    order = np.random.default_rng(seed).permutation(len(x))
    n_val = round(validation_fraction * len(x)) if len(x) > 10 else 0
    val, train = order[:n_val], order[n_val:]

    def solve(rows: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        x_mean, y_mean = x[rows].mean(axis=0), y[rows].mean(axis=0)
        xc = x[rows] - x_mean
        gram = (xc.T @ xc).astype(np.float64)
        lam = ridge * np.trace(gram) / gram.shape[0]
        gram[np.diag_indices_from(gram)] += max(lam, 1e-12)
        rhs = (xc.T @ (y[rows] - y_mean)).astype(np.float64)
        return scipy.linalg.solve(gram, rhs, assume_a="pos"), x_mean, y_mean

    record: dict[str, Any] = {"pairs": len(x), "ridge": ridge, "scale": scale,
                              "support_pixels": int(mask.sum())}
    if n_val:
        w, x_mean, y_mean = solve(train)
        pred = (x[val] - x_mean) @ w + y_mean
        record["validation_mae"] = float(np.abs(pred - y[val]).mean())
        record["validation_mae_mean"] = float(np.abs(y_mean - y[val]).mean())
    w, x_mean, y_mean = solve(np.arange(len(x)))
    record["seconds"] = time.perf_counter() - t0
    model = LinearRetrievalModel(w, x_mean, y_mean, mask, scale, history=[
        {k: v for k, v in record.items()}])
    return model, record
