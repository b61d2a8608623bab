"""Expected XRF spectra: reference spectra of the elements and of the matrix scatter.

Thin-sample approximation: the beam and the fluorescence are not attenuated in the
sample, so a pixel's spectrum is the linear sum of the reference spectra weighted by
the element areal densities (µg/cm²) and the matrix areal density. The reference
matrix :attr:`SpectralModel.reference` is therefore also the design matrix of a
linear (e.g. non-negative least squares) fit of measured spectra.

Units: counts per incident photon in the whole detector, i.e. counts per second per
photon/s of flux; multiply by ``flux × dwell`` for expected counts.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from functools import cached_property

import numpy as np
from numpy.typing import ArrayLike
from scipy.special import erfc

from .detector_response import FWHM_PER_SIGMA, SDDResponse, channel_edges, gaussian_peak
from .elements import FluorescenceLine, check_elements, excitable_lines, line_energy
from .matrix import MATRIX_FORMULA, ScatterIntoDetector, matrix_density, scatter_into_detector
from .sample import check_sample

__all__ = ["BACKGROUND_FRACTION", "COMPTON_DOPPLER_FWHM", "SCATTER_COMPONENTS",
           "SpectralModel"]

#: Names of the reference spectra after the elements', each per µg/cm² of matrix.
SCATTER_COMPONENTS = ("elastic", "compton", "background")
#: Counts in the smooth background per scattered count reaching the detector
#: (incomplete charge collection, scatter off the collimator and detector housing).
BACKGROUND_FRACTION = 0.15
#: Doppler broadening of the Compton peak, FWHM per keV of incident energy.
COMPTON_DOPPLER_FWHM = 0.015
_UG = 1e-6  # g per µg


class SpectralModel:
    """Reference spectra of a set of elements in a biological matrix, at one energy.

    Parameters
    ----------
    elements
        Chemical symbols of the mapped elements.
    energy_kev
        Incident photon energy, keV.
    bins
        Number of channels.
    bin_kev
        Channel width, keV (channel ``i`` spans ``[i, i + 1) × bin_kev``).
    detector
        Detector geometry and response (default: :class:`SDDResponse`).
    matrix_formula
        Composition of the scattering matrix (xraylib formula).

    Raises
    ------
    ValueError
        For an unknown element, an energy whose elastic peak is outside the
        channels, or an element with no excited line inside them.
    """

    def __init__(self, elements: Iterable[str], energy_kev: float = 10.0, *,
                 bins: int = 1024, bin_kev: float = 0.012,
                 detector: SDDResponse | None = None,
                 matrix_formula: str = MATRIX_FORMULA) -> None:
        self.elements = check_elements(elements)
        self.energy_kev = float(energy_kev)
        self.edges = channel_edges(bins, bin_kev)
        self.bins = int(bins)
        self.bin_kev = float(bin_kev)
        self.detector = detector if detector is not None else SDDResponse()
        self.matrix_formula = str(matrix_formula)
        self.lines: list[FluorescenceLine] = excitable_lines(self.elements, self.energy_kev)
        top = self.energy_kev + float(self.detector.fwhm(self.energy_kev))
        if top > self.edges[-1]:
            raise ValueError(
                f"energy_kev {self.energy_kev:g} keV: its elastic peak reaches {top:.3f} keV, "
                f"beyond the {self.bins} channels of {self.bin_kev:g} keV "
                f"(0-{self.edges[-1]:.3f} keV); raise bins or bin_kev")
        self.scatter: ScatterIntoDetector = scatter_into_detector(
            self.energy_kev, self.detector.acceptance_half_angle, formula=self.matrix_formula)
        for k, symbol in enumerate(self.elements):
            if not self.reference[k].sum() > 0:
                raise ValueError(
                    f"{symbol}: none of its lines excited at {self.energy_kev:g} keV is "
                    f"detected in the channels (0-{self.edges[-1]:.3f} keV; the beryllium "
                    f"window absorbs lines below about 1 keV)")

    # ------------------------------------------------------------- channels
    @property
    def components(self) -> tuple[str, ...]:
        """Names of the rows of :attr:`reference`: the elements, then the scatter."""
        return (*self.elements, *SCATTER_COMPONENTS)

    @property
    def energies(self) -> np.ndarray:
        """Channel centres, keV, shape ``(bins,)``."""
        return 0.5 * (self.edges[:-1] + self.edges[1:])

    def channel_of(self, energy_kev: float) -> int:
        """Channel holding an energy (keV), clipped to the channels."""
        return int(np.clip(np.floor(float(energy_kev) / self.bin_kev), 0, self.bins - 1))

    def peak_window(self, symbol: str, line: str = "Ka1", width: float = 1.0) -> slice:
        """Channels within ``± width × FWHM`` of an element's line (e.g. for a ROI sum)."""
        energy = line_energy(symbol, line)
        half = width * float(self.detector.fwhm(energy))
        return slice(self.channel_of(energy - half), self.channel_of(energy + half) + 1)

    # -------------------------------------------------------------- spectra
    @cached_property
    def reference(self) -> np.ndarray:
        """Reference spectra ``(n_elements + 3, bins)``, read-only.

        Row ``k`` < ``n_elements``: counts per incident photon for 1 µg/cm² of
        ``elements[k]``; then elastic, Compton and background per µg/cm² of matrix
        (see :attr:`components`).
        """
        det, edges = self.detector, self.edges
        rows = np.zeros((len(self.components), self.bins))
        index = {symbol: k for k, symbol in enumerate(self.elements)}
        fraction = det.solid_angle_fraction
        for line in self.lines:
            e = line.energy_kev
            counts = line.cross_section * _UG * fraction * float(det.efficiency(e))
            rows[index[line.element]] += counts * gaussian_peak(e, float(det.fwhm(e)), edges)
        n = len(self.elements)
        e0, s = self.energy_kev, self.scatter
        rows[n] = s.elastic * _UG * float(det.efficiency(e0)) * gaussian_peak(
            e0, float(det.fwhm(e0)), edges)
        ec = s.compton_energy_kev
        width = np.sqrt(float(det.fwhm(ec)) ** 2 + (FWHM_PER_SIGMA * s.compton_spread_kev) ** 2
                        + (COMPTON_DOPPLER_FWHM * e0) ** 2)
        rows[n + 1] = s.compton * _UG * float(det.efficiency(ec)) * gaussian_peak(
            ec, width, edges)
        sigma = width / FWHM_PER_SIGMA
        shelf = 0.5 * erfc((self.energies - ec) / (np.sqrt(2.0) * sigma))
        shelf = shelf * det.efficiency(self.energies)
        total = BACKGROUND_FRACTION * (s.elastic + s.compton) * _UG
        rows[n + 2] = total * shelf / shelf.sum()
        rows.setflags(write=False)
        return rows

    def element_spectrum(self, symbol: str) -> np.ndarray:
        """Reference spectrum of 1 µg/cm² of one element, ``(bins,)``."""
        if symbol not in self.elements:
            raise ValueError(f"element {symbol!r} is not in this model: {self.elements}")
        return self.reference[self.elements.index(symbol)]

    @property
    def scatter_spectrum(self) -> np.ndarray:
        """Elastic + Compton + background of 1 µg/cm² of matrix, ``(bins,)``."""
        return self.reference[len(self.elements):].sum(axis=0)

    def expected_spectra(self, densities: Mapping[str, ArrayLike],
                         matrix: ArrayLike | None = None) -> np.ndarray:
        """Expected spectra of pixels, counts per incident photon, shape ``(..., bins)``.

        Thin-sample approximation: the linear sum of the element references weighted
        by the areal densities, plus the scatter of the matrix; no absorption of the
        beam or of the fluorescence in the sample, no secondary fluorescence.

        Parameters
        ----------
        densities
            Element → areal density, µg/cm²: scalars (one pixel) or maps of one shape.
            Elements of the model left out count as 0.
        matrix
            Matrix areal density (µg/cm²), scalar or map; default
            :func:`~lowdose_bluesky.xrf.matrix.matrix_density` of ``densities``.

        Raises
        ------
        ValueError
            For elements not in the model, negative or non-finite densities, or maps
            of different shapes.
        """
        sample = check_sample(densities, ndim=None)
        extra = sorted(set(sample) - set(self.elements))
        if extra:
            raise ValueError(f"elements {extra} are not in this model: {self.elements}")
        shape = next(iter(sample.values())).shape if sample else ()
        if matrix is None:
            matrix = matrix_density(sample)
        matrix = np.asarray(matrix, dtype=float)
        if not np.all(np.isfinite(matrix)) or np.any(matrix < 0):
            raise ValueError(f"matrix must be finite and >= 0 µg/cm², got min {matrix.min()!r}")
        try:
            pixels = np.broadcast_shapes(shape, matrix.shape)
        except ValueError:
            raise ValueError(f"matrix of shape {matrix.shape} does not match the maps' "
                             f"shape {shape}") from None
        weights = np.zeros((*pixels, len(self.elements)))
        for k, symbol in enumerate(self.elements):
            if symbol in sample:
                weights[..., k] = sample[symbol]
        out = weights @ self.reference[:len(self.elements)]
        return out + matrix[..., None] * self.scatter_spectrum

    def pixel_spectrum(self, densities: Mapping[str, float],
                       matrix: float | None = None) -> np.ndarray:
        """Expected spectrum of one pixel, ``(bins,)`` (see :meth:`expected_spectra`)."""
        return self.expected_spectra(densities, matrix)

    def __repr__(self) -> str:
        return (f"SpectralModel({list(self.elements)}, energy_kev={self.energy_kev:g}, "
                f"bins={self.bins}, bin_kev={self.bin_kev:g})")
