"""VDSR super-resolution: network shapes, training on a blur task, inference, checkpoints."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from scipy.ndimage import gaussian_filter

from lowdose_bluesky.model import VDSR, SRModel, train_vdsr
from lowdose_bluesky.model.ptychonn import PtychoNN, PtychoNNModel

SIGMA = 1.5  # blur of the sharp images, in high-resolution pixels
NOISE = 0.01  # standard deviation of the noise of the low-resolution images
TINY = {"depth": 4, "width": 16}
Trained = tuple[SRModel, dict, list[tuple[int, float, float]]]


def _sharp(rng: np.random.Generator, n: int, size: int) -> np.ndarray:
    """``n`` sharp ``size x size`` images of edges and bar gratings in ``[0, 1.2]``."""
    yy, xx = np.mgrid[:size, :size].astype(np.float64)
    out = np.empty((n, size, size))
    for k in range(n):
        image = np.full((size, size), rng.uniform(0.5, 0.9))
        for _ in range(3):  # straight edges at random angles
            a = rng.uniform(0, 2 * np.pi)
            side = np.cos(a) * (xx - rng.uniform(0, size)) + np.sin(a) * (yy - rng.uniform(0, size))
            image += rng.uniform(-0.25, 0.25) * (side > 0)
        a, period = rng.uniform(0, np.pi), rng.uniform(4, 12)  # bars in a half-plane
        along = np.cos(a) * xx + np.sin(a) * yy
        region = -np.sin(a) * (xx - size / 2) + np.cos(a) * (yy - size / 2) > rng.uniform(-8, 8)
        image -= 0.3 * region * (np.mod(along, period) < period / 2)
        out[k] = image
    return np.clip(out, 0.0, 1.2)


def _pairs(rng: np.random.Generator, n: int, patch: int = 16, factor: int = 2
           ) -> tuple[np.ndarray, np.ndarray]:
    """Sharp images, blurred (sigma 1.5 px), ``factor x factor`` mean-binned and noisy."""
    high = _sharp(rng, n, factor * patch)
    blurred = gaussian_filter(high, sigma=(0, SIGMA, SIGMA))
    low = blurred.reshape(n, patch, factor, patch, factor).mean(axis=(2, 4))
    low += NOISE * rng.standard_normal(low.shape)
    return low.astype(np.float32), high.astype(np.float32)


def _psnr(a: np.ndarray, b: np.ndarray, peak: float) -> float:
    return 10 * math.log10(peak**2 / float(np.mean((a - b) ** 2)))


def _interpolate(frames: np.ndarray, factor: int, mode: str = "bicubic") -> np.ndarray:
    x = torch.from_numpy(np.asarray(frames, np.float32))[:, None]
    return F.interpolate(x, scale_factor=factor, mode=mode, align_corners=False)[:, 0].numpy()


@pytest.fixture(scope="module")
def trained() -> Trained:
    calls: list[tuple[int, float, float]] = []
    model, record = train_vdsr(_pairs, patch=16, epochs=5, steps_per_epoch=20, batch_size=16,
                               validation=32, device="cpu", **TINY,
                               on_epoch=lambda *args: calls.append(args))
    return model, record, calls


# -------------------------------------------------------------------------- network
@pytest.mark.parametrize("factor", [2, 4])
def test_network_output_shape(factor: int) -> None:
    network = VDSR(factor, depth=2, width=8)
    with torch.no_grad():
        out = network(torch.rand(3, 1, 12, 10))
    assert out.shape == (3, 1, 12 * factor, 10 * factor) and out.dtype == torch.float32
    assert len(network.upsample) == 2 * int(math.log2(factor))  # stride-2 stages with ReLU
    with pytest.raises(ValueError, match=r"\(B, 1, H, W\); got \(1, 2, 8, 8\)"):
        network(torch.zeros(1, 2, 8, 8))


@pytest.mark.parametrize("factor", [3, 1, 8, 2.0, True])
def test_bad_factor_is_refused(factor: object) -> None:
    with pytest.raises(ValueError, match=f"factor must be 2 or 4, got {factor!r}"):
        VDSR(factor)  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="factor must be 2 or 4"):
        train_vdsr(_pairs, factor=factor)  # type: ignore[arg-type]


@pytest.mark.parametrize("factor", [2, 4])
@pytest.mark.parametrize("interpolation", ["bilinear", "bicubic"])
def test_new_model_returns_the_interpolated_input(factor: int, interpolation: str) -> None:
    frames = np.random.default_rng(0).uniform(0.0, 1.2, (2, 9, 11)).astype(np.float32)
    network = VDSR(factor, depth=2, width=8, interpolation=interpolation)
    model = SRModel(network, offset=0.3, scale=0.5)
    expected = _interpolate(frames, factor, interpolation)
    for dtype in ("float32", "bfloat16"):  # the correction starts at zero
        np.testing.assert_allclose(model.predict(frames, dtype=dtype), expected, atol=1e-5)
    with pytest.raises(ValueError, match="unknown interpolation 'nearest'"):
        VDSR(factor, interpolation="nearest")


# ------------------------------------------------------------------------- training
def test_training_beats_bicubic_on_held_out_images(trained: Trained) -> None:
    model, record, _ = trained
    assert record["validation_psnr"] > record["validation_psnr_bicubic"] + 0.5
    low, high = _pairs(np.random.default_rng(1234), 4, patch=48)
    peak = float(high.max() - high.min())
    network = _psnr(model.predict(low, dtype="float32"), high, peak)
    bicubic = _psnr(_interpolate(low, 2), high, peak)
    assert network > bicubic + 0.5


def test_training_record_keeps_the_best_epoch(trained: Trained) -> None:
    model, record, calls = trained
    history = record["history"]
    assert record["epochs"] == len(history) == len(calls) == 5
    assert record["steps"] == 100 and record["stopped_by"] == "epochs"
    assert [c[0] for c in calls] == list(range(1, 6))
    val_losses = [h["val_loss"] for h in history]
    assert record["best_validation_loss"] == min(val_losses)
    assert record["best_epoch"] == 1 + int(np.argmin(val_losses))
    assert record["validation_psnr"] == history[record["best_epoch"] - 1]["val_psnr"]
    assert history[-1]["lr"] < 0.1 * history[0]["lr"] < 1e-3  # cosine decay
    assert record["parameters"] == model.parameters_count
    assert model.settings == record["settings"] and model.factor == 2
    assert 0 < record["scale"] < 1.5 and 0 <= record["offset"] < 1
    assert model.history[0]["kind"] == "train"


def test_training_is_deterministic() -> None:
    options = {"patch": 8, "epochs": 2, "steps_per_epoch": 3, "batch_size": 4,
               "validation": 4, "depth": 2, "width": 4, "seed": 5, "device": "cpu"}
    first, _ = train_vdsr(lambda rng, n: _pairs(rng, n, 8), **options)
    second, _ = train_vdsr(lambda rng, n: _pairs(rng, n, 8), **options)
    for a, b in zip(first.network.state_dict().values(), second.network.state_dict().values(),
                    strict=True):
        assert torch.equal(a, b)


def test_max_seconds_and_stop_requested() -> None:
    options = {"patch": 8, "batch_size": 4, "validation": 4, "depth": 2, "width": 4,
               "device": "cpu"}
    _, record = train_vdsr(lambda rng, n: _pairs(rng, n, 8), epochs=100_000, max_seconds=0.3,
                           **options)
    assert record["stopped_by"] == "max_seconds" and record["seconds"] < 3.0
    polls = iter([False, True])
    _, record = train_vdsr(lambda rng, n: _pairs(rng, n, 8), epochs=50, steps_per_epoch=10,
                           stop_requested=lambda: next(polls), **options)
    assert record["stopped_by"] == "stop_requested"
    assert record["epochs"] == 1 and record["steps"] == 2


def test_bad_pairs_fn_output_is_named() -> None:
    def pairs_of(low: object, high: object) -> object:
        return lambda rng, n: (low, high)

    ok_low, ok_high = np.zeros((4, 8, 8)), np.zeros((4, 16, 16))
    opts = {"patch": 8, "validation": 4, "batch_size": 4, "device": "cpu"}
    with pytest.raises(ValueError, match=r"low patches of shape \(4, 6, 6\); expected "
                                         r"\(4, 8, 8\) \(n=4, patch=8, factor=2\)"):
        train_vdsr(pairs_of(np.zeros((4, 6, 6)), ok_high), **opts)
    with pytest.raises(ValueError, match=r"high patches of shape \(4, 8, 8\); expected"):
        train_vdsr(pairs_of(ok_low, ok_low), **opts)
    bad = ok_high.copy()
    bad[0, 0, 0] = np.nan
    with pytest.raises(ValueError, match="high patches contains 1 NaN and 0 infinite"):
        train_vdsr(pairs_of(ok_low, bad), **opts)
    with pytest.raises(ValueError, match="must return a \\(low, high\\) pair of arrays; got "
                                         "ndarray"):
        train_vdsr(lambda rng, n: ok_low, **opts)
    with pytest.raises(ValueError, match="low patches of dtype complex128"):
        train_vdsr(pairs_of(ok_low.astype(complex), ok_high), **opts)
    with pytest.raises(ValueError, match="pairs_fn must be callable"):
        train_vdsr(None, **opts)  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="unknown loss 'ssim'"):
        train_vdsr(_pairs, loss="ssim")
    with pytest.raises(ValueError, match="weight_decay must be a finite number >= 0; got -1"):
        train_vdsr(_pairs, weight_decay=-1)


# ------------------------------------------------------------------------ inference
def test_predict_accepts_one_frame_or_a_stack(trained: Trained) -> None:
    model = trained[0]
    frames = _pairs(np.random.default_rng(7), 3, patch=20)[0]
    stack = model.predict(frames, dtype="float32")
    assert stack.shape == (3, 40, 40) and stack.dtype == np.float32
    one = model.predict(frames[1], dtype="float32")
    assert one.shape == (40, 40)
    np.testing.assert_allclose(one, stack[1], atol=1e-6)
    np.testing.assert_allclose(model.predict(frames, batch_size=1, dtype="float32"), stack,
                               atol=1e-6)
    x4 = SRModel(VDSR(4, depth=2, width=4)).predict(frames[0].astype(np.float64))
    assert x4.shape == (80, 80) and x4.dtype == np.float32


def test_bfloat16_changes_little(trained: Trained) -> None:
    model = trained[0]
    frames = _pairs(np.random.default_rng(8), 2, patch=32)[0]
    exact = model.predict(frames, dtype="float32")
    fast = model.predict(frames, dtype="bfloat16")
    assert 0 < np.abs(fast - exact).max() < 0.02
    assert model.inference_dtype("bfloat16") == torch.bfloat16
    assert model.inference_dtype("auto") in (torch.bfloat16, torch.float32)


def test_predict_input_errors_name_what_was_received(trained: Trained) -> None:
    model = trained[0]
    with pytest.raises(ValueError, match=r"frames must be one frame \(H, W\) or a stack .* "
                                         r"got an array of shape \(2, 1, 8, 8\)"):
        model.predict(np.zeros((2, 1, 8, 8)))
    with pytest.raises(ValueError, match=r"got an array of shape \(8,\)"):
        model.predict(np.zeros(8))
    bad = np.ones((2, 8, 8))
    bad[1, 2, 3], bad[0, 0, 0] = np.inf, np.nan
    with pytest.raises(ValueError, match="frames contains 1 NaN and 1 infinite values"):
        model.predict(bad)
    with pytest.raises(ValueError, match=r"frames must hold real numbers .* got dtype complex"):
        model.predict(np.ones((8, 8), complex))
    with pytest.raises(ValueError, match="unknown dtype 'float16'"):
        model.predict(np.ones((8, 8)), dtype="float16")
    with pytest.raises(ValueError, match="batch_size must be a positive integer"):
        model.predict(np.ones((8, 8)), batch_size=0)


# ---------------------------------------------------------------------- checkpoints
def test_checkpoint_round_trip_gives_identical_outputs(trained: Trained) -> None:
    model = trained[0]
    restored = SRModel.from_bytes(model.to_bytes())
    assert restored.settings == model.settings and restored.history == model.history
    frames = _pairs(np.random.default_rng(9), 2, patch=24)[0]
    for dtype in ("float32", "bfloat16"):
        np.testing.assert_array_equal(restored.predict(frames, dtype=dtype),
                                      model.predict(frames, dtype=dtype))
    x4 = SRModel(VDSR(4, depth=2, width=4, up_width=2, interpolation="bicubic"), offset=0.1,
                 scale=2.0)
    assert SRModel.from_bytes(x4.to_bytes()).settings == x4.settings


def test_checkpoint_of_another_model_is_refused() -> None:
    other = PtychoNNModel(PtychoNN(size=8, channels=(2,))).to_bytes()
    with pytest.raises(ValueError, match="VDSR checkpoint: holds a 'ptychonn' model"):
        SRModel.from_bytes(other)
    with pytest.raises(ValueError, match=r"VDSR checkpoint: .*pickle"):
        SRModel.from_bytes(b"\x80\x04" + bytes(20))
    with pytest.raises(ValueError, match="network must be a VDSR; got PtychoNN"):
        SRModel(PtychoNN(size=8, channels=(2,)))  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="scale must be a finite number > 0; got 0"):
        SRModel(VDSR(2, depth=1, width=2), scale=0)
