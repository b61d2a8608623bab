"""Bluesky plans (never import torch here)."""

from .calibration import KNIFE_EDGE_STREAMS, KnifeEdgeSpec, knife_edge_plan
from .detectors import DetectorSetup, detector_setup, is_ophyd_async
from .flyscan import FlySchedule, fly_schedule, lowdose_tomo_flyscan
from .lowdose_tomo import STREAMS, lowdose_tomo_plan
from .ptycho import PTYCHO_STREAMS, lowdose_ptycho_plan
from .ptycho_validation import PtychoScanSpec, validate_ptycho_scan
from .super_resolution import SR_STREAMS, SRScanSpec, super_resolution_plan
from .validation import TomoScanSpec, TomoScanWarning, validate_scan
from .xrf import XRF_STREAMS, lowdose_xrf_plan
from .xrf_validation import XRFScanSpec, validate_xrf_scan

__all__ = [
    "KNIFE_EDGE_STREAMS", "PTYCHO_STREAMS", "SR_STREAMS", "STREAMS", "XRF_STREAMS",
    "DetectorSetup", "FlySchedule", "KnifeEdgeSpec", "PtychoScanSpec", "SRScanSpec",
    "TomoScanSpec", "TomoScanWarning", "XRFScanSpec", "detector_setup", "fly_schedule",
    "is_ophyd_async", "knife_edge_plan", "lowdose_ptycho_plan", "lowdose_tomo_flyscan",
    "lowdose_tomo_plan", "lowdose_xrf_plan", "super_resolution_plan", "validate_ptycho_scan",
    "validate_scan", "validate_xrf_scan"
]
