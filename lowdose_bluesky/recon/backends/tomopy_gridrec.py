"""TomoPy gridrec, the reconstruction of the paper (used when TomoPy is importable).

TomoPy is conda-only, so this backend cannot be exercised in the pip test
environment; only its selection logic is tested there. TomoPy's projector
maps a pixel to ``u = x cos(t) - y sin(t)`` (image rows being ``y``), the
mirror of this project's convention, so the angles are negated.
"""

from __future__ import annotations

import importlib.util

import numpy as np

from lowdose_bluesky.recon.filters import DEFAULT_FILTER, check_filter

__all__ = ["TomopyGridrec"]


class TomopyGridrec:
    """TomoPy ``gridrec`` with a named filter (Parzen by default, as in the paper)."""

    name = "tomopy"

    @staticmethod
    def is_available() -> bool:
        """Whether tomopy is importable."""
        return importlib.util.find_spec("tomopy") is not None

    def reconstruct(self, sinograms: np.ndarray, angles_rad: np.ndarray, center: float, *,
                    filter_name: str = DEFAULT_FILTER) -> np.ndarray:  # pragma: no cover
        """Reconstruct ``(N, Z, X)`` line integrals into ``(Z, X, X)`` slices.

        See :meth:`lowdose_bluesky.recon.backends.base.ReconBackend.reconstruct`.
        """
        import tomopy

        check_filter(filter_name)
        rec = tomopy.recon(np.ascontiguousarray(sinograms, dtype=np.float32),
                           -np.asarray(angles_rad, dtype=np.float64),
                           center=float(center), algorithm="gridrec",
                           filter_name=filter_name, sinogram_order=False)
        return np.ascontiguousarray(rec, dtype=np.float32)
