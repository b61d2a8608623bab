"""The low-dose ptychography plan: a dense training field, then the rest sparsely.

After PtychoNN (Cherukara et al., 2020; Babu et al., 2023): a network that turns each
diffraction pattern into the object patch under the beam needs overlapping
measurements only to learn; the training field is scanned densely (its iterative
reconstruction gives the labels), then the rest of the field at sparse positions,
with little or no overlap: less dose and less time per area.
"""

from __future__ import annotations

from typing import Any

import bluesky.plan_stubs as bps
import numpy as np
from bluesky.protocols import Movable, Readable
from bluesky.utils import MsgGenerator

from .detectors import OPHYD_ASYNC, DetectorSetup, _trigger_info, detector_setup
from .ptycho_validation import PtychoScanSpec, validate_ptycho_scan
from .stage_scan import run_stage_scan, with_detector_metadata

__all__ = ["PTYCHO_STREAMS", "lowdose_ptycho_plan"]

#: Streams of one scan, in acquisition order.
PTYCHO_STREAMS = ("train", "primary")


def _overlap(step: float, diameter: float | None) -> float | None:
    return None if not diameter else max(0.0, 1.0 - step / diameter)


def _check_limits(detector: Any, spec: PtychoScanSpec) -> None:
    limits = getattr(detector, "position_limits_um", None)
    if not callable(limits):
        return
    (x0, x1), (y0, y1) = limits()
    for name, points in (("train_field", spec.train_positions()),
                         ("field", spec.sparse_positions())):
        for x, y in points:
            if not (x0 - 1e-9 <= x <= x1 + 1e-9 and y0 - 1e-9 <= y <= y1 + 1e-9):
                raise ValueError(f"position x={x:.4g}, y={y:.4g} of {name} puts the probe off "
                                 f"the object: detector {detector.name!r} allows x "
                                 f"{x0:g}..{x1:.4g} and y {y0:g}..{y1:.4g}")


def _ptycho_metadata(setup: DetectorSetup, x: Any, y: Any, spec: PtychoScanSpec,
                     shutter: Any, md: dict[str, Any] | None) -> dict[str, Any]:
    det = setup.detector
    diameter = getattr(det, "probe_diameter_um", None)
    train, sparse = spec.train_positions(), spec.sparse_positions()
    flux = getattr(getattr(det, "counting", None), "flux", None)
    _md: dict[str, Any] = {
        "plan_name": "lowdose_ptycho_plan",
        "plan_args": {"detector": det.name, "x": x.name, "y": y.name,
                      "shutter": getattr(shutter, "name", None), "field": list(spec.field),
                      "train_field": None if spec.train_field is None
                      else list(spec.train_field),
                      "train_step": spec.train_step, "sparse_step": spec.sparse_step,
                      "exposure": spec.exposure, "pattern": spec.pattern,
                      "pretrained": spec.pretrained},
        "detectors": [det.name],
        "motors": [x.name, y.name],
        "num_points": int(len(train) + len(sparse)),
        "ptycho": {
            "pattern_key": setup.image_key,
            "x_key": x.name,
            "y_key": y.name,
            "position_keys": list(getattr(det, "position_data_keys", ()) or ()),
            "exposure_key": setup.exposure_key,
            "streams": [s for s in PTYCHO_STREAMS if not (s == "train" and not len(train))],
            "exposure": spec.exposure,
            "photons_per_pattern": None if flux is None else flux * spec.exposure,
            "field": list(spec.field),
            "train_field": None if spec.train_field is None else list(spec.train_field),
            "train_step": spec.train_step,
            "sparse_step": spec.sparse_step,
            "train_positions": len(train),
            "sparse_positions": len(sparse),
            "pattern": spec.pattern,
            "probe_diameter_um": diameter,
            "train_overlap": _overlap(spec.train_step, diameter),
            "sparse_overlap": _overlap(spec.sparse_step, diameter),
            "pixel_size_um": getattr(det, "pixel_size_um", None),
            "pattern_shape": list(getattr(det, "pattern_shape", ()) or ()) or None,
            "probe_file": None if getattr(det, "probe_file", None) is None
            else str(det.probe_file),
            "energy_kev": getattr(det, "energy_kev", None),
            "distance_m": getattr(det, "distance_m", None),
            "pretrained": spec.pretrained,
            "device_flavour": setup.flavour,
        },
    }
    return with_detector_metadata(det, _md, md)


