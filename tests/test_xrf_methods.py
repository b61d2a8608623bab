"""The XRF enhancement methods and baselines, on maps drawn from the counting model."""

from __future__ import annotations

import numpy as np
import pytest

from lowdose_bluesky.model.checkpoint import read_checkpoint
from lowdose_bluesky.recipes.xrf.noise2noise import (
    detector_splits,
    dihedral_mean,
    half_maps,
    noise2noise_maps,
)
from lowdose_bluesky.recipes.xrf.noise2self import SpectralBinning, noise2self_maps
from lowdose_bluesky.recipes.xrf.supervised import supervised_maps
from lowdose_bluesky.xrf import LinearFit, SpectralModel, cell_field
from lowdose_bluesky.xrf.baselines import (
    bm3d_anscombe_maps,
    coefficient_variance,
    median_maps,
)
from lowdose_bluesky.xrf.counting import XRFCounting

ELEMENTS = ("P", "K", "Fe", "Zn")


@pytest.fixture(scope="module")
def drawn():
    maps = cell_field((32, 32), ELEMENTS, seed=5)
    model = SpectralModel(ELEMENTS, 10.0, bins=512, bin_kev=0.024)
    counting = XRFCounting(model, maps, seed=2)
    fit = LinearFit(model.reference, model.components, ELEMENTS)
    draw = counting.draw_map(0.02)
    photons = draw["i0"] / counting.i0_efficiency
    return maps, model, counting, fit, draw, photons


def _rmse(a, b):
    return float(np.sqrt(np.mean((np.asarray(a) - np.asarray(b)) ** 2)))


def test_detector_splits_pair_every_element_once_per_split():
    assert detector_splits([0, 1, 2, 3]) == [((0, 1), (2, 3)), ((0, 2), (1, 3)),
                                             ((0, 3), (1, 2))]
    # a dead element 2: three live ones split 1 | 2 in three ways
    assert detector_splits([0, 1, 3]) == [((0,), (1, 3)), ((1,), (0, 3)), ((3,), (0, 1))]
    assert detector_splits([0, 1, 2, 3], max_splits=1) == [((0, 1), (2, 3))]
    assert detector_splits([4]) == []


def test_half_maps_are_maps_of_the_whole_density():
    shares = np.arange(4 * 2 * 3 * 3, dtype=float).reshape(4, 2, 3, 3)
    np.testing.assert_allclose(half_maps(shares, (0, 2)), (shares[0] + shares[2]) * 2)
    np.testing.assert_allclose(half_maps(shares, (0, 1, 2, 3)), shares.sum(axis=0))


def test_dihedral_mean_undoes_each_symmetry():
    frames = np.random.default_rng(0).random((2, 5, 7)).astype(np.float32)
    np.testing.assert_allclose(dihedral_mean(lambda x: x * 2, frames), frames * 2, rtol=1e-6)
    # a model that is not equivariant is averaged: a ramp along x becomes symmetric
    ramp = dihedral_mean(lambda x: np.broadcast_to(np.arange(x.shape[-1]), x.shape) * 1.0,
                         np.zeros((1, 4, 4), np.float32))
    np.testing.assert_allclose(ramp, np.full((1, 4, 4), 1.5))


def test_fit_without_clipping_is_unbiased_where_clipping_is_not(drawn):
    maps, _, counting, fit, _, _ = drawn
    lam = counting.expected_map(0.002)[8, 8]  # a faint pixel: few counts
    draws = np.random.default_rng(1).poisson(lam, size=(4000, lam.size))
    photons = counting.flux * 0.002
    k = ELEMENTS.index("Fe")
    unclipped = fit.maps(draws, photons, clip=False)[k].mean()
    clipped = fit.maps(draws, photons)[k].mean()
    truth = maps["Fe"][8, 8]
    assert unclipped == pytest.approx(truth, abs=0.1 * truth + 2e-3)
    assert clipped > unclipped


def test_coefficient_variance_matches_poisson_draws(drawn):
    _, _, counting, fit, _, _ = drawn
    lam = counting.expected_map(0.05)[16, 16]
    draws = np.random.default_rng(3).poisson(lam, size=(4000, lam.size))
    coefficients = fit.coefficients(draws)
    predicted = coefficient_variance(fit, fit.coefficients(lam))
    np.testing.assert_allclose(coefficients.var(axis=0), predicted, rtol=0.12)


def test_bm3d_beats_the_raw_maps_of_trace_elements_and_median_loses_organelles(drawn):
    maps, _, _, fit, draw, photons = drawn
    spectra = draw["spectra"].sum(axis=2).astype(float)
    raw = fit.maps(spectra, photons)
    bm3d = bm3d_anscombe_maps(spectra, photons, fit)
    median = median_maps(raw)
    assert bm3d.shape == median.shape == raw.shape
    for element in ("Fe", "Zn"):
        k = ELEMENTS.index(element)
        assert _rmse(bm3d[k], maps[element]) < 0.8 * _rmse(raw[k], maps[element]), element
    # the median helps Zn (nuclei) but erases the few-pixel Fe organelles
    zn, fe = ELEMENTS.index("Zn"), ELEMENTS.index("Fe")
    assert _rmse(median[zn], maps["Zn"]) < _rmse(raw[zn], maps["Zn"])
    assert median[fe].max() < 0.6 * maps["Fe"].max() < raw[fe].max()


