"""The XRF recipe of the live engine (``lowdose_xrf_plan`` runs): element maps per line."""

from .analysis import XRFAnalysis, check_xrf_start
from .recipe import XRFRecipe

__all__ = ["XRFAnalysis", "XRFRecipe", "check_xrf_start"]
