"""Bluesky plans (never import torch here)."""

from .detectors import DetectorSetup, detector_setup, is_ophyd_async
from .flyscan import FlySchedule, fly_schedule, lowdose_tomo_flyscan
from .lowdose_tomo import STREAMS, lowdose_tomo_plan
from .validation import TomoScanSpec, TomoScanWarning, validate_scan

__all__ = ["STREAMS", "DetectorSetup", "FlySchedule", "TomoScanSpec", "TomoScanWarning",
           "detector_setup", "fly_schedule", "is_ophyd_async", "lowdose_tomo_flyscan",
           "lowdose_tomo_plan", "validate_scan"]
