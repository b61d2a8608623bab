"""Fixtures of the engine tests: those of the live-callback tests (a tiny simulated TXM,
a RunEngine writing to Tiled); ``tiled_client`` and ``frames_root`` come from
``tests/conftest.py``."""

from ..callbacks.conftest import live_RE, live_txm

__all__ = ["live_RE", "live_txm"]
