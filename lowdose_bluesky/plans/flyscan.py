"""The low-dose tomography fly scan: the short-exposure rotation flown, not stepped.

Darks, flats and reference pairs are taken step-wise as in
:func:`~lowdose_bluesky.plans.lowdose_tomo_plan`; then the rotation stage moves at
constant speed through the whole range while an ophyd-async detector times its own
``num_projections`` exposures (``prepare``/``kickoff``/``complete`` with
``FlyMotorInfo`` and ``TriggerInfo``, as ophyd-async flies). The frames are announced
in batches by StreamDatum documents while the stage moves.
"""

from __future__ import annotations

import math
import warnings
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import bluesky.plan_stubs as bps
import numpy as np
from bluesky.protocols import Movable, Readable
from bluesky.utils import MsgGenerator

from .detectors import OPHYD_ASYNC, _trigger_info, detector_setup
from .lowdose_tomo import TomoSteps, start_metadata
from .validation import TomoScanSpec, TomoScanWarning, validate_scan

__all__ = ["FLUSH_PERIOD_S", "FlySchedule", "fly_schedule", "lowdose_tomo_flyscan"]

#: Seconds between StreamDatum batches while the rotation flies.
FLUSH_PERIOD_S = 0.5


@dataclass(frozen=True)
class FlySchedule:
    """When and where each frame of the flown rotation is exposed.

    Frame ``i`` is exposed from ``i * frame_period`` to ``i * frame_period +
    exposure`` after the detector's kickoff; the stage passes ``start_position`` at
    speed when the detector starts, so the middle of exposure ``i`` is at
    ``angles[i] = start + i * step``.
    """

    exposure: float
    frame_period: float
    speed: float  # deg/s, > 0
    direction: float  # +1 or -1
    start_position: float
    end_position: float
    angles: np.ndarray
    smear: float  # deg swept during one exposure

    @property
    def step(self) -> float:
        """Angular step between frames (deg)."""
        return self.speed * self.frame_period

    @property
    def smear_fraction(self) -> float:
        """Angle swept during one exposure, as a fraction of the angular step."""
        return self.smear / self.step

    def metadata(self, angle_source: str) -> dict[str, Any]:
        """The ``lowdose["fly"]`` section of the start document."""
        return {"exposure": self.exposure, "frame_period": self.frame_period,
                "speed": self.speed, "smear_deg": self.smear,
                "smear_fraction": self.smear_fraction, "trigger": "INTERNAL",
                "start_position": self.start_position, "end_position": self.end_position,
                "angle_source": angle_source, "angles": [float(a) for a in self.angles]}


