"""The XRF recipe: element maps of ``lowdose_xrf_plan`` runs, updated line by line."""

from __future__ import annotations

from typing import Any

from ...engine import RunContext
from .analysis import METHODS, XRFAnalysis, check_xrf_start

__all__ = ["XRFRecipe"]


class XRFRecipe:
    """Spectra to element maps, published as each scan line completes, then enhanced.

    Parameters
    ----------
    mapping
        ``"fit"`` (reference spectra, the default) or ``"roi"`` (window sums).
    method
        Enhancement: ``"noise2noise"`` (across the detector elements' halves; blind,
        the default), ``"supervised"`` (by the long-dwell reference rows),
        ``"hybrid"`` (Noise2Noise, then fine-tuned on the reference rows),
        ``"noise2self"`` (the spectral cube; blind) or ``"none"``.
    epochs, max_seconds, seed, device, train_options
        Training of the enhancement network (``train_options`` go to the method's
        training function).
    pansharpen
        ``noise2self`` only: feed the transmission image beside the spectral cube.
    """

    name = "xrf"

    def __init__(self, mapping: str = "fit", method: str = "noise2noise", epochs: int = 30,
                 max_seconds: float | None = 20.0, seed: int = 0, device: str = "auto",
                 train_options: dict[str, Any] | None = None, pansharpen: bool = False) -> None:
        if mapping not in ("fit", "roi"):
            raise ValueError(f"mapping must be 'fit' or 'roi', got {mapping!r}")
        if method not in METHODS:
            raise ValueError(f"method must be one of {METHODS}, got {method!r}")
        self.settings = {"mapping": mapping, "method": method, "epochs": int(epochs),
                         "max_seconds": max_seconds, "seed": int(seed), "device": device,
                         "train_options": dict(train_options or {}),
                         "pansharpen": bool(pansharpen)}

    def check(self, start: dict[str, Any]) -> None:
        """Refuse a run that cannot be mapped or enhanced (see :func:`check_xrf_start`)."""
        check_xrf_start(start, self.settings["method"], self.settings["pansharpen"])

    def open(self, start: dict[str, Any], context: RunContext) -> XRFAnalysis:
        """Begin the analysis of one map."""
        return XRFAnalysis(start, context, **self.settings)

    def settings_metadata(self) -> dict[str, Any]:
        """The settings, JSON-safe."""
        return dict(self.settings)
