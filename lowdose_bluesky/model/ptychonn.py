"""PtychoNN: the object patch under the beam straight from one diffraction pattern.

After Cherukara et al., Appl. Phys. Lett. 117, 044103 (2020), and PtychoNN 2.0 (Babu et
al., Nat. Commun. 14, 7059, 2023). A convolutional encoder reads one far-field
diffraction pattern (``size x size`` pixels); one decoder predicts the amplitude of the
object patch under the beam (sigmoid, ``[0, 1]``), another its phase (``pi * tanh``,
``[-pi, pi]``). The phase-only variant drops the amplitude decoder (PtychoNN 2.0). The
network is trained with an L1 loss on labels from iterative reconstructions and can keep
learning during a scan (:meth:`PtychoNNModel.fine_tune`) as new labels arrive.

Each encoder level is two 3x3 convolutions with ReLU and a 2x2 max-pool; each decoder
level two 3x3 convolutions with ReLU and a 2x bilinear up-sampling; a last 3x3
convolution gives one channel. With ``channels=(32, 64, 128)`` (the paper's network) it
has 1.15 M parameters, 0.72 M phase-only.

Inference speed: on a CPU the network runs in channels-last memory layout and, where the
CPU computes bfloat16 natively (AVX512-BF16 or AMX), in bfloat16 (``precision="auto"``).
:func:`train_ptychonn` builds the narrower ``channels=(16, 32, 64)``
(:data:`FAST_CHANNELS`, 0.29 M parameters, 0.18 M phase-only) by default, which keeps
batched CPU inference of 64x64 patterns in the 1000 patterns/s range; pass
``channels=PAPER_CHANNELS`` for the published width.

Examples
--------
>>> model, record = train_ptychonn(counts, amplitude, phase, epochs=30)
>>> amp, ph = model.predict(new_counts)             # (N, 64, 64) float32 each
>>> model.fine_tune(more_counts, more_amplitude, more_phase, epochs=5)
>>> same = PtychoNNModel.from_bytes(model.to_bytes())
"""

from __future__ import annotations

import copy
import math
import time
from collections.abc import Callable, Sequence
from numbers import Integral
from typing import Any

import numpy as np
import torch
from torch import nn

from ._checks import (
    check_choice,
    check_fraction,
    check_positive_float,
    check_positive_int,
)
from .checkpoint import json_safe, package_version, read_checkpoint, write_checkpoint
from .runtime import resolve_device, seeded

__all__ = [
    "FAST_CHANNELS",
    "NORMALISATIONS",
    "PAPER_CHANNELS",
    "PRECISIONS",
    "PtychoNN",
    "PtychoNNModel",
    "normalise_patterns",
    "train_ptychonn",
]

#: Encoder widths of the published network (decoders mirror them).
PAPER_CHANNELS: tuple[int, ...] = (32, 64, 128)
#: Narrower widths used by :func:`train_ptychonn` by default (about 4x less compute).
FAST_CHANNELS: tuple[int, ...] = (16, 32, 64)
#: Per-pattern scales of :func:`normalise_patterns`.
NORMALISATIONS = ("rms", "max")
#: Inference precisions of :class:`PtychoNNModel`.
PRECISIONS = ("auto", "float32", "bfloat16")

_KIND = "ptychonn"
_DEFAULT_NORMALISATION = "rms"
_EVAL_BATCH = 256
#: Slack on the label ranges: float32(pi) is slightly above pi.
_RANGE_TOL = 1e-5


# ----------------------------------------------------------------------------- network
def _conv_block(c_in: int, c_out: int) -> list[nn.Module]:
    return [nn.Conv2d(c_in, c_out, 3, padding=1), nn.ReLU(inplace=True),
            nn.Conv2d(c_out, c_out, 3, padding=1), nn.ReLU(inplace=True)]


def _decoder(channels: Sequence[int]) -> nn.Sequential:
    layers: list[nn.Module] = []
    c_in = channels[-1]
    for c_out in reversed(channels):
        layers += [*_conv_block(c_in, c_out),
                   nn.Upsample(scale_factor=2, mode="bilinear", align_corners=False)]
        c_in = c_out
    layers.append(nn.Conv2d(c_in, 1, 3, padding=1))
    return nn.Sequential(*layers)


