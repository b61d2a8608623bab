"""Settings of the tomography recipe, checked before any run is seen."""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ...storage import is_result_uid
from .methods import check_method

__all__ = ["AnalysisSettings", "check_pretrained", "settings_metadata", "tomography_settings"]


@dataclass
class AnalysisSettings:
    """What the tomography recipe does with a run (see :class:`~lowdose_bluesky.callbacks.
    LiveEnhancer`, whose keywords these are)."""

    arch: str = "unet"
    epochs: int = 30
    device: str = "auto"
    reconstruct: bool = True
    pretrained: Any = None
    skip_training: bool = False
    fine_tune_epochs: int = 5
    batch_size: int = 8
    seed: int = 0
    progress: bool = True
    threads: int | None = None
    training_budget: str | float | None = "scan"
    min_training_s: float = 60.0
    train_options: dict[str, Any] = field(default_factory=dict)
    method: str = "auto"
    n2i_options: dict[str, Any] = field(default_factory=dict)
    n2i_filter: str = "parzen"
    #: Least validation-PSNR gain (dB) for a newer model to replace the one in use.
    min_gain_db: float = 0.1
    #: Least seconds between two model versions published during the scan.
    refresh_s: float = 15.0


def tomography_settings(*, method: str = "auto", n2i_options: dict[str, Any] | None = None,
                        n2i_filter: str = "parzen", arch: str = "unet", epochs: int = 30,
                        device: str = "auto", reconstruct: bool = True, pretrained: Any = None,
                        skip_training: bool = False, fine_tune_epochs: int = 5,
                        batch_size: int = 8, seed: int = 0, progress: bool = True,
                        threads: int | str | None = "auto",
                        training_budget: str | float | None = "scan",
                        min_training_s: float = 60.0,
                        train_options: dict[str, Any] | None = None) -> AnalysisSettings:
    """Checked :class:`AnalysisSettings` (``ValueError`` naming the value otherwise)."""
    if skip_training and pretrained is None:
        raise ValueError("skip_training=True needs a pretrained model (pretrained=None given)")
    check_pretrained(pretrained)
    check_method(method)
    _check_n2i(n2i_options, n2i_filter)
    for name, value in (("epochs", epochs), ("batch_size", batch_size),
                        ("fine_tune_epochs", fine_tune_epochs)):
        if isinstance(value, bool) or not isinstance(value, int) or value < 1:
            raise ValueError(f"{name} must be a positive integer, got {value!r}")
    if threads == "auto":
        cores = os.cpu_count() or 1
        threads = cores - 1 if cores > 1 else None
    elif threads is not None and (isinstance(threads, bool) or not isinstance(threads, int)
                                  or threads < 1):
        raise ValueError(f"threads must be 'auto', None or a positive integer, got {threads!r}")
    _check_budget(training_budget, min_training_s)
    return AnalysisSettings(
        arch=arch, epochs=epochs, device=device, reconstruct=reconstruct,
        pretrained=pretrained, skip_training=skip_training,
        fine_tune_epochs=fine_tune_epochs, batch_size=batch_size, seed=seed,
        progress=progress, threads=threads, training_budget=training_budget,
        min_training_s=float(min_training_s), train_options=dict(train_options or {}),
        method=method, n2i_options=dict(n2i_options or {}), n2i_filter=n2i_filter)


def settings_metadata(s: AnalysisSettings) -> dict[str, Any]:
    """The settings as JSON-safe provenance."""
    return {"arch": s.arch, "epochs": s.epochs, "device": s.device,
            "reconstruct": s.reconstruct, "skip_training": s.skip_training,
            "fine_tune_epochs": s.fine_tune_epochs, "batch_size": s.batch_size, "seed": s.seed,
            "pretrained": None if s.pretrained is None
            else "<checkpoint bytes>" if isinstance(s.pretrained, bytes) else str(s.pretrained),
            "training_budget": s.training_budget, "min_training_s": s.min_training_s,
            "method": s.method, "n2i_options": {k: str(v) for k, v in s.n2i_options.items()},
            "n2i_filter": s.n2i_filter, "min_gain_db": s.min_gain_db,
            "refresh_s": s.refresh_s,
            "train_options": {k: str(v) for k, v in s.train_options.items()}}


def check_pretrained(spec: Any) -> None:
    """Refuse a ``pretrained`` value that cannot work, before anything starts.

    ``None``, an :class:`~lowdose_bluesky.model.Enhancer`, checkpoint bytes, a checkpoint
    file (verified now: a pickle, ``torch.save`` output, a corrupted or a foreign file is
    refused, and nothing is unpickled) or a result uid (looked up when the first run is
    analysed).

    Raises
    ------
    ValueError
        With the value received and what is allowed.
    """
    if spec is None or isinstance(spec, bytes):
        return
    allowed = ("an Enhancer, an existing checkpoint file or a result uid (8-4-4-4-12 hex "
               "digits)")
    if isinstance(spec, str | os.PathLike):
        path = Path(spec).expanduser()
        if path.exists():
            if not path.is_file():
                raise ValueError(f"pretrained must be {allowed}; {str(spec)!r} is a directory")
            from ...model import Enhancer

            try:
                Enhancer.load(path, device="cpu")
            except ValueError as exc:
                raise ValueError(f"pretrained {exc}") from None
            except OSError as exc:
                raise ValueError(f"pretrained checkpoint file {str(path)!r} cannot be read: "
                                 f"{exc.strerror or exc}") from None
            return
        if isinstance(spec, str) and is_result_uid(spec):
            return
        raise ValueError(f"pretrained must be {allowed}, got {str(spec)!r}: no such file, "
                         "and not a uid")
    from ...model import Enhancer

    if not isinstance(spec, Enhancer):
        raise ValueError(f"pretrained must be {allowed}, got a {type(spec).__name__}")


def _check_budget(budget: Any, floor: Any) -> None:
    """Raise ValueError for a training budget the recipe cannot use."""
    ok = budget is None or budget == "scan" or (
        isinstance(budget, int | float) and not isinstance(budget, bool) and budget > 0)
    if not ok:
        raise ValueError("training_budget must be 'scan', a positive number of seconds or "
                         f"None, got {budget!r}")
    if isinstance(floor, bool) or not isinstance(floor, int | float) or not floor >= 0:
        raise ValueError(f"min_training_s must be a number >= 0, got {floor!r}")


def _check_n2i(options: dict[str, Any] | None, filter_name: str) -> None:
    """Validate Noise2Inverse options and filter before any run (errors name the value)."""
    from pydantic import ValidationError

    from ...n2i_config import Noise2InverseConfig
    from ...recon import FILTER_NAMES

    if options is not None and not isinstance(options, dict):
        raise ValueError(f"n2i_options must be a dict or None, got {type(options).__name__}")
    try:
        Noise2InverseConfig(**(options or {}))
    except ValidationError as exc:
        problems = "; ".join(f"{'.'.join(map(str, e['loc']))}: {e['msg']} (got {e['input']!r})"
                             for e in exc.errors())
        raise ValueError(f"invalid n2i_options: {problems}") from None
    if filter_name not in FILTER_NAMES:
        raise ValueError(f"n2i_filter must be one of {', '.join(map(repr, FILTER_NAMES))}, "
                         f"got {filter_name!r}")
