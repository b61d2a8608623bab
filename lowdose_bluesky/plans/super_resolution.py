"""The super-resolution imaging plan: a radiograph series or a rotation, super-resolved live.

Streams, in order: ``dark`` (shutter closed), ``flat`` (sample out by ``flat_offset``),
``primary`` (the frames: ``num_frames`` radiographs where the sample stands, or a
rotation from ``start`` to ``stop``). The live engine's ``super_resolution`` recipe
super-resolves every primary frame with the network of a knife-edge calibration of the
same camera (found in Tiled, or named by ``calibration=``) and, for a rotation,
reconstructs the super-resolved projections.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import bluesky.plan_stubs as bps
import numpy as np
from bluesky.protocols import Movable, Readable
from bluesky.utils import MsgGenerator

from .calibration import _count, _positive, check_darks_flats
from .detectors import OPHYD_ASYNC, DetectorSetup, _trigger_info, detector_setup
from .series import run_series
from .stage_scan import with_detector_metadata
from .validation import ANGLE_TOLERANCE_DEG

__all__ = ["SR_STREAMS", "SRScanSpec", "super_resolution_plan", "validate_sr_scan"]

#: Streams of a super-resolution run, in acquisition order.
SR_STREAMS = ("dark", "flat", "primary")


@dataclass(frozen=True)
class SRScanSpec:
    """A validated super-resolution scan (see :func:`super_resolution_plan`)."""

    exposure: float
    num_frames: int
    start: float | None
    stop: float | None
    num_darks: int
    num_flats: int
    flat_offset: float
    calibration: str | None

    #: No long-exposure references: darks and flats at the one exposure only.
    blind = True
    reference_angles: tuple[float, ...] = ()

    @property
    def exposures(self) -> tuple[float]:
        """The one exposure of the run."""
        return (self.exposure,)

    @property
    def rotation(self) -> bool:
        """Whether the frames are a rotation (``start`` and ``stop`` given)."""
        return self.start is not None

    @property
    def angles(self) -> np.ndarray:
        """The rotation angles, evenly spaced from ``start`` to ``stop`` inclusive."""
        if self.start is None or self.stop is None:
            raise ValueError("a radiograph series has no angles")
        return np.linspace(self.start, self.stop, self.num_frames)


def validate_sr_scan(*, exposure: Any, num_frames: Any, start: Any, stop: Any,
                     num_darks: Any, num_flats: Any, flat_offset: Any, calibration: Any,
                     has_rotation: bool, has_sample_stage: bool, has_shutter: bool
                     ) -> SRScanSpec:
    """Check a super-resolution scan's arguments; ``ValueError`` naming the value otherwise."""
    exposure = _positive("exposure", exposure)
    num_frames = _count("num_frames", num_frames, 1)
    num_darks = _count("num_darks", num_darks, 0)
    num_flats = _count("num_flats", num_flats, 0)
    if calibration is not None and (not isinstance(calibration, str) or not calibration):
        raise ValueError(f"calibration must be a result uid (str) or None, got "
                         f"{calibration!r}")
    if (start is None) != (stop is None):
        raise ValueError(f"give both start and stop for a rotation, or neither for a "
                         f"radiograph series; got start={start!r}, stop={stop!r}")
    if start is not None:
        if not has_rotation:
            raise ValueError(f"start={start!r} and stop={stop!r} ask for a rotation but no "
                             "rotation stage was given")
        try:
            start, stop = float(start), float(stop)
        except (TypeError, ValueError):
            raise ValueError(f"start and stop must be angles in degrees, got start={start!r}, "
                             f"stop={stop!r}") from None
        if not (np.isfinite(start) and np.isfinite(stop)) or start == stop:
            raise ValueError(f"start and stop must be finite and differ, got start={start}, "
                             f"stop={stop}")
        if num_frames < 2:
            raise ValueError(f"a rotation needs num_frames >= 2, got {num_frames}")
        step = abs(stop - start) / (num_frames - 1)
        if step < ANGLE_TOLERANCE_DEG:
            raise ValueError(f"the angular step {step:.3g} deg is below "
                             f"{ANGLE_TOLERANCE_DEG} deg")
    if num_flats and not has_sample_stage:
        raise ValueError(f"num_flats={num_flats} flats requested but no sample_x stage was "
                         "given: give sample_x= or num_flats=0")
    flat_offset = check_darks_flats(num_darks, num_flats, flat_offset,
                                    has_shutter=has_shutter, moved="the sample")
    if not has_rotation and not has_sample_stage:
        raise ValueError("give a rotation or a sample_x stage: one of them is read with "
                         "every frame")
    return SRScanSpec(exposure=exposure, num_frames=num_frames, start=start, stop=stop,
                      num_darks=num_darks, num_flats=num_flats, flat_offset=flat_offset,
                      calibration=calibration)


