"""X-ray fluorescence (XRF) physics of a scanning microprobe, on xraylib.

Element lines and cross sections (:mod:`.elements`), the silicon drift detector's
response (:mod:`.detector_response`), the scattering matrix (:mod:`.matrix`),
reference and expected spectra (:mod:`.spectra`), sample maps (:mod:`.sample`) and
the photon counting of a measurement (:mod:`.counting`), and element maps from
spectra (:mod:`.fitting`).
"""

from .counting import XRFCounting
from .detector_response import SDDResponse, channel_edges, gaussian_peak
from .elements import (
    FluorescenceLine,
    atomic_number,
    check_elements,
    excitable_lines,
    fluorescence_cross_section,
    line_energy,
    line_family,
)
from .fitting import FIT, ROI, LinearFit, roi_maps
from .matrix import matrix_density
from .sample import DEFAULT_ELEMENTS, cell_field, check_sample
from .spectra import SCATTER_COMPONENTS, SpectralModel
from .tissue import tissue_section

__all__ = [
    "DEFAULT_ELEMENTS",
    "FIT",
    "ROI",
    "SCATTER_COMPONENTS",
    "FluorescenceLine",
    "LinearFit",
    "SDDResponse",
    "SpectralModel",
    "XRFCounting",
    "atomic_number",
    "cell_field",
    "channel_edges",
    "check_elements",
    "check_sample",
    "excitable_lines",
    "fluorescence_cross_section",
    "gaussian_peak",
    "line_energy",
    "line_family",
    "matrix_density",
    "roi_maps",
    "tissue_section",
]
