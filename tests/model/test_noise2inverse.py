"""Noise2Inverse: training on split reconstructions, the held-out gate, checkpoints."""

from __future__ import annotations

import numpy as np
import pytest

from lowdose_bluesky.model import (
    Noise2InverseConfig,
    Noise2InverseDenoiser,
    check_split,
    train_noise2inverse,
)
from lowdose_bluesky.model.noise2inverse import split_indices
from lowdose_bluesky.phantoms import spheres_in_cube
from lowdose_bluesky.recipes.tomography.methods import noise2inverse_stage
from lowdose_bluesky.recon import reconstruct, split_reconstructions

ANGLES = np.linspace(0.0, 180.0, 64, endpoint=False)


@pytest.fixture(scope="module")
def scan() -> dict[str, np.ndarray]:
    """Line integrals of a small phantom: clean and with Poisson counting noise."""
    ph = spheres_in_cube((16, 32), seed=0)
    clean = ph.project(ANGLES).astype(np.float64)
    mu = 0.05
    counts = np.random.default_rng(0).poisson(200 * np.exp(-mu * clean))
    noisy = -np.log(np.maximum(counts, 0.5) / 200) / mu
    return {"clean": clean.astype(np.float32), "noisy": noisy.astype(np.float32),
            "truth": ph.volume()}


def _config(**kw: object) -> Noise2InverseConfig:
    base = {"max_seconds": None, "max_iterations": 60, "base_channels": 8, "patch_size": 32,
            "batch_size": 8, "holdout_every": 4}
    return Noise2InverseConfig(**{**base, **kw})


def test_split_indices_interleave_and_cover() -> None:
    parts = split_indices(26, 3)
    assert [p.tolist() for p in parts] == [list(range(j, 26, 3)) for j in range(3)]
    assert sorted(np.concatenate(parts).tolist()) == list(range(26))


def test_too_few_projections_named() -> None:
    with pytest.raises(ValueError, match=r"15 projections are too few .* 2 splits.* at least 16"):
        check_split(15, 2)
    check_split(16, 2)


def test_config_errors_name_value() -> None:
    with pytest.raises(ValueError, match="splits"):
        Noise2InverseConfig(splits=1)
    with pytest.raises(ValueError, match="extra"):
        Noise2InverseConfig(split=2)


def test_slices_too_small_for_network(scan: dict[str, np.ndarray]) -> None:
    subs = np.zeros((2, 4, 8, 8), np.float32)
    with pytest.raises(ValueError, match=r"8x8 are too small .* at least 16x16"):
        train_noise2inverse(subs, _config(), progress=False)


def test_denoises_counting_noise(scan: dict[str, np.ndarray]) -> None:
    subs = split_reconstructions(scan["noisy"], ANGLES, 2)
    model = train_noise2inverse(subs, _config(max_iterations=150), device="cpu", progress=False)
    denoised = model(subs)
    raw = reconstruct(scan["noisy"], ANGLES)
    clean = reconstruct(scan["clean"], ANGLES)
    err_raw = float(np.mean((raw - clean) ** 2))
    err_n2i = float(np.mean((denoised - clean) ** 2))
    assert denoised.shape == raw.shape
    assert err_n2i < 0.7 * err_raw
    assert model.use_model  # the gate measured it better than the raw reconstruction
    gate = model.gate
    assert gate["model_error"] < gate["raw_reconstruction_error"]


def test_noise_free_input_comes_out_unchanged(scan: dict[str, np.ndarray]) -> None:
    volume, info, _ = noise2inverse_stage(scan["clean"], ANGLES, 15.5,
                                          options=_config().model_dump(), progress=False)
    plain = reconstruct(scan["clean"], ANGLES, center=15.5)
    assert not info["used"]
    np.testing.assert_allclose(volume, plain, atol=1e-6)


def test_checkpoint_round_trip(scan: dict[str, np.ndarray]) -> None:
    subs = split_reconstructions(scan["noisy"], ANGLES, 2)
    model = train_noise2inverse(subs, _config(max_iterations=5), device="cpu", progress=False)
    again = Noise2InverseDenoiser.from_bytes(model.to_bytes())
    np.testing.assert_allclose(again(subs), model(subs), atol=1e-6)
    assert again.gate == model.gate
    assert again.config == model.config


def test_training_is_deterministic(scan: dict[str, np.ndarray]) -> None:
    subs = split_reconstructions(scan["noisy"], ANGLES, 2)
    a = train_noise2inverse(subs, _config(max_iterations=5), device="cpu", progress=False)
    b = train_noise2inverse(subs, _config(max_iterations=5), device="cpu", progress=False)
    np.testing.assert_array_equal(a(subs), b(subs))


def test_split_reconstructions_errors() -> None:
    with pytest.raises(ValueError, match="splits must be an integer from 2"):
        split_reconstructions(np.zeros((6, 4, 8), np.float32), np.arange(6.0), 4)
