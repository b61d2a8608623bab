"""Element maps from simulated spectra: the linear fit and the region-of-interest fallback."""

import numpy as np
import pytest

from lowdose_bluesky.xrf import SpectralModel, XRFCounting, cell_field
from lowdose_bluesky.xrf.fitting import LinearFit, roi_maps

ELEMENTS = ("P", "S", "K", "Ca", "Fe", "Cu", "Zn")


@pytest.fixture(scope="module")
def measured():
    model = SpectralModel(ELEMENTS, 10.0, bins=512, bin_kev=0.024)
    sample = cell_field((16, 16), ELEMENTS, seed=4)
    counting = XRFCounting(model, sample, flux=1e9, seed=5)
    positions = [(r, c) for r in range(16) for c in range(16)]
    return model, sample, counting, positions


def test_fit_of_noiseless_spectra_recovers_the_densities(measured):
    model, sample, counting, positions = measured
    dwell = 0.1
    expected = np.stack([counting.expected_counts([p], dwell) for p in positions])
    photons = counting.flux * dwell
    fit = LinearFit(model.reference, model.components, ELEMENTS)
    maps = fit.maps(expected.sum(axis=1), photons).reshape(len(ELEMENTS), 16, 16)
    for k, element in enumerate(ELEMENTS):
        assert np.allclose(maps[k], sample[element], rtol=1e-3, atol=1e-4), element


def test_fit_beats_roi_sums_where_lines_overlap(measured):
    model, sample, counting, positions = measured
    dwell = 0.2
    spectra = np.stack([counting.draw_spectra([p], dwell).sum(axis=0) for p in positions])
    photons = counting.flux * dwell
    fit = LinearFit(model.reference, model.components, ELEMENTS).maps(spectra, photons)
    windows = [model.peak_window(e) for e in ELEMENTS]
    per_unit = [model.element_spectrum(e)[w].sum() for e, w in zip(ELEMENTS, windows,
                                                                     strict=True)]
    roi = roi_maps(spectra, windows, per_unit, photons)
    truth = np.stack([sample[e].reshape(-1) for e in ELEMENTS])
    fit_err = np.abs(fit - truth).mean(axis=1)
    roi_err = np.abs(roi - truth).mean(axis=1)
    assert fit_err.sum() < roi_err.sum(), (fit_err, roi_err)


def test_bad_reference_or_elements_are_named():
    model = SpectralModel(("Fe", "Zn"), 10.0, bins=64, bin_kev=0.2)
    with pytest.raises(ValueError, match=r"elements \['Cu'\] have no reference spectrum"):
        LinearFit(model.reference, model.components, ("Fe", "Cu"))
    fit = LinearFit(model.reference, model.components, ("Fe",))
    with pytest.raises(ValueError, match="spectra have 32 channels, the reference spectra 64"):
        fit.maps(np.zeros((3, 32)), 1.0)
