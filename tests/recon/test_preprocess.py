"""normalize / minus_log: round trip with synthetic flats and darks, and input errors."""

from __future__ import annotations

import numpy as np
import pytest

from lowdose_bluesky.phantoms import spheres_in_cube
from lowdose_bluesky.recon import minus_log, normalize


@pytest.fixture(scope="module")
def raw() -> dict[str, np.ndarray]:
    rng = np.random.default_rng(0)
    line = spheres_in_cube(32, seed=1).project([0.0, 45.0, 90.0]) / 20.0
    dark = 100.0 + 5.0 * rng.random((32, 32))
    gain = 900.0 + 200.0 * rng.random((32, 32))  # flat - dark, varying per pixel
    darks = np.stack([dark] * 3)
    flats = np.stack([dark + gain] * 4)
    frames = dark + gain * np.exp(-line)
    return {"line": line, "frames": frames, "flats": flats, "darks": darks}


def test_round_trip(raw: dict[str, np.ndarray]) -> None:
    trans = normalize(raw["frames"], raw["flats"], raw["darks"])
    assert trans.dtype == np.float32 and trans.shape == raw["frames"].shape
    assert np.all(trans > 0) and np.all(trans <= 1.0 + 1e-5)
    line = minus_log(trans)
    assert line.dtype == np.float32
    np.testing.assert_allclose(line, raw["line"], atol=1e-4)


def test_single_frame_and_uint16(raw: dict[str, np.ndarray]) -> None:
    frame = np.round(raw["frames"][1]).astype(np.uint16)
    trans = normalize(frame, raw["flats"][0], raw["darks"][0])
    assert trans.shape == frame.shape and trans.dtype == np.float32
    np.testing.assert_allclose(minus_log(trans), raw["line"][1], atol=5e-3)


def test_clip_to_floor() -> None:
    frames = np.array([[[0.0, 50.0]]])  # at or below the dark level
    trans = normalize(frames, np.full((1, 1, 2), 100.0), np.full((1, 1, 2), 50.0))
    assert np.all(trans > 0)
    assert np.all(np.isfinite(minus_log(trans)))
    assert np.all(np.isfinite(minus_log(np.array([0.0, -1.0, 1.0]))))


def test_few_dead_pixels_are_tolerated(raw: dict[str, np.ndarray]) -> None:
    flats = raw["flats"].copy()
    flats[:, 3, 4] = raw["darks"][0, 3, 4]  # one dead pixel of 1024
    trans = normalize(raw["frames"], flats, raw["darks"], max_bad_fraction=1e-2)
    assert np.all(trans[:, 3, 4] == 1.0)


def test_flat_not_above_dark_raises(raw: dict[str, np.ndarray]) -> None:
    with pytest.raises(ValueError, match=r"mean\(flats\) - mean\(darks\) <= 0 at 1024 of 1024"):
        normalize(raw["frames"], raw["darks"], raw["darks"])
    with pytest.raises(ValueError, match="swapped"):
        normalize(raw["frames"], raw["darks"], raw["flats"])


def test_shape_mismatch_raises(raw: dict[str, np.ndarray]) -> None:
    with pytest.raises(ValueError, match="frame shapes differ"):
        normalize(raw["frames"], raw["flats"][:, :, :16], raw["darks"])


def test_non_finite_raises(raw: dict[str, np.ndarray]) -> None:
    frames = raw["frames"].copy()
    frames[0, 0, 0] = np.nan
    with pytest.raises(ValueError, match="frames contains 1 NaN or infinite"):
        normalize(frames, raw["flats"], raw["darks"])
    with pytest.raises(ValueError, match="transmission contains"):
        minus_log(np.array([np.inf, 1.0]))
    with pytest.raises(ValueError, match="floor must be positive"):
        minus_log(np.ones(3), floor=0.0)
