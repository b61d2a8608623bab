"""Reconstruction backends behind one protocol, and their registry.

``auto`` picks, in order: ``tomopy`` (gridrec, as in the paper) when
importable, then ``numba`` (the measured CPU default, ADR 0006), ``torch``
and ``algotom``.
"""

from __future__ import annotations

from lowdose_bluesky.recon.backends.algotom_fbp import AlgotomFBP
from lowdose_bluesky.recon.backends.base import (
    BACKENDS,
    PREFERENCE,
    ReconBackend,
    available_backends,
    get_backend,
    register_backend,
)
from lowdose_bluesky.recon.backends.numba_fbp import NumbaFBP
from lowdose_bluesky.recon.backends.tomopy_gridrec import TomopyGridrec
from lowdose_bluesky.recon.backends.torch_fbp import TorchFBP

__all__ = [
    "BACKENDS",
    "PREFERENCE",
    "AlgotomFBP",
    "NumbaFBP",
    "ReconBackend",
    "TomopyGridrec",
    "TorchFBP",
    "available_backends",
    "get_backend",
    "register_backend",
]

for _cls in (TomopyGridrec, NumbaFBP, TorchFBP, AlgotomFBP):
    register_backend(_cls.name, _cls, _cls.is_available)
