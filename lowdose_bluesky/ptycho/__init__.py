"""Simulated far-field ptychography: object, probe, scan positions, forward model,
stitching of patches, phase metrics, and iterative reconstruction with pty-chi.

Conventions: images are ``(y, x)`` arrays; a scan position is the ``(y, x)``
top-left corner of the probe window on the object grid, in object pixels,
rounded half up to whole pixels where windows are cut or placed; diffraction
patterns have zero frequency at the centre. The object is a complex
transmission function (amplitude <= 1); the probe is normalised to
``sum |P|^2 == 1``.

Importing this package imports neither torch nor bluesky: pty-chi (and with
it torch) is imported by :func:`reconstruct` when it runs.
"""

from __future__ import annotations

from lowdose_bluesky.ptycho.forward import (
    diffraction_patterns,
    exit_waves,
    expected_intensity,
    object_windows,
)
from lowdose_bluesky.ptycho.iterative import (
    ALGORITHMS,
    IterativeReconstructor,
    IterativeResult,
    reconstruct,
)
from lowdose_bluesky.ptycho.metrics import phase_scores, remove_phase_offset
from lowdose_bluesky.ptycho.objects import check_object, test_object
from lowdose_bluesky.ptycho.positions import (
    check_positions,
    mean_nearest_neighbour,
    overlap,
    raster_positions,
    spiral_positions,
    step_for_overlap,
    window_corners,
)
from lowdose_bluesky.ptycho.probe import (
    check_probe,
    focused_probe,
    probe_diameter_px,
    probe_support,
)
from lowdose_bluesky.ptycho.stitch import Stitcher, stitch

__all__ = [
    "ALGORITHMS",
    "IterativeReconstructor",
    "IterativeResult",
    "Stitcher",
    "check_object",
    "check_positions",
    "check_probe",
    "diffraction_patterns",
    "exit_waves",
    "expected_intensity",
    "focused_probe",
    "mean_nearest_neighbour",
    "object_windows",
    "overlap",
    "phase_scores",
    "probe_diameter_px",
    "probe_support",
    "raster_positions",
    "reconstruct",
    "remove_phase_offset",
    "spiral_positions",
    "step_for_overlap",
    "stitch",
    "test_object",
    "window_corners",
]