def fly_schedule(spec: TomoScanSpec, *, deadtime: float, frame_period: float | None,
                 max_velocity: float | None, smear_warning: float,
                 width: int | None = None) -> FlySchedule:
    """Plan the flown rotation and check it against the stage and the detector.

    Parameters
    ----------
    spec
        The validated scan.
    deadtime
        The detector's dead time between frames (s).
    frame_period
        Seconds from one frame's start to the next (None: exposure + dead time).
    max_velocity
        The stage's speed limit (deg/s; None: unknown, not checked).
    smear_warning
        Warn (:class:`TomoScanWarning`) when one exposure sweeps more than this
        fraction of the angular step and blurs the edge of the field of view by a
        pixel or more.
    width
        Frame width in pixels (None: unknown; the blur is then not weighed and the
        fraction alone decides).

    Raises
    ------
    ValueError
        A frame period shorter than the exposure plus the dead time (each exposure
        would sweep more than one angular step), or a speed above ``max_velocity``.
    """
    exposure = spec.short_exposure
    shortest = exposure + deadtime
    if frame_period is None:
        frame_period = shortest
    elif not isinstance(frame_period, int | float) or not math.isfinite(frame_period):
        raise ValueError(f"frame_period must be a number of seconds or None, got {frame_period!r}")
    if not 0 < smear_warning <= 1:
        raise ValueError(f"smear_warning must be a fraction of the angular step in (0, 1], "
                         f"got {smear_warning!r}")
    step = abs(spec.stop - spec.start) / (spec.num_projections - 1)
    if frame_period < shortest:
        raise ValueError(
            f"short_exposure {exposure} s + detector dead time {deadtime} s exceeds "
            f"frame_period {frame_period} s: each exposure would sweep "
            f"{exposure / frame_period:.2f} angular steps of {step:.4g} deg; the exposure "
            f"can be at most {frame_period - deadtime:.4g} s, or frame_period at least "
            f"{shortest:.4g} s")
    speed = step / frame_period
    if max_velocity is not None and speed > max_velocity:
        raise ValueError(
            f"the fly scan needs the rotation at {speed:.4g} deg/s (step {step:.4g} deg every "
            f"{frame_period:.4g} s) but the stage's max_velocity is {max_velocity:.4g} deg/s; "
            f"use a frame_period of at least {step / max_velocity:.4g} s or more projections")
    direction = 1.0 if spec.stop > spec.start else -1.0
    smear = speed * exposure
    start_position = spec.start - direction * smear / 2
    end_position = start_position + direction * speed * frame_period * spec.num_projections
    schedule = FlySchedule(exposure=exposure, frame_period=float(frame_period), speed=speed,
                           direction=direction, start_position=start_position,
                           end_position=end_position, angles=spec.angles, smear=smear)
    edge_blur = None if width is None else np.deg2rad(smear) * width / 2
    if schedule.smear_fraction > smear_warning and (edge_blur is None or edge_blur >= 1):
        at_edge = ("" if edge_blur is None else
                   f", {edge_blur:.2g} pixels at the edge of the {width}-pixel field of view")
        warnings.warn(
            f"each exposure sweeps {smear:.4g} deg, {schedule.smear_fraction:.0%} of the "
            f"{step:.4g} deg angular step (warning above {smear_warning:.0%}){at_edge}: the "
            "projections blur tangentially; a longer frame_period or more projections "
            "lower it", TomoScanWarning, stacklevel=3)
    return schedule


def _max_velocity(rotation: Any) -> MsgGenerator[float | None]:
    signal = getattr(rotation, "max_velocity", None)
    if signal is None:
        return None
    value = yield from bps.rd(signal)
    value = float(value)
    return value if value > 0 else None  # motor record: VMAX 0 means no limit


