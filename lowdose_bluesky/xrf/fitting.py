"""From spectra to element maps: a linear fit of reference spectra, or region-of-interest sums.

The fit (the default wherever the reference spectra are known, as for the simulated
microprobe or a calibrated detector): every pixel's spectrum is a non-negative
combination of one reference spectrum per element (per 1 ug/cm^2), the elastic and
Compton scatter and a smooth background; the least-squares coefficients of the element
rows are the areal densities. Overlapping lines (e.g. a K-beta under the next
element's K-alpha) are shared out correctly by the fit and double-counted by windows.

Region-of-interest sums (the fallback where no reference spectra are known): counts in
a window around each element's main line, divided by the counts that window holds per
ug/cm^2. They include the background and overlapping lines under the window.

Both are normalised by the incident photons of each pixel (the I0 monitor's counts over
its counts per incident photon), so maps from different dwell times compare directly.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

__all__ = ["FIT", "ROI", "LinearFit", "roi_maps"]

FIT = "linear fit of reference spectra with scatter and background"
ROI = "region-of-interest sums"


class LinearFit:
    """Least-squares fit of spectra ``(..., bins)`` with the rows of ``reference``.

    Parameters
    ----------
    reference
        ``(K, bins)`` expected counts per incident photon of each component (element
        rows per ug/cm^2).
    components
        The ``K`` component names; the element symbols among them give the maps.
    elements
        The elements to map, in order (each must be a component).

    Notes
    -----
    The unweighted normal equations are solved once (``pinv``); every pixel is then one
    matrix product, so a 64 x 64 map of 1024 channels fits in milliseconds. Negative
    coefficients (noise on an absent element) are set to 0.
    """

    def __init__(self, reference: np.ndarray, components: Sequence[str],
                 elements: Sequence[str]) -> None:
        reference = np.asarray(reference, dtype=np.float64)
        if reference.ndim != 2 or reference.shape[0] != len(components):
            raise ValueError(f"reference must be (K, bins) with K = {len(components)} "
                             f"components, got shape {reference.shape}")
        missing = [e for e in elements if e not in components]
        if missing:
            raise ValueError(f"elements {missing} have no reference spectrum (components: "
                             f"{list(components)})")
        self.elements = tuple(elements)
        self.rows = [list(components).index(e) for e in elements]
        self.bins = reference.shape[1]
        self.components = tuple(components)
        self.reference = reference
        self.pinv = np.linalg.pinv(reference)  # (bins, K)

    def coefficients(self, spectra: np.ndarray) -> np.ndarray:
        """Least-squares coefficients ``(..., K)`` of every component, not clipped."""
        spectra = np.asarray(spectra, dtype=np.float64)
        if spectra.shape[-1] != self.bins:
            raise ValueError(f"spectra have {spectra.shape[-1]} channels, the reference "
                             f"spectra {self.bins}")
        return spectra @ self.pinv

    def maps(self, spectra: np.ndarray, photons: np.ndarray | float, *,
             clip: bool = True) -> np.ndarray:
        """Areal densities ``(n_elements, ...)`` of spectra ``(..., bins)``.

        ``photons``: incident photons of each pixel (shape ``spectra.shape[:-1]``) or
        one number for all. ``clip=False`` keeps negative values: unbiased maps (their
        expectation is the true density), what a denoiser trained on noisy targets
        needs.
        """
        coefficients = self.coefficients(spectra)  # (..., K) in ug/cm^2 x photons
        maps = coefficients[..., self.rows] / np.asarray(photons, dtype=np.float64)[..., None]
        maps = np.clip(maps, 0.0, None) if clip else maps
        return np.moveaxis(maps, -1, 0).astype(np.float32)


def roi_maps(spectra: np.ndarray, windows: Sequence[slice], counts_per_unit: Sequence[float],
             photons: np.ndarray | float) -> np.ndarray:
    """Region-of-interest maps ``(n_windows, ...)`` of spectra ``(..., bins)``.

    Parameters
    ----------
    spectra
        Counts ``(..., bins)``.
    windows
        Channel slice of each element's main line.
    counts_per_unit
        Counts per incident photon that each window holds per ug/cm^2 of its element.
    photons
        Incident photons of each pixel, or one number.
    """
    spectra = np.asarray(spectra, dtype=np.float64)
    photons = np.asarray(photons, dtype=np.float64)
    out = [spectra[..., w].sum(axis=-1) / (c * photons)
           for w, c in zip(windows, counts_per_unit, strict=True)]
    return np.stack(out).astype(np.float32)
