"""reconstruct(): accuracy, units and orientation against phantoms, for every backend here."""

from __future__ import annotations

import numpy as np
import pytest
from scipy.ndimage import binary_erosion

from lowdose_bluesky.phantoms import Phantom, spheres_in_cube
from lowdose_bluesky.recon import FILTER_NAMES, available_backends, reconstruct

ANGLES = np.linspace(0.0, 180.0, 181)
BACKENDS = available_backends()


@pytest.fixture(scope="module")
def spheres() -> tuple[np.ndarray, np.ndarray]:
    ph = spheres_in_cube(64, seed=7)
    return ph.volume(), ph.project(ANGLES)


def _off_centre_sphere(n: int = 64) -> Phantom:
    """One sphere at y = -12, x = +8 from the slice centre: any flip or transpose moves it."""
    ell = np.array([[0.0, -12.0, 8.0, 6.0, 6.0, 6.0, 0.0, 1.0]])
    return Phantom(shape=(16, n, n), boxes=np.empty((0, 8)), ellipsoids=ell, name="one_sphere")


def test_expected_backends_available() -> None:
    assert {"numba", "torch", "algotom"} <= set(BACKENDS)


@pytest.mark.parametrize("backend", BACKENDS)
def test_spheres_in_cube_voxel_for_voxel(backend: str, spheres: tuple) -> None:
    vol, proj = spheres
    rec = reconstruct(proj, ANGLES, backend=backend, filter="ramlak")
    assert rec.shape == vol.shape and rec.dtype == np.float32
    z = vol.shape[0] // 2
    truth, slc = vol[z], rec[z]
    inside = truth > 0
    assert np.abs(slc - truth)[inside].mean() < 0.05
    assert np.corrcoef(slc.ravel(), truth.ravel())[0, 1] > 0.95
    cube_core = binary_erosion(np.isclose(truth, 0.3), iterations=2)
    assert abs(np.median(slc[cube_core]) - 0.3) < 0.01  # units: attenuation per voxel
    assert np.median(np.abs(slc[truth == 0])) < 0.02
    full = np.corrcoef(rec.ravel(), vol.ravel())[0, 1]
    assert full > 0.95


@pytest.mark.parametrize("backend", BACKENDS)
def test_orientation_off_centre_sphere(backend: str) -> None:
    ph = _off_centre_sphere()
    vol = ph.volume()
    rec = reconstruct(ph.project(ANGLES), ANGLES, backend=backend)  # default Parzen filter
    z = 8
    weights = np.clip(rec[z], 0.5, None) - 0.5  # the sphere only
    rows, cols = np.indices(weights.shape)
    row = (weights * rows).sum() / weights.sum()
    col = (weights * cols).sum() / weights.sum()
    assert abs(row - (31.5 - 12)) < 0.5 and abs(col - (31.5 + 8)) < 0.5
    same = np.corrcoef(rec[z].ravel(), vol[z].ravel())[0, 1]
    for wrong in (rec[z, ::-1], rec[z, :, ::-1], rec[z].T):
        assert np.corrcoef(wrong.ravel(), vol[z].ravel())[0, 1] < same - 0.5
    assert same > 0.9


def test_backends_agree(spheres: tuple) -> None:
    _, proj = spheres
    results = {b: reconstruct(proj[:, 28:36], ANGLES, backend=b, filter="hann") for b in BACKENDS}
    ref = results["numba"]
    for name, rec in results.items():
        assert np.abs(rec - ref).max() < 0.05 * np.abs(ref).max(), name


def test_every_filter_and_auto(spheres: tuple) -> None:
    vol, proj = spheres
    sub = proj[:, 30:34]
    for name in FILTER_NAMES:
        rec = reconstruct(sub, ANGLES, filter=name, backend="numba")
        assert np.corrcoef(rec.ravel(), vol[30:34].ravel())[0, 1] > 0.9, name
    np.testing.assert_array_equal(reconstruct(sub, ANGLES),
                                  reconstruct(sub, ANGLES, backend=BACKENDS[0]))


def test_single_slice_and_deterministic(spheres: tuple) -> None:
    _, proj = spheres
    one = reconstruct(proj[:, 32:33], ANGLES, filter="ramlak")
    many = reconstruct(proj[:, 28:36], ANGLES, filter="ramlak")
    np.testing.assert_allclose(one[0], many[4], atol=1e-4)  # slice and slab kernels agree
    np.testing.assert_array_equal(many, reconstruct(proj[:, 28:36], ANGLES, filter="ramlak"))


def test_full_turn_and_no_end_point(spheres: tuple) -> None:
    vol, _ = spheres
    ph = spheres_in_cube(64, seed=7)
    z = slice(30, 34)
    for angles in (np.linspace(0, 360, 361), np.linspace(0, 180, 120, endpoint=False),
                   np.linspace(-90, 90, 91)):
        rec = reconstruct(ph.project(angles)[:, z], angles, filter="ramlak")
        core = binary_erosion(np.isclose(vol[z], 0.3), np.ones((1, 3, 3)), iterations=2)
        assert abs(np.median(rec[core]) - 0.3) < 0.01


def test_shifted_axis_with_known_center() -> None:
    ph = spheres_in_cube(64, seed=2)
    vol = ph.volume()
    proj = ph.project(ANGLES, offset=3.0)[:, 30:34]
    good = reconstruct(proj, ANGLES, center=31.5 + 3.0, filter="ramlak")
    bad = reconstruct(proj, ANGLES, filter="ramlak")
    err_good = np.abs(good - vol[30:34]).mean()
    assert err_good < 0.03
    assert np.abs(bad - vol[30:34]).mean() > 2 * err_good


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"angles_deg": ANGLES[:-1]}, "180 angles but 181 projections"),
        ({"angles_deg": ANGLES[:1], "line_integrals": np.zeros((1, 2, 8))}, "at least 2 angles"),
        ({"backend": "gridrec"}, r"unknown backend 'gridrec'; allowed: 'auto', .*'numba'"),
        ({"filter": "box"}, "unknown filter 'box'; allowed: ramlak"),
        ({"line_integrals": np.zeros((181, 8))}, r"must be 3-D \(angles, rows, columns\)"),
        ({"center": 99.0}, r"center must be a finite detector column in \[0, 7\]"),
        ({"center": float("nan")}, "center must be a finite"),
    ],
)
def test_invalid_input_raises(kwargs: dict, message: str) -> None:
    args = {"line_integrals": np.zeros((181, 2, 8), np.float32), "angles_deg": ANGLES, **kwargs}
    with pytest.raises(ValueError, match=message):
        reconstruct(args.pop("line_integrals"), args.pop("angles_deg"), **args)


def test_non_finite_raises() -> None:
    data = np.zeros((181, 2, 8), np.float32)
    data[3, 1, 2] = np.inf
    with pytest.raises(ValueError, match="line_integrals contains 1 NaN or infinite"):
        reconstruct(data, ANGLES)
    angles = ANGLES.copy()
    angles[5] = np.nan
    with pytest.raises(ValueError, match="angles_deg contains"):
        reconstruct(np.zeros((181, 2, 8)), angles)
