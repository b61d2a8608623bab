"""Bluesky plans (never import torch here)."""

from .detectors import DetectorSetup, detector_setup, is_ophyd_async
from .flyscan import FlySchedule, fly_schedule, lowdose_tomo_flyscan
from .lowdose_tomo import STREAMS, lowdose_tomo_plan
from .ptycho import PTYCHO_STREAMS, lowdose_ptycho_plan
from .ptycho_validation import PtychoScanSpec, validate_ptycho_scan
from .validation import TomoScanSpec, TomoScanWarning, validate_scan
from .xrf import XRF_STREAMS, lowdose_xrf_plan
from .xrf_validation import XRFScanSpec, validate_xrf_scan

__all__ = ["PTYCHO_STREAMS", "STREAMS", "XRF_STREAMS", "DetectorSetup", "FlySchedule",
           "PtychoScanSpec", "TomoScanSpec", "TomoScanWarning", "XRFScanSpec", "detector_setup",
           "fly_schedule", "is_ophyd_async", "lowdose_ptycho_plan", "lowdose_tomo_flyscan",
           "lowdose_tomo_plan", "lowdose_xrf_plan", "validate_ptycho_scan", "validate_scan",
           "validate_xrf_scan"]
