"""VDSR-family super-resolution of blurred, noisy microscope images, with learned up-sampling.

After Kim et al., "Accurate image super-resolution using very deep convolutional
networks" (VDSR, CVPR 2016): a stack of 3x3 convolutions with ReLU learns the residual
between the sharp image and an interpolated copy of the blurred one (global residual
learning). As in the lens-coupled X-ray microscope work of Jeong et al. (KAIST), the
up-sampling is learned by a transposed convolution and the network is trained with AdamW
on sharp images degraded by the camera's measured blur and noise.

Layout of :class:`VDSR` for a factor ``f``::

    x (B, 1, H, W) ── bilinear (or bicubic) x f ────────────────────────────┐
      └─ depth x [conv3x3 + ReLU] (width channels, at H x W)                 │
         └─ ConvTranspose2d(4x4, stride 2) + ReLU   (once for f=2, twice for f=4)
            └─ conv3x3 -> 1 channel (zero-initialised) ──────────────── + ──┴─> (B, 1, fH, fW)

The feature layers run at the low resolution, so the cost per output pixel is about
``1 / f**2`` of VDSR's (which convolves the interpolated image). The high-resolution
stage is narrow (``up_width`` channels, 8 by default): on a CPU a 32-channel one costs as
much as five feature layers. The last convolution starts at zero, so a new network
returns exactly the interpolated input and training only has to learn the correction.
VDSR adds the bicubic interpolation; the bilinear one is the default here: trained
networks reach the same validation PSNR with either skip, and bilinear up-sampling of a
256x256 frame takes about 0.3 ms on a CPU against 1.7 ms for bicubic.

Inference speed: on a CPU the network runs in channels-last memory layout and, where the
CPU computes bfloat16 natively (AVX512-BF16 or AMX), in bfloat16 (``dtype="auto"``); the
interpolated skip and the final sum stay in float32, so bfloat16 only rounds the (small)
learned correction. With the defaults (``depth=12``, ``width=32``, 0.11 M parameters) a
2-core CPU with AMX super-resolves 30 to 45 frames/s of 256x256 to 512x512 in bfloat16
(11 to 15 in float32).

Examples
--------
>>> model, record = train_vdsr(pairs_fn, factor=2, max_seconds=60)
>>> sharp = model.predict(frames)                   # (N, 2H, 2W) float32
>>> same = SRModel.from_bytes(model.to_bytes())
"""

from __future__ import annotations

import copy
import math
import time
from collections.abc import Callable
from numbers import Integral, Real
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from ._checks import (
    as_frame_stack,
    check_choice,
    check_finite,
    check_positive_float,
    check_positive_int,
)
from .checkpoint import json_safe, package_version, read_checkpoint, write_checkpoint
from .losses import LOSSES, get_loss
from .normalisation import robust_range
from .ptychonn import PRECISIONS, _native_bf16
from .runtime import resolve_device, seeded

__all__ = [
    "DEFAULT_DEPTH",
    "DEFAULT_UP_WIDTH",
    "DEFAULT_WIDTH",
    "FACTORS",
    "INTERPOLATIONS",
    "PRECISIONS",
    "VDSR",
    "SRModel",
    "train_vdsr",
]

#: Supported up-sampling factors.
FACTORS = (2, 4)
#: Feature layers (3x3 convolution + ReLU at the low resolution) of the default network.
DEFAULT_DEPTH = 12
#: Channels of the feature layers of the default network.
DEFAULT_WIDTH = 32
#: Channels of the high-resolution stage(s) after each transposed convolution.
DEFAULT_UP_WIDTH = 8
#: Interpolations of the global skip path.
INTERPOLATIONS = ("bilinear", "bicubic")

_KIND = "vdsr"
_EVAL_BATCH = 64
#: Bytes of one feature map of a batch of :meth:`SRModel.predict` by default, per device
#: type: on a CPU a batch whose feature maps stay in the cores' L2 caches runs fastest
#: (2 frames of 256x256 at width 32 in bfloat16, 1 in float32, on a 2-core AMX CPU).
_BATCH_BYTES = {"cpu": 8 * 2**20, "cuda": 512 * 2**20}
#: Percentiles of the training data mapped to 0 and 1 by the stored normalisation.
_PERCENTILES = (1.0, 99.0)


