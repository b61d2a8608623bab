"""Sharp training images: bundled sources, determinism, exclusion, speed."""

from __future__ import annotations

import time

import numpy as np
import pytest

from lowdose_bluesky.sr import (
    HELDOUT_TEXTURES,
    IMAGE_SOURCES,
    NATURAL_SOURCES,
    PROCEDURAL_SOURCES,
    TRANSMISSION_RANGE,
    heldout_texture,
    load_source,
    training_images,
)


@pytest.mark.parametrize("name", NATURAL_SOURCES)
def test_natural_sources_are_bundled(name: str) -> None:
    image = load_source(name)
    assert image.ndim == 2 and image.dtype == np.float32 and min(image.shape) >= 128
    assert TRANSMISSION_RANGE[0] <= image.min() and image.max() <= TRANSMISSION_RANGE[1]


def test_registry() -> None:
    assert set(IMAGE_SOURCES) == set(NATURAL_SOURCES) | set(PROCEDURAL_SOURCES)
    assert set(HELDOUT_TEXTURES) <= set(NATURAL_SOURCES)


def test_shape_dtype_range_and_determinism() -> None:
    images = training_images((64, 48), n=40, seed=3)
    assert images.shape == (40, 64, 48) and images.dtype == np.float32
    assert images.min() >= 0.3 - 1e-6 and images.max() <= 1.0
    np.testing.assert_array_equal(images, training_images((64, 48), n=40, seed=3))
    assert not np.array_equal(images, training_images((64, 48), n=40, seed=4))
    assert np.mean(images.std(axis=(1, 2)) > 0.01) > 0.8  # mostly structured


def test_exclusion() -> None:
    rendered = training_images((32, 32), n=16, seed=0, exclude=NATURAL_SOURCES)
    assert np.all(rendered.max(axis=(1, 2)) == pytest.approx(1.0))  # open background
    only_moon = training_images((32, 32), n=4, seed=0,
                                exclude=[s for s in IMAGE_SOURCES if s != "moon"])
    moon = load_source("moon")
    assert only_moon.min() >= moon.min() and only_moon.max() <= moon.max()
    with pytest.raises(ValueError, match="unknown sources"):
        training_images(exclude=["lena"])
    with pytest.raises(ValueError, match="no image source left"):
        training_images(exclude=IMAGE_SOURCES)


def test_heldout_texture() -> None:
    crop = heldout_texture("grass", (96, 96), seed=1)
    assert crop.shape == (96, 96) and crop.dtype == np.float32
    assert 0.3 <= crop.min() and crop.max() <= 1.0 and crop.std() > 0.02
    np.testing.assert_array_equal(crop, heldout_texture("grass", (96, 96), seed=1))
    with pytest.raises(ValueError, match="natural source"):
        heldout_texture("edges_lines")


def test_256_images_in_under_2_s() -> None:
    training_images((128, 128), n=4, seed=0)  # load the bundled sources
    start = time.perf_counter()
    training_images((128, 128), n=256, seed=1)
    assert time.perf_counter() - start < 2.0
