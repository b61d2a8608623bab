"""The low-dose XRF mapping plan: long-dwell reference rows, then the short-dwell raster.

After the low-dose principle of Yang et al. (2018), applied to a scanning fluorescence
microprobe: a few rows are mapped at a long dwell (the training data of the supervised
enhancement), then the whole region at a short dwell. Each pixel's event (or, flown, its
StreamDatum) refers to the detector's spectra per detector element in an HDF5 file.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import bluesky.plan_stubs as bps
from bluesky.protocols import Movable, Readable
from bluesky.utils import MsgGenerator

from .detectors import OPHYD_ASYNC, DetectorSetup, _trigger_info, detector_setup
from .flyscan import FLUSH_PERIOD_S, _max_velocity
from .stage_scan import run_stage_scan, with_detector_metadata
from .xrf_validation import XRFScanSpec, validate_xrf_scan

__all__ = ["XRF_STREAMS", "lowdose_xrf_plan"]

#: Streams of one map, in acquisition order.
XRF_STREAMS = ("reference", "primary")


def _xrf_metadata(setup: DetectorSetup, x: Any, y: Any, spec: XRFScanSpec, fly: bool,
                  shutter: Any, md: dict[str, Any] | None) -> dict[str, Any]:
    det = setup.detector
    keys = {"spectra_key": setup.image_key, "x_key": x.name, "y_key": y.name,
            "exposure_key": setup.exposure_key,
            "i0_key": getattr(det, "i0_data_key", None),
            "transmission_key": getattr(det, "transmission_data_key", None),
            "position_keys": list(getattr(det, "position_data_keys", ()) or ())}
    elements = list(getattr(det, "elements", ()) or ())
    _md: dict[str, Any] = {
        "plan_name": "lowdose_xrf_plan",
        "plan_args": {"detector": det.name, "x": x.name, "y": y.name,
                      "shutter": getattr(shutter, "name", None), "x_start": spec.x_start,
                      "y_start": spec.y_start, "step_x": spec.step_x, "step_y": spec.step_y,
                      "num_x": spec.num_x, "num_y": spec.num_y, "dwell": spec.dwell,
                      "long_dwell": spec.long_dwell,
                      "reference_rows": list(spec.reference_rows), "fly": fly},
        "detectors": [det.name],
        "motors": [x.name, y.name],
        "num_points": spec.num_x * spec.num_y,
        "shape": [spec.num_y, spec.num_x],
        "xrf": {
            **keys,
            "streams": [s for s in XRF_STREAMS if not (spec.blind and s == "reference")],
            "blind": spec.blind,
            "dwell": spec.dwell,
            "long_dwell": spec.long_dwell,
            "dwell_ratio": spec.dwell_ratio,
            "reference_rows": list(spec.reference_rows),
            "region": {"x_start": spec.x_start, "y_start": spec.y_start,
                       "step_x": spec.step_x, "step_y": spec.step_y,
                       "num_x": spec.num_x, "num_y": spec.num_y},
            "elements": elements,
            "energy_kev": getattr(det, "energy_kev", None),
            "detector_elements": getattr(det, "detector_elements", None),
            # channel calibration and I0 counts per incident photon, where the detector
            # says (element maps in ug/cm^2 need them)
            "bins": getattr(det, "bins", None),
            "bin_kev": getattr(getattr(det, "spectra", None), "bin_kev", None),
            "i0_counts_per_photon": getattr(getattr(det, "counting", None), "i0_efficiency",
                                            None),
            "fly": fly,
            "device_flavour": setup.flavour,
        },
    }
    return with_detector_metadata(det, _md, md)


def lowdose_xrf_plan(
    detector: Readable,
    x: Movable,
    y: Movable,
    *,
    shutter: Movable | None = None,
    x_start: float = 0.0,
    y_start: float = 0.0,
    step_x: float = 0.5,
    step_y: float = 0.5,
    num_x: int = 64,
    num_y: int = 64,
    dwell: float = 0.01,
    long_dwell: float = 0.2,
    reference_rows: Sequence[int] = (16, 48),
    fly: bool = False,
    md: dict[str, Any] | None = None,
) -> MsgGenerator[str]:
    """Map one region at low dose: long-dwell reference rows, then the short-dwell raster.

    Streams, in order: ``reference`` (each of ``reference_rows`` at ``long_dwell``; none
    in a blind map, ``reference_rows=()``) and ``primary`` (``num_y`` rows of ``num_x``
    pixels at ``dwell``, row by row, each row from ``x_start``). Stepped, every pixel
    is one event holding the spectra reference and the stage readbacks; flown
    (``fly=True``), each row is one constant-speed move of ``x`` during which the
    detector times ``num_x`` dwells, announced by StreamDatum. The start document's
    ``xrf`` section holds what the analysis needs (data keys, dwell times and ratio,
    elements, incident energy, detector elements, region and steps). The plan is not
    rewindable: after a pause it resumes where it stopped, so no pixel is taken twice or
    missed. The shutter is closed and both stages returned at the end, whatever happens.

    Parameters
    ----------
    detector
        Fluorescence detector: an ophyd-async ``StandardDetector`` (dwell through
        ``prepare(TriggerInfo(livetime=...))``) or an ophyd one with ``exposure_time``.
    x, y
        Scan stages (same units as the start and step arguments, e.g. um).
    shutter
        Opened for the map and closed at the end (optional).
    x_start, y_start, step_x, step_y, num_x, num_y
        The raster: pixel ``(row, col)`` at ``(x_start + col * step_x, y_start + row *
        step_y)``; at least 2 x 2 pixels.
    dwell, long_dwell
        Seconds per pixel of the map and of the reference rows, ``long_dwell > dwell``.
    reference_rows
        Distinct row indices mapped at ``long_dwell`` first; ``()`` for a blind map.
    fly
        Fly each row (needs an ophyd-async detector and a flyable ``x``).
    md
        Extra metadata for the start document.

    Returns
    -------
    str
        The run uid.

    Raises
    ------
    ValueError
        Before anything moves: an invalid argument (naming it and what is allowed), a
        detector refusing a ``TriggerInfo``, a fly speed above ``x``'s ``max_velocity``.
    """
    spec = validate_xrf_scan(x_start=x_start, y_start=y_start, step_x=step_x, step_y=step_y,
                             num_x=num_x, num_y=num_y, dwell=dwell, long_dwell=long_dwell,
                             reference_rows=reference_rows)
    if not isinstance(fly, bool):
        raise ValueError(f"fly must be True or False, got {fly!r}")
    if md is not None and not isinstance(md, dict):
        raise ValueError(f"md must be a dict or None, got {type(md).__name__}")
    setup = detector_setup(detector)
    if fly and (setup.flavour != OPHYD_ASYNC
                or not all(callable(getattr(x, m, None))
                           for m in ("prepare", "kickoff", "complete"))):
        raise ValueError("fly=True needs an ophyd-async detector and a flyable x stage "
                         "(prepare(FlyMotorInfo), kickoff, complete); use fly=False to step")
    dwells = (spec.dwell,) if spec.blind else (spec.long_dwell, spec.dwell)
    deadtime = yield from setup.deadtime()
    infos = []
    if setup.flavour == OPHYD_ASYNC:  # each as the plan will prepare it
        infos = [_trigger_info(livetime=t, number_of_events=spec.num_x, deadtime=deadtime)
                 if fly else _trigger_info(livetime=t, number_of_events=1) for t in dwells]
    yield from setup.check(infos)
    speed = {t: spec.step_x / (t + deadtime) for t in dwells}
    if fly:
        limit = yield from _max_velocity(x)
        fastest = max(abs(v) for v in speed.values())
        if limit is not None and fastest > limit:
            raise ValueError(
                f"flying a row needs x at {fastest:.4g} per s (step_x {abs(spec.step_x)} every "
                f"{spec.dwell + deadtime:.4g} s) but its max_velocity is {limit:.4g}; use a "
                f"dwell of at least {abs(spec.step_x) / limit - deadtime:.4g} s or fly=False")
    _md = _xrf_metadata(setup, x, y, spec, fly, shutter, md)
    readables = [*setup.readables, x, y]

    def step_row(row: int, stream: str) -> MsgGenerator[None]:
        yield from bps.mv(y, spec.y(row))
        for col in range(spec.num_x):
            yield from bps.checkpoint()
            yield from bps.mv(x, spec.x(col))
            yield from bps.trigger_and_read(readables, name=stream)

    def fly_row(row: int, stream: str, t: float) -> MsgGenerator[None]:
        from ophyd_async.core import FlyMotorInfo

        yield from bps.checkpoint()
        yield from bps.mv(y, spec.y(row))
        yield from setup.prepare(_trigger_info(livetime=t, number_of_events=spec.num_x,
                                               deadtime=deadtime))
        direction = 1.0 if spec.step_x > 0 else -1.0
        first = spec.x_start - direction * abs(speed[t]) * t / 2
        yield from bps.prepare(x, FlyMotorInfo(
            start_position=first, end_position=first + spec.step_x * spec.num_x,
            time_for_move=(t + deadtime) * spec.num_x), wait=True)
        yield from bps.kickoff(x, wait=True)
        yield from bps.kickoff(detector, wait=True)
        yield from bps.collect_while_completing([detector, x], [detector],
                                                flush_period=FLUSH_PERIOD_S, stream_name=stream)

    def stream_of(name: str, rows: Sequence[int], t: float) -> MsgGenerator[None]:
        yield from bps.stage(detector, wait=True)
        if fly:
            # describing the stream needs a prepared detector; each row prepares again
            yield from setup.prepare(_trigger_info(livetime=t, number_of_events=spec.num_x,
                                                   deadtime=deadtime))
            yield from bps.declare_stream(detector, name=name, collect=True)
            for row in rows:
                yield from fly_row(row, name, t)
        else:
            yield from setup.set_exposure(t)
            for row in rows:
                yield from step_row(row, name)
        yield from bps.unstage(detector, wait=True)

    def streams() -> MsgGenerator[None]:
        if not spec.blind:
            yield from stream_of("reference", spec.reference_rows, spec.long_dwell)
        yield from stream_of("primary", range(spec.num_y), spec.dwell)

    return (yield from run_stage_scan(_md, x, y, shutter, streams))
