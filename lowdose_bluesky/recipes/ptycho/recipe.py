"""The ptychography recipe: PtychoNN trained on the dense field, the sparse field stitched live."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from ...engine import RunContext
from .analysis import PtychoAnalysis, check_ptycho_start

__all__ = ["ALGORITHMS", "PtychoRecipe"]

#: Iterative algorithms of pty-chi the recipe runs for the labels.
ALGORITHMS = ("lsqml", "epie", "rpie")


class PtychoRecipe:
    """Patterns to phase images: iterative labels, PtychoNN, stitching.

    Parameters
    ----------
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
                 pretrained: str | None = None, seed: int = 0, device: str = "auto") -> None:
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
                         "seed": int(seed), "device": device}

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
    """A PtychoNN model from a checkpoint file or the checkpoint of a stored result."""
    from ...model.ptychonn import PtychoNNModel
    from ...storage import result_by_uid

    text = str(spec)
    if Path(text).expanduser().is_file():
        return PtychoNNModel.from_bytes(Path(text).expanduser().read_bytes())
    if client is None:
        raise ValueError(f"pretrained={text!r} names a result, but no Tiled client was given")
    return PtychoNNModel.from_bytes(result_by_uid(client, text).checkpoint)