def _sr_metadata(setup: DetectorSetup, axis: Any, rotation: Any, sample_x: Any, shutter: Any,
                 spec: SRScanSpec, md: dict[str, Any] | None) -> dict[str, Any]:
    det = setup.detector
    if md is not None and not isinstance(md, dict):
        raise ValueError(f"md must be a dict or None, got {type(md).__name__}")
    base: dict[str, Any] = {
        "plan_name": "super_resolution_plan",
        "plan_args": {"detector": det.name, "rotation": getattr(rotation, "name", None),
                      "sample_x": getattr(sample_x, "name", None),
                      "shutter": getattr(shutter, "name", None), "exposure": spec.exposure,
                      "num_frames": spec.num_frames, "start": spec.start, "stop": spec.stop,
                      "num_darks": spec.num_darks, "num_flats": spec.num_flats,
                      "flat_offset": spec.flat_offset, "calibration": spec.calibration},
        "detectors": [det.name],
        "motors": [axis.name],
        "num_points": spec.num_frames,
        "sr": {
            "image_key": setup.image_key, "exposure_key": setup.exposure_key,
            "axis_key": axis.name, "detector": det.name,
            "rotation_key": getattr(rotation, "name", None) if spec.rotation else None,
            "streams": [s for s, n in zip(SR_STREAMS, (spec.num_darks, spec.num_flats, 1),
                                          strict=True) if n],
            "rotation": spec.rotation,
            "angles": ({"start": spec.start, "stop": spec.stop, "num": spec.num_frames}
                       if spec.rotation else None),
            "exposure": spec.exposure, "num_frames": spec.num_frames,
            "calibration": spec.calibration,
            "binning": int(getattr(det, "binning", 1) or 1),
            "device_flavour": setup.flavour,
        },
    }
    if setup.shape is not None:
        base["detector_shape"] = setup.shape
    return with_detector_metadata(det, base, md)


def super_resolution_plan(
    detector: Readable,
    rotation: Movable | None = None,
    *,
    sample_x: Movable | None = None,
    shutter: Movable | None = None,
    exposure: float = 1.0,
    num_frames: int = 10,
    start: float | None = None,
    stop: float | None = None,
    num_darks: int = 5,
    num_flats: int = 5,
    flat_offset: float = 5.0,
    calibration: str | None = None,
    md: dict[str, Any] | None = None,
) -> MsgGenerator[str]:
    """Acquire frames for live super-resolution: a radiograph series or a rotation.

    Parameters
    ----------
    detector
        Area detector (ophyd with an ``exposure_time`` signal, or ophyd-async).
    rotation
        Rotation stage in degrees; read with every frame, moved only for a rotation.
    sample_x
        Sample translation stage (needed for flats).
    shutter
        Shutter accepting ``"open"``/``"close"`` (needed for darks).
    exposure
        Seconds per frame.
    num_frames
        Frames of the ``primary`` stream.
    start, stop
        A rotation from ``start`` to ``stop`` degrees (inclusive, ``num_frames``
        angles); both ``None`` (default): radiographs where the sample stands.
    num_darks, num_flats, flat_offset
        Dark frames, flat frames, and the relative ``sample_x`` move taking the sample
        out for the flats.
    calibration
        Uid of the knife-edge calibration result whose network super-resolves the
        frames; default: the recipe's choice (the newest calibration of this camera).
    md
        Extra metadata for the start document.

    Yields
    ------
    Msg
        Messages for the RunEngine; returns the run uid.

    Raises
    ------
    ValueError
        Before anything moves: an invalid argument, flats without ``sample_x``, darks
        without a shutter, or a detector refusing the exposure.
    """
    setup = detector_setup(detector)
    spec = validate_sr_scan(exposure=exposure, num_frames=num_frames, start=start, stop=stop,
                            num_darks=num_darks, num_flats=num_flats, flat_offset=flat_offset,
                            calibration=calibration, has_rotation=rotation is not None,
                            has_sample_stage=sample_x is not None,
                            has_shutter=shutter is not None)
    axis = rotation if rotation is not None else sample_x
    _md = _sr_metadata(setup, axis, rotation, sample_x, shutter, spec, md)
    yield from setup.deadtime()
    yield from setup.check([_trigger_info(livetime=spec.exposure)]
                           if setup.flavour == OPHYD_ASYNC else [])

    def frames(_sample_in: float | None) -> MsgGenerator[None]:
        yield from setup.set_exposure(spec.exposure)
        for k in range(spec.num_frames):
            yield from bps.checkpoint()
            if spec.rotation:
                yield from bps.mv(rotation, float(spec.angles[k]))
            yield from bps.trigger_and_read([*setup.readables, axis], name="primary")

    return (yield from run_series(_md, setup, axis, sample_x, shutter, spec, frames))
