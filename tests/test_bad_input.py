"""Bad input to the offline APIs: a ValueError saying what was received and what is allowed.

Training (``train_enhancer``), flat-field correction (``recon.normalize``),
reconstruction and centre finding (``recon.reconstruct``, ``recon.find_center``) and
the plan's argument validation (``plans.validate_scan``, used by ``lowdose_tomo_plan``).
"""

from __future__ import annotations

import re
import warnings

import numpy as np
import pytest

from lowdose_bluesky.devices.sim import SimTXM, make_sim_txm
from lowdose_bluesky.model import Enhancer, train_enhancer
from lowdose_bluesky.phantoms import spheres_in_cube
from lowdose_bluesky.plans import TomoScanWarning, lowdose_tomo_plan
from lowdose_bluesky.recon import find_center, normalize, reconstruct

#: A small set of valid plan arguments (two reference angles).
PLAN = {"num_projections": 5, "num_darks": 1, "num_flats": 1, "long_exposure": 4.0,
        "short_exposure": 1.0, "reference_angles": (30.0, 120.0)}


def _train(low: np.ndarray, high: np.ndarray, **kwargs: object) -> Enhancer:
    """A one-epoch CPU training run on few patches."""
    options = {"epochs": 1, "max_patches": 64, "progress": False, "device": "cpu", **kwargs}
    return train_enhancer(low, high, **options)


@pytest.fixture(scope="module")
def pairs() -> tuple[np.ndarray, np.ndarray]:
    """Two 32x32 (low, high) float pairs with signal everywhere."""
    rng = np.random.default_rng(0)
    high = 0.5 + 0.4 * rng.random((2, 32, 32))
    return high + 0.1 * rng.standard_normal(high.shape), high


@pytest.fixture(scope="module")
def raw() -> dict[str, np.ndarray]:
    """Projections, flats and darks in float counts (16x16, flat - dark = 900)."""
    rng = np.random.default_rng(1)
    return {"frames": 100.0 + 900.0 * rng.uniform(0.2, 1.0, (3, 16, 16)),
            "flats": np.full((2, 16, 16), 1000.0), "darks": np.full((2, 16, 16), 100.0)}


@pytest.fixture
def sim(tmp_path) -> SimTXM:
    """A tiny simulated TXM (nothing is acquired unless a plan runs)."""
    return make_sim_txm(detector_shape=(16, 16), seed=0, data_dir=tmp_path)


def _plan_error(txm: SimTXM, **kwargs: object) -> str:
    """The ValueError text of the plan's first step; checks that nothing moved."""
    plan = lowdose_tomo_plan(txm.detector, txm.rotation, sample_x=txm.sample_x,
                             shutter=txm.shutter, **{**PLAN, **kwargs})
    with pytest.raises(ValueError) as info:
        next(plan)
    assert txm.rotation.position == 0.0 and txm.sample_x.position == 0.0
    assert txm.shutter.state.get() == "closed"
    return str(info.value)


# ------------------------------------------------------ 1. NaN/inf and all-zero frames
@pytest.mark.parametrize("bad", [np.nan, np.inf])
def test_training_pairs_with_nan_or_inf(pairs: tuple, bad: float) -> None:
    low, high = pairs[0].copy(), pairs[1]
    low[1, 4, 5] = bad
    n_nan, n_inf = (1, 0) if np.isnan(bad) else (0, 1)
    with pytest.raises(ValueError, match=re.escape(
            f"low contains {n_nan} NaN and {n_inf} infinite values (of 2048); only finite "
            "values are allowed")):
        _train(low, high)


def test_training_pairs_with_an_all_zero_frame(pairs: tuple) -> None:
    low, high = pairs[0], pairs[1].copy()
    high[1] = 0.0  # the beam was off for the long exposure
    with pytest.raises(ValueError, match=re.escape(
            "high frame(s) [1] of 2 are zero everywhere (was the beam off or the shutter "
            "closed?); every training frame must hold signal")):
        _train(low, high)
    with pytest.raises(ValueError, match=re.escape("low frame(s) [0] of 1 are zero everywhere")):
        _train(np.zeros((32, 32)), high[0])


