"""Training and inference with real tiny models."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from lowdose_bluesky.model import Enhancer, fine_tune, train_enhancer

from .conftest import PairMaker

HISTORY_KEYS = {"epoch", "train_loss", "val_loss", "val_psnr", "seconds"}


def _psnr(a: np.ndarray, b: np.ndarray) -> float:
    return float(10 * np.log10(1.0 / np.mean((a - b) ** 2)))


def test_stack_and_single_frame_shapes(enhancer: Enhancer, pairs: tuple) -> None:
    low, _ = pairs
    out = enhancer(low)
    assert out.shape == low.shape and out.dtype == np.float32
    single = enhancer(low[0])
    assert single.shape == low[0].shape and single.dtype == np.float32
    np.testing.assert_allclose(single, out[0], rtol=1e-5, atol=1e-5)
    np.testing.assert_allclose(enhancer(low, batch_size=1), out, rtol=1e-5, atol=1e-5)


@pytest.mark.parametrize("shape", [(48, 48), (37, 61), (70, 19), (7, 5), (1, 1)])
def test_any_frame_size(enhancer: Enhancer, shape: tuple) -> None:
    frames = np.random.default_rng(0).random((2, *shape))
    out = enhancer(frames)
    assert out.shape == frames.shape and out.dtype == np.float32
    assert np.isfinite(out).all()


def test_integer_input_is_accepted(unet: Enhancer) -> None:
    frames = (np.random.default_rng(0).random((2, 20, 20)) * 1000).astype(np.uint16)
    assert unet(frames).dtype == np.float32


def test_history_and_config(enhancer: Enhancer) -> None:
    history = enhancer.history
    assert len(history) == 1 and set(history[0]) == HISTORY_KEYS
    assert history[0]["epoch"] == 1 and history[0]["seconds"] > 0
    config = enhancer.config
    assert config["arch"] == enhancer.arch
    assert config["n_train_patches"] > 0 and config["n_val_patches"] > 0
    assert config["stopped"] == "epochs"
    config["arch"] = "changed"
    assert enhancer.config["arch"] == enhancer.arch  # a copy
    assert set(enhancer.normalisation.to_dict()) >= {"low_offset", "low_scale", "high_scale"}


def test_seeded_training_is_deterministic(pairs: tuple) -> None:
    low, high = pairs
    kwargs = dict(
        arch="yang2018",
        patch_size=16,
        epochs=2,
        max_patches=64,
        progress=False,
        device="cpu",
        network_options={"filters": 4},
    )
    state = torch.get_rng_state()
    a = train_enhancer(low, high, seed=3, **kwargs)
    b = train_enhancer(low, high, seed=3, **kwargs)
    c = train_enhancer(low, high, seed=4, **kwargs)
    assert torch.equal(state, torch.get_rng_state())  # the global RNG is left alone
    for key, value in a.network.state_dict().items():
        assert torch.equal(value, b.network.state_dict()[key])
    assert [h["train_loss"] for h in a.history] == [h["train_loss"] for h in b.history]
    np.testing.assert_array_equal(a(low), b(low))
    assert not np.array_equal(a(low), c(low))


def test_training_improves_psnr_on_a_denoising_task(make_pairs: PairMaker) -> None:
    low, high = make_pairs(2, sigma=0.3)
    test_low, test_high = make_pairs(3, sigma=0.3, seed=1)
    enhancer = train_enhancer(
        low,
        high,
        arch="unet",
        epochs=3,
        lr=3e-3,
        progress=False,
        device="cpu",
        network_options={"base_channels": 8},
    )
    before = _psnr(test_low, test_high)
    after = _psnr(enhancer(test_low), test_high)
    assert after > before + 1.0, (before, after)
    assert enhancer.history[-1]["val_psnr"] > enhancer.config["baseline_val_psnr"]


def test_yang2018_improves_psnr_on_a_denoising_task(make_pairs: PairMaker) -> None:
    low, high = make_pairs(2, sigma=0.3)
    test_low, test_high = make_pairs(3, sigma=0.3, seed=1)
    enhancer = train_enhancer(
        low, high, arch="yang2018", patch_size=16, epochs=3, progress=False, device="cpu"
    )
    assert _psnr(enhancer(test_low), test_high) > _psnr(test_low, test_high) + 0.5


def test_outputs_are_in_the_units_of_high(make_pairs: PairMaker) -> None:
    low, high = make_pairs(2, sigma=0.05)
    counts_low, counts_high = 100 + 500 * low, 1000 + 5000 * high
    enhancer = train_enhancer(
        counts_low, counts_high, epochs=2, progress=False, device="cpu", lr=3e-3
    )
    out = enhancer(counts_low)
    assert abs(np.median(out) - np.median(counts_high)) < 0.1 * np.ptp(counts_high)


def test_early_stopping_and_time_budget(pairs: tuple) -> None:
    low, high = pairs
    kwargs = dict(
        arch="unet",
        max_patches=32,
        progress=False,
        device="cpu",
        network_options={"base_channels": 4},
    )
    stopped = train_enhancer(low, high, epochs=50, patience=1, lr=1e-2, **kwargs)
    assert stopped.config["stopped"] == "early_stopping" and len(stopped.history) < 50
    best = stopped.config["best_epoch"]
    assert stopped.history[best - 1]["val_psnr"] == max(h["val_psnr"] for h in stopped.history)
    timed = train_enhancer(low, high, epochs=50, max_seconds=1e-3, **kwargs)
    assert timed.config["stopped"] == "max_seconds" and len(timed.history) == 1


def test_stop_request_and_epoch_hook(pairs: tuple) -> None:
    low, high = pairs
    records: list[dict] = []
    calls = {"n": 0}

    def stop_after_three_batches() -> bool:
        calls["n"] += 1
        return calls["n"] >= 3

    enhancer = train_enhancer(
        low, high, arch="unet", epochs=50, batch_size=4, max_patches=64, progress=False,
        device="cpu", network_options={"base_channels": 4},
        stop_requested=stop_after_three_batches, on_epoch=records.append,
    )
    assert enhancer.config["stopped"] == "requested"
    assert calls["n"] == 3 and len(enhancer.history) == 1
    assert records == enhancer.history and records[0]["epoch"] == 1


def test_without_validation(pairs: tuple) -> None:
    low, high = pairs
    enhancer = train_enhancer(
        low, high, epochs=2, val_fraction=0, max_patches=32, progress=False, device="cpu"
    )
    assert enhancer.config["split"] == "none"
    assert [h["val_psnr"] for h in enhancer.history] == [None, None]
    assert enhancer.config["best_epoch"] == 2


@pytest.mark.parametrize("loss", ["mse", "l1", "inverse_psnr"])
def test_losses(pairs: tuple, loss: str) -> None:
    low, high = pairs
    enhancer = train_enhancer(
        low[:1], high[:1], loss=loss, epochs=1, max_patches=32, progress=False, device="cpu"
    )
    assert enhancer.config["loss"] == loss and np.isfinite(enhancer.history[0]["train_loss"])


def test_fine_tune_returns_a_new_enhancer(yang: Enhancer, pairs: tuple) -> None:
    low, high = pairs
    before = {k: v.clone() for k, v in yang.network.state_dict().items()}
    tuned = fine_tune(yang, low[::-1], high[::-1], epochs=1)
    assert tuned is not yang and tuned.arch == "yang2018" and tuned.patch_size == 16
    assert [h["epoch"] for h in tuned.history] == [1, 2]
    assert tuned.config["fine_tuned"] is True
    for key, value in yang.network.state_dict().items():
        assert torch.equal(value, before[key])  # the original is untouched
    from_bytes = train_enhancer(low, high, init=yang.to_bytes(), epochs=1, progress=False)
    assert from_bytes.arch == "yang2018"


def test_progress_bar_runs(pairs: tuple, capsys: pytest.CaptureFixture[str]) -> None:
    low, high = pairs
    train_enhancer(low, high, epochs=1, max_patches=16, progress=True, device="cpu")
    assert "train unet" in capsys.readouterr().err
