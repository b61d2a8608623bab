"""The ptychography recipe: PtychoNN trained on the dense field, the sparse field stitched live."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from ...engine import RunContext
from .analysis import PtychoAnalysis, check_ptycho_start

__all__ = ["ALGORITHMS", "MODELS", "PtychoRecipe"]

#: Iterative algorithms of pty-chi the recipe runs for the labels.
ALGORITHMS = ("lsqml", "epie", "rpie")
#: Learned models the recipe trains on the dense field.
MODELS = ("linear", "ptychonn")


class PtychoRecipe:
    """Patterns to phase images: iterative labels, a learned model, stitching.

    Parameters
    ----------
    model
        ``"linear"`` (default): the learned linear retrieval
        (:mod:`lowdose_bluesky.model.linear_retrieval`), fitted in seconds on the dense
        field's patterns plus ``synthetic_pairs`` simulated from its reconstruction;
        ``"ptychonn"``: PtychoNN trained on the dense field's patterns (needs far more
        training than a CPU gives during a scan; see the README).
    synthetic_pairs, ridge
        The linear model's simulated training pairs and ridge strength.
    refine_epochs
        After the scan, run pty-chi (``algorithm``) for this many epochs on the sparse
        patterns, started from the learned image, and store it as ``phase_refined``
        (0: no refinement).
    algorithm
        pty-chi algorithm reconstructing the dense field (the labels): ``"lsqml"``
        (default), ``"epie"`` or ``"rpie"``.
    iterative_epochs
        Its epochs.
    epochs, max_seconds
        Training of PtychoNN: at most ``epochs``, stopped after ``max_seconds``.
    phase_only
        The phase-only network (PtychoNN 2.0 style) instead of amplitude and phase.
    pretrained
        A result uid or checkpoint path of a trained PtychoNN: used at once, and
        fine-tuned on the dense field's labels when the scan has one.
    seed, device
        Seed and torch device of training.
    """

    name = "ptycho"

    def __init__(self, algorithm: str = "lsqml", iterative_epochs: int = 50, epochs: int = 60,
                 max_seconds: float | None = 30.0, phase_only: bool = False,
                 pretrained: str | None = None, seed: int = 0, device: str = "auto",
                 model: str = "linear", synthetic_pairs: int = 16000,
                 ridge: float = 0.3, refine_epochs: int = 0) -> None:
        if model not in MODELS:
            raise ValueError(f"model must be one of {', '.join(map(repr, MODELS))}, got "
                             f"{model!r}")
        if isinstance(synthetic_pairs, bool) or not isinstance(synthetic_pairs, int) or \
                synthetic_pairs < 0:
            raise ValueError(f"synthetic_pairs must be an integer >= 0, got {synthetic_pairs!r}")
        if isinstance(refine_epochs, bool) or not isinstance(refine_epochs, int) or \
                refine_epochs < 0:
            raise ValueError(f"refine_epochs must be an integer >= 0, got {refine_epochs!r}")
        if isinstance(ridge, bool) or not isinstance(ridge, int | float) or not ridge > 0:
            raise ValueError(f"ridge must be a number > 0, got {ridge!r}")
        if algorithm not in ALGORITHMS:
            raise ValueError(f"algorithm must be one of {', '.join(map(repr, ALGORITHMS))}, "
                             f"got {algorithm!r}")
        for name, value in (("iterative_epochs", iterative_epochs), ("epochs", epochs)):
            if isinstance(value, bool) or not isinstance(value, int) or value < 1:
                raise ValueError(f"{name} must be a positive integer, got {value!r}")
        if max_seconds is not None and not max_seconds > 0:
            raise ValueError(f"max_seconds must be > 0 or None, got {max_seconds!r}")
        self.settings = {"algorithm": algorithm, "iterative_epochs": iterative_epochs,
                         "epochs": epochs, "max_seconds": max_seconds,
                         "phase_only": bool(phase_only), "pretrained": pretrained,
                         "seed": int(seed), "device": device, "model": model,
                         "synthetic_pairs": synthetic_pairs, "ridge": float(ridge),
                         "refine_epochs": refine_epochs}

    def check(self, start: dict[str, Any]) -> None:
        """Refuse a run that cannot be analysed (see :func:`check_ptycho_start`)."""
        check_ptycho_start(start, self.settings["pretrained"])

    def open(self, start: dict[str, Any], context: RunContext) -> PtychoAnalysis:
        """Begin the analysis of one scan."""
        client = getattr(context, "client", None)
        device = self.settings["device"]
        return PtychoAnalysis(start, context, self.settings,
                              load_pretrained=lambda spec: _load(spec, client, device))

    def settings_metadata(self) -> dict[str, Any]:
        """The settings, JSON-safe."""
        return dict(self.settings)


def _load(spec: Any, client: Any, device: str) -> Any:
    """A model (PtychoNN or linear) from a checkpoint file or a stored result's checkpoint."""
    from ...storage import result_by_uid

    text = str(spec)
    if Path(text).expanduser().is_file():
        return load_model(Path(text).expanduser().read_bytes())
    if client is None:
        raise ValueError(f"pretrained={text!r} names a result, but no Tiled client was given")
    return load_model(result_by_uid(client, text).checkpoint)


def load_model(data: bytes) -> Any:
    """The model a checkpoint holds: a linear retrieval or a PtychoNN."""
    from ...model.checkpoint import read_checkpoint
    from ...model.linear_retrieval import LinearRetrievalModel
    from ...model.ptychonn import PtychoNNModel

    _, meta = read_checkpoint(data, source="ptychography model checkpoint")
    if meta.get("kind") == "linear_retrieval":
        return LinearRetrievalModel.from_bytes(data)
    return PtychoNNModel.from_bytes(data)