def _check_channels(channels: Any) -> tuple[int, ...]:
    try:
        values = tuple(channels)
    except TypeError:
        values = ()
    if not values or any(isinstance(c, bool) or not isinstance(c, Integral) or c < 1
                         for c in values):
        raise ValueError(f"channels must be a non-empty sequence of positive integers "
                         f"(e.g. {PAPER_CHANNELS}); got {channels!r}")
    return tuple(int(c) for c in values)


class PtychoNN(nn.Module):
    """Encoder and amplitude/phase decoders of PtychoNN.

    Parameters
    ----------
    size
        Side of the square input pattern and output patch, in pixels; a multiple of
        ``2 ** len(channels)``.
    channels
        Channels of the encoder levels (each followed by a 2x2 max-pool); the decoders
        use them in reverse.
    phase_only
        Drop the amplitude decoder (PtychoNN 2.0): :meth:`forward` returns ``None`` for
        the amplitude.

    Raises
    ------
    ValueError
        For a ``size`` that is not a positive multiple of ``2 ** len(channels)``, or bad
        ``channels``.
    """

    def __init__(self, *, size: int = 64, channels: Sequence[int] = PAPER_CHANNELS,
                 phase_only: bool = False) -> None:
        super().__init__()
        channels = _check_channels(channels)
        factor = 2 ** len(channels)
        if isinstance(size, bool) or not isinstance(size, Integral) or size < 1 or (
                size % factor):
            raise ValueError(f"size must be a positive multiple of 2**len(channels) = "
                             f"{factor} (channels {channels}); got size {size!r}")
        self.size = int(size)
        self.channels = channels
        self.phase_only = bool(phase_only)
        encoder: list[nn.Module] = []
        c_in = 1
        for c_out in channels:
            encoder += [*_conv_block(c_in, c_out), nn.MaxPool2d(2)]
            c_in = c_out
        self.encoder = nn.Sequential(*encoder)
        self.phase_decoder = _decoder(channels)
        self.amplitude_decoder = None if self.phase_only else _decoder(channels)

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor | None, torch.Tensor]:
        """Amplitude ``(B, 1, H, W)`` in ``[0, 1]`` (``None`` if phase-only) and phase in
        ``[-pi, pi]`` from normalised patterns ``x`` of shape ``(B, 1, H, W)``.

        The output activations are computed in float32 whatever the input dtype.
        """
        factor = 2 ** len(self.channels)
        if x.ndim != 4 or x.shape[1] != 1 or x.shape[2] % factor or x.shape[3] % factor:
            raise ValueError(f"PtychoNN input must have shape (B, 1, H, W) with H and W "
                             f"multiples of {factor}; got {tuple(x.shape)}")
        z = self.encoder(x)
        phase = torch.tanh(self.phase_decoder(z).float()) * math.pi
        if self.amplitude_decoder is None:
            return None, phase
        return torch.sigmoid(self.amplitude_decoder(z).float()), phase


def _parameters_count(network: nn.Module) -> int:
    return sum(p.numel() for p in network.parameters())


# ------------------------------------------------------------------------ validation
def _as_stack(data: Any, name: str) -> np.ndarray:
    try:
        arr = np.asarray(data)
    except Exception as exc:  # ragged nested lists and the like
        raise ValueError(f"{name} could not be converted to an array: {exc}") from None
    if arr.dtype.kind not in "biuf":
        raise ValueError(f"{name} must hold real numbers; got dtype {arr.dtype}")
    if arr.ndim != 3 or 0 in arr.shape:
        raise ValueError(f"{name} must be a non-empty (N, H, W) stack; got shape {arr.shape}")
    if arr.dtype.kind == "f" and not np.isfinite(arr).all():
        bad = int(arr.size - np.isfinite(arr).sum())
        raise ValueError(f"{name} holds {bad} NaN or infinite values (of {arr.size}); "
                         "only finite values are allowed")
    return arr


def _check_counts(patterns: Any, name: str = "patterns") -> np.ndarray:
    arr = _as_stack(patterns, name)
    low = arr.min()
    if low < 0:
        raise ValueError(f"{name} must be non-negative photon counts; got a minimum of "
                         f"{low:g} ({int((arr < 0).sum())} negative values)")
    return arr


def _check_labels(arr: np.ndarray, name: str, low: float, high: float, hint: str) -> None:
    lo, hi = float(arr.min()), float(arr.max())
    if lo < low - _RANGE_TOL or hi > high + _RANGE_TOL:
        raise ValueError(f"{name} labels must lie in [{low:g}, {high:g}] ({hint}); got "
                         f"values in [{lo:g}, {hi:g}]")


