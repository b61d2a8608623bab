"""XRF physics: lines, detector response, reference spectra, cell field, input checks."""

import numpy as np
import pytest

from lowdose_bluesky.xrf import (
    SCATTER_COMPONENTS,
    SDDResponse,
    SpectralModel,
    XRFCounting,
    cell_field,
    check_sample,
    excitable_lines,
    line_energy,
    line_family,
)

ELEMENTS = ("P", "S", "K", "Ca", "Fe", "Cu", "Zn")


@pytest.fixture(scope="module")
def model():
    return SpectralModel(ELEMENTS, 10.0)


@pytest.mark.parametrize(("symbol", "energy"), [("Fe", 6.40), ("Zn", 8.64)])
def test_ka_line_energies(symbol, energy):
    assert line_energy(symbol, "Ka1") == pytest.approx(energy, abs=0.01)


def test_resolution_at_mn_ka():
    assert 0.12 <= float(SDDResponse().fwhm(5.899)) <= 0.14
    assert SDDResponse().fwhm(8.0) > SDDResponse().fwhm(2.0)  # grows with energy


def test_pure_fe_peaks_at_fe_ka(model):
    fe_ka = model.channel_of(line_energy("Fe", "Ka1"))
    assert abs(int(np.argmax(model.element_spectrum("Fe"))) - fe_ka) <= 1
    pixel = model.pixel_spectrum({"Fe": 1.0}, matrix=0.0)
    assert abs(int(np.argmax(pixel)) - fe_ka) <= 1
    assert pixel.sum() == pytest.approx(model.element_spectrum("Fe").sum())


def test_scatter_peaks_and_linearity(model):
    assert model.components == (*ELEMENTS, *SCATTER_COMPONENTS)
    assert model.reference.shape == (len(ELEMENTS) + 3, 1024)
    elastic, compton = model.reference[len(ELEMENTS):len(ELEMENTS) + 2]
    assert abs(int(np.argmax(elastic)) - model.channel_of(10.0)) <= 1
    assert 9.6 < model.energies[np.argmax(compton)] < 9.95
    # thin sample: a pixel is the linear sum, which least squares inverts
    densities = {"P": 3.0, "Fe": 0.2, "Zn": 0.1}
    spectrum = model.pixel_spectrum(densities, matrix=300.0)
    coef, *_ = np.linalg.lstsq(model.reference.T, spectrum, rcond=None)
    expected = [densities.get(s, 0.0) for s in ELEMENTS] + [300.0] * 3
    np.testing.assert_allclose(coef, expected, rtol=1e-6, atol=1e-6)


def test_family_falls_back_to_l_lines_below_the_k_edge():
    assert line_family("Zn", 10.0) == "K" and line_family("Zn", 9.0) == "L"
    assert line_family("Pb") == "L"
    assert {ln.name for ln in excitable_lines("Zn", 9.0)} <= {"La1", "La2", "Lb1", "Lb2",
                                                                "Lg1"}
    assert excitable_lines("Pb", 10.0) == []  # L3 edge at 13 keV


def test_unknown_element_is_named():
    with pytest.raises(ValueError, match=r"'Xx'.*'Fe'"):
        SpectralModel(("Fe", "Xx"))
    with pytest.raises(ValueError, match="'Xx'"):
        cell_field((8, 8), ("P", "Xx"))
    with pytest.raises(ValueError, match="'Xx'"):
        check_sample({"Xx": np.zeros((4, 4))})


def test_bad_densities_are_named(model):
    with pytest.raises(ValueError, match=r"'Fe'.*-0\.5"):
        model.pixel_spectrum({"Fe": -0.5})
    maps = {"P": np.ones((4, 4)), "Fe": np.ones((4, 4))}
    maps["Fe"][2, 3] = -0.5
    with pytest.raises(ValueError, match=r"'Fe'.*-0\.5.*\(2, 3\)"):
        check_sample(maps)
    with pytest.raises(ValueError, match=r"different shapes.*\(4, 4\).*\(4, 5\)"):
        check_sample({"P": np.ones((4, 4)), "Fe": np.ones((4, 5))})
    with pytest.raises(ValueError, match=r"\['Se'\]"):
        XRFCounting(model, {"Se": np.ones((4, 4))})


def test_energy_outside_the_channels_is_refused():
    with pytest.raises(ValueError, match=r"energy_kev 15 keV.*raise bins or bin_kev"):
        SpectralModel(("Fe",), 15.0)


def test_cell_field_is_deterministic_and_realistic():
    a = cell_field((48, 48), seed=4)
    b = cell_field((48, 48), seed=4)
    assert list(a) == list(ELEMENTS)
    assert all(np.array_equal(a[k], b[k]) for k in a)
    assert not np.array_equal(a["P"], cell_field((48, 48), seed=5)["P"])
    # a map does not depend on the other elements requested
    assert np.array_equal(cell_field((48, 48), ("Zn",), seed=4)["Zn"], a["Zn"])
    for symbol, field in a.items():
        assert field.shape == (48, 48) and field.min() >= 0, symbol
    assert 1.0 < a["P"].max() < 10.0 and 1.0 < a["K"].max() < 10.0
    assert 0.01 < a["Fe"].max() <= 0.6 and 0.01 < a["Zn"].max() <= 0.5
    nucleus = a["P"] > 0.8 * a["P"].max()  # P-rich nuclei hold more Zn than the cytoplasm
    cytoplasm = (a["K"] > 0.5 * a["K"].max()) & ~nucleus
    assert a["Zn"][nucleus].mean() > 1.5 * a["Zn"][cytoplasm].mean()


def test_counting_splits_the_solid_angle(model):
    sample = {"Fe": np.full((4, 4), 0.2)}
    counting = XRFCounting(model, sample, flux=1e9, detector_elements=4, dead_elements=(1,),
                           seed=0)
    lam = counting.expected_counts([(1, 1)], 0.1)
    assert lam.shape == (4, 1024) and not lam[1].any()
    np.testing.assert_allclose(lam[0], 1e9 * 0.1 * model.pixel_spectrum(
        {"Fe": 0.2}, matrix=counting.matrix[1, 1]) / 4)
    assert counting.draw_spectra([(1, 1)], 0.1, beam_open=False).sum() == 0