def test_noise2noise_learns_from_the_detector_halves(drawn):
    maps, _, _, fit, draw, photons = drawn
    shares = fit.maps(draw["spectra"].astype(float).transpose(2, 0, 1, 3), photons[None],
                      clip=False).transpose(1, 0, 2, 3)  # (detector elements, el, H, W)
    out, enhancer, record = noise2noise_maps(
        shares, [0, 1, 2, 3], epochs=4, seed=0, max_seconds=None, device="cpu",
        train_options={"patch_size": 16, "batch_size": 16})
    assert out.shape == (len(ELEMENTS), 32, 32) and (out >= 0).all()
    assert len(record["splits"]) == 3 and enhancer.arch == "unet"
    raw = np.clip(half_maps(shares, [0, 1, 2, 3]), 0, None)
    truth = np.stack([maps[e] for e in ELEMENTS])
    assert _rmse(out, truth) < _rmse(raw, truth)
    with pytest.raises(ValueError, match="at least two live detector elements"):
        noise2noise_maps(shares, [1], epochs=1, seed=0, max_seconds=None)


def test_supervised_learns_from_the_reference_rows_only():
    rng = np.random.default_rng(0)
    yy, xx = np.mgrid[:32, :32]
    truth = np.stack([1.0 + np.sin(xx / 4.0) * np.cos(yy / 5.0), 2.0 + (xx > 15)])
    short = truth + rng.normal(0, 0.5, truth.shape)
    rows = [8, 24]
    long_rows = truth[:, rows] + rng.normal(0, 0.05, (2, 2, 32))
    out, enhancer = supervised_maps(short, long_rows, rows, epochs=150, max_seconds=None,
                                    device="cpu", network_options={"base_channels": 8})
    others = [r for r in range(32) if r not in rows]
    assert out.shape == truth.shape
    assert _rmse(out[:, others], truth[:, others]) < 0.7 * _rmse(short[:, others],
                                                                 truth[:, others])
    assert enhancer.config["reference_rows"] == rows
    with pytest.raises(ValueError, match="needs long-dwell reference rows"):
        supervised_maps(short, long_rows[:, :0], [], epochs=1)
    with pytest.raises(ValueError, match=r"shape \(2, 1, 32\), expected \(2, 2, 32\)"):
        supervised_maps(short, long_rows[:, :1], rows, epochs=1)


def test_spectral_binning_keeps_the_fluorescence_range():
    binning = SpectralBinning.for_spectra(1024, 0.012, 10.0)
    assert binning.channels <= 128
    assert binning.first * 0.012 == pytest.approx(1.0, abs=0.012)
    assert binning.stop * 0.012 >= 10.0
    spectra = np.ones((3, 1024))
    np.testing.assert_allclose(binning.apply(spectra).sum(axis=-1),
                               binning.stop - binning.first)
    with pytest.raises(ValueError, match="no channel"):
        SpectralBinning.for_spectra(50, 0.012, 10.0)


def test_noise2self_denoises_the_cube_and_checkpoints(drawn):
    maps, model, _, _, draw, photons = drawn
    binning = SpectralBinning.for_spectra(model.bins, model.bin_kev, model.energy_kev, 48)
    cube_fit = LinearFit(binning.apply(model.reference), model.components, ELEMENTS)
    cube = binning.apply(draw["spectra"].sum(axis=2)).astype(np.float32)
    out, network = noise2self_maps(cube, lambda c: cube_fit.maps(c, photons), epochs=60,
                                   max_seconds=None, device="cpu", width=4,
                                   contrast=draw["transmission"] / photons)
    truth = np.stack([maps[e] for e in ELEMENTS])
    raw = cube_fit.maps(cube, photons)
    assert out.shape == raw.shape and np.isfinite(out).all()
    assert network["description"]["pansharpened"] and network["description"]["steps"] == 60
    assert _rmse(out, truth) < _rmse(raw, truth)
    from lowdose_bluesky.model.checkpoint import write_checkpoint

    state, meta = read_checkpoint(write_checkpoint(network["state_dict"],
                                                   network["description"]))
    assert set(state) == set(network["state_dict"]) and meta["width"] == 4
    with pytest.raises(ValueError, match="contrast image has shape"):
        noise2self_maps(cube, lambda c: c, contrast=np.ones((3, 3)), epochs=1)


def test_tissue_section_is_packed_deterministic_and_has_small_features():
    from lowdose_bluesky.xrf import tissue_section

    a = tissue_section((64, 64), ELEMENTS, seed=11)
    assert all(np.array_equal(a[e], tissue_section((64, 64), ELEMENTS, seed=11)[e])
               for e in ELEMENTS)
    assert not np.array_equal(a["P"], tissue_section((64, 64), ELEMENTS, seed=12)["P"])
    assert all((m >= 0).all() and m.shape == (64, 64) for m in a.values())
    # packed cells: most of the field holds P (the vessel is the empty band)
    assert 0.6 < np.mean(a["P"] > 0.5) < 0.95
    # red blood cells in the vessel, where P is absent, well above the cytoplasm's Fe
    vessel = a["P"] < 0.05
    assert a["Fe"][vessel].max() > 5 * np.median(a["Fe"][~vessel])
    # Zn granules: isolated peaks a few pixels across, above the nuclei's level
    peaks = a["Zn"] > 0.3
    assert 0 < peaks.sum() < 40
