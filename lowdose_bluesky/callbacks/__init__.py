"""Live Bluesky callbacks: train, enhance and reconstruct while the scan runs."""

from .frame_source import FileFrameSource, FrameRef, FrameSource, TiledFrameSource
from .live_enhancer import LiveEnhancer

__all__ = ["FileFrameSource", "FrameRef", "FrameSource", "LiveEnhancer", "TiledFrameSource"]
