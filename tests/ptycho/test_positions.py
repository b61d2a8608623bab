"""Scan positions: inside the region, spacing, overlap arithmetic, and the check."""

from __future__ import annotations

import numpy as np
import pytest

from lowdose_bluesky.ptycho import (
    check_positions,
    mean_nearest_neighbour,
    overlap,
    raster_positions,
    spiral_positions,
    step_for_overlap,
    window_corners,
)


def _inside(positions: np.ndarray, region: tuple[float, float, float, float],
            probe_shape: tuple[int, int]) -> bool:
    y0, x0, height, width = region
    return bool(np.all(positions[:, 0] >= y0) and np.all(positions[:, 1] >= x0)
                and np.all(positions[:, 0] + probe_shape[0] <= y0 + height)
                and np.all(positions[:, 1] + probe_shape[1] <= x0 + width))


def test_raster_grid() -> None:
    positions = raster_positions((10, 20, 64, 48), 8, (32, 32))
    assert positions.shape == (5 * 3, 2) and positions.dtype == np.float64
    assert _inside(positions, (10, 20, 64, 48), (32, 32))
    np.testing.assert_allclose(np.unique(positions[:, 0]), [10, 18, 26, 34, 42])
    np.testing.assert_allclose(np.unique(positions[:, 1]), [20, 28, 36])
    # Row by row; the serpentine variant reverses every other row.
    np.testing.assert_allclose(positions[:3, 1], [20, 28, 36])
    snake = raster_positions((10, 20, 64, 48), 8, (32, 32), snake=True)
    np.testing.assert_allclose(snake[3:6, 1], [36, 28, 20])


def test_raster_centred_when_the_step_does_not_divide() -> None:
    positions = raster_positions((0, 0, 42, 42), 4, (32, 32))
    # Corners range over [0, 10]; 3 positions at spacing 4 leave 1 px on each side.
    np.testing.assert_allclose(np.unique(positions[:, 0]), [1, 5, 9])


@pytest.mark.parametrize(("region", "step"), [((0, 0, 64, 64), 4.0), ((5, 3, 120, 90), 6.5)])
def test_spiral_inside_with_mean_spacing(region: tuple[float, float, float, float],
                                         step: float) -> None:
    positions = spiral_positions(region, step, (32, 32))
    assert _inside(positions, region, (32, 32))
    assert mean_nearest_neighbour(positions) == pytest.approx(step, rel=0.05)
    assert len(np.unique(positions, axis=0)) == len(positions)


def test_overlap_arithmetic() -> None:
    assert overlap(6.0, 24.0) == pytest.approx(0.75)
    assert overlap(30.0, 24.0) == 0.0
    assert step_for_overlap(0.75, 24.0) == pytest.approx(6.0)
    assert overlap(step_for_overlap(0.6, 17.0), 17.0) == pytest.approx(0.6)
    with pytest.raises(ValueError, match=r"overlap must be in \[0, 1\), got 1.0"):
        step_for_overlap(1.0, 24.0)
    with pytest.raises(ValueError, match="diameter must be a positive finite number, got 0"):
        overlap(1.0, 0)


def test_generator_errors() -> None:
    with pytest.raises(ValueError, match=r"smaller than the probe window \(32, 32\)"):
        raster_positions((0, 0, 20, 64), 4, (32, 32))
    with pytest.raises(ValueError, match="step must be a positive finite number of pixels, got 0"):
        spiral_positions((0, 0, 64, 64), 0, (32, 32))
    with pytest.raises(ValueError, match=r"region must be four numbers"):
        raster_positions((0, 0, 64), 4, (32, 32))


def test_window_corners_round_half_up() -> None:
    np.testing.assert_array_equal(window_corners([[0.5, 1.5], [2.49, -0.5]]), [[1, 2], [2, 0]])


def test_check_positions_names_the_first_bad_one() -> None:
    good = [[0, 0], [32, 32]]
    np.testing.assert_array_equal(check_positions(good, (64, 64), (32, 32)), good)
    with pytest.raises(ValueError, match=r"position 1 \(y=33, x=0\) puts the 32x32 probe window "
                                         r"outside the 64x64 object"):
        check_positions([[0, 0], [33, 0], [-1, 0]], (64, 64), (32, 32))
    with pytest.raises(ValueError, match=r"\(N, 2\) array with N >= 1, got shape \(3,\)"):
        check_positions([1, 2, 3], (64, 64), (32, 32))
