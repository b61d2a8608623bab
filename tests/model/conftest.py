"""Fixtures for the model tests: small synthetic denoising problems and tiny models."""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
import pytest

from lowdose_bluesky.model import Enhancer, train_enhancer

PairMaker = Callable[..., tuple[np.ndarray, np.ndarray]]


def _blobs(shape: tuple[int, int], n_blobs: int, rng: np.random.Generator) -> np.ndarray:
    """Smooth positive image: a sum of Gaussian blobs (float64)."""
    yy, xx = np.mgrid[: shape[0], : shape[1]]
    image = np.zeros(shape)
    for _ in range(n_blobs):
        cy, cx = rng.uniform(0, shape[0]), rng.uniform(0, shape[1])
        width = rng.uniform(2.0, 6.0)
        image += rng.uniform(0.3, 1.0) * np.exp(-((yy - cy) ** 2 + (xx - cx) ** 2) / (2 * width**2))
    return image


def _noisy_pairs(
    n: int, shape: tuple[int, int] = (48, 48), sigma: float = 0.15, seed: int = 0
) -> tuple[np.ndarray, np.ndarray]:
    """``n`` (low, high) pairs: Gaussian-noise copies of clean blob images."""
    rng = np.random.default_rng(seed)
    high = np.stack([_blobs(shape, 12, rng) for _ in range(n)])
    low = high + sigma * rng.standard_normal(high.shape)
    return low, high


@pytest.fixture(scope="session")
def make_pairs() -> PairMaker:
    """Factory ``make_pairs(n, shape=(48, 48), sigma=0.15, seed=0) -> (low, high)``."""
    return _noisy_pairs


@pytest.fixture(scope="session")
def pairs() -> tuple[np.ndarray, np.ndarray]:
    """Two 48x48 training pairs."""
    return _noisy_pairs(2)


@pytest.fixture(scope="session")
def unet(pairs: tuple[np.ndarray, np.ndarray]) -> Enhancer:
    """A tiny U-Net Enhancer (1 epoch)."""
    low, high = pairs
    return train_enhancer(
        low,
        high,
        arch="unet",
        epochs=1,
        max_patches=128,
        progress=False,
        device="cpu",
        network_options={"base_channels": 4},
    )


@pytest.fixture(scope="session")
def yang(pairs: tuple[np.ndarray, np.ndarray]) -> Enhancer:
    """A tiny yang2018 Enhancer on 16x16 patches (1 epoch)."""
    low, high = pairs
    return train_enhancer(
        low,
        high,
        arch="yang2018",
        patch_size=16,
        epochs=1,
        max_patches=128,
        progress=False,
        device="cpu",
        network_options={"filters": 4},
    )


@pytest.fixture(params=["unet", "yang"])
def enhancer(request: pytest.FixtureRequest) -> Enhancer:
    """Each tiny Enhancer in turn."""
    return request.getfixturevalue(request.param)
