"""Bluesky plans (never import torch here)."""

from .lowdose_tomo import STREAMS, lowdose_tomo_plan
from .validation import TomoScanSpec, TomoScanWarning, validate_scan

__all__ = ["STREAMS", "TomoScanSpec", "TomoScanWarning", "lowdose_tomo_plan", "validate_scan"]
