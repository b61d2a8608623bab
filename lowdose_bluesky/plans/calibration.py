"""The knife-edge calibration plan: the camera's blur measured from a sharp edge.

A sharp absorbing edge (a resolution chart's edge, or a tungsten edge on a stage),
slanted a few degrees from the pixel columns, is imaged at several stage positions a
fraction of a pixel apart. Each frame already samples the edge at many sub-pixel phases
(the slanted-edge method of ISO 12233); the sub-pixel steps add more. The analysis
(recipe ``knife_edge``) forms the edge spread function, differentiates it to the line
spread function and fits a Gaussian: its sigma is the blur the super-resolution recipe
undoes.

Streams, in order: ``dark`` (shutter closed), ``flat`` (edge moved out of the field by
``flat_offset``), ``primary`` (the edge at each position). The stage's readback is
recorded in every event, so the analysis uses where the edge was, not where it was sent.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import bluesky.plan_stubs as bps
import numpy as np
from bluesky.protocols import Movable, Readable
from bluesky.utils import MsgGenerator

from .detectors import OPHYD_ASYNC, DetectorSetup, _trigger_info, detector_setup
from .series import run_series
from .stage_scan import with_detector_metadata

__all__ = ["KNIFE_EDGE_STREAMS", "KnifeEdgeSpec", "frame_pixel_size", "knife_edge_plan"]

#: Streams of a knife-edge run, in acquisition order.
KNIFE_EDGE_STREAMS = ("dark", "flat", "primary")


def frame_pixel_size(detector: Any) -> float | None:
    """Stage units (mm) per camera pixel at the sample, where the detector says.

    A simulated TXM camera knows its optics' sensor pixel size and its binning; a real
    camera does not say, and the plan's ``pixel_size`` must be given.
    """
    optics = getattr(detector, "optics", None)
    sensor = getattr(optics, "pixel_size", None)
    if sensor is None:
        return None
    return float(sensor) * int(getattr(detector, "binning", 1) or 1)


@dataclass(frozen=True)
class KnifeEdgeSpec:
    """A validated knife-edge scan (see :func:`knife_edge_plan` for the fields)."""

    steps: int
    frames_per_step: int
    exposure: float
    pixel_size: float
    num_darks: int
    num_flats: int
    flat_offset: float
    edge_roi: tuple[int, int, int, int] | None

    @property
    def offsets_px(self) -> np.ndarray:
        """Nominal sub-pixel offsets of the edge, in camera pixels: ``k / steps``."""
        return np.arange(self.steps) / self.steps

    @property
    def exposures(self) -> tuple[float]:
        """The one exposure of the run (darks and flats are taken at it)."""
        return (self.exposure,)

    #: No long-exposure references: darks and flats at the one exposure only.
    blind = True
    reference_angles: tuple[float, ...] = ()


def _count(name: str, value: Any, least: int) -> int:
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < least:
        raise ValueError(f"{name} must be an integer >= {least}, got {value!r}")
    return int(value)


def _positive(name: str, value: Any) -> float:
    try:
        out = float(value)
    except (TypeError, ValueError):
        raise ValueError(f"{name} must be a positive number, got {value!r}") from None
    if isinstance(value, bool) or not np.isfinite(out) or out <= 0:
        raise ValueError(f"{name} must be a positive number, got {value!r}")
    return out


def check_darks_flats(num_darks: int, num_flats: int, flat_offset: Any, *,
                      has_shutter: bool, moved: str) -> float:
    """``flat_offset`` as a float, after checking the darks and flats can be taken.

    ``moved`` names what the flat offset takes out of the field (``"the edge"``).
    """
    try:
        flat_offset = float(flat_offset)
    except (TypeError, ValueError):
        raise ValueError(f"flat_offset must be a number, got {flat_offset!r}") from None
    if num_flats and (not np.isfinite(flat_offset) or flat_offset == 0):
        raise ValueError(f"flat_offset must be a non-zero finite move that takes {moved} out "
                         f"of the field for the flats, got {flat_offset!r}")
    if num_darks and not has_shutter:
        raise ValueError(f"num_darks={num_darks} darks requested but no shutter was given: "
                         "give shutter= or num_darks=0")
    return flat_offset


def validate_knife_edge(*, steps: Any, frames_per_step: Any, exposure: Any, pixel_size: Any,
                        num_darks: Any, num_flats: Any, flat_offset: Any, edge_roi: Any,
                        frame_shape: list[int] | None, has_shutter: bool
                        ) -> KnifeEdgeSpec:
    """Check a knife-edge scan's arguments; ``ValueError`` naming the value otherwise."""
    steps = _count("steps", steps, 1)
    frames_per_step = _count("frames_per_step", frames_per_step, 1)
    num_darks = _count("num_darks", num_darks, 0)
    num_flats = _count("num_flats", num_flats, 0)
    exposure = _positive("exposure", exposure)
    if pixel_size is None:
        raise ValueError("pixel_size is None and the detector does not say its pixel size at "
                         "the sample: give pixel_size= (stage units per camera pixel)")
    pixel_size = _positive("pixel_size", pixel_size)
    flat_offset = check_darks_flats(num_darks, num_flats, flat_offset,
                                    has_shutter=has_shutter, moved="the edge")
    roi = None
    if edge_roi is not None:
        try:
            roi = tuple(int(v) for v in edge_roi)
        except (TypeError, ValueError):
            raise ValueError(f"edge_roi must be (row0, row1, col0, col1), got "
                             f"{edge_roi!r}") from None
        if len(roi) != 4 or roi[1] - roi[0] < 8 or roi[3] - roi[2] < 8 or min(roi) < 0:
            raise ValueError(f"edge_roi must be (row0, row1, col0, col1) with at least 8 rows "
                             f"and 8 columns, got {edge_roi!r}")
        if frame_shape is not None and (roi[1] > frame_shape[0] or roi[3] > frame_shape[1]):
            raise ValueError(f"edge_roi {edge_roi!r} reaches outside the detector's frames of "
                             f"shape {tuple(frame_shape)}")
    return KnifeEdgeSpec(steps=steps, frames_per_step=frames_per_step, exposure=exposure,
                         pixel_size=pixel_size, num_darks=num_darks, num_flats=num_flats,
                         flat_offset=flat_offset, edge_roi=roi)  # type: ignore[arg-type]


