"""The frame of a scan over two sample stages: metadata, shutter, clean-up, no rewinding."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import bluesky.plan_stubs as bps
import bluesky.preprocessors as bpp
from bluesky.utils import MsgGenerator

from .lowdose_tomo import _name_the_cause

__all__ = ["run_stage_scan", "with_detector_metadata"]


def with_detector_metadata(detector: Any, base: dict[str, Any],
                           md: dict[str, Any] | None) -> dict[str, Any]:
    """``base``, then what the detector says of itself (``start_metadata()``), then ``md``."""
    out = dict(base)
    start_md = getattr(detector, "start_metadata", None)
    if callable(start_md):
        out.update(start_md())
    out.update(md or {})
    return out


def run_stage_scan(md: dict[str, Any], x: Any, y: Any, shutter: Any,
                   streams: Callable[[], MsgGenerator[None]]) -> MsgGenerator[str]:
    """One run: the shutter opened, ``streams()`` acquired, the shutter closed.

    Whatever happens (an error, an abort) the shutter is closed and both stages go back
    to where they were. The run is not rewindable: after a pause it resumes where it
    stopped, so nothing is taken twice or missed. A failure's cause is named in the
    stop document.
    """
    state: dict[str, Any] = {}

    @bpp.run_decorator(md=md)
    @_name_the_cause()
    def body() -> MsgGenerator[None]:
        state["x"] = yield from bps.rd(x)
        state["y"] = yield from bps.rd(y)
        if shutter is not None:
            yield from bps.mv(shutter, "open")
        yield from streams()
        if shutter is not None:
            yield from bps.mv(shutter, "close")

    def cleanup() -> MsgGenerator[None]:
        if shutter is not None:
            yield from bps.mv(shutter, "close")
        if "y" in state:
            yield from bps.mv(x, state["x"], y, state["y"])

    plan = bpp.finalize_wrapper(body(), cleanup())
    return (yield from bpp.rewindable_wrapper(plan, False))