def _check_training_data(patterns: Any, amplitude: Any, phase: Any, phase_only: bool
                         ) -> tuple[np.ndarray, np.ndarray | None, np.ndarray]:
    counts = _check_counts(patterns)
    ph = _as_stack(phase, "phase")
    if ph.shape != counts.shape:
        raise ValueError(f"phase labels must have the shape of the patterns {counts.shape}; "
                         f"got {ph.shape}")
    _check_labels(ph, "phase", -math.pi, math.pi, "radians, e.g. from np.angle")
    amp = None
    if not phase_only:
        if amplitude is None:
            raise ValueError("amplitude labels are None; pass them or set phase_only=True")
        amp = _as_stack(amplitude, "amplitude")
        if amp.shape != counts.shape:
            raise ValueError(f"amplitude labels must have the shape of the patterns "
                             f"{counts.shape}; got {amp.shape}")
        _check_labels(amp, "amplitude", 0.0, 1.0,
                      "the amplitude head ends in a sigmoid: divide by the maximum first")
    if counts.shape[0] < 2:
        raise ValueError(f"need at least 2 patterns to train; got {counts.shape[0]}")
    if counts.shape[1] != counts.shape[2]:
        raise ValueError(f"patterns must be square; got {counts.shape[1]}x{counts.shape[2]}")
    return counts, amp, ph


def _check_optional_seconds(value: Any) -> float | None:
    return None if value is None else check_positive_float(value, "max_seconds")


# --------------------------------------------------------------------- normalisation
def normalise_patterns(patterns: np.ndarray, *, scale: str = _DEFAULT_NORMALISATION
                       ) -> np.ndarray:
    """Network input from photon counts: the amplitude, scaled per pattern.

    The square root of the counts (the diffraction amplitude) compresses the dynamic
    range of a far-field pattern, whose centre is orders of magnitude brighter than its
    edges, and makes Poisson noise nearly uniform (its standard deviation is about 1/2
    in units of the square-root counts). Each pattern is then divided by its own scale,
    so that the input, and the prediction, do not depend on the dose:

    ``"rms"`` (default)
        ``sqrt(counts / mean(counts))``: the root mean square of each pattern is 1. The
        scale is set by the total counts of the pattern, a statistic with a relative
        noise of ``1 / (2 sqrt(total))``. Inputs of unit RMS also suit the default
        weight initialisation of the network.
    ``"max"``
        ``sqrt(counts / max(counts))``: values in ``[0, 1]``. The scale rests on the
        brightest pixel, whose relative noise is about 2.5 times that of the ``"rms"``
        scale, and leaves most pixels far below 1 (a weak signal for a network at
        initialisation).

    A pattern with no counts is mapped to zeros.

    Parameters
    ----------
    patterns
        Photon counts, ``(N, H, W)`` or one ``(H, W)`` pattern; finite and non-negative.
    scale
        ``"rms"`` or ``"max"``.

    Returns
    -------
    numpy.ndarray
        float32 array of the shape of ``patterns``.

    Raises
    ------
    ValueError
        For negative, NaN or infinite counts, a non-numeric dtype or a wrong shape.
    """
    check_choice(scale, "scale", NORMALISATIONS)
    arr = np.asarray(patterns)
    single = arr.ndim == 2
    counts = _check_counts(arr[None] if single else arr)
    amplitude = np.sqrt(counts.astype(np.float32, copy=False))
    if scale == "max":
        norm = amplitude.max(axis=(1, 2), keepdims=True)
    else:
        norm = np.sqrt(counts.astype(np.float64).mean(axis=(1, 2), keepdims=True))
        norm = norm.astype(np.float32)
    out = np.zeros_like(amplitude)
    np.divide(amplitude, norm, out=out, where=norm > 0)
    return out[0] if single else out


