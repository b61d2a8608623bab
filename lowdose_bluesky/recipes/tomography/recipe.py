"""The tomography recipe: the low-dose analysis of ``lowdose_tomo_plan`` runs."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from ...engine import RunContext
from .analysis import TomographyAnalysis, check_start
from .settings import AnalysisSettings, settings_metadata

__all__ = ["TomographyRecipe"]


class TomographyRecipe:
    """Pairs, training, enhancement of every projection, reconstruction.

    Parameters
    ----------
    settings
        An :class:`AnalysisSettings` (or its fields as keywords).
    """

    name = "tomography"

    def __init__(self, settings: AnalysisSettings | None = None, **fields: Any) -> None:
        self.settings = settings if settings is not None else AnalysisSettings(**fields)

    def check(self, start: dict[str, Any]) -> None:
        """Refuse a run these settings cannot analyse (see :func:`check_start`)."""
        check_start(start, self.settings)

    def open(self, start: dict[str, Any], context: RunContext) -> TomographyAnalysis:
        """Begin the analysis of one run."""
        client = getattr(context, "client", None)
        return TomographyAnalysis(start, self.settings, context,
                                  load_pretrained=lambda spec: _load(spec, client,
                                                                     self.settings.device))

    def settings_metadata(self) -> dict[str, Any]:
        """The settings, JSON-safe."""
        return settings_metadata(self.settings)


def _load(spec: Any, client: Any, device: str) -> Any:
    """A pretrained model: an Enhancer, checkpoint bytes, a checkpoint file or a result uid."""
    from ...model import Enhancer
    from ...storage import result_by_uid

    if isinstance(spec, Enhancer):
        return spec
    if isinstance(spec, bytes):
        return Enhancer.from_bytes(spec, device=device)
    text = str(spec)
    if Path(text).expanduser().exists():
        return Enhancer.load(Path(text).expanduser(), device=device)
    if client is None:
        raise ValueError(f"pretrained={text!r} names a result, but no Tiled client was given")
    return Enhancer.from_bytes(result_by_uid(client, text).checkpoint, device=device,
                               source=f"checkpoint of result {text}")