# ----------------------------------------------------------------------------- network
def _check_factor(factor: Any) -> int:
    if isinstance(factor, bool) or not isinstance(factor, Integral) or factor not in FACTORS:
        raise ValueError(f"factor must be 2 or 4, got {factor!r}")
    return int(factor)


def _upsample(x: torch.Tensor, factor: int, mode: str) -> torch.Tensor:
    """``mode`` interpolation of ``x`` by ``factor``, in float32 whatever the autocast."""
    with torch.autocast(x.device.type, enabled=False):
        return F.interpolate(x.float(), scale_factor=factor, mode=mode, align_corners=False)


def _he_init(module: nn.Module) -> None:
    """He (Kaiming) normal weights for ReLU layers and zero biases, as VDSR."""
    if isinstance(module, nn.ConvTranspose2d):
        # each output pixel sums in_channels * (kernel / stride)**2 terms
        c_in, _, k, _ = module.weight.shape
        fan_in = c_in * (k // module.stride[0]) ** 2
        nn.init.normal_(module.weight, 0.0, math.sqrt(2.0 / fan_in))
    elif isinstance(module, nn.Conv2d):
        nn.init.kaiming_normal_(module.weight, mode="fan_in", nonlinearity="relu")
    else:
        return
    if module.bias is not None:
        nn.init.zeros_(module.bias)


class VDSR(nn.Module):
    """Very deep super-resolution network with transposed-convolution up-sampling.

    Parameters
    ----------
    factor
        Up-sampling factor, 2 or 4 (two stride-2 transposed convolutions).
    depth
        Number of 3x3 convolution + ReLU feature layers, at the low resolution.
    width
        Channels of the feature layers.
    up_width
        Channels after each transposed convolution (the high-resolution stage).
    interpolation
        Up-sampling of the global skip path, ``"bilinear"`` or ``"bicubic"``.

    Raises
    ------
    ValueError
        For a factor other than 2 or 4, a non-positive ``depth``, ``width`` or
        ``up_width``, or an unknown interpolation.
    """

    def __init__(self, factor: int = 2, *, depth: int = DEFAULT_DEPTH,
                 width: int = DEFAULT_WIDTH, up_width: int = DEFAULT_UP_WIDTH,
                 interpolation: str = "bilinear") -> None:
        super().__init__()
        self.factor = _check_factor(factor)
        self.interpolation = check_choice(interpolation, "interpolation", INTERPOLATIONS)
        self.depth = check_positive_int(depth, "depth")
        self.width = check_positive_int(width, "width")
        self.up_width = check_positive_int(up_width, "up_width")
        layers: list[nn.Module] = []
        c_in = 1
        for _ in range(self.depth):
            layers += [nn.Conv2d(c_in, self.width, 3, padding=1), nn.ReLU(inplace=True)]
            c_in = self.width
        self.features = nn.Sequential(*layers)
        up: list[nn.Module] = []
        for _ in range(int(math.log2(self.factor))):
            up += [nn.ConvTranspose2d(c_in, self.up_width, 4, stride=2, padding=1),
                   nn.ReLU(inplace=True)]
            c_in = self.up_width
        self.upsample = nn.Sequential(*up)
        self.tail = nn.Conv2d(c_in, 1, 3, padding=1)
        self.apply(_he_init)
        nn.init.zeros_(self.tail.weight)
        nn.init.zeros_(self.tail.bias)

    def interpolate(self, x: torch.Tensor) -> torch.Tensor:
        """The global skip: ``x`` up-sampled by :attr:`factor`, in float32."""
        return _upsample(x, self.factor, self.interpolation)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Super-resolve ``x`` of shape ``(B, 1, H, W)`` to ``(B, 1, fH, fW)`` (float32).

        The learned residual is added to :meth:`interpolate` in float32 whatever the
        autocast dtype.
        """
        if x.ndim != 4 or x.shape[1] != 1:
            raise ValueError(f"VDSR input must have shape (B, 1, H, W); got {tuple(x.shape)}")
        residual = self.tail(self.upsample(self.features(x)))
        return self.interpolate(x) + residual.float()


def _parameters_count(network: nn.Module) -> int:
    return sum(p.numel() for p in network.parameters())


# ---------------------------------------------------------------------------- training
def _draw(pairs_fn: Callable[[np.random.Generator, int], Any], rng: np.random.Generator,
          n: int, patch: int, factor: int) -> tuple[np.ndarray, np.ndarray]:
    """``n`` (low, high) pairs from ``pairs_fn``, checked, as float32 arrays."""
    out = pairs_fn(rng, n)
    if not isinstance(out, tuple | list) or len(out) != 2:
        raise ValueError(f"pairs_fn must return a (low, high) pair of arrays; got "
                         f"{type(out).__name__}" + (f" of length {len(out)}"
                                                    if isinstance(out, tuple | list) else ""))
    arrays = []
    for name, data, side in (("low", out[0], patch), ("high", out[1], factor * patch)):
        arr = np.asarray(data)
        if arr.dtype.kind not in "biuf":
            raise ValueError(f"pairs_fn returned {name} patches of dtype {arr.dtype}; they "
                             "must hold real numbers")
        if arr.shape != (n, side, side):
            raise ValueError(f"pairs_fn returned {name} patches of shape {arr.shape}; expected "
                             f"{(n, side, side)} (n={n}, patch={patch}, factor={factor})")
        check_finite(arr, f"pairs_fn's {name} patches")
        arrays.append(np.ascontiguousarray(arr, dtype=np.float32))
    return arrays[0], arrays[1]


def _to_input(arr: np.ndarray, offset: float, scale: float, device: torch.device
              ) -> torch.Tensor:
    """``(N, H, W)`` data to normalised ``(N, 1, H, W)`` network input on ``device``."""
    x = (torch.from_numpy(arr)[:, None] - offset) / scale
    memory = torch.channels_last if device.type == "cpu" else torch.contiguous_format
    return x.to(device, memory_format=memory)


def _evaluate(model: Callable[[torch.Tensor], torch.Tensor], x: torch.Tensor,
              y: torch.Tensor, loss_fn: Callable[[torch.Tensor, torch.Tensor], torch.Tensor]
              ) -> tuple[float, float]:
    """Mean loss and sum of squared errors of ``model(x)`` against ``y``."""
    loss, sq = 0.0, 0.0
    with torch.inference_mode():
        for xb, yb in zip(torch.split(x, _EVAL_BATCH), torch.split(y, _EVAL_BATCH),
                          strict=True):
            pred = model(xb)
            loss += float(loss_fn(pred, yb)) * xb.shape[0]
            sq += float(torch.sum((pred - yb) ** 2))
    return loss / x.shape[0], sq


def _psnr(sq: float, count: int, scale: float, peak: float) -> float:
    """PSNR (dB) in data units from a sum of squared errors in normalised units."""
    mse = max(sq / count, 1e-20) * scale**2
    return 10.0 * math.log10(peak**2 / mse)


def _optional_seconds(value: Any) -> float | None:
    return None if value is None else check_positive_float(value, "max_seconds")


def train_vdsr(pairs_fn: Callable[[np.random.Generator, int], tuple[np.ndarray, np.ndarray]],
               *, factor: int = 2, depth: int = DEFAULT_DEPTH, width: int = DEFAULT_WIDTH,
               up_width: int = DEFAULT_UP_WIDTH, interpolation: str = "bilinear",
               epochs: int = 50,
               steps_per_epoch: int = 50, max_seconds: float | None = None,
               batch_size: int = 16, patch: int = 48, lr: float = 1e-3,
               weight_decay: float = 1e-4, loss: str = "l1",
               grad_clip: float | None = 1.0, seed: int = 0,
               device: str | torch.device = "auto", validation: int = 64,
               stop_requested: Callable[[], bool] | None = None,
               on_epoch: Callable[[int, float, float], Any] | None = None,
               ) -> tuple[SRModel, dict[str, Any]]:
    """Train a :class:`VDSR` network on (blurred low-resolution, sharp) pairs.

    Every step draws a fresh batch from ``pairs_fn`` (the caller owns the degradation
    model: blur, binning, noise). A validation set of ``validation`` pairs is drawn once,
    from a generator of its own, before training; after each epoch the network is scored
    on it and the weights of the epoch with the lowest validation loss are kept.

    The data are mapped to network units by one affine map, ``(v - offset) / scale``,
    that sends the 1st and 99th percentiles of the validation low-resolution patches to
    0 and 1. The same map serves inputs and targets (the residual is learned in the
    units of the data) and is stored in the model, so frames of any units (transmission,
    counts) are handled without per-frame normalisation, whose statistics would change
    from frame to frame (a flat field and a dense sample would be scaled differently).

    Optimisation: AdamW (``lr``, ``weight_decay``); the learning rate follows a cosine
    from ``lr`` to 0 over the run, the run's progress being the larger of the fraction
    of steps done and the fraction of ``max_seconds`` spent, so a time-bounded run still
    anneals; the gradient norm is clipped at ``grad_clip`` (VDSR clips gradients to
    train a deep plain network at a high learning rate). The default loss is L1: it
    gives sharper edges than MSE (which VDSR used), whose optimum averages plausible
    edges into a blur, and it is less swayed by noisy pixels (Zhao et al., IEEE TCI 3,
    2017; Lim et al., EDSR, 2017). Runs on CPU are deterministic for a given ``seed``,
    ``pairs_fn`` and number of torch threads when ``max_seconds`` does not cut them
    short; torch's global random state is left untouched.

    Parameters
    ----------
    pairs_fn
        ``pairs_fn(rng, n) -> (low, high)``: ``n`` pairs drawn with the
        :class:`numpy.random.Generator` ``rng``; ``low`` of shape ``(n, patch, patch)``,
        ``high`` of shape ``(n, factor * patch, factor * patch)``, finite, in the same
        units. The low-resolution pixel ``(i, j)`` covers the high-resolution pixels
        ``factor * i ... factor * i + factor - 1`` (block binning), the geometry of
        the interpolated skip path.
    factor
        Up-sampling factor, 2 or 4.
    depth, width, up_width, interpolation
        Network size and skip path (see :class:`VDSR`).
    epochs
        Maximum number of epochs of ``steps_per_epoch`` optimisation steps.
    steps_per_epoch
        Steps between validations.
    max_seconds
        Wall-time budget; training stops (after a validation of the current weights) at
        the first step past it. ``None``: no limit.
    batch_size
        Pairs per step.
    patch
        Side of the low-resolution patches ``pairs_fn`` returns.
    lr, weight_decay
        AdamW's peak learning rate and decoupled weight decay.
    loss
        ``"l1"`` (default), ``"mse"`` or ``"inverse_psnr"``, on normalised data.
    grad_clip
        Largest L2 norm of the gradient of all weights; ``None``: no clipping.
    seed
        Seed of the weights and of the training and validation draws.
    device
        ``"auto"`` (CUDA when available), ``"cpu"``, ``"cuda"`` or ``"cuda:N"``.
    validation
        Number of validation pairs.
    stop_requested
        Polled before each step (from the second on); training ends when it returns
        ``True``.
    on_epoch
        Called as ``on_epoch(epoch, train_loss, val_loss)`` after each epoch.

    Returns
    -------
    model : SRModel
        The network with the best weights and the data normalisation.
    record : dict
        ``epochs`` run, ``steps``, ``seconds``, ``stopped_by`` (``"epochs"``,
        ``"max_seconds"`` or ``"stop_requested"``), ``best_epoch``,
        ``best_validation_loss``, ``validation_psnr`` (network, best epoch) and
        ``validation_psnr_bicubic`` (the bicubic interpolation, the usual reference
        whatever the skip path) in dB on the validation
        set, with the peak-to-peak range of its high-resolution patches as the peak,
        ``n_validation``, ``offset`` and ``scale`` of the normalisation, ``parameters``,
        the network ``settings`` and the per-epoch ``history``.

    Raises
    ------
    ValueError
        For a bad option, or ``pairs_fn`` output of the wrong type, shape or dtype, or
        with NaN or infinite values.
    """
    if not callable(pairs_fn):
        raise ValueError(f"pairs_fn must be callable as pairs_fn(rng, n); got "
                         f"{type(pairs_fn).__name__}")
    if isinstance(seed, bool) or not isinstance(seed, Integral):
        raise ValueError(f"seed must be an integer; got {seed!r}")
    factor = _check_factor(factor)
    epochs = check_positive_int(epochs, "epochs")
    steps_per_epoch = check_positive_int(steps_per_epoch, "steps_per_epoch")
    max_seconds = _optional_seconds(max_seconds)
    batch_size = check_positive_int(batch_size, "batch_size")
    patch = check_positive_int(patch, "patch")
    lr = check_positive_float(lr, "lr")
    if isinstance(weight_decay, bool) or not isinstance(weight_decay, Real) or not (
            math.isfinite(weight_decay) and weight_decay >= 0):
        raise ValueError(f"weight_decay must be a finite number >= 0; got {weight_decay!r}")
    check_choice(loss, "loss", LOSSES)
    grad_clip = None if grad_clip is None else check_positive_float(grad_clip, "grad_clip")
    validation = check_positive_int(validation, "validation")
    dev = resolve_device(device)
    with seeded(int(seed), dev):
        network = VDSR(factor, depth=depth, width=width, up_width=up_width,
                       interpolation=interpolation)
    network.to(dev)
    if dev.type == "cpu":
        network.to(memory_format=torch.channels_last)

    t0 = time.perf_counter()
    train_seq, val_seq = np.random.SeedSequence(int(seed)).spawn(2)
    rng = np.random.default_rng(train_seq)
    val_low, val_high = _draw(pairs_fn, np.random.default_rng(val_seq), validation, patch,
                              factor)
    offset, scale = robust_range(val_low, _PERCENTILES)
    peak = float(val_high.max() - val_high.min()) or 1.0
    x_va = _to_input(val_low, offset, scale, dev)
    y_va = _to_input(val_high, offset, scale, dev)
    loss_fn = get_loss(loss)
    _, sq_bicubic = _evaluate(lambda x: _upsample(x, factor, "bicubic"), x_va, y_va, loss_fn)
    total_steps = epochs * steps_per_epoch

    history: list[dict[str, Any]] = []
    best_loss, best_epoch, best_state, best_sq = math.inf, 0, None, math.inf
    stopped_by, steps = "epochs", 0
    with seeded(int(seed), dev):
        optimiser = torch.optim.AdamW(network.parameters(), lr=lr, weight_decay=weight_decay)
        for epoch in range(1, epochs + 1):
            network.train()
            running, seen = 0.0, 0
            for _ in range(steps_per_epoch):
                elapsed = time.perf_counter() - t0
                if steps:
                    if max_seconds is not None and elapsed >= max_seconds:
                        stopped_by = "max_seconds"
                    elif stop_requested is not None and stop_requested():
                        stopped_by = "stop_requested"
                    if stopped_by != "epochs":
                        break
                progress = steps / total_steps
                if max_seconds is not None:
                    progress = max(progress, elapsed / max_seconds)
                for group in optimiser.param_groups:
                    group["lr"] = 0.5 * lr * (1.0 + math.cos(math.pi * min(progress, 1.0)))
                low, high = _draw(pairs_fn, rng, batch_size, patch, factor)
                pred = network(_to_input(low, offset, scale, dev))
                batch_loss = loss_fn(pred, _to_input(high, offset, scale, dev))
                optimiser.zero_grad(set_to_none=True)
                batch_loss.backward()
                if grad_clip is not None:
                    nn.utils.clip_grad_norm_(network.parameters(), grad_clip)
                optimiser.step()
                running += float(batch_loss.detach())
                seen += 1
                steps += 1
            if not seen:
                break
            train_loss = running / seen
            network.eval()
            val_loss, sq = _evaluate(network, x_va, y_va, loss_fn)
            if val_loss < best_loss:
                best_loss, best_epoch, best_sq = val_loss, epoch, sq
                best_state = copy.deepcopy(network.state_dict())
            history.append({
                "epoch": epoch, "train_loss": train_loss, "val_loss": val_loss,
                "val_psnr": _psnr(sq, y_va.numel(), scale, peak),
                "lr": optimiser.param_groups[0]["lr"], "steps": steps,
                "seconds": time.perf_counter() - t0})
            if on_epoch is not None:
                on_epoch(epoch, train_loss, val_loss)
            if stopped_by != "epochs":
                break
    if best_state is not None:
        network.load_state_dict(best_state)
    network.eval()
    model = SRModel(network, offset=offset, scale=scale, device=dev)
    record = {
        "epochs": len(history),
        "steps": steps,
        "seconds": time.perf_counter() - t0,
        "stopped_by": stopped_by,
        "best_epoch": best_epoch,
        "best_validation_loss": best_loss,
        "validation_psnr": _psnr(best_sq, y_va.numel(), scale, peak),
        "validation_psnr_bicubic": _psnr(sq_bicubic, y_va.numel(), scale, peak),
        "n_validation": validation,
        "offset": offset,
        "scale": scale,
        "loss": loss,
        "parameters": model.parameters_count,
        "settings": model.settings,
        "history": history,
    }
    keys = ("epochs", "steps", "seconds", "stopped_by", "best_epoch", "best_validation_loss",
            "validation_psnr", "validation_psnr_bicubic")
    model.history.append({"kind": "train", **{k: record[k] for k in keys}})
    return model, record


# ------------------------------------------------------------------------------- model
class SRModel:
    """A trained :class:`VDSR` network with its data normalisation, for inference.

    Usually obtained from :func:`train_vdsr` or :meth:`from_bytes`.

    Parameters
    ----------
    network
        The :class:`VDSR` module.
    offset, scale
        Normalisation of the data: the network sees ``(frames - offset) / scale`` and
        its output is mapped back with ``* scale + offset``. One fixed map, fitted to
        the training data, for every frame.
    device
        Where inference runs.
    history
        Summaries of the training runs.

    Raises
    ------
    ValueError
        For a network that is not a :class:`VDSR`, a non-finite offset or a scale that
        is not a finite positive number.
    """

    def __init__(self, network: VDSR, *, offset: float = 0.0, scale: float = 1.0,
                 device: str | torch.device = "cpu",
                 history: list[dict[str, Any]] | None = None) -> None:
        if not isinstance(network, VDSR):
            raise ValueError(f"network must be a VDSR; got {type(network).__name__}")
        if isinstance(offset, bool) or not isinstance(offset, Real) or not (
                math.isfinite(offset)):
            raise ValueError(f"offset must be a finite number; got {offset!r}")
        self.offset = float(offset)
        self.scale = check_positive_float(scale, "scale")
        self.network = network
        self.device = resolve_device(device)
        self.history = list(history or [])
        self.network.to(self.device).eval()
        if self.device.type == "cpu":
            self.network.to(memory_format=torch.channels_last)

    @property
    def factor(self) -> int:
        """Up-sampling factor (2 or 4)."""
        return self.network.factor

    @property
    def parameters_count(self) -> int:
        """Number of trainable parameters."""
        return _parameters_count(self.network)

    @property
    def settings(self) -> dict[str, Any]:
        """Everything needed to rebuild the network and its normalisation."""
        return {"factor": self.factor, "depth": self.network.depth,
                "width": self.network.width, "up_width": self.network.up_width,
                "interpolation": self.network.interpolation, "offset": self.offset,
                "scale": self.scale}

    def inference_dtype(self, dtype: str = "auto") -> torch.dtype:
        """The torch dtype :meth:`predict` computes in for its ``dtype`` option.

        ``"auto"`` is bfloat16 on a CPU that computes it natively (AVX512-BF16 or
        AMX), float32 elsewhere.
        """
        check_choice(dtype, "dtype", PRECISIONS)
        if dtype == "bfloat16":
            return torch.bfloat16
        if dtype == "auto" and self.device.type == "cpu" and _native_bf16():
            return torch.bfloat16
        return torch.float32

    def predict(self, frames: np.ndarray, *, batch_size: int | None = None,
                dtype: str = "auto") -> np.ndarray:
        """Super-resolve frames.

        Parameters
        ----------
        frames
            ``(N, H, W)`` frames, or one ``(H, W)`` frame, finite, in the units of the
            training data.
        batch_size
            Frames per forward pass; default: on a CPU, as many as keep a feature map
            of the batch within 8 MiB (2 frames of 256x256 at width 32 in bfloat16, 1
            in float32), the fastest on a 2-core CPU with 4 MiB of L2 cache; at least 1.
        dtype
            ``"auto"`` (bfloat16 on a CPU that computes it natively, else float32),
            ``"bfloat16"`` or ``"float32"``. bfloat16 rounds the learned correction only
            (the interpolated skip stays in float32); on a CPU with AMX it is about 2.5 times
            faster.

        Returns
        -------
        numpy.ndarray
            float32, ``(N, factor * H, factor * W)``, or ``(factor * H, factor * W)``
            for one frame.

        Raises
        ------
        ValueError
            For frames that are not ``(H, W)`` or ``(N, H, W)`` real arrays, hold NaN or
            infinite values, or bad options.
        """
        stack, single = as_frame_stack(frames, "frames")
        check_finite(stack, "frames")
        torch_dtype = self.inference_dtype(dtype)
        n, h, w = stack.shape
        if batch_size is None:
            per_frame = h * w * self.network.width * torch_dtype.itemsize
            batch_size = max(1, _BATCH_BYTES.get(self.device.type, 0) // per_frame)
        batch_size = check_positive_int(batch_size, "batch_size")
        f = self.factor
        out = np.empty((n, f * h, f * w), dtype=np.float32)
        self.network.eval()
        with torch.inference_mode(), torch.autocast(self.device.type, dtype=torch_dtype,
                                                    enabled=torch_dtype != torch.float32):
            for i in range(0, n, batch_size):
                part = np.ascontiguousarray(stack[i : i + batch_size], dtype=np.float32)
                pred = self.network(_to_input(part, self.offset, self.scale, self.device))
                out[i : i + batch_size] = (pred[:, 0] * self.scale + self.offset).cpu().numpy()
        return out[0] if single else out

    # ---------------------------------------------------------------- checkpoints
    def to_bytes(self) -> bytes:
        """A safetensors checkpoint: weights, :attr:`settings` and history."""
        meta = {"kind": _KIND, "settings": self.settings, "history": self.history,
                "package_version": package_version(), "torch_version": torch.__version__}
        return write_checkpoint(self.network.state_dict(), json_safe(meta))

    @classmethod
    def from_bytes(cls, data: bytes, *, device: str | torch.device = "cpu") -> SRModel:
        """Rebuild a model written by :meth:`to_bytes` (nothing is unpickled).

        Raises
        ------
        ValueError
            If the data is not a VDSR checkpoint, is corrupted or its weights do not fit
            its settings.
        """
        state, meta = read_checkpoint(data, source="VDSR checkpoint")
        if meta.get("kind") != _KIND:
            raise ValueError(f"VDSR checkpoint: holds a {meta.get('kind')!r} model, not a "
                             f"{_KIND!r} model")
        try:
            s = meta["settings"]
            network = VDSR(s["factor"], depth=s["depth"], width=s["width"],
                           up_width=s["up_width"], interpolation=s["interpolation"])
            network.load_state_dict(state, strict=True)
            return cls(network, offset=s["offset"], scale=s["scale"], device=device,
                       history=meta.get("history"))
        except (KeyError, TypeError, RuntimeError) as exc:
            raise ValueError(f"VDSR checkpoint: invalid settings or weights "
                             f"({type(exc).__name__}: {exc})") from None

    def __repr__(self) -> str:
        return (f"SRModel(factor={self.factor}, depth={self.network.depth}, "
                f"width={self.network.width}, up_width={self.network.up_width}, "
                f"interpolation={self.network.interpolation!r}, "
                f"offset={self.offset:g}, scale={self.scale:g}, "
                f"parameters={self.parameters_count})")
