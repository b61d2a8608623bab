"""PtychoNN: network shapes and ranges, normalisation, training, checkpoints, fine-tuning."""

from __future__ import annotations

import io
import math

import numpy as np
import pytest
import torch

from lowdose_bluesky.model.ptychonn import (
    FAST_CHANNELS,
    PAPER_CHANNELS,
    PtychoNN,
    PtychoNNModel,
    normalise_patterns,
    train_ptychonn,
)

SIZE = 32
TINY = (4, 8)
Data = tuple[np.ndarray, np.ndarray, np.ndarray]


def _smooth(rng: np.random.Generator, n: int, sigma: float) -> np.ndarray:
    """``n`` smooth random SIZE x SIZE images scaled to [0, 1]."""
    f = np.fft.fftfreq(SIZE)
    kernel = np.exp(-2 * (np.pi * sigma) ** 2 * (f[:, None] ** 2 + f[None, :] ** 2))
    out = np.fft.ifft2(np.fft.fft2(rng.standard_normal((n, SIZE, SIZE))) * kernel).real
    out -= out.min(axis=(1, 2), keepdims=True)
    return out / out.max(axis=(1, 2), keepdims=True)


def _ptycho_data(n: int, seed: int = 0, dose: float = 1e4) -> Data:
    """Counts ``|FFT(probe * patch)|^2`` (Poisson) with the patch amplitude and phase."""
    rng = np.random.default_rng(seed)
    amplitude = 0.4 + 0.6 * _smooth(rng, n, 2.0)
    phase = 0.8 * math.pi * (2 * _smooth(rng, n, 2.0) - 1)
    yy, xx = np.mgrid[:SIZE, :SIZE] - SIZE / 2 + 0.5
    probe = np.exp(-(yy**2 + xx**2) / (2 * (SIZE / 4) ** 2))
    far = np.abs(np.fft.fftshift(np.fft.fft2(probe * amplitude * np.exp(1j * phase)),
                                 axes=(1, 2))) ** 2
    counts = rng.poisson(far / far.sum(axis=(1, 2), keepdims=True) * dose)
    return counts.astype(np.float32), amplitude.astype(np.float32), phase.astype(np.float32)


@pytest.fixture(scope="module")
def data() -> Data:
    return _ptycho_data(64)


@pytest.fixture(scope="module")
def trained(data: Data) -> tuple[PtychoNNModel, dict, list[tuple[int, float, float]]]:
    calls: list[tuple[int, float, float]] = []
    model, record = train_ptychonn(*data, epochs=8, channels=(8, 16), batch_size=16,
                                   validation_fraction=0.25,
                                   on_epoch=lambda *args: calls.append(args))
    return model, record, calls


# -------------------------------------------------------------------------- network
@pytest.mark.parametrize("phase_only", [False, True])
def test_forward_shapes_and_ranges(phase_only: bool) -> None:
    torch.manual_seed(0)
    network = PtychoNN(size=SIZE, channels=TINY, phase_only=phase_only)
    x = 50 * torch.randn(3, 1, SIZE, SIZE)  # large inputs drive the heads to saturation
    with torch.no_grad():
        amplitude, phase = network(x)
    assert phase.shape == (3, 1, SIZE, SIZE)
    assert float(phase.min()) >= -math.pi and float(phase.max()) <= math.pi
    if phase_only:
        assert amplitude is None
    else:
        assert amplitude is not None and amplitude.shape == (3, 1, SIZE, SIZE)
        assert float(amplitude.min()) >= 0.0 and float(amplitude.max()) <= 1.0


def test_parameter_counts() -> None:
    def count(network: PtychoNN) -> int:
        return sum(p.numel() for p in network.parameters())

    assert count(PtychoNN()) == 1_154_210  # the published network, two heads
    assert count(PtychoNN(phase_only=True)) == 720_321  # PtychoNN 2.0 size, ~0.7 M
    assert count(PtychoNN(channels=FAST_CHANNELS)) == 289_106
    assert PAPER_CHANNELS == (32, 64, 128)


def test_size_must_be_a_multiple_of_the_pooling() -> None:
    with pytest.raises(ValueError, match=r"size must be a positive multiple of .* = 8 .*size 36"):
        PtychoNN(size=36, channels=(8, 16, 32))
    with pytest.raises(ValueError, match="channels must be a non-empty sequence"):
        PtychoNN(channels=())
    with pytest.raises(ValueError, match=r"\(B, 1, H, W\)"):
        PtychoNN(size=SIZE, channels=TINY)(torch.zeros(1, 2, SIZE, SIZE))