def _knife_edge_metadata(setup: DetectorSetup, stage: Any, shutter: Any, spec: KnifeEdgeSpec,
                         md: dict[str, Any] | None) -> dict[str, Any]:
    det = setup.detector
    if md is not None and not isinstance(md, dict):
        raise ValueError(f"md must be a dict or None, got {type(md).__name__}")
    base: dict[str, Any] = {
        "plan_name": "knife_edge_plan",
        "plan_args": {"detector": det.name, "stage": stage.name,
                      "shutter": getattr(shutter, "name", None), "steps": spec.steps,
                      "frames_per_step": spec.frames_per_step, "exposure": spec.exposure,
                      "pixel_size": spec.pixel_size, "num_darks": spec.num_darks,
                      "num_flats": spec.num_flats, "flat_offset": spec.flat_offset,
                      "edge_roi": None if spec.edge_roi is None else list(spec.edge_roi)},
        "detectors": [det.name],
        "motors": [stage.name],
        "num_points": spec.steps * spec.frames_per_step,
        "knife_edge": {
            "image_key": setup.image_key, "stage_key": stage.name,
            "exposure_key": setup.exposure_key, "detector": det.name,
            "streams": [s for s, n in zip(KNIFE_EDGE_STREAMS,
                                          (spec.num_darks, spec.num_flats, 1), strict=True)
                        if n],
            "pixel_size": spec.pixel_size, "steps": spec.steps,
            "frames_per_step": spec.frames_per_step, "exposure": spec.exposure,
            "edge_roi": None if spec.edge_roi is None else list(spec.edge_roi),
            "binning": int(getattr(det, "binning", 1) or 1),
            "standard": "ISO 12233 slanted-edge (e-SFR) edge spread function; Gaussian fit "
                        "of the line spread function",
            "device_flavour": setup.flavour,
        },
    }
    if setup.shape is not None:
        base["detector_shape"] = setup.shape
    return with_detector_metadata(det, base, md)


