"""The XRF recipe: element maps of ``lowdose_xrf_plan`` runs, updated line by line."""

from __future__ import annotations

from typing import Any

from ...engine import RunContext
from .analysis import XRFAnalysis, check_xrf_start

__all__ = ["XRFRecipe"]


class XRFRecipe:
    """Spectra to element maps, published as each scan line completes."""

    name = "xrf"

    def check(self, start: dict[str, Any]) -> None:
        """Refuse a run that cannot be mapped (see :func:`check_xrf_start`)."""
        check_xrf_start(start)

    def open(self, start: dict[str, Any], context: RunContext) -> XRFAnalysis:
        """Begin the analysis of one map."""
        return XRFAnalysis(start, context)

    def settings_metadata(self) -> dict[str, Any]:
        """No settings yet: maps by fit or region-of-interest sums, chosen per run."""
        return {}
