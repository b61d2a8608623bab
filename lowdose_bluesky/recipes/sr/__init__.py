"""The imaging recipes of super-resolution: knife-edge calibration and live super-resolution."""

from .knife_edge import KnifeEdgeAnalysis, KnifeEdgeRecipe, check_knife_edge_start
from .super_resolution import SRAnalysis, SRRecipe, check_sr_start

__all__ = ["KnifeEdgeAnalysis", "KnifeEdgeRecipe", "SRAnalysis", "SRRecipe",
           "check_knife_edge_start", "check_sr_start"]
