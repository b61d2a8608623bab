"""The ptychography recipe of the live engine (``lowdose_ptycho_plan`` runs)."""

from .analysis import PtychoAnalysis, check_ptycho_start
from .recipe import ALGORITHMS, PtychoRecipe

__all__ = ["ALGORITHMS", "PtychoAnalysis", "PtychoRecipe", "check_ptycho_start"]
