"""Photon counting of a scanning XRF microprobe: spectra, incident flux, transmission.

Per dwell on a pixel three detectors count photons, each a Poisson draw:

* every element of the multi-element fluorescence detector, seeing ``1 /
  detector_elements`` of the solid angle (independent draws, dead elements read 0);
* the incident-flux monitor I0 (an ion chamber counting ``i0_efficiency`` of the
  incident photons);
* the transmission detector behind the sample (a photodiode counting
  ``transmission_efficiency`` of the transmitted photons), the absorption contrast
  of the same cells with far more counts than the fluorescence.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from typing import Any

import numpy as np
import xraylib
from numpy.typing import ArrayLike

from .elements import atomic_number
from .matrix import SUBSTRATE_UG_CM2, matrix_attenuation, matrix_density
from .sample import check_sample
from .spectra import SpectralModel

__all__ = ["XRFCounting"]

_UINT32_MAX = np.iinfo(np.uint32).max


class XRFCounting:
    """Expected and drawn counts of a microprobe scanning element maps.

    Positions are ``(row, col)`` in pixel units, rounded to the nearest pixel;
    positions outside the maps see only the support film.

    Parameters
    ----------
    model
        Reference spectra at the incident energy.
    sample
        Element → areal density map ``(H, W)``, µg/cm²; elements of the model left
        out count as 0.
    flux
        Incident photons per second.
    detector_elements
        Elements of the fluorescence detector.
    dead_elements
        Indices (from 0) of detector elements that count nothing.
    seed
        Seeds the Poisson draws (``None``: fresh entropy).
    i0_efficiency
        Fraction of the incident photons the I0 monitor counts.
    transmission_efficiency
        Fraction of the transmitted photons the transmission detector counts.

    Raises
    ------
    ValueError
        For an invalid argument, naming it.
    """

    def __init__(self, model: SpectralModel, sample: Mapping[str, ArrayLike], *,
                 flux: float = 1e9, detector_elements: int = 4,
                 dead_elements: Iterable[int] = (), seed: int | None = None,
                 i0_efficiency: float = 0.01, transmission_efficiency: float = 0.5) -> None:
        maps = check_sample(sample)
        extra = sorted(set(maps) - set(model.elements))
        if extra:
            raise ValueError(f"sample elements {extra} are not in the spectral model: "
                             f"{model.elements}")
        if not np.isfinite(flux) or flux <= 0:
            raise ValueError(f"flux must be a positive number of photons/s, got {flux!r}")
        if int(detector_elements) != detector_elements or detector_elements < 1:
            raise ValueError(f"detector_elements must be an integer >= 1, "
                             f"got {detector_elements!r}")
        n_det = int(detector_elements)
        dead = tuple(sorted({int(d) for d in dead_elements}))
        bad = [d for d in dead if not 0 <= d < n_det]
        if bad:
            raise ValueError(f"dead_elements {bad} are not detector elements 0..{n_det - 1}")
        if len(dead) == n_det:
            raise ValueError(f"dead_elements {dead}: all {n_det} detector elements are dead")
        for label, value in (("i0_efficiency", i0_efficiency),
                             ("transmission_efficiency", transmission_efficiency)):
            if not 0 < value <= 1:
                raise ValueError(f"{label} must be in (0, 1], got {value!r}")
        self.model = model
        self.sample = maps
        self.flux = float(flux)
        self.detector_elements = n_det
        self.dead_elements = dead
        self.seed = seed
        self.i0_efficiency = float(i0_efficiency)
        self.transmission_efficiency = float(transmission_efficiency)
        h, w = next(iter(maps.values())).shape
        self.shape: tuple[int, int] = (int(h), int(w))
        self._rng = np.random.default_rng(None if seed is None else [int(seed), 0x58524])
        self.matrix = matrix_density(maps)
        self._weights = np.zeros((*self.shape, len(model.elements)))
        for k, symbol in enumerate(model.elements):
            if symbol in maps:
                self._weights[..., k] = maps[symbol]
        # counts/s over the whole detector of the film alone, and per pixel
        self._film_rate = self.flux * SUBSTRATE_UG_CM2 * model.scatter_spectrum
        energy = model.energy_kev
        mu = np.array([xraylib.CS_Total(atomic_number(s), energy) for s in model.elements])
        optical_depth = (self._weights @ mu + matrix_attenuation(energy, model.matrix_formula)
                         * self.matrix) * 1e-6
        self.transmittance: np.ndarray = np.exp(-optical_depth)
        self._film_transmittance = float(np.exp(
            -matrix_attenuation(energy, model.matrix_formula) * SUBSTRATE_UG_CM2 * 1e-6))

    # ------------------------------------------------------------ positions
    def pixel_of(self, row: float, col: float) -> tuple[int, int] | None:
        """Nearest pixel of a position, ``None`` outside the maps."""
        r, c = round(float(row)), round(float(col))
        h, w = self.shape
        return (r, c) if 0 <= r < h and 0 <= c < w else None

    def rate(self, positions: Sequence[tuple[float, float]]) -> np.ndarray:
        """Expected counts per second in the whole detector, ``(bins,)``.

        The mean over ``positions`` (``(row, col)``, pixel units): the beam sampled
        at several points of a moving exposure.
        """
        positions = _positions(positions)
        total = np.zeros(self.model.bins)
        ref = self.model.reference[:len(self.model.elements)]
        for row, col in positions:
            pixel = self.pixel_of(row, col)
            if pixel is None:
                total += self._film_rate
            else:
                spectrum = self._weights[pixel] @ ref
                spectrum += self.matrix[pixel] * self.model.scatter_spectrum
                total += self.flux * spectrum
        return total / len(positions)

    # ---------------------------------------------------------------- spectra
    def expected_counts(self, positions: Sequence[tuple[float, float]], dwell: float
                        ) -> np.ndarray:
        """Expected counts per detector element, ``(detector_elements, bins)``.

        Each live element sees ``1 / detector_elements`` of the solid angle; dead
        ones 0.
        """
        per_element = self.rate(positions) * _dwell(dwell) / self.detector_elements
        out = np.repeat(per_element[None, :], self.detector_elements, axis=0)
        out[list(self.dead_elements)] = 0.0
        return out

    def draw_spectra(self, positions: Sequence[tuple[float, float]], dwell: float, *,
                     beam_open: bool = True) -> np.ndarray:
        """Poisson counts of every detector element, ``(detector_elements, bins)`` uint32.

        Independent draws per element; all zeros with the beam off.
        """
        out = np.zeros((self.detector_elements, self.model.bins), dtype=np.uint32)
        if beam_open:
            lam = self.expected_counts(positions, dwell)
            live = [k for k in range(self.detector_elements) if k not in self.dead_elements]
            counts = self._rng.poisson(lam[live])
            out[live] = np.minimum(counts, _UINT32_MAX).astype(np.uint32)
        return out

    # ----------------------------------------------------------- I0, transmission
    def expected_i0(self, dwell: float) -> float:
        """Expected counts of the incident-flux monitor."""
        return self.i0_efficiency * self.flux * _dwell(dwell)

    def draw_i0(self, dwell: float, *, beam_open: bool = True) -> float:
        """Poisson counts of the incident-flux monitor (0 with the beam off)."""
        return float(self._rng.poisson(self.expected_i0(dwell))) if beam_open else 0.0

    def expected_transmission(self, positions: Sequence[tuple[float, float]],
                              dwell: float) -> float:
        """Expected counts of the transmission detector (mean over ``positions``)."""
        values = []
        for row, col in _positions(positions):
            pixel = self.pixel_of(row, col)
            values.append(self._film_transmittance if pixel is None
                          else float(self.transmittance[pixel]))
        return (self.transmission_efficiency * self.flux * _dwell(dwell)
                * float(np.mean(values)))

    def draw_transmission(self, positions: Sequence[tuple[float, float]], dwell: float, *,
                          beam_open: bool = True) -> float:
        """Poisson counts of the transmission detector (0 with the beam off)."""
        if not beam_open:
            return 0.0
        return float(self._rng.poisson(self.expected_transmission(positions, dwell)))

    # ------------------------------------------------------------- whole maps
    def expected_map(self, dwell: float) -> np.ndarray:
        """Expected counts of the whole detector at every pixel, ``(H, W, bins)``.

        The same counts as :meth:`expected_counts` summed over the live detector
        elements, for the beam resting ``dwell`` seconds on each pixel centre.
        """
        ref = self.model.reference[:len(self.model.elements)]
        rate = self._weights @ ref + self.matrix[..., None] * self.model.scatter_spectrum
        live = self.detector_elements - len(self.dead_elements)
        return self.flux * _dwell(dwell) * rate * (live / self.detector_elements)

    def draw_map(self, dwell: float) -> dict[str, np.ndarray]:
        """One step-scanned map at ``dwell`` seconds per pixel, drawn at once.

        Returns
        -------
        dict
            ``spectra`` ``(H, W, detector_elements, bins)`` uint32 (independent draws
            per element, dead ones 0), ``i0`` ``(H, W)`` and ``transmission``
            ``(H, W)``: what a step scan of every pixel centre records, without the
            devices (benchmarks of the map analysis).
        """
        dwell = _dwell(dwell)
        per_element = self.flux * dwell * (
            self._weights @ self.model.reference[:len(self.model.elements)]
            + self.matrix[..., None] * self.model.scatter_spectrum) / self.detector_elements
        spectra = np.zeros((*self.shape, self.detector_elements, self.model.bins), np.uint32)
        for k in range(self.detector_elements):
            if k not in self.dead_elements:
                spectra[:, :, k] = np.minimum(self._rng.poisson(per_element), _UINT32_MAX)
        i0 = self._rng.poisson(self.expected_i0(dwell), size=self.shape).astype(float)
        transmission = self._rng.poisson(self.transmission_efficiency * self.flux * dwell
                                         * self.transmittance).astype(float)
        return {"spectra": spectra, "i0": i0, "transmission": transmission}

    def describe(self) -> dict[str, Any]:
        """Counting facts for metadata (JSON-serialisable)."""
        return {"flux": self.flux, "detector_elements": self.detector_elements,
                "dead_elements": list(self.dead_elements), "seed": self.seed,
                "i0_efficiency": self.i0_efficiency,
                "transmission_efficiency": self.transmission_efficiency,
                "solid_angle_sr": self.model.detector.solid_angle_sr}


def _positions(positions: Sequence[tuple[float, float]]) -> np.ndarray:
    array = np.asarray(positions, dtype=float).reshape(-1, 2)
    if array.shape[0] == 0:
        raise ValueError("no positions given: expected (row, col) pairs")
    if not np.all(np.isfinite(array)):
        raise ValueError(f"positions must be finite, got {array.tolist()!r}")
    return array


def _dwell(dwell: float) -> float:
    value = float(dwell)
    if not np.isfinite(value) or value < 0:
        raise ValueError(f"dwell must be >= 0 s, got {dwell!r}")
    return value
