"""The enhancement methods of the tomography analysis and their reconstruction stage.

``method`` names what the analysis learns from:

``"supervised"``
    The paper's method (Yang et al. 2018): a network trained on the long/short
    reference pairs enhances every short projection; needs reference pairs.
``"noise2inverse"``
    Blind: no long exposure is used. Noise2Inverse learns from the whole rotation
    (split angles, :mod:`lowdose_bluesky.model.noise2inverse`) and denoises the
    reconstruction.
``"hybrid"``
    Both: the supervised projection network first, then Noise2Inverse on the
    reconstructions of the enhanced projections (their noise is still independent
    between angles, since each projection is enhanced on its own).
``"auto"``
    The default: the method the benchmark found best where reference pairs exist
    (see :data:`DEFAULT_WITH_REFERENCES`), ``"noise2inverse"`` where they do not.

Every learned stage is gated on data it did not train on (the supervised network on
its validation band of the reference pairs, Noise2Inverse on held-out slices): a model
that does not beat its input there is not used, and the result metadata says so.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from typing import Any

import numpy as np

from ...recon import reconstruct, split_reconstructions

__all__ = [
    "DEFAULT_WITH_REFERENCES",
    "METHODS",
    "check_method",
    "noise2inverse_stage",
    "resolve_method",
]

log = logging.getLogger(__name__)

#: Accepted values of ``method``.
METHODS = ("auto", "supervised", "noise2inverse", "hybrid")
#: What ``"auto"`` runs on a run with reference pairs (chosen by
#: ``benchmarks/self_supervised.py``; see docs/decisions/0012-self-supervised-default.md).
DEFAULT_WITH_REFERENCES = "hybrid"
#: Methods that train the supervised projection network on the reference pairs.
SUPERVISED_STAGE = frozenset({"supervised", "hybrid"})
#: Methods that end with Noise2Inverse on the reconstruction.
N2I_STAGE = frozenset({"noise2inverse", "hybrid"})


def check_method(method: Any) -> str:
    """Return ``method`` if it is one of :data:`METHODS`, else raise ``ValueError``."""
    if method not in METHODS:
        raise ValueError(f"method must be one of {', '.join(map(repr, METHODS))}, "
                         f"got {method!r}")
    return str(method)


def resolve_method(method: str, has_references: bool, *, what: str = "this run") -> str:
    """The concrete method for a run with or without reference pairs.

    Raises
    ------
    ValueError
        For a method that needs reference pairs on a run without them.
    """
    method = check_method(method)
    if method == "auto":
        return DEFAULT_WITH_REFERENCES if has_references else "noise2inverse"
    if method in SUPERVISED_STAGE and not has_references:
        raise ValueError(
            f"method={method!r} trains on long/short reference pairs but {what} has none "
            "(acquired with reference_angles=()): use method='noise2inverse' or 'auto' "
            "(blind, self-supervised), or acquire with reference_angles=(30.0, 120.0)")
    return method


def noise2inverse_stage(line_integrals: np.ndarray, angles_deg: np.ndarray, center: float, *,
                        options: dict[str, Any] | None = None, filter: str = "parzen",
                        device: str = "auto", progress: bool = True,
                        fallback: np.ndarray | None = None,
                        stop_requested: Callable[[], bool] | None = None
                        ) -> tuple[np.ndarray, dict[str, Any], bytes]:
    """Train Noise2Inverse on one scan and return the reconstruction to keep.

    Parameters
    ----------
    line_integrals, angles_deg, center
        The scan (``(N, Z, X)``, ``(N,)`` degrees, rotation-centre column).
    options
        Fields of :class:`~lowdose_bluesky.model.Noise2InverseConfig`.
    filter
        FBP filter of the sub-reconstructions (and of the fallback).
    fallback
        The volume kept when the gate rejects the model (default: the plain
        reconstruction of all projections with ``filter``).
    stop_requested
        Polled during training; training ends early (the gate still decides) when it
        returns ``True``.

    Returns
    -------
    volume, info, checkpoint
        ``(Z, X, X)`` float32, metadata (``gate``, ``used``, ``config``, timings,
        ``history``) and the model's safetensors bytes.
    """
    from ...model import Noise2InverseConfig, check_split, train_noise2inverse

    config = Noise2InverseConfig(**(options or {}))
    check_split(line_integrals.shape[0], config.splits)
    t = time.perf_counter()
    subs = split_reconstructions(line_integrals, angles_deg, config.splits, center=center,
                                 filter=filter)
    t_split = time.perf_counter() - t
    model = train_noise2inverse(subs, config, device=device, progress=progress,
                                stop_requested=stop_requested)
    t_train = time.perf_counter() - t - t_split
    info: dict[str, Any] = {
        "config": config.model_dump(), "filter": filter, "gate": model.gate,
        "history": model.history, "used": model.use_model,
        "timings": {"split_reconstruction_s": t_split, "training_s": t_train},
    }
    if model.use_model:
        volume = model(subs)
    else:
        log.warning("Noise2Inverse model not used: its held-out error %.4g is not below the "
                    "noise of the plain reconstruction %.4g", model.gate["model_error"],
                    model.gate["raw_reconstruction_error"])
        volume = fallback if fallback is not None else reconstruct(
            line_integrals, angles_deg, center=center, filter=filter)
    info["timings"]["inference_s"] = time.perf_counter() - t - t_split - t_train
    return np.asarray(volume, dtype=np.float32), info, model.to_bytes()
