"""FBP through algotom (``algotom.rec.reconstruction.fbp_reconstruction``).

Kept for comparison (ADR 0006). Algotom's CPU back-projector (1.7.0)
accumulates with ``prange`` over *angles* into one shared image, a data race:
with several numba threads repeated runs differ by a few percent of the peak.
This wrapper therefore runs the CPU path with one numba thread; the CUDA path
(one thread per pixel) is used when numba sees a GPU.
"""

from __future__ import annotations

import importlib.util

import numpy as np

from lowdose_bluesky.recon.angles import angle_weights
from lowdose_bluesky.recon.filters import DEFAULT_FILTER, check_filter

__all__ = ["AlgotomFBP"]

# our filter names -> algotom's smoothing windows (None: plain ramp)
_ALGOTOM_FILTERS: dict[str, str | None] = {
    "ramlak": None, "hann": "hann", "hamming": "hamming", "parzen": "parzen",
}


class AlgotomFBP:
    """FBP by algotom (single-threaded on CPU to avoid its back-projection race)."""

    name = "algotom"

    @staticmethod
    def is_available() -> bool:
        """Whether algotom is importable."""
        return importlib.util.find_spec("algotom") is not None

    def reconstruct(self, sinograms: np.ndarray, angles_rad: np.ndarray, center: float, *,
                    filter_name: str = DEFAULT_FILTER) -> np.ndarray:
        """Reconstruct ``(N, Z, X)`` line integrals into ``(Z, X, X)`` slices.

        See :meth:`lowdose_bluesky.recon.backends.base.ReconBackend.reconstruct`.
        """
        check_filter(filter_name)
        if filter_name not in _ALGOTOM_FILTERS:
            raise ValueError(
                f"filter {filter_name!r} is not offered by the algotom backend; allowed: "
                f"{', '.join(_ALGOTOM_FILTERS)}"
            )
        import numba
        from algotom.rec.reconstruction import fbp_reconstruction
        from numba import cuda

        n_ang = sinograms.shape[0]
        angles = np.asarray(angles_rad, dtype=np.float64)
        # algotom scales its sum by pi / (N - 1); pre-weight to get sum_a w_a q_a instead
        scale = angle_weights(angles) * (n_ang - 1) / np.pi
        data = np.ascontiguousarray(sinograms * scale[:, None, None].astype(np.float32))
        use_gpu = bool(cuda.is_available())
        previous = numba.get_num_threads()
        if not use_gpu:
            numba.set_num_threads(1)
        try:
            # algotom's back-projector uses u = x cos(t) - y sin(t): negate the angles
            rec = fbp_reconstruction(data, float(center), angles=-angles, ratio=None,
                                     filter_name=_ALGOTOM_FILTERS[filter_name],
                                     apply_log=False, gpu=use_gpu, ncore=1)
        finally:
            numba.set_num_threads(previous)
        # (X, Z, X) -> (Z, Y, X)
        return np.ascontiguousarray(np.asarray(rec, dtype=np.float32).transpose(1, 0, 2))