# -------------------------------------------------------------------- normalisation
@pytest.mark.parametrize("scale", ["rms", "max"])
def test_normalisation_removes_the_dose(scale: str) -> None:
    counts = np.random.default_rng(1).poisson(20.0, (3, 8, 8)).astype(np.float32)
    x = normalise_patterns(counts, scale=scale)
    assert x.dtype == np.float32 and x.shape == counts.shape
    np.testing.assert_allclose(normalise_patterns(100 * counts, scale=scale), x, rtol=1e-5)
    if scale == "rms":
        np.testing.assert_allclose(np.sqrt((x**2).mean(axis=(1, 2))), 1.0, rtol=1e-5)
    else:
        np.testing.assert_allclose(x.max(axis=(1, 2)), 1.0, rtol=1e-6)
    np.testing.assert_allclose(normalise_patterns(counts[0], scale=scale), x[0])


def test_normalisation_of_empty_and_bad_patterns() -> None:
    assert not normalise_patterns(np.zeros((2, 4, 4), np.uint16)).any()
    with pytest.raises(ValueError, match="non-negative photon counts; got a minimum of -1"):
        normalise_patterns(-np.ones((1, 4, 4)))
    with pytest.raises(ValueError, match="1 NaN or infinite"):
        normalise_patterns(np.array([[[np.nan, 1.0], [1.0, 1.0]]]))
    with pytest.raises(ValueError, match="unknown scale 'l1'"):
        normalise_patterns(np.ones((1, 4, 4)), scale="l1")


# ------------------------------------------------------------------------- training
def test_training_reduces_loss_and_keeps_best_weights(
        trained: tuple[PtychoNNModel, dict, list], data: Data) -> None:
    model, record, calls = trained
    history = record["history"]
    assert record["epochs"] == len(history) == len(calls) == 8
    assert [c[0] for c in calls] == list(range(1, 9))
    assert history[-1]["train_loss"] < 0.95 * history[0]["train_loss"]
    assert record["n_train"] == 48 and record["n_validation"] == 16
    assert record["parameters"] == model.parameters_count
    assert record["stopped_by"] == "epochs"
    val_losses = [c[2] for c in calls]
    assert record["best_validation_loss"] == pytest.approx(min(val_losses))
    assert record["best_epoch"] == 1 + int(np.argmin(val_losses))
    # the returned weights are those of the best epoch: recompute their validation loss
    held = np.asarray(record["validation_indices"])
    counts, amplitude, phase = (a[held] for a in data)
    model.precision = "float32"
    pred_amp, pred_phase = model.predict(counts)
    loss = np.abs(pred_amp - amplitude).mean() + np.abs(pred_phase - phase).mean()
    assert loss == pytest.approx(record["best_validation_loss"], rel=1e-4)


def test_predict_shapes_ranges_and_batches(trained: tuple[PtychoNNModel, dict, list],
                                           data: Data) -> None:
    model = trained[0]
    amplitude, phase = model.predict(data[0][:10], batch_size=4)
    assert amplitude is not None
    assert amplitude.shape == phase.shape == (10, SIZE, SIZE)
    assert amplitude.dtype == phase.dtype == np.float32
    assert amplitude.min() >= 0 and amplitude.max() <= 1
    assert phase.min() >= -math.pi and phase.max() <= math.pi
    whole = model.predict(data[0][:10], batch_size=256)
    np.testing.assert_allclose(whole[1], phase, atol=2e-2)
    one_amp, one_phase = model.predict(data[0][3])
    assert one_amp is not None and one_phase.shape == (SIZE, SIZE)
    with pytest.raises(ValueError, match=r"must be 32x32 for this model; got shape \(2, 16, 16\)"):
        model.predict(np.ones((2, 16, 16)))


def test_phase_only_training_and_prediction(data: Data) -> None:
    model, record = train_ptychonn(data[0][:16], None, data[2][:16], phase_only=True,
                                   epochs=1, channels=TINY)
    amplitude, phase = model.predict(data[0][:3])
    assert amplitude is None and phase.shape == (3, SIZE, SIZE)
    assert model.phase_only and record["parameters"] == model.parameters_count


def test_training_is_deterministic(data: Data) -> None:
    first, _ = train_ptychonn(*(a[:24] for a in data), epochs=2, channels=TINY, seed=3)
    second, _ = train_ptychonn(*(a[:24] for a in data), epochs=2, channels=TINY, seed=3)
    for a, b in zip(first.network.state_dict().values(), second.network.state_dict().values(),
                    strict=True):
        assert torch.equal(a, b)


def test_max_seconds_and_stop_requested(data: Data) -> None:
    _, record = train_ptychonn(*data, epochs=100_000, max_seconds=0.3, channels=TINY,
                               batch_size=8)
    assert record["stopped_by"] == "max_seconds"
    assert record["seconds"] < 3.0
    polls = iter([False, True])
    _, record = train_ptychonn(*data, epochs=50, channels=TINY, batch_size=8,
                               stop_requested=lambda: next(polls))
    assert record["stopped_by"] == "stop_requested" and record["epochs"] == 1
    assert record["history"][0]["patterns"] == 16  # two batches ran


