"""Live Bluesky callbacks: the live engine (:class:`LiveEnhancer`) and its figure."""

from typing import Any

from ..engine import FileFrameSource, FrameRef, FrameSource, TiledFrameSource
from .live_enhancer import LiveEnhancer, ResultNotStored

__all__ = ["FileFrameSource", "FrameRef", "FrameSource", "LiveEnhancer", "LiveFigure",
           "ResultNotStored", "TiledFrameSource"]


def __getattr__(name: str) -> Any:
    if name == "LiveFigure":  # imports matplotlib: only when asked for
        from .live_figure import LiveFigure

        return LiveFigure
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