def test_normalize_with_nan_or_inf(raw: dict) -> None:
    frames = raw["frames"].copy()
    frames[1, 2, 3] = np.nan
    with pytest.raises(ValueError, match=re.escape(
            "frames contains 1 NaN or infinite value(s) (first at index (1, 2, 3)); only "
            "finite values are allowed")):
        normalize(frames, raw["flats"], raw["darks"])
    darks = raw["darks"].copy()
    darks[0, 0, 1] = -np.inf
    with pytest.raises(ValueError, match=re.escape("darks contains 1 NaN or infinite value(s) "
                                                   "(first at index (0, 0, 1))")):
        normalize(raw["frames"], raw["flats"], darks)


def test_normalize_with_all_zero_projection_or_flat(raw: dict) -> None:
    frames = raw["frames"].copy()
    frames[2] = 0.0
    with pytest.raises(ValueError, match=re.escape(
            "frames: frame(s) [2] of 3 are zero everywhere (was the beam off or the shutter "
            "closed?); projections must hold counts")):
        normalize(frames, raw["flats"], raw["darks"])
    flats = raw["flats"].copy()
    flats[1] = 0.0
    with pytest.raises(ValueError, match=re.escape(
            "flats: frame(s) [1] of 2 are zero everywhere (was the beam off or the shutter "
            "closed?); every flat must be an open-beam frame with counts")):
        normalize(raw["frames"], flats, raw["darks"])


def test_normalize_accepts_all_zero_darks(raw: dict) -> None:
    """A detector without offset gives darks that are zero everywhere: valid."""
    trans = normalize(raw["frames"] - 100.0, raw["flats"] - 100.0, np.zeros((2, 16, 16)))
    np.testing.assert_allclose(trans, (raw["frames"] - 100.0) / 900.0, rtol=1e-6)


# ---------------------------------------------------------------- 2. saturated frames
def test_saturated_flats_are_an_error(raw: dict) -> None:
    flats = raw["flats"].astype(np.uint16)
    flats[1, :4] = 65535  # 4 of 16 rows: 25 %
    with pytest.raises(ValueError, match=re.escape(
            "flats: frame 1 of 2 has 25.0% of its pixels at the detector maximum 65535 "
            "(saturated); at most 1.0% are allowed: shorten the flat exposure or lower the "
            "flux")):
        normalize(raw["frames"], flats, raw["darks"])
    flats[1, :4] = 1000
    flats[1, 0, :2] = 65535  # 2 of 256 pixels (0.8 %): a few hot pixels are tolerated
    assert normalize(raw["frames"], flats, raw["darks"]).shape == (3, 16, 16)
    with pytest.raises(ValueError, match="at the detector maximum 1000 "):
        normalize(raw["frames"], raw["flats"], raw["darks"], saturation=1000)


def test_saturated_projections_are_accepted(raw: dict) -> None:
    """Projections are the short exposures: saturation clips a few line integrals only."""
    frames = raw["frames"].astype(np.uint16)
    frames[0, :8] = 65535
    trans = normalize(frames, raw["flats"].astype(np.uint16), raw["darks"].astype(np.uint16))
    assert np.isfinite(trans).all() and trans[0, :8].min() > 70


def test_saturated_training_pairs(pairs: tuple) -> None:
    low = np.round(pairs[0] * 1000).astype(np.uint16)
    high = np.round(pairs[1] * 60000).astype(np.uint16)
    high[0, :8] = 65535  # a long exposure saturated over a quarter of the frame
    with pytest.raises(ValueError, match=re.escape(
            "high frame 0 of 2 has 25.0% of its pixels at the uint16 maximum 65535 "
            "(saturated); at most 1% are allowed: shorten the exposure or lower the flux")):
        _train(low, high)