def test_training_input_errors_name_what_was_received(data: Data) -> None:
    counts, amplitude, phase = (a[:4] for a in data)
    with pytest.raises(ValueError, match=r"phase labels must have the shape .* got \(3, 32, 32\)"):
        train_ptychonn(counts, amplitude, phase[:3])
    with pytest.raises(ValueError, match=r"amplitude labels must have the shape"):
        train_ptychonn(counts, amplitude[:, :16], phase)
    with pytest.raises(ValueError, match=r"at least 2 patterns to train.*got 1"):
        train_ptychonn(counts[:1], amplitude[:1], phase[:1])
    bad = counts.copy()
    bad[0, 0, 0] = np.inf
    with pytest.raises(ValueError, match="patterns holds 1 NaN or infinite"):
        train_ptychonn(bad, amplitude, phase)
    with pytest.raises(ValueError, match="non-negative photon counts; got a minimum of -3"):
        train_ptychonn(counts - 3, amplitude, phase)
    with pytest.raises(ValueError, match=r"amplitude labels must lie in \[0, 1\].*got values"):
        train_ptychonn(counts, 2 * amplitude, phase)
    with pytest.raises(ValueError, match=r"phase labels must lie in \[-3.14159, 3.14159\]"):
        train_ptychonn(counts, amplitude, 2 * phase)
    with pytest.raises(ValueError, match="amplitude labels are None"):
        train_ptychonn(counts, None, phase)
    with pytest.raises(ValueError, match="epochs must be a positive integer"):
        train_ptychonn(counts, amplitude, phase, epochs=0)
    with pytest.raises(ValueError, match="validation_fraction must be a number in"):
        train_ptychonn(counts, amplitude, phase, validation_fraction=1.0)
    with pytest.raises(ValueError, match=r"multiple of 2\*\*len\(channels\) = 8 .* size 28"):
        train_ptychonn(counts[:, :28, :28], amplitude[:, :28, :28], phase[:, :28, :28],
                       channels=(4, 8, 16))
    with pytest.raises(ValueError, match="patterns must be square; got 32x16"):
        train_ptychonn(counts[:, :, :16], amplitude[:, :, :16], phase[:, :, :16])


# ---------------------------------------------------------------------- checkpoints
def test_checkpoint_round_trip_gives_identical_predictions(
        trained: tuple[PtychoNNModel, dict, list], data: Data) -> None:
    model = trained[0]
    model.precision = "float32"
    restored = PtychoNNModel.from_bytes(model.to_bytes())
    assert restored.settings == model.settings
    assert restored.precision == "float32" and restored.history == model.history
    for a, b in zip(model.predict(data[0][:8]), restored.predict(data[0][:8]), strict=True):
        np.testing.assert_array_equal(a, b)
    assert PtychoNNModel.from_bytes(model.to_bytes(), precision="bfloat16").precision == (
        "bfloat16")


def test_checkpoint_refuses_pickles() -> None:
    buffer = io.BytesIO()
    torch.save(PtychoNN(size=SIZE, channels=TINY).state_dict(), buffer)
    with pytest.raises(ValueError, match="pickle"):
        PtychoNNModel.from_bytes(buffer.getvalue())


# ---------------------------------------------------------------------- fine-tuning
def test_fine_tune_changes_weights_and_keeps_shapes(data: Data) -> None:
    model, _ = train_ptychonn(*(a[:32] for a in data), epochs=1, channels=TINY)
    assert model.replay_size == 32
    before = {k: v.clone() for k, v in model.network.state_dict().items()}
    new = _ptycho_data(12, seed=5)
    record = model.fine_tune(*new, epochs=2)
    assert record["n_new"] == 12 and record["n_replayed"] == 12
    assert record["n_train"] + record["n_validation"] == 24
    after = model.network.state_dict()
    assert any(not torch.equal(before[k], after[k]) for k in before)
    assert {k: v.shape for k, v in after.items()} == {k: v.shape for k, v in before.items()}
    amplitude, phase = model.predict(new[0])
    assert amplitude is not None and phase.shape == (12, SIZE, SIZE)
    assert model.replay_size == 44
    assert [h["kind"] for h in model.history] == ["train", "fine_tune"]
    no_replay = model.fine_tune(*new, epochs=1, replay=False)
    assert no_replay["n_replayed"] == 0
    with pytest.raises(ValueError, match="must be 32x32 for this model"):
        model.fine_tune(new[0][:, :16, :16], new[1][:, :16, :16], new[2][:, :16, :16])
