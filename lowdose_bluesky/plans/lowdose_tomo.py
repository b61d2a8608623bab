"""The low-dose tomography plan: darks, flats, long/short reference pairs, short rotation.

With no reference angle the scan is *blind*: darks, flats and rotation at the short
exposure only, and no ``reference`` stream.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import bluesky.plan_stubs as bps
import bluesky.preprocessors as bpp
from bluesky.protocols import Movable, Readable
from bluesky.utils import FailedStatus, MsgGenerator, make_decorator

from .detectors import DetectorSetup, _trigger_info, detector_setup
from .validation import TomoScanSpec, validate_scan

__all__ = ["STREAMS", "TomoSteps", "lowdose_tomo_plan", "start_metadata"]

#: Event streams of one run, in acquisition order.
STREAMS = ("dark", "flat", "reference", "primary")


def _cause_in_message(plan: MsgGenerator[Any]) -> MsgGenerator[Any]:
    """Re-raise a device's failed status with the device's own error in the message.

    The RunEngine reports a failed status as ``FailedStatus(<status repr>)``, with the
    device's error (e.g. the file that could not be written, and why) only in the
    exception chain; the user and the stop document's ``reason`` should see it.
    """
    try:
        return (yield from plan)
    except FailedStatus as exc:
        cause = exc.__cause__
        if cause is None:
            raise
        status = exc.args[0] if exc.args else None
        device = getattr(status, "device", None) or getattr(status, "obj", None)
        who = getattr(device, "name", None) or str(status)
        raise FailedStatus(f"{who} failed: {type(cause).__name__}: {cause}") from cause


_name_the_cause = make_decorator(_cause_in_message)


def start_metadata(plan_name: str, setup: DetectorSetup, rotation: Movable, spec: TomoScanSpec,
                   sample_x: Movable | None, shutter: Movable | None,
                   md: dict[str, Any] | None, **extra_args: Any) -> dict[str, Any]:
    """The start document of a low-dose tomography run (step or fly)."""
    if md is not None and not isinstance(md, dict):
        raise ValueError(f"md must be a dict or None, got {type(md).__name__}")
    detector = setup.detector
    _md: dict[str, Any] = {
        "plan_name": plan_name,
        "plan_args": {
            "detector": detector.name, "rotation": rotation.name,
            "sample_x": getattr(sample_x, "name", None), "shutter": getattr(shutter, "name", None),
            "reference_angles": list(spec.reference_angles), "long_exposure": spec.long_exposure,
            "short_exposure": spec.short_exposure, "start": spec.start, "stop": spec.stop,
            "num_projections": spec.num_projections, "num_darks": spec.num_darks,
            "num_flats": spec.num_flats, "flat_offset": spec.flat_offset, **extra_args,
        },
        "detectors": [detector.name],
        "motors": [rotation.name],
        "reference_angles": list(spec.reference_angles),
        "long_exposure": spec.long_exposure,
        "short_exposure": spec.short_exposure,
        "dose_ratio": spec.dose_ratio,
        "num_points": spec.num_projections,
        "lowdose": {
            "image_key": setup.image_key,
            "rotation_key": rotation.name,
            "exposure_key": setup.exposure_key,
            "streams": [s for s in STREAMS if not (spec.blind and s == "reference")],
            "blind": spec.blind,
            "angles": {"start": spec.start, "stop": spec.stop, "num": spec.num_projections},
            "device_flavour": setup.flavour,
        },
    }
    if setup.shape is not None:
        _md["detector_shape"] = setup.shape
    start_md = getattr(detector, "start_metadata", None)
    if callable(start_md):
        _md.update(start_md())
    _md.update(md or {})
    return _md


class TomoSteps:
    """The step-wise parts shared by the step and the fly plan.

    Darks (shutter closed), flats (sample out), the long/short reference pairs, and
    the clean-up that closes the shutter and moves the sample back whatever happens.
    The detector is staged once per stream, so each stream has its own file whose
    frames start at index 0.
    """

    def __init__(self, setup: DetectorSetup, rotation: Movable, spec: TomoScanSpec,
                 sample_x: Movable | None, shutter: Movable | None) -> None:
        self.setup = setup
        self.rotation = rotation
        self.spec = spec
        self.sample_x = sample_x
        self.shutter = shutter
        self.readables = [*setup.readables, rotation]
        self.sample_in: float | None = None

    def take(self, stream: str, n: int) -> MsgGenerator[None]:
        """``n`` triggered frames into ``stream``."""
        for _ in range(n):
            yield from bps.checkpoint()
            yield from bps.trigger_and_read(self.readables, name=stream)

    def staged(self, body: MsgGenerator[None]) -> MsgGenerator[None]:
        """Run ``body`` with the detector staged: a fresh file whose frames start at 0."""
        yield from bps.stage(self.setup.detector, wait=True)
        yield from body
        yield from bps.unstage(self.setup.detector, wait=True)

    def darks(self) -> MsgGenerator[None]:
        """Shutter closed: ``num_darks`` frames at each exposure."""
        yield from bps.mv(self.shutter, "close")
        for t in self.spec.exposures:
            yield from self.setup.set_exposure(t)
            yield from self.take("dark", self.spec.num_darks)

    def flats(self) -> MsgGenerator[None]:
        """Sample out by ``flat_offset``: ``num_flats`` frames at each exposure."""
        yield from bps.mv(self.sample_x, self.sample_in + self.spec.flat_offset)
        for t in self.spec.exposures:
            yield from self.setup.set_exposure(t)
            yield from self.take("flat", self.spec.num_flats)
        yield from bps.mv(self.sample_x, self.sample_in)

    def references(self) -> MsgGenerator[None]:
        """One long- then one short-exposure frame at each reference angle."""
        for angle in self.spec.reference_angles:
            yield from bps.checkpoint()
            yield from bps.mv(self.rotation, angle)
            for t in (self.spec.long_exposure, self.spec.short_exposure):
                yield from self.setup.set_exposure(t)
                yield from self.take("reference", 1)

    def before_rotation(self) -> MsgGenerator[None]:
        """Everything up to the short-exposure rotation, the shutter left open."""
        if self.sample_x is not None:
            self.sample_in = yield from bps.rd(self.sample_x)
        if self.spec.num_darks:
            yield from self.staged(self.darks())
        if self.shutter is not None:
            yield from bps.mv(self.shutter, "open")
        if self.spec.num_flats:
            yield from self.staged(self.flats())
        if not self.spec.blind:
            yield from self.staged(self.references())

    def cleanup(self) -> MsgGenerator[None]:
        """Close the shutter and put the sample back in the beam."""
        if self.shutter is not None:
            yield from bps.mv(self.shutter, "close")
        if self.sample_x is not None and self.sample_in is not None:
            yield from bps.mv(self.sample_x, self.sample_in)

    def run(self, md: dict[str, Any], rotation_scan: MsgGenerator[None]) -> MsgGenerator[str]:
        """The whole run: step-wise parts, then ``rotation_scan``, then clean-up."""

        @bpp.run_decorator(md=md)
        @_name_the_cause()
        def body() -> MsgGenerator[None]:
            yield from self.before_rotation()
            yield from self.staged(rotation_scan)
            if self.shutter is not None:
                yield from bps.mv(self.shutter, "close")

        plan = bpp.finalize_wrapper(body(), self.cleanup())
        return (yield from bpp.rewindable_wrapper(plan, False))


def lowdose_tomo_plan(
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
    md: dict[str, Any] | None = None,
) -> MsgGenerator[str]:
    """Acquire one low-dose tomography run (Yang et al. 2018 protocol).

    Streams, in order:

    - ``dark``: shutter closed, ``num_darks`` frames at the short then the long exposure;
    - ``flat``: sample moved out by ``flat_offset``, ``num_flats`` frames at each exposure;
    - ``reference``: at each reference angle one long- then one short-exposure frame (the
      training pairs, taken first so training can run while the rotation is acquired);
    - ``primary``: the short-exposure rotation, ``num_projections`` angles evenly spaced
      from ``start`` to ``stop`` inclusive.

    A *blind* run (``reference_angles=()``) acquires nothing at the long exposure: darks
    and flats are taken at the short exposure only and there is no ``reference`` stream.
    The start document's ``lowdose["blind"]`` says which kind of run it is
    (``lowdose["streams"]`` then lists ``dark``, ``flat`` and ``primary`` only), and
    ``long_exposure`` and ``dose_ratio`` are still recorded as the nominal full dose.

    Every event holds the image (a reference to the detector's file: Resource/Datum
    from an ophyd detector, StreamResource/StreamDatum from an ophyd-async one), the
    rotation readback and the exposure time. The detector is staged once per stream, so each
    stream has its own file whose frames start at index 0. The plan is not rewindable:
    after a pause or suspension it resumes where it stopped, so no projection is
    duplicated or missed. Whatever happens, the shutter is closed and the sample moved
    back into the beam at the end.

    Parameters
    ----------
    detector
        Area detector: an ophyd device with an ``exposure_time`` signal (seconds) and
        one external image key, or an ophyd-async ``StandardDetector`` (the exposure
        goes to ``prepare(TriggerInfo(livetime=...))``; its one hinted field is the
        image), which is staged, prepared with every exposure of the run and unstaged
        before the run opens, so that a detector refusing one fails before anything moves.
    rotation
        Rotation stage in degrees (ophyd or ophyd-async).
    sample_x
        Sample translation stage (needed for flats).
    shutter
        Shutter accepting ``"open"``/``"close"`` (needed for darks).
    reference_angles
        Distinct angles (deg, within ``[start, stop]``) of the long/short training
        pairs. One angle is accepted with a
        :class:`~lowdose_bluesky.plans.TomoScanWarning`: at least 2 are recommended.
        An empty sequence makes a blind run (no long exposure at all).
    long_exposure, short_exposure
        Exposure times in seconds, ``long_exposure > short_exposure > 0``. In a blind
        run ``long_exposure`` is only the nominal exposure that ``dose_ratio`` refers to.
    start, stop
        Rotation range in degrees.
    num_projections
        Number of short-exposure projections (>= 2).
    num_darks, num_flats
        Frames per exposure for each of the dark and flat streams.
    flat_offset
        Relative move of ``sample_x`` that takes the sample out of the field of view.
    md
        Extra metadata for the start document.

    Yields
    ------
    Msg
        Messages for the RunEngine; returns the run uid.

    Raises
    ------
    ValueError
        Before anything moves: an invalid argument, a detector with neither way to set
        an exposure, or an ophyd-async detector refusing a ``TriggerInfo``.
    """
    spec = validate_scan(
        reference_angles=reference_angles, long_exposure=long_exposure,
        short_exposure=short_exposure, start=start, stop=stop, num_projections=num_projections,
        num_darks=num_darks, num_flats=num_flats, flat_offset=flat_offset,
        has_sample_stage=sample_x is not None, has_shutter=shutter is not None,
    )
    setup = detector_setup(detector)
    _md = start_metadata("lowdose_tomo_plan", setup, rotation, spec, sample_x, shutter, md)
    yield from setup.deadtime()  # refuses a detector that cannot time its exposures
    yield from setup.check([_trigger_info(livetime=t) for t in spec.exposures]
                           if setup.flavour == "ophyd-async" else [])
    steps = TomoSteps(setup, rotation, spec, sample_x, shutter)

    def rotation_scan() -> MsgGenerator[None]:
        yield from setup.set_exposure(spec.short_exposure)
        for angle in spec.angles:
            yield from bps.checkpoint()
            yield from bps.mv(rotation, float(angle))
            yield from bps.trigger_and_read(steps.readables, name="primary")

    return (yield from steps.run(_md, rotation_scan()))