def knife_edge_plan(
    detector: Readable,
    stage: Movable,
    *,
    shutter: Movable | None = None,
    steps: int = 4,
    frames_per_step: int = 2,
    exposure: float = 1.0,
    pixel_size: float | None = None,
    num_darks: int = 0,
    num_flats: int = 4,
    flat_offset: float = 5.0,
    edge_roi: tuple[int, int, int, int] | None = None,
    md: dict[str, Any] | None = None,
) -> MsgGenerator[str]:
    """Image a sharp edge at sub-pixel steps to measure the camera's blur.

    The edge must be in the field at the stage's current position, slanted a few
    degrees from the pixel columns (ISO 12233 recommends about 5 degrees); the stage
    moves it across the columns by ``k * pixel_size / steps`` for ``k = 0 .. steps - 1``
    and ``frames_per_step`` frames are taken at each position. The live engine's
    ``knife_edge`` recipe turns the run into a calibration (edge and line spread
    functions, Gaussian sigma with its uncertainty, noise level) stored in Tiled, which
    later ``super_resolution_plan`` runs find by query.

    Parameters
    ----------
    detector
        Area detector (ophyd with an ``exposure_time`` signal, or ophyd-async).
    stage
        Stage moving the edge across the pixel columns (stage units, e.g. mm).
    shutter
        Shutter accepting ``"open"``/``"close"`` (needed for darks).
    steps
        Edge positions per pixel (sub-pixel steps of ``1 / steps`` pixel).
    frames_per_step
        Frames at each position.
    exposure
        Seconds per frame.
    pixel_size
        Stage units per camera pixel at the sample; default: what the detector says
        (a simulated camera: its optics' pixel size times its binning).
    num_darks, num_flats
        Dark frames (shutter closed) and flat frames (edge moved out by ``flat_offset``).
    flat_offset
        Relative stage move that takes the edge out of the field for the flats.
    edge_roi
        ``(row0, row1, col0, col1)`` of the frame holding the edge; default: the edge
        region the sample says (a simulated resolution chart), else the whole frame.
    md
        Extra metadata for the start document.

    Yields
    ------
    Msg
        Messages for the RunEngine; returns the run uid.

    Raises
    ------
    ValueError
        Before anything moves: an invalid argument, no pixel size, darks without a
        shutter, an ``edge_roi`` outside the frame, or a detector refusing the exposure.
    """
    setup = detector_setup(detector)
    spec = validate_knife_edge(
        steps=steps, frames_per_step=frames_per_step, exposure=exposure,
        pixel_size=frame_pixel_size(detector) if pixel_size is None else pixel_size,
        num_darks=num_darks, num_flats=num_flats, flat_offset=flat_offset, edge_roi=edge_roi,
        frame_shape=setup.shape, has_shutter=shutter is not None)
    _md = _knife_edge_metadata(setup, stage, shutter, spec, md)
    yield from setup.deadtime()
    yield from setup.check([_trigger_info(livetime=spec.exposure)]
                           if setup.flavour == OPHYD_ASYNC else [])

    def edge_positions(origin: float | None) -> MsgGenerator[None]:
        origin = 0.0 if origin is None else origin
        yield from setup.set_exposure(spec.exposure)
        for offset in spec.offsets_px:
            yield from bps.checkpoint()
            yield from bps.mv(stage, origin + float(offset) * spec.pixel_size)
            for _ in range(spec.frames_per_step):
                yield from bps.checkpoint()
                yield from bps.trigger_and_read([*setup.readables, stage], name="primary")

    return (yield from run_series(_md, setup, stage, stage, shutter, spec, edge_positions))