# ------------------------------------------------------- 3. flats minus darks <= 0
def test_flats_not_above_darks(raw: dict) -> None:
    with pytest.raises(ValueError, match=re.escape(
            "mean(flats) - mean(darks) <= 0 at 256 of 256 pixels (100.00%; allowed: at most 0 "
            "dead pixels, max_bad_fraction=0.10%; first (row, col): (0, 0), (0, 1), (0, 2), "
            "(0, 3), (0, 4)); check that flats and darks are not swapped and the beam was on")):
        normalize(raw["frames"], raw["darks"], raw["flats"])
    flats = raw["flats"].copy()
    flats[:, 5, 6:9] = 50.0  # three dead pixels of 256 (1.2 %)
    with pytest.raises(ValueError, match=re.escape(
            "<= 0 at 3 of 256 pixels (1.17%; allowed: at most 2 dead pixels, "
            "max_bad_fraction=1.00%; first (row, col): (5, 6), (5, 7), (5, 8))")):
        normalize(raw["frames"], flats, raw["darks"], max_bad_fraction=0.01)
    trans = normalize(raw["frames"], flats, raw["darks"], max_bad_fraction=0.02)
    assert np.all(trans[:, 5, 6:9] == 1.0)  # tolerated dead pixels carry no information


# ------------------------------------------------------------ 4. mismatched shapes
@pytest.mark.parametrize(("which", "shapes"), [
    ("flats", "frames (16, 16), flats (16, 8), darks (16, 16)"),
    ("darks", "frames (16, 16), flats (16, 16), darks (16, 8)"),
])
def test_mismatched_calibration_shapes(raw: dict, which: str, shapes: str) -> None:
    args = {"frames": raw["frames"], "flats": raw["flats"], "darks": raw["darks"]}
    args[which] = args[which][:, :, :8]
    with pytest.raises(ValueError, match=re.escape(
            f"frame shapes differ: {shapes} (H, W); flats and darks must have the "
            "projections' shape")):
        normalize(**args)


def test_mismatched_training_pairs(pairs: tuple) -> None:
    with pytest.raises(ValueError, match=re.escape(
            "low and high must have the same shape; got low (2, 32, 32) and high (2, 32, 16)")):
        _train(pairs[0], pairs[1][:, :, :16])


# ------------------------------------------------------------ 5. one reference angle
def test_single_reference_angle_warns_and_the_plan_runs(sim: SimTXM) -> None:
    plan = lowdose_tomo_plan(sim.detector, sim.rotation, sample_x=sim.sample_x,
                             shutter=sim.shutter, **{**PLAN, "reference_angles": (90.0,)})
    with pytest.warns(TomoScanWarning, match=re.escape(
            "a single reference angle (90.0 deg): the enhancer is trained on one long/short "
            "pair, which generalises poorly to other angles; at least 2 reference angles are "
            "recommended, e.g. reference_angles=(30.0, 120.0)")):
        first = next(plan)
    assert first.command == "rewindable"  # accepted: the plan goes on
    plan.close()


def test_two_reference_angles_do_not_warn(sim: SimTXM) -> None:
    with warnings.catch_warnings():
        warnings.simplefilter("error", TomoScanWarning)
        next(lowdose_tomo_plan(sim.detector, sim.rotation, sample_x=sim.sample_x,
                               shutter=sim.shutter, **PLAN))


@pytest.mark.parametrize(("arch", "shape", "options"), [
    ("unet", (48, 48), {"base_channels": 4}), ("yang2018", (48, 48), {"filters": 4}),
    ("unet", (16, 16), {"base_channels": 4})])
def test_training_on_one_pair(arch: str, shape: tuple, options: dict) -> None:
    """One pair trains; its validation band lies inside the frame when it fits."""
    rng = np.random.default_rng(2)
    high = 0.5 + 0.4 * rng.random(shape)
    low = high + 0.1 * rng.standard_normal(shape)
    model = _train(low, high, arch=arch, patch_size=16, epochs=2, max_patches=32,
                   network_options=options)
    config = model.config
    assert config["n_pairs"] == 1 and config["n_train_patches"] > 0
    if shape[0] >= 3 * 16:  # a 16-row band and at least one patch height beside it
        assert config["split"] == "spatial" and config["n_val_patches"] > 0
        assert config["best_val_psnr"] is not None
    assert model(low).shape == shape


