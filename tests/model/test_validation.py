"""Bad input raises ValueError saying what was received and what is allowed."""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest

from lowdose_bluesky.model import Enhancer, train_enhancer


def _train(low: Any, high: Any, **kwargs: Any) -> Enhancer:
    kwargs.setdefault("progress", False)
    kwargs.setdefault("epochs", 1)
    kwargs.setdefault("max_patches", 8)
    kwargs.setdefault("device", "cpu")
    return train_enhancer(low, high, **kwargs)


def test_shape_mismatch(pairs: tuple) -> None:
    low, high = pairs
    with pytest.raises(
        ValueError, match=r"same shape; got low \(2, 48, 48\) and high \(1, 48, 48\)"
    ):
        _train(low, high[:1])
    with pytest.raises(ValueError, match="same shape"):
        _train(low[:, :40], high)


def test_no_pairs() -> None:
    empty = np.zeros((0, 48, 48))
    with pytest.raises(ValueError, match=r"low holds no frames \(K = 0"):
        _train(empty, empty)


@pytest.mark.parametrize("shape", [(48,), (1, 2, 48, 48)])
def test_wrong_number_of_dimensions(shape: tuple) -> None:
    data = np.zeros(shape)
    with pytest.raises(ValueError, match=r"\(H, W\) or a stack of frames \(K, H, W\); got"):
        _train(data, data)


def test_non_numeric_input() -> None:
    data = np.full((1, 48, 48), "a")
    with pytest.raises(ValueError, match="real numbers"):
        _train(data, data)


@pytest.mark.parametrize("bad", [np.nan, np.inf, -np.inf])
def test_non_finite_inputs(pairs: tuple, bad: float, unet: Enhancer) -> None:
    low, high = pairs
    low, high = low.copy(), high.copy()
    low[0, 3, 4] = bad
    with pytest.raises(ValueError, match=r"low contains .* only finite values are allowed"):
        _train(low, high)
    with pytest.raises(ValueError, match="high contains"):
        _train(high, low)
    with pytest.raises(ValueError, match="frames contains"):
        unet(low)


def test_frames_smaller_than_the_patch(pairs: tuple) -> None:
    low, high = pairs
    with pytest.raises(ValueError, match=r"frames of 20x48 are smaller than the 32x32 patch"):
        _train(low[:, :20], high[:, :20], arch="yang2018")
    small = _train(low[:, :20], high[:, :20], arch="unet")  # fully convolutional: fine
    assert small.config["patch_size"] == 20


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"arch": "resnet"}, r"unknown arch 'resnet'; allowed: 'unet', 'yang2018'"),
        ({"loss": "ssim"}, r"unknown loss 'ssim'; allowed: 'inverse_psnr', 'mse', 'l1'"),
        ({"device": "tpu"}, r"unknown device 'tpu'|unsupported device 'tpu'"),
        ({"device": 3}, r"unknown device 3"),
        ({"epochs": 0}, r"epochs must be a positive integer \(>= 1\); got 0"),
        ({"epochs": 2.5}, r"epochs must be a positive integer"),
        ({"batch_size": -1}, r"batch_size must be a positive integer"),
        ({"lr": 0}, r"lr must be a finite number > 0; got 0"),
        ({"lr": -1e-3}, r"lr must be a finite number > 0"),
        ({"lr": float("nan")}, r"lr must be a finite number > 0"),
        ({"val_fraction": 1.0}, r"val_fraction must be a number in \[0, 1\)"),
        ({"patience": 0}, r"patience must be a positive integer"),
        ({"max_patches": 0}, r"max_patches must be a positive integer"),
        ({"max_seconds": 0}, r"max_seconds must be a finite number > 0"),
        ({"seed": -1}, r"seed must be a non-negative integer"),
        ({"init": 42}, r"init must be an Enhancer"),
        ({"arch": "yang2018", "patch_size": 20}, r"multiple of 8"),
        ({"network_options": {"width": 2}}, r"unknown option\(s\)"),
        ({"stop_requested": True}, r"stop_requested must be a callable or None; got True"),
        ({"on_epoch": "plot"}, r"on_epoch must be a callable or None; got 'plot'"),
    ],
)
def test_bad_arguments(pairs: tuple, kwargs: dict, message: str) -> None:
    low, high = pairs
    with pytest.raises(ValueError, match=message):
        _train(low, high, **kwargs)


def test_cuda_requested_without_cuda(pairs: tuple) -> None:
    import torch

    if torch.cuda.is_available():
        pytest.skip("CUDA is available here")
    with pytest.raises(ValueError, match="CUDA is not available"):
        _train(*pairs, device="cuda")


def test_fine_tune_mismatches(yang: Enhancer, pairs: tuple) -> None:
    low, high = pairs
    with pytest.raises(ValueError, match="cannot fine-tune a 'yang2018' Enhancer as arch 'unet'"):
        _train(low, high, arch="unet", init=yang)
    with pytest.raises(ValueError, match="patch_size 32 differs"):
        _train(low, high, patch_size=32, init=yang)


def test_bad_inference_arguments(enhancer: Enhancer, pairs: tuple) -> None:
    low, _ = pairs
    with pytest.raises(ValueError, match="batch_size must be a positive integer"):
        enhancer(low, batch_size=0)
    with pytest.raises(ValueError, match="frames holds no frames"):
        enhancer(low[:0])
    with pytest.raises(ValueError, match="got an array of shape"):
        enhancer(low[0, 0])


def test_bad_inference_stride(yang: Enhancer, pairs: tuple) -> None:
    with pytest.raises(ValueError, match="stride must be <= patch_size=16; got 17"):
        yang(pairs[0], stride=17)
    with pytest.raises(ValueError, match="stride must be a positive integer"):
        yang(pairs[0], stride=0)
