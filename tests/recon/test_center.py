"""find_center(): mirror registration, sinogram consistency and reconstruction search."""

from __future__ import annotations

import numpy as np
import pytest

from lowdose_bluesky.phantoms import shepp_logan_3d, spheres_in_cube
from lowdose_bluesky.recon import find_center

HALF_TURN_WITH_END = np.linspace(0.0, 180.0, 181)
HALF_TURN = np.linspace(0.0, 180.0, 180, endpoint=False)


@pytest.fixture(scope="module")
def phantom():
    return spheres_in_cube((16, 64), seed=3)


@pytest.mark.parametrize("offset", [0.0, 3.0, -4.3, 2.5])
def test_mirror_pair(phantom, offset: float) -> None:
    proj = phantom.project(HALF_TURN_WITH_END, offset=offset)
    centre = find_center(proj, HALF_TURN_WITH_END)
    assert abs(centre - (31.5 + offset)) < 0.5
    assert abs(find_center(proj, HALF_TURN_WITH_END, method="mirror") - centre) < 1e-9


@pytest.mark.parametrize("offset", [0.0, -4.3, 2.5])
def test_consistency_without_end_point(phantom, offset: float) -> None:
    proj = phantom.project(HALF_TURN, offset=offset)
    assert abs(find_center(proj, HALF_TURN) - (31.5 + offset)) < 0.5


def test_consistency_with_noise() -> None:
    ph = shepp_logan_3d((8, 96))
    proj = ph.project(HALF_TURN, offset=-3.4)
    rng = np.random.default_rng(0)
    noisy = proj + rng.normal(0, 0.05 * proj.max(), proj.shape).astype(np.float32)
    assert abs(find_center(noisy, HALF_TURN, method="consistency") - (47.5 - 3.4)) < 0.5


@pytest.mark.parametrize("offset", [0.0, 2.5])
def test_search_with_backend(phantom, offset: float) -> None:
    proj = phantom.project(HALF_TURN, offset=offset)
    centre = find_center(proj, HALF_TURN, method="search", backend="numba", n_rows=4)
    assert abs(centre - (31.5 + offset)) < 0.5


def test_invalid_arguments(phantom) -> None:
    proj = phantom.project(HALF_TURN[:20])
    with pytest.raises(ValueError, match="no two projections are 180 deg apart"):
        find_center(proj, HALF_TURN[:20], method="mirror")
    with pytest.raises(ValueError, match="needs angles stepping over"):
        find_center(proj, HALF_TURN[:20], method="consistency")
    with pytest.raises(ValueError, match="unknown method 'fast'"):
        find_center(proj, HALF_TURN[:20], method="fast")
    with pytest.raises(ValueError, match="slice_index must be in"):
        find_center(proj, HALF_TURN[:20], method="search", slice_index=99)
    with pytest.raises(ValueError, match="search_radius must be in"):
        find_center(proj, HALF_TURN[:20], method="search", search_radius=40)
    with pytest.raises(ValueError, match="20 angles but 19 projections"):
        find_center(proj[:19], HALF_TURN[:20])
