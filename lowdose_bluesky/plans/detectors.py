"""How the plans speak to a detector: ophyd (v1) or ophyd-async.

An ophyd detector takes its exposure from an ``exposure_time`` signal and announces
its frames with Resource/Datum documents. An ophyd-async ``StandardDetector`` takes it
from ``prepare(TriggerInfo(livetime=...))`` and announces frames with
StreamResource/StreamDatum documents; since ophyd-async has no exposure signal to read
back, the plan records the livetime it prepared in a soft signal read with every event
(data key ``<detector>_exposure_time``, as the ophyd simulated camera's).
"""

from __future__ import annotations

import inspect
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import bluesky.plan_stubs as bps
from bluesky.utils import MsgGenerator
from ophyd import Signal

__all__ = ["DetectorSetup", "detector_setup", "is_ophyd_async"]

OPHYD = "ophyd"
OPHYD_ASYNC = "ophyd-async"


def is_ophyd_async(device: Any) -> bool:
    """Whether ``device`` is an ophyd-async device (its ``describe`` is a coroutine)."""
    return inspect.iscoroutinefunction(getattr(type(device), "describe", None))


def _trigger_info(**fields: Any) -> Any:
    from ophyd_async.core import TriggerInfo

    return TriggerInfo(**fields)


def _describe_info(info: Any) -> str:
    return (f"TriggerInfo(trigger={info.trigger.name}, livetime={info.livetime}, "
            f"deadtime={info.deadtime}, number_of_events={info.number_of_events})")


@dataclass(frozen=True)
class DetectorSetup:
    """What a plan needs to know about its detector.

    Attributes
    ----------
    detector
        The device.
    flavour
        ``"ophyd"`` or ``"ophyd-async"``.
    image_key
        Data key of the 2-D image.
    shape
        ``[H, W]`` of a frame where the detector says before the run, else ``None``.
    exposure
        The signal whose reading records each event's exposure (seconds).
    angle_key
        Data key of the rotation angle the detector records with every frame itself
        (ophyd-async detectors with an ``angle_data_key``), else ``None``.
    """

    detector: Any
    flavour: str
    image_key: str
    shape: list[int] | None
    exposure: Any
    angle_key: str | None = None

    @property
    def exposure_key(self) -> str:
        """Data key of the exposure in every event."""
        return str(self.exposure.name)

    @property
    def readables(self) -> list[Any]:
        """What ``trigger_and_read`` reads besides the stages."""
        if self.flavour == OPHYD:
            return [self.detector]  # reads its own exposure_time
        return [self.detector, self.exposure]

    def set_exposure(self, seconds: float) -> MsgGenerator[None]:
        """Plan stub: switch the exposure of the next triggered frames to ``seconds``."""
        if self.flavour == OPHYD_ASYNC:
            yield from self.prepare(_trigger_info(livetime=seconds, number_of_events=1))
        yield from bps.mv(self.exposure, seconds)

    def prepare(self, info: Any) -> MsgGenerator[None]:
        """Plan stub: ``prepare`` the detector, a refusal re-raised as ``ValueError``."""
        try:
            yield from bps.prepare(self.detector, info, wait=True)
        except Exception as exc:
            raise ValueError(f"detector {self.detector.name!r} refused {_describe_info(info)}: "
                             f"{type(exc).__name__}: {exc}") from exc

    def deadtime(self) -> MsgGenerator[float]:
        """Plan stub, before the run: the detector's dead time between frames (s).

        0 for an ophyd detector or one that does not say. An ophyd-async detector that
        cannot time its own exposures (no INTERNAL triggering) is refused here.
        """
        if self.flavour == OPHYD or not hasattr(self.detector, "get_trigger_deadtime"):
            return 0.0
        from ophyd_async.core import DetectorTrigger

        (task,) = yield from bps.wait_for([self.detector.get_trigger_deadtime])
        supported, dead = task.result()
        if DetectorTrigger.INTERNAL not in supported:
            raise ValueError(
                f"detector {self.detector.name!r} cannot time its own exposures: it "
                f"supports {sorted(t.name for t in supported)} triggers, the plans need "
                "INTERNAL")
        return float(dead or 0.0)

    def check(self, infos: Sequence[Any]) -> MsgGenerator[None]:
        """Plan stub, before the run: the detector accepts every ``TriggerInfo`` to come.

        The detector is staged, prepared with each ``TriggerInfo`` and unstaged, so
        that a refusal is a ``ValueError`` before anything moves. Nothing to do for an
        ophyd detector.
        """
        if self.flavour == OPHYD:
            return
        yield from bps.stage(self.detector, wait=True)
        try:
            for info in infos:
                yield from self.prepare(info)
        finally:
            yield from bps.unstage(self.detector, wait=True)


def _ophyd_exposure(detector: Any) -> Any:
    signal = getattr(detector, "exposure_time", None)
    return signal if signal is not None and hasattr(signal, "set") else None


def _ophyd_image_key(detector: Any) -> tuple[str, list[int]]:
    description = detector.describe()
    keys = [k for k, v in description.items() if v.get("external") and len(v.get("shape", ())) == 2]
    if len(keys) != 1:
        raise ValueError(f"detector {detector.name!r} must describe exactly one external 2-D image "
                         f"data key, found {keys or 'none'} in {sorted(description)}")
    return keys[0], [int(s) for s in description[keys[0]]["shape"]]


def detector_setup(detector: Any) -> DetectorSetup:
    """Find out how to set the exposure of ``detector`` and where its images are.

    Raises
    ------
    ValueError
        If the detector has neither an ``exposure_time`` signal (ophyd) nor
        ``prepare(TriggerInfo)`` (ophyd-async ``StandardDetector``), or its image
        data key cannot be told.
    """
    name = getattr(detector, "name", detector)
    if is_ophyd_async(detector):
        if not callable(getattr(detector, "prepare", None)):
            raise ValueError(
                f"detector {name!r} is an ophyd-async device without prepare(): the plan sets "
                "exposures with prepare(TriggerInfo(livetime=...)) on an ophyd-async "
                "StandardDetector, or with an 'exposure_time' signal on an ophyd detector")
        fields = list(getattr(detector, "hints", {}).get("fields", []))
        if len(fields) != 1:
            raise ValueError(f"detector {name!r} must hint exactly one image data key, found "
                             f"{fields or 'none'} in detector.hints['fields']")
        shape = getattr(detector, "frame_shape", None)
        return DetectorSetup(
            detector=detector, flavour=OPHYD_ASYNC, image_key=fields[0],
            shape=None if shape is None else [int(s) for s in shape],
            exposure=Signal(name=f"{name}_exposure_time", value=0.0),
            angle_key=getattr(detector, "angle_data_key", None))
    exposure = _ophyd_exposure(detector)
    if exposure is None:
        raise ValueError(
            f"detector {name!r} has no settable 'exposure_time' signal (ophyd) and no "
            "prepare(TriggerInfo) (ophyd-async StandardDetector); the plan needs one of them "
            "to switch exposures")
    image_key, shape = _ophyd_image_key(detector)
    return DetectorSetup(detector=detector, flavour=OPHYD, image_key=image_key, shape=shape,
                         exposure=exposure)
