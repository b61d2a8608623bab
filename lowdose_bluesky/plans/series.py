"""A series of frames at one exposure after darks and flats: the frame of the imaging plans.

The knife-edge calibration and the super-resolution plan share the tomography plan's
step-wise parts (:class:`~lowdose_bluesky.plans.lowdose_tomo.TomoSteps`): darks with
the shutter closed, flats with the sample moved out, one file per stream, the shutter
closed and the sample put back whatever happens, no rewinding after a pause.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from bluesky.utils import MsgGenerator

from .detectors import DetectorSetup
from .lowdose_tomo import TomoSteps

__all__ = ["run_series"]


def run_series(md: dict[str, Any], setup: DetectorSetup, axis: Any, sample_x: Any,
               shutter: Any, spec: Any,
               body: Callable[[float | None], MsgGenerator[None]]) -> MsgGenerator[str]:
    """One run: darks, flats, then ``body(sample_in)`` with the detector staged.

    Parameters
    ----------
    md
        The start document.
    setup
        The detector.
    axis
        The stage read with every frame (a rotation, or the stage moving the sample).
    sample_x
        The stage that takes the sample out for the flats (``None``: no flats).
    shutter
        The shutter (``None``: no darks).
    spec
        ``exposures``, ``num_darks``, ``num_flats``, ``flat_offset``, ``blind`` (true)
        and ``reference_angles`` (empty), as a validated tomography scan has them.
    body
        Called with ``sample_x``'s position before the flats (``None`` without it) once
        darks and flats are taken; yields the frames of the ``primary`` stream.
    """
    steps = TomoSteps(setup, axis, spec, sample_x, shutter)

    def series() -> MsgGenerator[None]:
        yield from body(steps.sample_in)

    return (yield from steps.run(md, series()))
