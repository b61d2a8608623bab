"""Phantoms: ground truth and exact projections checked against voxel projections."""

import numpy as np
import pytest
from scipy import ndimage

from lowdose_bluesky.phantoms import Phantom, phantom_from_name, shepp_logan_3d, spheres_in_cube


def _rel_err(a: np.ndarray, b: np.ndarray) -> float:
    return float(np.abs(a - b).mean() / np.abs(b).mean())


@pytest.mark.parametrize("make", [lambda: spheres_in_cube(64, seed=3), lambda: shepp_logan_3d(64)])
def test_analytic_projection_matches_voxel_projection(make):
    ph = make()
    vol = ph.volume()
    proj = ph.project([0.0, 90.0, 30.0])
    assert proj.shape == (3, 64, 64) and proj.dtype == np.float32
    # 0 deg integrates along y, 90 deg along x (voxel sums; edges differ by partial voxels)
    for k, axis in ((0, 1), (1, 2)):
        ref = vol.sum(axis=axis)
        assert _rel_err(proj[k], ref) < 0.08
        assert np.corrcoef(proj[k].ravel(), ref.ravel())[0, 1] > 0.99
    # an oblique angle against the rotated voxel volume
    rotated = ndimage.rotate(vol, 30.0, axes=(1, 2), reshape=False, order=1).sum(axis=1)
    assert np.corrcoef(proj[2].ravel(), rotated.ravel())[0, 1] > 0.98
    assert _rel_err(proj[2], rotated) < 0.1


def test_projection_error_shrinks_with_resolution():
    """Voxelisation error is a surface effect: it must fall as the grid gets finer."""
    errs = []
    for size in (32, 96):
        ph = spheres_in_cube(size, n_spheres=10, seed=1)
        errs.append(_rel_err(ph.project(0.0)[0], ph.volume().sum(axis=1)))
    assert errs[1] < errs[0]


def test_spheres_in_cube_values_and_layout():
    ph = spheres_in_cube(96, seed=5)
    vol = ph.volume()
    assert vol.shape == (96, 96, 96)
    assert np.allclose(np.unique(vol), [0.0, 0.3, 1.0])
    assert 1 <= ph.params["n_spheres"] <= round(1000 * 96 / 512)
    assert spheres_in_cube(512, seed=0).params["n_spheres"] == 1000
    # spheres do not overlap: centres further apart than the radii
    c, r = ph.ellipsoids[:, :3], ph.ellipsoids[:, 3]
    d = np.linalg.norm(c[:, None] - c[None], axis=-1) + np.eye(len(r)) * 1e9
    assert np.all(d >= r[:, None] + r[None])
    # diameters scale with size: 4..20 voxels at 512
    assert ph.params["sphere_diameters"] == pytest.approx([max(2.0, 4 * 96 / 512),
                                                           max(2.5, 20 * 96 / 512)])


def test_spheres_in_cube_seeded_and_rectangular():
    a, b = spheres_in_cube(48, seed=1), spheres_in_cube(48, seed=1)
    assert np.array_equal(a.ellipsoids, b.ellipsoids)
    assert not np.array_equal(a.ellipsoids, spheres_in_cube(48, seed=2).ellipsoids)
    tall = spheres_in_cube((24, 48), seed=1)
    assert tall.shape == (24, 48, 48)
    assert tall.project(10.0).shape == (1, 24, 48)


def test_projection_offset_moves_sample_out_of_view():
    ph = spheres_in_cube(32, seed=0)
    shifted = ph.project(0.0, offset=3.0)[0]
    assert np.allclose(shifted[:, 3:], ph.project(0.0)[0][:, :-3], atol=1e-4)
    assert ph.project(0.0, offset=64.0).max() == 0.0


def test_projection_is_fast_at_512():
    """Exact projections at 512 are cheap enough to compute per frame (timing not asserted)."""
    ph = spheres_in_cube(512, seed=0)
    assert ph.project(12.5).shape == (1, 512, 512)


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [({"size": 4}, "at least 8"), ({"size": (8,)}, "height, width"),
     ({"size": 64, "n_spheres": -1}, "non-negative"),
     ({"size": 16, "n_spheres": 5000}, "could place only")],
)
def test_phantom_bad_input(kwargs, match):
    with pytest.raises(ValueError, match=match):
        spheres_in_cube(**kwargs, seed=0)


def test_phantom_bad_names_and_shapes():
    with pytest.raises(ValueError, match="unknown phantom 'nope'"):
        phantom_from_name("nope", 32)
    with pytest.raises(ValueError, match="Y == X"):
        Phantom(shape=(8, 8, 9), boxes=np.empty((0, 8)), ellipsoids=np.empty((0, 8)))
    with pytest.raises(ValueError, match="finite"):
        spheres_in_cube(16, seed=0).project([np.nan])
