"""The light matrix of a biological sample: its mass, scattering and attenuation.

The mapped elements sit in organic matter (dried cells, mostly H, C, N, O) on a thin
polymer support film. Neither fluoresces in the detector's range, but both scatter
the beam: an elastic (Rayleigh) peak at the incident energy and a Compton peak
below it, whose size follows the local matrix mass.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass

import numpy as np
import xraylib
from numpy.typing import ArrayLike

__all__ = [
    "DRY_MASS_RATIO",
    "MATRIX_FORMULA",
    "SUBSTRATE_UG_CM2",
    "ScatterIntoDetector",
    "matrix_attenuation",
    "matrix_density",
    "scatter_into_detector",
]

#: Composition of the organic matrix (protein-like dry biological matter); the support
#: film is taken to be of the same composition.
MATRIX_FORMULA = "C30H50N9O10"
#: Areal density of the support film, µg/cm² (1 µm of polyimide).
SUBSTRATE_UG_CM2 = 140.0
#: Dry organic mass per unit mass of the mapped elements: P, S, K and the other
#: mapped elements make about 5 % of a cell's dry mass.
DRY_MASS_RATIO = 20.0


def matrix_density(densities: Mapping[str, ArrayLike], *,
                   substrate: float = SUBSTRATE_UG_CM2,
                   ratio: float = DRY_MASS_RATIO) -> np.ndarray:
    """Areal density of the matrix, µg/cm²: ``substrate + ratio × Σ densities``.

    An estimate of the organic mass from the mapped elements (cells rich in P, S,
    K are thick, the space between cells holds only the film).

    Parameters
    ----------
    densities
        Element → areal density (µg/cm²), scalars or maps of one shape.
    substrate
        Support film, µg/cm².
    ratio
        Dry organic mass per unit mass of the mapped elements.
    """
    total = sum((np.asarray(v, dtype=float) for v in densities.values()),
                start=np.zeros(()))
    return float(substrate) + float(ratio) * total


def matrix_attenuation(energy_kev: float, formula: str = MATRIX_FORMULA) -> float:
    """Mass attenuation coefficient of the matrix, cm²/g."""
    return float(xraylib.CS_Total_CP(formula, float(energy_kev)))


@dataclass(frozen=True)
class ScatterIntoDetector:
    """Scattering of the matrix into the detector's solid angle.

    Attributes
    ----------
    elastic, compton
        Cross sections into the detector, cm²/g (∫ dσ/dΩ dΩ over its acceptance).
    compton_energy_kev
        Mean energy of the Compton-scattered photons reaching the detector, keV.
    compton_spread_kev
        Their standard deviation over the acceptance, keV.
    """

    elastic: float
    compton: float
    compton_energy_kev: float
    compton_spread_kev: float


def scatter_into_detector(energy_kev: float, half_angle: float, *,
                          formula: str = MATRIX_FORMULA, samples: int = 12
                          ) -> ScatterIntoDetector:
    """Scatter of a linearly polarised beam into a detector at 90° in the storage ring plane.

    The detector axis points along the polarisation, where the Thomson factor
    vanishes; what it collects comes from the rest of its acceptance cone. The
    polarised differential cross sections (``xraylib.DCSP_Rayl_CP``,
    ``xraylib.DCSP_Compt_CP``) are integrated over the cone by the midpoint rule.

    Parameters
    ----------
    energy_kev
        Incident energy, keV.
    half_angle
        Half-angle of the detector's acceptance cone, radian.
    formula
        Composition of the scatterer.
    samples
        Midpoints along the cone's radius (twice as many around it).
    """
    energy = float(energy_kev)
    n_psi, n_beta = int(samples), 2 * int(samples)
    d_psi, d_beta = float(half_angle) / n_psi, 2 * math.pi / n_beta
    elastic = compton = 0.0
    weights, energies = [], []
    for i in range(n_psi):
        psi = (i + 0.5) * d_psi
        for j in range(n_beta):
            beta = (j + 0.5) * d_beta
            # beam along z, polarisation and detector axis along x
            dx, dy, dz = (math.cos(psi), math.sin(psi) * math.cos(beta),
                          math.sin(psi) * math.sin(beta))
            theta, phi = math.acos(dz), math.atan2(dy, dx)
            d_omega = math.sin(psi) * d_psi * d_beta
            elastic += xraylib.DCSP_Rayl_CP(formula, energy, theta, phi) * d_omega
            w = xraylib.DCSP_Compt_CP(formula, energy, theta, phi) * d_omega
            compton += w
            weights.append(w)
            energies.append(xraylib.ComptonEnergy(energy, theta))
    mean = float(np.average(energies, weights=weights))
    spread = float(np.sqrt(np.average((np.asarray(energies) - mean) ** 2, weights=weights)))
    return ScatterIntoDetector(float(elastic), float(compton), mean, spread)