def lowdose_tomo_flyscan(
    detector: Readable,
    rotation: Movable,
    *,
    sample_x: Movable | None = None,
    shutter: Movable | None = None,
    reference_angles: Sequence[float] = (30.0, 120.0),
    long_exposure: float = 30.0,
    short_exposure: float = 2.0,
    start: float = 0.0,
    stop: float = 180.0,
    num_projections: int = 361,
    num_darks: int = 5,
    num_flats: int = 5,
    flat_offset: float = 5.0,
    frame_period: float | None = None,
    smear_warning: float = 0.5,
    md: dict[str, Any] | None = None,
) -> MsgGenerator[str]:
    """Acquire one low-dose tomography run with the short-exposure rotation flown.

    The streams and metadata are those of
    :func:`~lowdose_bluesky.plans.lowdose_tomo_plan` (darks, flats and reference
    pairs are stepped), but the ``primary`` rotation is flown: the stage moves at the
    constant speed ``step / frame_period`` from ``start`` to ``stop`` while the
    detector takes ``num_projections`` internally timed exposures, frame ``i``
    centred on ``start + i * step``. The ``primary`` stream has no events: its frames
    are announced in batches by StreamDatum documents. Each frame's angle is recorded:
    read back by the detector with every frame where it records one (its
    ``angle_data_key``, named in ``lowdose["angle_key"]``), and always the trigger
    schedule's angles in ``lowdose["fly"]["angles"]`` of the start document, with the
    speed, frame period and angular smear.

    Checked before anything moves: the scan arguments (as ``lowdose_tomo_plan``), the
    detector (ophyd-async, internal triggering, accepting every ``TriggerInfo`` of the
    run), the speed against the stage's ``max_velocity``, and the angular smear of one
    exposure (a warning above ``smear_warning`` of the step when it blurs the edge of
    the field of view by a pixel or more; refused above one step).

    Parameters
    ----------
    detector
        ophyd-async ``StandardDetector`` (step frames via ``trigger``, the rotation via
        ``kickoff``/``complete``).
    rotation
        Flyable rotation stage in degrees (``prepare(FlyMotorInfo)``, ``kickoff``,
        ``complete``; e.g. ``ophyd_async.epics.motor.Motor``).
    sample_x, shutter, reference_angles, long_exposure, short_exposure, start, stop, \
num_projections, num_darks, num_flats, flat_offset, md
        As in :func:`~lowdose_bluesky.plans.lowdose_tomo_plan`.
    frame_period
        Seconds between the starts of consecutive frames; None: the short exposure
        plus the detector's dead time (the fastest scan).
    smear_warning
        Fraction of the angular step above which the smear of one exposure warns
        (when the detector's width is known: only if it blurs the field of view's
        edge by a pixel or more).

    Returns
    -------
    str
        The run uid.

    Raises
    ------
    ValueError
        Before anything moves, naming the value and the limit.
    """
    spec = validate_scan(
        reference_angles=reference_angles, long_exposure=long_exposure,
        short_exposure=short_exposure, start=start, stop=stop, num_projections=num_projections,
        num_darks=num_darks, num_flats=num_flats, flat_offset=flat_offset,
        has_sample_stage=sample_x is not None, has_shutter=shutter is not None,
    )
    setup = detector_setup(detector)
    if setup.flavour != OPHYD_ASYNC or not callable(getattr(detector, "kickoff", None)):
        raise ValueError(
            f"lowdose_tomo_flyscan needs a detector that flies (an ophyd-async "
            f"StandardDetector with prepare/kickoff/complete); {setup.detector.name!r} is an "
            f"{setup.flavour} device: use lowdose_tomo_plan, which steps the rotation")
    missing = [m for m in ("prepare", "kickoff", "complete")
               if not callable(getattr(rotation, m, None))]
    if missing:
        raise ValueError(f"rotation {getattr(rotation, 'name', rotation)!r} cannot fly: it has "
                         f"no {', '.join(missing)}; lowdose_tomo_flyscan needs a flyable stage "
                         "(prepare(FlyMotorInfo), kickoff, complete), e.g. an ophyd-async Motor")
    if md is not None and not isinstance(md, dict):
        raise ValueError(f"md must be a dict or None, got {type(md).__name__}")

    from ophyd_async.core import FlyMotorInfo

    # Before anything moves: the detector's dead time and the stage's speed limit.
    deadtime = yield from setup.deadtime()
    schedule = fly_schedule(spec, deadtime=deadtime, frame_period=frame_period,
                            max_velocity=(yield from _max_velocity(rotation)),
                            smear_warning=smear_warning,
                            width=None if setup.shape is None else setup.shape[-1])
    fly_info = _trigger_info(number_of_events=spec.num_projections, livetime=spec.short_exposure,
                             deadtime=schedule.frame_period - spec.short_exposure)
    yield from setup.check([*(_trigger_info(livetime=t) for t in spec.exposures), fly_info])

    _md = start_metadata("lowdose_tomo_flyscan", setup, rotation, spec, sample_x, shutter, md,
                         frame_period=frame_period, smear_warning=smear_warning)
    _md["lowdose"]["fly"] = schedule.metadata("detector" if setup.angle_key else "schedule")
    _md["lowdose"]["angle_key"] = setup.angle_key
    motor_info = FlyMotorInfo(start_position=schedule.start_position,
                              end_position=schedule.end_position,
                              time_for_move=schedule.frame_period * spec.num_projections)
    steps = TomoSteps(setup, rotation, spec, sample_x, shutter)

    def rotation_scan() -> MsgGenerator[None]:
        yield from setup.prepare(fly_info)
        yield from bps.prepare(rotation, motor_info, wait=True)
        yield from bps.declare_stream(detector, name="primary", collect=True)
        yield from bps.kickoff(rotation, wait=True)
        yield from bps.kickoff(detector, wait=True)
        yield from bps.collect_while_completing([detector, rotation], [detector],
                                                flush_period=FLUSH_PERIOD_S,
                                                stream_name="primary")

    return (yield from steps.run(_md, rotation_scan()))