# ---------------------------------------------------------- 6. reference angles outside
def test_reference_angle_outside_the_rotation_range(sim: SimTXM) -> None:
    assert _plan_error(sim, reference_angles=(30.0, 200.0)) == (
        "invalid lowdose_tomo_plan arguments: reference angles [200.0] lie outside the "
        "rotation range [0.0, 180.0] deg (start=0.0, stop=180.0); reference pairs must be "
        "taken within the scanned range")
    assert "reference angles [-5.0] lie outside the rotation range [0.0, 90.0] deg (start=90.0" \
        in _plan_error(sim, start=90.0, stop=0.0, reference_angles=(45.0, -5.0))


# ------------------------------------------------- 7. duplicate / non-monotonic angles
def test_duplicate_reference_angles(sim: SimTXM) -> None:
    assert _plan_error(sim, reference_angles=(30.0, 120.0, 30.0)) == (
        "invalid lowdose_tomo_plan arguments: reference_angles must be distinct: "
        "reference_angles[2] = 30.0 repeats reference_angles[0] (got [30.0, 120.0, 30.0]); "
        "one long/short pair per angle")


def test_rotation_steps_too_small_to_tell_angles_apart(sim: SimTXM) -> None:
    assert _plan_error(sim, start=0.0, stop=1e-6, num_projections=11,
                       reference_angles=(0.0,)) == (
        "invalid lowdose_tomo_plan arguments: the angular step |stop - start| / "
        "(num_projections - 1) = 1e-07 deg is below 1e-06 deg (start=0.0, stop=1e-06, "
        "num_projections=11); projections would repeat angles")


@pytest.mark.parametrize("function", [reconstruct, find_center])
def test_duplicate_angles_are_rejected(function: object) -> None:
    angles = np.linspace(0.0, 180.0, 10)
    angles[7] = angles[2]
    with pytest.raises(ValueError, match=re.escape(
            "angles_deg must be distinct: angles_deg[7] = 40.0 deg repeats angles_deg[2] = "
            "40.0 deg (1 repeated angle(s) in all; was the rotation readback stuck?); allowed: "
            "angles at least 1e-06 deg apart, in any order (0 and 180 deg are distinct)")):
        function(np.ones((10, 2, 16)), angles)
    stuck = np.full(10, 12.5)  # a rotation readback that never updated
    with pytest.raises(ValueError, match=re.escape("angles_deg[1] = 12.5 deg repeats "
                                                   "angles_deg[0] = 12.5 deg (9 repeated")):
        function(np.ones((10, 2, 16)), stuck)


def test_non_monotonic_angles_are_valid_in_any_order() -> None:
    """Interlaced or shuffled angles give the same centre and reconstruction as sorted ones."""
    ph = spheres_in_cube(32, seed=3)
    angles = np.linspace(0.0, 180.0, 61)
    proj = ph.project(angles, offset=1.5)[:, 14:18]
    order = np.random.default_rng(0).permutation(angles.size)
    for method in ("mirror", "consistency", "search"):
        use = slice(None) if method == "mirror" else slice(0, -1)  # half turn without end
        centre = find_center(proj[use], angles[use], method=method, backend="numba")
        sub = order[order < angles[use].size]
        shuffled = find_center(proj[sub], angles[sub], method=method, backend="numba")
        assert abs(shuffled - centre) < 0.05, method
    rec = reconstruct(proj, angles, center=centre, backend="numba")
    rec_shuffled = reconstruct(proj[order], angles[order], center=centre, backend="numba")
    np.testing.assert_allclose(rec_shuffled, rec, atol=1e-5)
    # 0 and 180 deg are the same direction but distinct angles: accepted
    both = reconstruct(proj, angles, backend="numba")
    assert np.isfinite(both).all()


# --------------------------------------------------------- 8. frames below the patch
def test_frames_smaller_than_the_patch(pairs: tuple) -> None:
    with pytest.raises(ValueError, match=re.escape(
            "frames of 8x8 are smaller than the 32x32 patch of the 'yang2018' network; use "
            "frames of at least 32x32 or a smaller patch_size (multiple of 8, >= 16)")):
        _train(pairs[0][:, :8, :8], pairs[1][:, :8, :8], arch="yang2018")
