"""Bluesky plans (never import torch here)."""

from .lowdose_tomo import STREAMS, lowdose_tomo_plan
from .validation import TomoScanSpec

__all__ = ["STREAMS", "TomoScanSpec", "lowdose_tomo_plan"]