def lowdose_ptycho_plan(
    detector: Readable,
    x: Movable,
    y: Movable,
    *,
    shutter: Movable | None = None,
    field: tuple[float, float, float, float] = (0.0, 0.0, 6.4, 6.4),
    train_field: tuple[float, float, float, float] | None = (0.0, 0.0, 1.6, 6.4),
    train_step: float = 0.2,
    sparse_step: float = 1.2,
    exposure: float = 0.01,
    pattern: str = "raster",
    pretrained: str | None = None,
    md: dict[str, Any] | None = None,
) -> MsgGenerator[str]:
    """Scan a training field densely, then the rest of the field sparsely.

    Streams, in order: ``train`` (the dense scan of ``train_field``, step
    ``train_step``: high overlap, the iterative reconstruction's data and the
    network's training set; none with ``train_field=None``) and ``primary`` (the
    rest of ``field`` at ``sparse_step``, positions inside the training field
    skipped: the low-dose part). Every position is one event with the pattern
    reference (an HDF5 file) and the stage readbacks; positions are stage
    coordinates (µm), the probe window's corner on the object. The start document's
    ``ptycho`` section holds what the analysis needs (data keys, probe file, pixel
    size, overlaps, photons). Not rewindable: after a pause the scan resumes where it
    stopped. The shutter is closed and both stages returned at the end, whatever
    happens.

    Parameters
    ----------
    detector
        Pixel detector: an ophyd-async ``StandardDetector`` (exposure through
        ``prepare(TriggerInfo(livetime=...))``) or an ophyd one with ``exposure_time``.
    x, y
        Scan stages.
    shutter
        Opened for the scan and closed at the end (optional).
    field
        ``(x0, y0, width, height)`` of the positions of the whole scan.
    train_field
        ``(x0, y0, width, height)`` of the dense positions, inside ``field``; ``None``
        for none (then ``pretrained`` is required).
    train_step, sparse_step
        Distance between neighbouring positions of the dense and the sparse scan
        (raster) or the spacing of the same density (spiral).
    exposure
        Seconds per pattern.
    pattern
        ``"raster"`` (snake rows) or ``"spiral"`` (Fermat spiral).
    pretrained
        A result uid or checkpoint path of a trained network, recorded for the
        analysis (required without a training field).
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
        position that puts the probe off the object (where the detector says), a
        sparse field with no training field and no pretrained model, a detector
        refusing a ``TriggerInfo``.
    """
    spec = validate_ptycho_scan(field=field, train_field=train_field, train_step=train_step,
                                sparse_step=sparse_step, exposure=exposure, pattern=pattern,
                                pretrained=pretrained)
    if md is not None and not isinstance(md, dict):
        raise ValueError(f"md must be a dict or None, got {type(md).__name__}")
    setup = detector_setup(detector)
    _check_limits(detector, spec)
    deadtime = yield from setup.deadtime()
    if setup.flavour == OPHYD_ASYNC:
        yield from setup.check([_trigger_info(livetime=spec.exposure, number_of_events=1,
                                              deadtime=deadtime)])
    _md = _ptycho_metadata(setup, x, y, spec, shutter, md)
    readables = [*setup.readables, x, y]

    def stream_of(name: str, points: np.ndarray) -> MsgGenerator[None]:
        yield from bps.stage(detector, wait=True)
        yield from setup.set_exposure(spec.exposure)
        for px, py in points:
            yield from bps.checkpoint()
            yield from bps.mv(x, float(px), y, float(py))
            yield from bps.trigger_and_read(readables, name=name)
        yield from bps.unstage(detector, wait=True)

    def streams() -> MsgGenerator[None]:
        train = spec.train_positions()
        if len(train):
            yield from stream_of("train", train)
        yield from stream_of("primary", spec.sparse_positions())

    return (yield from run_stage_scan(_md, x, y, shutter, streams))