# ---------------------------------------------------------------------------- training
def _split(n: int, fraction: float, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """Training and validation indices (validation empty when ``fraction == 0``)."""
    order = np.random.default_rng(seed).permutation(n)
    n_val = 0 if fraction == 0 else min(max(1, round(fraction * n)), n - 1)
    return np.sort(order[n_val:]), np.sort(order[:n_val])


def _l1(network: PtychoNN, x: torch.Tensor, amp: torch.Tensor | None, phase: torch.Tensor
        ) -> torch.Tensor:
    pred_amp, pred_phase = network(x)
    loss = nn.functional.l1_loss(pred_phase, phase)
    if pred_amp is not None and amp is not None:
        loss = loss + nn.functional.l1_loss(pred_amp, amp)
    return loss


def _evaluate(network: PtychoNN, x: torch.Tensor, amp: torch.Tensor | None,
              phase: torch.Tensor, device: torch.device) -> float:
    network.eval()
    total = 0.0
    with torch.inference_mode():
        for i in range(0, x.shape[0], _EVAL_BATCH):
            part = slice(i, i + _EVAL_BATCH)
            a = None if amp is None else amp[part].to(device)
            loss = _l1(network, x[part].to(device), a, phase[part].to(device))
            total += float(loss) * (min(i + _EVAL_BATCH, x.shape[0]) - i)
    return total / x.shape[0]


def _fit(network: PtychoNN, x: torch.Tensor, amp: torch.Tensor | None, phase: torch.Tensor,
         *, epochs: int, max_seconds: float | None, batch_size: int, lr: float, seed: int,
         device: torch.device, validation_fraction: float,
         stop_requested: Callable[[], bool] | None,
         on_epoch: Callable[[int, float, float | None], Any] | None) -> dict[str, Any]:
    """Train ``network`` in place on ``(N, 1, H, W)`` tensors; keep the best weights."""
    t0 = time.perf_counter()
    n = x.shape[0]
    train_idx, val_idx = _split(n, validation_fraction, seed)
    tr = torch.from_numpy(train_idx)
    x_tr, ph_tr = x[tr], phase[tr]
    amp_tr = None if amp is None else amp[tr]
    if val_idx.size:
        va = torch.from_numpy(val_idx)
        x_va, ph_va = x[va], phase[va]
        amp_va = None if amp is None else amp[va]
    batch = min(batch_size, train_idx.size)
    generator = torch.Generator().manual_seed(seed)
    history: list[dict[str, Any]] = []
    best_loss, best_epoch, best_state = math.inf, 0, None
    stopped_by = "epochs"
    with seeded(seed, device):
        optimiser = torch.optim.Adam(network.parameters(), lr=lr)
        for epoch in range(1, epochs + 1):
            network.train()
            order = torch.randperm(train_idx.size, generator=generator)
            running, seen = 0.0, 0
            for i in range(0, train_idx.size, batch):
                if history or seen:
                    if max_seconds is not None and time.perf_counter() - t0 >= max_seconds:
                        stopped_by = "max_seconds"
                    elif stop_requested is not None and stop_requested():
                        stopped_by = "stop_requested"
                    if stopped_by != "epochs":
                        break
                idx = order[i : i + batch]
                a = None if amp_tr is None else amp_tr[idx].to(device)
                loss = _l1(network, x_tr[idx].to(device), a, ph_tr[idx].to(device))
                optimiser.zero_grad(set_to_none=True)
                loss.backward()
                optimiser.step()
                running += float(loss.detach()) * idx.numel()
                seen += idx.numel()
            if not seen:
                break
            train_loss = running / seen
            val_loss = (_evaluate(network, x_va, amp_va, ph_va, device) if val_idx.size
                        else None)
            score = train_loss if val_loss is None else val_loss
            if score < best_loss:
                best_loss, best_epoch = score, epoch
                best_state = copy.deepcopy(network.state_dict())
            history.append({"epoch": epoch, "train_loss": train_loss, "val_loss": val_loss,
                            "patterns": seen, "seconds": time.perf_counter() - t0})
            if on_epoch is not None:
                on_epoch(epoch, train_loss, val_loss)
            if stopped_by != "epochs":
                break
    if best_state is not None:
        network.load_state_dict(best_state)
    network.eval()
    return {
        "epochs": len(history),
        "seconds": time.perf_counter() - t0,
        "stopped_by": stopped_by,
        "best_epoch": best_epoch,
        "best_validation_loss": best_loss if val_idx.size else None,
        "best_train_loss": None if val_idx.size else best_loss,
        "n_train": int(train_idx.size),
        "n_validation": int(val_idx.size),
        "validation_indices": val_idx.tolist(),
        "parameters": _parameters_count(network),
        "history": history,
    }


def _check_fit_options(epochs: Any, max_seconds: Any, batch_size: Any, lr: Any, seed: Any,
                       validation_fraction: Any) -> dict[str, Any]:
    if isinstance(seed, bool) or not isinstance(seed, Integral):
        raise ValueError(f"seed must be an integer; got {seed!r}")
    return {"epochs": check_positive_int(epochs, "epochs"),
            "max_seconds": _check_optional_seconds(max_seconds),
            "batch_size": check_positive_int(batch_size, "batch_size"),
            "lr": check_positive_float(lr, "lr"), "seed": int(seed),
            "validation_fraction": check_fraction(validation_fraction, "validation_fraction")}


def _tensors(x: np.ndarray, amp: np.ndarray | None, phase: np.ndarray
             ) -> tuple[torch.Tensor, torch.Tensor | None, torch.Tensor]:
    def t(a: np.ndarray) -> torch.Tensor:
        return torch.from_numpy(np.ascontiguousarray(a, dtype=np.float32)[:, None])

    return t(x), None if amp is None else t(amp), t(phase)


def train_ptychonn(patterns: np.ndarray, amplitude: np.ndarray | None, phase: np.ndarray, *,
                   phase_only: bool = False, epochs: int = 60,
                   max_seconds: float | None = None, batch_size: int = 64, lr: float = 1e-3,
                   seed: int = 0, device: str | torch.device = "cpu",
                   validation_fraction: float = 0.1,
                   stop_requested: Callable[[], bool] | None = None,
                   on_epoch: Callable[[int, float, float | None], Any] | None = None,
                   channels: Sequence[int] = FAST_CHANNELS,
                   normalisation: str = _DEFAULT_NORMALISATION,
                   ) -> tuple[PtychoNNModel, dict[str, Any]]:
    """Train PtychoNN on diffraction patterns and object patches from iterative recon.

    Adam on the L1 loss of the amplitude and of the phase (radians). A random
    ``validation_fraction`` of the patterns is held out; the weights of the epoch with
    the lowest validation loss are kept (the lowest training loss when
    ``validation_fraction == 0``). Runs on CPU are deterministic for a given ``seed`` and
    number of torch threads; torch's global random state is left untouched and
    ``torch.set_num_threads`` is never called.

    Parameters
    ----------
    patterns
        ``(N, H, W)`` photon counts (square, ``H`` a multiple of ``2 ** len(channels)``),
        finite and non-negative; normalised with :func:`normalise_patterns`.
    amplitude
        ``(N, H, W)`` amplitude of the object patch under the beam, in ``[0, 1]``;
        ignored (may be ``None``) when ``phase_only``.
    phase
        ``(N, H, W)`` phase of the patch in radians, in ``[-pi, pi]``.
    phase_only
        Train the phase-only network (PtychoNN 2.0).
    epochs
        Maximum passes over the training patterns.
    max_seconds
        Wall-time budget; training stops (after a validation of the current weights) at
        the first batch past it. ``None``: no limit.
    batch_size, lr
        Adam's batch size and learning rate.
    seed
        Seed of the weights, the validation split and the batch order.
    device
        ``"cpu"``, ``"cuda"``, ``"auto"``, ...
    validation_fraction
        Fraction of the patterns held out, in ``[0, 1)`` (at least one pattern if > 0).
    stop_requested
        Polled before each batch (from the second on); training ends when it returns
        ``True``.
    on_epoch
        Called as ``on_epoch(epoch, train_loss, val_loss)`` after each epoch
        (``val_loss`` is ``None`` without validation).
    channels
        Encoder widths; :data:`FAST_CHANNELS` by default, :data:`PAPER_CHANNELS` for the
        published network.
    normalisation
        Per-pattern scale of :func:`normalise_patterns`, ``"rms"`` or ``"max"``.

    Returns
    -------
    model : PtychoNNModel
        The network with the best weights; its replay buffer holds (a random sample of)
        the training data for :meth:`PtychoNNModel.fine_tune`.
    record : dict
        ``epochs`` run, ``seconds``, ``stopped_by`` (``"epochs"``, ``"max_seconds"`` or
        ``"stop_requested"``), ``best_epoch``, ``best_validation_loss``, ``n_train``,
        ``n_validation``, ``validation_indices``, ``parameters`` and the per-epoch
        ``history``.

    Raises
    ------
    ValueError
        For patterns and labels of different or wrong shapes, fewer than 2 patterns,
        NaN or infinite values, negative counts, labels out of range or bad options.
    """
    options = _check_fit_options(epochs, max_seconds, batch_size, lr, seed,
                                 validation_fraction)
    check_choice(normalisation, "normalisation", NORMALISATIONS)
    channels = _check_channels(channels)
    counts, amp, ph = _check_training_data(patterns, amplitude, phase, bool(phase_only))
    dev = resolve_device(device)
    with seeded(options["seed"], dev):
        network = PtychoNN(size=counts.shape[1], channels=channels,
                           phase_only=bool(phase_only))
    network.to(dev)
    if dev.type == "cpu":
        network.to(memory_format=torch.channels_last)
    x, amp_t, ph_t = _tensors(normalise_patterns(counts, scale=normalisation), amp, ph)
    record = _fit(network, x, amp_t, ph_t, device=dev, stop_requested=stop_requested,
                  on_epoch=on_epoch, **options)
    model = PtychoNNModel(network, normalisation=normalisation, device=dev)
    model._remember(x, amp_t, ph_t, options["seed"])
    model.history.append(_summary("train", record))
    return model, record


def _summary(kind: str, record: dict[str, Any]) -> dict[str, Any]:
    keys = ("epochs", "seconds", "stopped_by", "best_epoch", "best_validation_loss",
            "n_train", "n_validation")
    return {"kind": kind, **{k: record[k] for k in keys}}


# ------------------------------------------------------------------------------- model
def _native_bf16() -> bool:
    """Whether this CPU computes bfloat16 natively (AVX512-BF16 or AMX)."""
    checks = ("_is_avx512_bf16_supported", "_is_amx_tile_supported")
    for name in checks:
        check = getattr(torch.cpu, name, None)
        try:
            if check is not None and check():
                return True
        except RuntimeError:
            continue
    return False


class PtychoNNModel:
    """A trained PtychoNN network with its input normalisation, for inference.

    Usually obtained from :func:`train_ptychonn` or :meth:`from_bytes`.

    Parameters
    ----------
    network
        The :class:`PtychoNN` module.
    normalisation
        Per-pattern scale of :func:`normalise_patterns` the network was trained with.
    precision
        Inference precision: ``"float32"``, ``"bfloat16"`` (autocast) or ``"auto"``
        (bfloat16 on a CPU that computes it natively, else float32). bfloat16 changes
        predicted phases by about 2e-3 rad on average (a few 1e-2 rad at most) and runs
        2-3 times faster on such a CPU. Training always runs in float32.
    device
        Where inference and fine-tuning run.
    history
        Summaries of the training and fine-tuning runs.
    replay_capacity
        Most patterns kept in the replay buffer for :meth:`fine_tune` (a 64x64 pattern
        with its labels takes 48 kiB).
    """

    def __init__(self, network: PtychoNN, *, normalisation: str = _DEFAULT_NORMALISATION,
                 precision: str = "auto", device: str | torch.device = "cpu",
                 history: list[dict[str, Any]] | None = None,
                 replay_capacity: int = 2048) -> None:
        if not isinstance(network, PtychoNN):
            raise ValueError(f"network must be a PtychoNN; got {type(network).__name__}")
        self.network = network
        self.normalisation = check_choice(normalisation, "normalisation", NORMALISATIONS)
        self.device = resolve_device(device)
        self.precision = precision
        self.history = list(history or [])
        self.replay_capacity = check_positive_int(replay_capacity, "replay_capacity")
        self._replay: tuple[torch.Tensor, torch.Tensor | None, torch.Tensor] | None = None
        self.network.to(self.device).eval()
        if self.device.type == "cpu":
            self.network.to(memory_format=torch.channels_last)

    # ----------------------------------------------------------------- settings
    @property
    def precision(self) -> str:
        """Inference precision setting (``"auto"``, ``"float32"`` or ``"bfloat16"``)."""
        return self._precision

    @precision.setter
    def precision(self, value: str) -> None:
        self._precision = check_choice(value, "precision", PRECISIONS)

    @property
    def inference_dtype(self) -> torch.dtype:
        """The dtype :meth:`predict` computes in (``precision`` resolved)."""
        if self._precision == "bfloat16":
            return torch.bfloat16
        if self._precision == "auto" and self.device.type == "cpu" and _native_bf16():
            return torch.bfloat16
        return torch.float32

    @property
    def size(self) -> int:
        """Side of the patterns and patches, in pixels."""
        return self.network.size

    @property
    def channels(self) -> tuple[int, ...]:
        """Encoder widths."""
        return self.network.channels

    @property
    def phase_only(self) -> bool:
        """Whether the network predicts the phase only."""
        return self.network.phase_only

    @property
    def parameters_count(self) -> int:
        """Number of trainable parameters."""
        return _parameters_count(self.network)

    @property
    def settings(self) -> dict[str, Any]:
        """Everything needed to rebuild the network and its input."""
        return {"size": self.size, "channels": list(self.channels),
                "phase_only": self.phase_only, "normalisation": self.normalisation}

    @property
    def replay_size(self) -> int:
        """Number of earlier patterns in the replay buffer."""
        return 0 if self._replay is None else int(self._replay[0].shape[0])

    # ---------------------------------------------------------------- inference
    def _check_patterns(self, patterns: Any) -> tuple[np.ndarray, bool]:
        arr = np.asarray(patterns)
        single = arr.ndim == 2
        counts = _check_counts(arr[None] if single else arr)
        if counts.shape[1:] != (self.size, self.size):
            raise ValueError(f"patterns must be {self.size}x{self.size} for this model; got "
                             f"shape {arr.shape}")
        return counts, single

    def predict(self, patterns: np.ndarray, batch_size: int = 256
                ) -> tuple[np.ndarray | None, np.ndarray]:
        """Amplitude and phase of the object patches under the beam.

        Parameters
        ----------
        patterns
            ``(N, H, W)`` photon counts (or one ``(H, W)`` pattern), ``H = W = size``.
        batch_size
            Patterns per forward pass.

        Returns
        -------
        amplitude : numpy.ndarray or None
            float32 of the shape of ``patterns``, in ``[0, 1]``; ``None`` if phase-only.
        phase : numpy.ndarray
            float32 radians in ``[-pi, pi]``.

        Raises
        ------
        ValueError
            For patterns of another size, negative or non-finite counts.
        """
        batch_size = check_positive_int(batch_size, "batch_size")
        counts, single = self._check_patterns(patterns)
        x = torch.from_numpy(normalise_patterns(counts, scale=self.normalisation))[:, None]
        n = x.shape[0]
        phase = torch.empty((n, self.size, self.size), dtype=torch.float32)
        amp = None if self.phase_only else torch.empty_like(phase)
        dtype = self.inference_dtype
        memory = torch.channels_last if self.device.type == "cpu" else torch.contiguous_format
        self.network.eval()
        with torch.inference_mode(), torch.autocast(self.device.type, dtype=dtype,
                                                    enabled=dtype != torch.float32):
            for i in range(0, n, batch_size):
                part = x[i : i + batch_size].to(self.device, memory_format=memory)
                pred_amp, pred_phase = self.network(part)
                phase[i : i + batch_size] = pred_phase[:, 0].float().cpu()
                if amp is not None and pred_amp is not None:
                    amp[i : i + batch_size] = pred_amp[:, 0].float().cpu()
        out_amp = None if amp is None else amp.numpy()
        out_phase = phase.numpy()
        if single:
            return (None if out_amp is None else out_amp[0]), out_phase[0]
        return out_amp, out_phase

    # ------------------------------------------------------------ fine-tuning
    def _remember(self, x: torch.Tensor, amp: torch.Tensor | None, phase: torch.Tensor,
                  seed: int) -> None:
        """Put normalised patterns and labels in the replay buffer (random subset if full)."""
        if self._replay is not None:
            old_x, old_amp, old_phase = self._replay
            x = torch.cat([old_x, x])
            phase = torch.cat([old_phase, phase])
            amp = None if amp is None or old_amp is None else torch.cat([old_amp, amp])
        if x.shape[0] > self.replay_capacity:
            rng = np.random.default_rng(seed)
            keep = torch.from_numpy(np.sort(rng.choice(x.shape[0], self.replay_capacity,
                                                       replace=False)))
            x, phase = x[keep], phase[keep]
            amp = None if amp is None else amp[keep]
        self._replay = (x, amp, phase)

    def fine_tune(self, patterns: np.ndarray, amplitude: np.ndarray | None,
                  phase: np.ndarray, *, epochs: int = 10, max_seconds: float | None = None,
                  batch_size: int = 64, lr: float = 1e-3, seed: int = 0,
                  validation_fraction: float = 0.1, replay: bool = True,
                  stop_requested: Callable[[], bool] | None = None,
                  on_epoch: Callable[[int, float, float | None], Any] | None = None,
                  ) -> dict[str, Any]:
        """Continue training from the current weights on new labels (continual learning).

        With ``replay``, the new patterns are mixed with an equal number (or all, if
        fewer) of earlier patterns drawn at random from the replay buffer, so that the
        network does not forget what it learnt before; the new patterns then join the
        buffer (a random subset of at most ``replay_capacity`` is kept). The buffer
        holds the data of this session only: a model read by :meth:`from_bytes` starts
        with an empty one. The best weights by validation loss are kept, as in
        :func:`train_ptychonn`.

        Parameters
        ----------
        patterns, amplitude, phase
            As for :func:`train_ptychonn` (``amplitude`` is ignored if phase-only);
            patterns must be ``size x size``.
        epochs, max_seconds, batch_size, lr, seed, validation_fraction, stop_requested, \
on_epoch
            As for :func:`train_ptychonn`.
        replay
            Mix in earlier patterns from the replay buffer.

        Returns
        -------
        dict
            The training record (see :func:`train_ptychonn`), with ``n_new`` and
            ``n_replayed`` patterns.

        Raises
        ------
        ValueError
            As for :func:`train_ptychonn`.
        """
        options = _check_fit_options(epochs, max_seconds, batch_size, lr, seed,
                                     validation_fraction)
        counts, amp, ph = _check_training_data(patterns, amplitude, phase, self.phase_only)
        if counts.shape[1:] != (self.size, self.size):
            raise ValueError(f"patterns must be {self.size}x{self.size} for this model; got "
                             f"shape {counts.shape}")
        x, amp_t, ph_t = _tensors(normalise_patterns(counts, scale=self.normalisation),
                                  amp, ph)
        new = (x, amp_t, ph_t)
        n_replayed = 0
        if replay and self._replay is not None:
            old_x, old_amp, old_phase = self._replay
            n_replayed = min(x.shape[0], old_x.shape[0])
            rng = np.random.default_rng(options["seed"])
            pick = torch.from_numpy(np.sort(rng.choice(old_x.shape[0], n_replayed,
                                                       replace=False)))
            x = torch.cat([x, old_x[pick]])
            ph_t = torch.cat([ph_t, old_phase[pick]])
            amp_t = None if amp_t is None or old_amp is None else torch.cat(
                [amp_t, old_amp[pick]])
        record = _fit(self.network, x, amp_t, ph_t, device=self.device,
                      stop_requested=stop_requested, on_epoch=on_epoch, **options)
        record.update(n_new=int(new[0].shape[0]), n_replayed=n_replayed)
        self._remember(*new, options["seed"])
        self.history.append(_summary("fine_tune", record))
        return record

    # ---------------------------------------------------------------- checkpoints
    def to_bytes(self) -> bytes:
        """A safetensors checkpoint: weights, :attr:`settings`, precision and history.

        The replay buffer is not stored.
        """
        meta = {"kind": _KIND, "settings": self.settings, "precision": self.precision,
                "history": self.history, "package_version": package_version(),
                "torch_version": torch.__version__}
        return write_checkpoint(self.network.state_dict(), json_safe(meta))

    @classmethod
    def from_bytes(cls, data: bytes, *, device: str | torch.device = "cpu",
                   precision: str | None = None) -> PtychoNNModel:
        """Rebuild a model written by :meth:`to_bytes` (nothing is unpickled).

        ``precision`` overrides the stored inference precision.

        Raises
        ------
        ValueError
            If the data is not a PtychoNN checkpoint, is corrupted or its weights do not
            fit its settings.
        """
        state, meta = read_checkpoint(data, source="PtychoNN checkpoint")
        if meta.get("kind") != _KIND:
            raise ValueError(f"PtychoNN checkpoint: holds a {meta.get('kind')!r} model, not "
                             f"a {_KIND!r} model")
        try:
            settings = meta["settings"]
            network = PtychoNN(size=settings["size"], channels=settings["channels"],
                               phase_only=settings["phase_only"])
            network.load_state_dict(state, strict=True)
            return cls(network, normalisation=settings["normalisation"],
                       precision=precision or meta.get("precision", "auto"),
                       device=device, history=meta.get("history"))
        except (KeyError, TypeError, RuntimeError) as exc:
            raise ValueError(f"PtychoNN checkpoint: invalid settings or weights "
                             f"({type(exc).__name__}: {exc})") from None

    def __repr__(self) -> str:
        return (f"PtychoNNModel(size={self.size}, channels={self.channels}, "
                f"phase_only={self.phase_only}, normalisation={self.normalisation!r}, "
                f"precision={self.precision!r}, parameters={self.parameters_count})")
