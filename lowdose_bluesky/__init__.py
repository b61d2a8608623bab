"""lowdose_bluesky: low-dose X-ray tomography inside Bluesky.

Light to import: plans, devices and storage load on first use, and torch is only
imported by :mod:`lowdose_bluesky.model`.
"""

from __future__ import annotations

from importlib import import_module, metadata
from typing import Any

try:
    __version__ = metadata.version("lowdose_bluesky")
except metadata.PackageNotFoundError:  # pragma: no cover - running from a source tree
    __version__ = "0.0.0+unknown"

_LAZY = {
    "lowdose_tomo_plan": "lowdose_bluesky.plans",
    "make_sim_txm": "lowdose_bluesky.devices.sim",
    "connect": "lowdose_bluesky.storage",
    "subscribe_writer": "lowdose_bluesky.storage",
    "spheres_in_cube": "lowdose_bluesky.phantoms",
    "shepp_logan_3d": "lowdose_bluesky.phantoms",
    "results": "lowdose_bluesky.storage",
    "LiveEnhancer": "lowdose_bluesky.callbacks",
}

__all__ = ["__version__", *_LAZY]


def __getattr__(name: str) -> Any:
    if name in _LAZY:
        return getattr(import_module(_LAZY[name]), name)
    raise AttributeError(f"module 'lowdose_bluesky' has no attribute {name!r}")
