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

from .validation import validate_scan

__all__ = ["STREAMS", "lowdose_tomo_plan"]

#: Event streams of one run, in acquisition order.
STREAMS = ("dark", "flat", "reference", "primary")


def _exposure_signal(detector: Any) -> Any:
    signal = getattr(detector, "exposure_time", None)
    if signal is None or not hasattr(signal, "set"):
        raise ValueError(f"detector {getattr(detector, 'name', detector)!r} has no settable "
                         "'exposure_time' signal; the plan needs one to switch exposures")
    return signal


def _image_key(detector: Any) -> tuple[str, list[int]]:
    description = detector.describe()
    keys = [k for k, v in description.items() if v.get("external") and len(v.get("shape", ())) == 2]
    if len(keys) != 1:
        raise ValueError(f"detector {detector.name!r} must describe exactly one external 2-D image "
                         f"data key, found {keys or 'none'} in {sorted(description)}")
    return keys[0], [int(s) for s in description[keys[0]]["shape"]]


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

    Every event holds the image (a reference to the detector's file), the rotation
    readback and the exposure time. The detector is staged once per stream, so each
    stream has its own file whose frames start at index 0. The plan is not rewindable:
    after a pause or suspension it resumes where it stopped, so no projection is
    duplicated or missed. Whatever happens, the shutter is closed and the sample moved
    back into the beam at the end.

    Parameters
    ----------
    detector
        Area detector with an ``exposure_time`` signal (seconds) and one external image key.
    rotation
        Rotation stage in degrees.
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
        Before the first message, if an argument is invalid.
    """
    spec = validate_scan(
        reference_angles=reference_angles, long_exposure=long_exposure,
        short_exposure=short_exposure, start=start, stop=stop, num_projections=num_projections,
        num_darks=num_darks, num_flats=num_flats, flat_offset=flat_offset,
        has_sample_stage=sample_x is not None, has_shutter=shutter is not None,
    )
    exposure = _exposure_signal(detector)
    image_key, shape = _image_key(detector)
    if md is not None and not isinstance(md, dict):
        raise ValueError(f"md must be a dict or None, got {type(md).__name__}")

    _md: dict[str, Any] = {
        "plan_name": "lowdose_tomo_plan",
        "plan_args": {
            "detector": detector.name, "rotation": rotation.name,
            "sample_x": getattr(sample_x, "name", None), "shutter": getattr(shutter, "name", None),
            "reference_angles": list(spec.reference_angles), "long_exposure": spec.long_exposure,
            "short_exposure": spec.short_exposure, "start": spec.start, "stop": spec.stop,
            "num_projections": spec.num_projections, "num_darks": spec.num_darks,
            "num_flats": spec.num_flats, "flat_offset": spec.flat_offset,
        },
        "detectors": [detector.name],
        "motors": [rotation.name],
        "reference_angles": list(spec.reference_angles),
        "long_exposure": spec.long_exposure,
        "short_exposure": spec.short_exposure,
        "dose_ratio": spec.dose_ratio,
        "detector_shape": shape,
        "num_points": spec.num_projections,
        "lowdose": {
            "image_key": image_key,
            "rotation_key": rotation.name,
            "exposure_key": exposure.name,
            "streams": [s for s in STREAMS if not (spec.blind and s == "reference")],
            "blind": spec.blind,
            "angles": {"start": spec.start, "stop": spec.stop, "num": spec.num_projections},
        },
    }
    start_md = getattr(detector, "start_metadata", None)
    if callable(start_md):
        _md.update(start_md())
    _md.update(md or {})

    readables = [detector, rotation]
    state: dict[str, Any] = {"sample_in": None}

    def take(stream: str, n: int) -> MsgGenerator[None]:
        for _ in range(n):
            yield from bps.checkpoint()
            yield from bps.trigger_and_read(readables, name=stream)

    def staged(body: MsgGenerator[None]) -> MsgGenerator[None]:
        # One stage per stream: a fresh file (resource) whose frames start at 0.
        yield from bps.stage(detector)
        yield from body
        yield from bps.unstage(detector)

    def darks() -> MsgGenerator[None]:
        yield from bps.mv(shutter, "close")
        for t in spec.exposures:
            yield from bps.mv(exposure, t)
            yield from take("dark", spec.num_darks)

    def flats() -> MsgGenerator[None]:
        yield from bps.mv(sample_x, state["sample_in"] + spec.flat_offset)
        for t in spec.exposures:
            yield from bps.mv(exposure, t)
            yield from take("flat", spec.num_flats)
        yield from bps.mv(sample_x, state["sample_in"])

    def references() -> MsgGenerator[None]:
        for angle in spec.reference_angles:
            yield from bps.checkpoint()
            yield from bps.mv(rotation, angle)
            for t in (spec.long_exposure, spec.short_exposure):
                yield from bps.mv(exposure, t)
                yield from take("reference", 1)

    def rotation_scan() -> MsgGenerator[None]:
        yield from bps.mv(exposure, spec.short_exposure)
        for angle in spec.angles:
            yield from bps.checkpoint()
            yield from bps.mv(rotation, float(angle))
            yield from bps.trigger_and_read(readables, name="primary")

    @bpp.run_decorator(md=_md)
    @_name_the_cause()
    def body() -> MsgGenerator[None]:
        if sample_x is not None:
            state["sample_in"] = yield from bps.rd(sample_x)
        if spec.num_darks:
            yield from staged(darks())
        if shutter is not None:
            yield from bps.mv(shutter, "open")
        if spec.num_flats:
            yield from staged(flats())
        if not spec.blind:
            yield from staged(references())
        yield from staged(rotation_scan())
        if shutter is not None:
            yield from bps.mv(shutter, "close")

    def cleanup() -> MsgGenerator[None]:
        if shutter is not None:
            yield from bps.mv(shutter, "close")
        if sample_x is not None and state["sample_in"] is not None:
            yield from bps.mv(sample_x, state["sample_in"])

    plan = bpp.finalize_wrapper(body(), cleanup())
    return (yield from bpp.rewindable_wrapper(plan, False))
