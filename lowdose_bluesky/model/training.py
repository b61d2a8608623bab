"""Training an :class:`~lowdose_bluesky.model.Enhancer` on short/long exposure pairs."""

from __future__ import annotations

import copy
import math
import os
import time
from collections.abc import Callable
from dataclasses import dataclass
from numbers import Integral
from typing import Any

import numpy as np
import torch
from tqdm import tqdm

from ._checks import (
    as_frame_stack,
    check_choice,
    check_finite,
    check_fraction,
    check_frames_hold_signal,
    check_positive_float,
    check_positive_int,
)
from .augment import dihedral
from .enhancer import Enhancer
from .losses import LOSSES, get_loss, psnr
from .networks import ARCHS, PATCH_ARCHS, build_network
from .networks import network_options as merge_network_options
from .normalisation import Normalisation
from .patches import PatchSet, sample_training_patches
from .runtime import resolve_device, seeded

__all__ = ["fine_tune", "train_enhancer"]

_EVAL_BATCH = 1024
#: Training hyper-parameters of an Enhancer's config reused by :func:`fine_tune`.
_TRAINING_KEYS = (
    "patch_size",
    "stride",
    "epochs",
    "batch_size",
    "lr",
    "loss",
    "seed",
    "augment",
    "val_fraction",
    "patience",
    "max_patches",
    "max_seconds",
)


def _resolve_init(init: Any, device: torch.device) -> Enhancer | None:
    if init is None or isinstance(init, Enhancer):
        return init
    if isinstance(init, bytes | bytearray | memoryview):
        return Enhancer.from_bytes(bytes(init), device=device)
    if isinstance(init, str | os.PathLike):
        return Enhancer.load(init, device=device)
    raise ValueError(
        "init must be an Enhancer, checkpoint bytes or a checkpoint path; "
        f"got {type(init).__name__}"
    )


def _optional(value: Any, name: str, check: Any) -> Any:
    return None if value is None else check(value, name)


def _evaluate(
    network: torch.nn.Module, x: torch.Tensor, y: torch.Tensor, loss_fn: Any
) -> tuple[float | None, float | None]:
    """Return ``(mean loss, PSNR)`` of ``network`` on ``(x, y)`` (``None`` if empty)."""
    if x.shape[0] == 0:
        return None, None
    network.eval()
    loss_sum, sq_sum = 0.0, 0.0
    with torch.no_grad():
        for xb, yb in zip(torch.split(x, _EVAL_BATCH), torch.split(y, _EVAL_BATCH), strict=True):
            pred = network(xb.contiguous(memory_format=torch.channels_last))
            loss_sum += float(loss_fn(pred, yb)) * xb.shape[0]
            sq_sum += float(torch.sum((pred - yb) ** 2))
    mse = max(sq_sum / y.numel(), 1e-20)
    return loss_sum / x.shape[0], 10.0 * math.log10(1.0 / mse)


def train_enhancer(
    low: np.ndarray,
    high: np.ndarray,
    *,
    arch: str | None = None,
    patch_size: int | None = None,
    stride: int | None = None,
    epochs: int = 30,
    batch_size: int = 64,
    lr: float = 1e-3,
    loss: str = "inverse_psnr",
    device: str | torch.device = "auto",
    seed: int = 0,
    progress: bool = True,
    augment: bool = True,
    val_fraction: float = 0.15,
    patience: int | None = 5,
    max_patches: int | None = 8192,
    max_seconds: float | None = None,
    init: Enhancer | bytes | str | os.PathLike[str] | None = None,
    network_options: dict[str, Any] | None = None,
    inference_stride: int | None = None,
    stop_requested: Callable[[], bool] | None = None,
    on_epoch: Callable[[dict[str, Any]], None] | None = None,
    on_best: Callable[[Enhancer], None] | None = None,
) -> Enhancer:
    """Train a network mapping short-exposure frames to long-exposure frames.

    Parameters
    ----------
    low, high
        The ``K`` short/long exposure pairs, arrays of the same shape
        ``(K, H, W)`` (or ``(H, W)`` for ``K = 1``), in any consistent units.
        Every frame must be finite and not zero everywhere; integer frames
        are raw counts and must not be saturated (more than 1 % of a frame's
        pixels at the type's maximum, e.g. 65535 for ``uint16``). One pair is
        enough: its validation band is then cut from the same frame.
    arch
        ``"unet"`` (default; fully convolutional, residual) or ``"yang2018"``
        (the paper's patch network). Defaults to ``init``'s arch when fine-tuning.
    patch_size
        Side of the training patches (default 32). For ``"yang2018"`` it is
        the network's fixed input size (a multiple of 8, >= 16); for
        ``"unet"`` it is the crop size, clipped to the frame size.
    stride
        Step of the grid from which training patches are drawn (default 1,
        as in the paper; ``max_patches`` are sampled from it).
    epochs
        Maximum number of passes over the training patches.
    batch_size
        Patches per optimisation step.
    lr
        Adam learning rate.
    loss
        ``"inverse_psnr"`` (the paper's 1/PSNR), ``"mse"`` or ``"l1"``, all on
        normalised data.
    device
        ``"auto"`` (CUDA if available), ``"cpu"``, ``"cuda"`` or ``"cuda:N"``.
    seed
        Seed of the weight initialisation, patch sampling, shuffling,
        augmentation and dropout; runs on CPU are bit-for-bit reproducible.
    progress
        Show a tqdm progress bar over epochs.
    augment
        Random flips / quarter turns of training patches.
    val_fraction
        Fraction held out for validation (0 disables validation and early stopping).
    patience
        Stop after this many epochs without a better validation PSNR
        (``None``: never); the best weights are kept.
    max_patches
        Cap on training patches (``None``: all positions of the grid).
    max_seconds
        Wall-clock budget; training stops after the batch that exceeds it.
    init
        An Enhancer (or its bytes, or a checkpoint path) to fine-tune from;
        the normalisation is fitted again to ``low``/``high``.
    network_options
        Options of the network constructor (see
        :data:`lowdose_bluesky.model.ARCHS`); ignored when fine-tuning.
    inference_stride
        Patch-network only: default blending stride stored on the Enhancer
        (default ``patch_size // 2``).
    stop_requested
        Called after every batch; when it returns true, training ends after
        that batch (with the best weights so far, ``stopped="requested"``).
        Used by the live callback to stop training when the scan ends.
    on_epoch
        Called with each epoch's record as soon as the epoch is done (for
        live feedback); exceptions in it propagate.
    on_best
        Called with a snapshot :class:`Enhancer` (an independent copy) each time the
        validation PSNR improves, from the training thread: a live analysis enhances
        frames with the best model so far while training goes on. Its config holds
        ``best_val_psnr``, ``baseline_val_psnr`` and ``best_epoch``.

    Returns
    -------
    Enhancer
        With ``history`` (one dict per epoch) and ``config``.

    Raises
    ------
    ValueError
        For inputs of different shapes, empty or non-finite inputs, frames
        that are zero everywhere or saturated, frames smaller than the patch
        of a patch network, an unknown arch, loss or
        device, or non-positive numeric arguments.
    """
    # ---------------------------------------------------------------- arguments
    check_choice(loss, "loss", LOSSES)
    epochs = check_positive_int(epochs, "epochs")
    batch_size = check_positive_int(batch_size, "batch_size")
    lr = check_positive_float(lr, "lr")
    val_fraction = check_fraction(val_fraction, "val_fraction")
    patience = _optional(patience, "patience", check_positive_int)
    max_patches = _optional(max_patches, "max_patches", check_positive_int)
    max_seconds = _optional(max_seconds, "max_seconds", check_positive_float)
    stride = _optional(stride, "stride", check_positive_int) or 1
    patch_size = _optional(patch_size, "patch_size", check_positive_int)
    inference_stride = _optional(inference_stride, "inference_stride", check_positive_int)
    for name, hook in (("stop_requested", stop_requested), ("on_epoch", on_epoch),
                       ("on_best", on_best)):
        if hook is not None and not callable(hook):
            raise ValueError(f"{name} must be a callable or None; got {hook!r}")
    if isinstance(seed, bool) or not isinstance(seed, Integral) or seed < 0:
        raise ValueError(f"seed must be a non-negative integer; got {seed!r}")
    torch_device = resolve_device(device)
    base = _resolve_init(init, torch_device)
    if arch is None:
        arch = base.arch if base is not None else "unet"
    check_choice(arch, "arch", ARCHS)
    if base is not None and base.arch != arch:
        raise ValueError(f"cannot fine-tune a {base.arch!r} Enhancer as arch {arch!r}")

    low_s, _ = as_frame_stack(low, "low")
    high_s, _ = as_frame_stack(high, "high")
    if low_s.shape != high_s.shape:
        raise ValueError(
            f"low and high must have the same shape; got low {np.shape(low)} "
            f"and high {np.shape(high)}"
        )
    check_finite(low_s, "low")
    check_finite(high_s, "high")
    check_frames_hold_signal(low_s, "low")
    check_frames_hold_signal(high_s, "high")
    n_pairs, height, width = low_s.shape

    # ---------------------------------------------------------------- network
    if base is not None:
        options = base.network_options
    else:
        options = merge_network_options(arch, network_options)
    if arch in PATCH_ARCHS:
        if base is not None and patch_size is not None and patch_size != base.patch_size:
            raise ValueError(
                f"patch_size {patch_size} differs from the fine-tuned network's {base.patch_size}"
            )
        if patch_size is not None:
            options["patch_size"] = patch_size
        patch = int(options["patch_size"])
        if height < patch or width < patch:
            raise ValueError(
                f"frames of {height}x{width} are smaller than the {patch}x{patch} patch of "
                f"the {arch!r} network; use frames of at least {patch}x{patch} or a smaller "
                "patch_size (multiple of 8, >= 16)"
            )
        if inference_stride is not None and inference_stride > patch:
            raise ValueError(
                f"inference_stride must be <= patch_size={patch}; got {inference_stride}"
            )
    else:
        patch = min(patch_size or 32, height, width)
    with seeded(int(seed), torch_device):  # weights drawn here, before the data work
        if base is not None:
            network = copy.deepcopy(base.network).to("cpu")
        else:
            network = build_network(arch, options)
    network = network.to(torch_device, memory_format=torch.channels_last)

    # ---------------------------------------------------------------- data
    normalisation = Normalisation.fit(low_s, high_s)
    rng = np.random.default_rng(seed)
    patches = sample_training_patches(
        normalisation.normalise_low(low_s),
        normalisation.normalise_high(high_s),
        patch,
        stride,
        val_fraction,
        max_patches,
        rng,
    )

    config: dict[str, Any] = {
        "arch": arch,
        "patch_size": patch,
        "stride": stride,
        "epochs": epochs,
        "batch_size": batch_size,
        "lr": lr,
        "loss": loss,
        "seed": int(seed),
        "augment": bool(augment),
        "val_fraction": val_fraction,
        "patience": patience,
        "max_patches": max_patches,
        "max_seconds": max_seconds,
        "device": str(torch_device),
        "n_pairs": n_pairs,
        "frame_shape": [height, width],
        "split": patches.split,
        "n_train_patches": int(patches.train_low.shape[0]),
        "n_val_patches": int(patches.val_low.shape[0]),
        "fine_tuned": base is not None,
    }
    if arch in PATCH_ARCHS:
        config["inference_stride"] = inference_stride or max(1, patch // 2)

    snapshot = None
    if on_best is not None:
        history_before = list(base.history) if base is not None else []

        def snapshot(state: dict[str, torch.Tensor], history: list[dict[str, Any]],
                     baseline: float | None) -> None:
            copy_net = copy.deepcopy(network)
            copy_net.load_state_dict(state)
            record = history[-1]
            on_best(Enhancer(copy_net, arch=arch, normalisation=normalisation,
                             network_options=options,
                             config={**config, "best_val_psnr": record["val_psnr"],
                                     "baseline_val_psnr": baseline,
                                     "best_epoch": len(history_before) + record["epoch"],
                                     "stopped": "snapshot"},
                             history=history_before + [dict(h) for h in history],
                             device=torch_device))

    hooks = _Hooks(stop_requested, on_epoch, snapshot)
    with seeded(int(seed), torch_device):  # dropout
        history, summary = _fit(
            network, patches, config, get_loss(loss), rng, torch_device, progress, hooks
        )
    if base is not None:
        offset = len(base.history)
        history = base.history + [{**h, "epoch": h["epoch"] + offset} for h in history]
        summary["best_epoch"] += offset
    config.update(summary)
    return Enhancer(
        network,
        arch=arch,
        normalisation=normalisation,
        network_options=options,
        config=config,
        history=history,
        device=torch_device,
    )


def fine_tune(
    enhancer: Enhancer, low: np.ndarray, high: np.ndarray, *, epochs: int | None = None,
    **kwargs: Any,
) -> Enhancer:
    """Continue training from these weights on new pairs; return a new Enhancer.

    Parameters
    ----------
    enhancer
        The trained :class:`~lowdose_bluesky.model.Enhancer` to start from.
    low, high
        New short/long exposure pairs, as for
        :func:`~lowdose_bluesky.model.train_enhancer`.
    epochs
        Epochs to train (default: as in :attr:`Enhancer.config`).
    **kwargs
        Other :func:`~lowdose_bluesky.model.train_enhancer` arguments;
        by default the hyper-parameters in :attr:`Enhancer.config` are reused.

    Returns
    -------
    Enhancer
        A new object; ``enhancer`` is not modified. Its normalisation is fitted
        to the new pairs.
    """
    config = enhancer.config
    params = {k: config[k] for k in _TRAINING_KEYS if k in config}
    if enhancer.patch_size is not None:
        params["patch_size"] = enhancer.patch_size
        if config.get("inference_stride"):
            params["inference_stride"] = config["inference_stride"]
    if epochs is not None:
        params["epochs"] = epochs
    params.setdefault("device", enhancer.device)
    params.update(kwargs)
    return train_enhancer(low, high, arch=enhancer.arch, init=enhancer, **params)


@dataclass(frozen=True)
class _Hooks:
    """Caller hooks of the optimisation loop (see :func:`train_enhancer`)."""

    stop_requested: Callable[[], bool] | None = None
    on_epoch: Callable[[dict[str, Any]], None] | None = None
    on_best: Callable[[dict[str, torch.Tensor], list[dict[str, Any]], float | None], None] | None \
        = None


def _fit(
    network: torch.nn.Module,
    patches: PatchSet,
    config: dict[str, Any],
    loss_fn: Any,
    rng: np.random.Generator,
    device: torch.device,
    progress: bool,
    hooks: _Hooks,
) -> tuple[list[dict[str, Any]], dict[str, Any]]:
    """Run the optimisation loop; return the history and a summary for the config."""

    def tensor(a: np.ndarray) -> torch.Tensor:
        return torch.from_numpy(a).unsqueeze(1).to(device)

    x_train, y_train = tensor(patches.train_low), tensor(patches.train_high)
    x_val, y_val = tensor(patches.val_low), tensor(patches.val_high)
    n_train = x_train.shape[0]
    batch_size, max_seconds = config["batch_size"], config["max_seconds"]
    patience = config["patience"]
    optimiser = torch.optim.Adam(network.parameters(), lr=config["lr"])
    baseline = float(psnr(x_val, y_val)) if x_val.shape[0] else None

    history: list[dict[str, Any]] = []
    best_psnr, best_epoch, best_state, waited = -math.inf, 0, None, 0
    stopped = "epochs"
    started = time.perf_counter()
    bar = tqdm(
        total=config["epochs"],
        desc=f"train {config['arch']}",
        unit="epoch",
        disable=not progress,
        leave=False,
    )
    try:
        for epoch in range(1, config["epochs"] + 1):
            t0 = time.perf_counter()
            network.train()
            order = torch.from_numpy(rng.permutation(n_train)).to(device)
            loss_sum, seen = 0.0, 0
            for batch in torch.split(order, batch_size):
                xb, yb = x_train[batch], y_train[batch]
                if config["augment"]:
                    xb, yb = dihedral(xb, yb, rng.integers(0, 8, size=batch.shape[0]))
                pred = network(xb.contiguous(memory_format=torch.channels_last))
                value = loss_fn(pred, yb)
                optimiser.zero_grad(set_to_none=True)
                value.backward()
                optimiser.step()
                loss_sum += float(value.detach()) * batch.shape[0]
                seen += batch.shape[0]
                if max_seconds is not None and time.perf_counter() - started > max_seconds:
                    stopped = "max_seconds"
                    break
                if hooks.stop_requested is not None and hooks.stop_requested():
                    stopped = "requested"
                    break
            val_loss, val_psnr = _evaluate(network, x_val, y_val, loss_fn)
            history.append(
                {
                    "epoch": epoch,
                    "train_loss": loss_sum / max(seen, 1),
                    "val_loss": val_loss,
                    "val_psnr": val_psnr,
                    "seconds": time.perf_counter() - t0,
                }
            )
            if hooks.on_epoch is not None:
                hooks.on_epoch(dict(history[-1]))
            bar.update(1)
            bar.set_postfix(
                loss=f"{history[-1]['train_loss']:.4g}",
                val_psnr="-" if val_psnr is None else f"{val_psnr:.2f}",
            )
            if val_psnr is None or val_psnr > best_psnr + 1e-4:
                best_psnr = -math.inf if val_psnr is None else val_psnr
                best_epoch, waited = epoch, 0
                best_state = {k: v.detach().clone() for k, v in network.state_dict().items()}
                if hooks.on_best is not None:
                    hooks.on_best(best_state, history, baseline)
            else:
                waited += 1
            if stopped in ("max_seconds", "requested"):
                break
            if patience is not None and val_psnr is not None and waited >= patience:
                stopped = "early_stopping"
                break
    finally:
        bar.close()
    if best_state is not None:
        network.load_state_dict(best_state)
    network.eval()
    summary = {
        "best_epoch": best_epoch,
        "best_val_psnr": None if best_psnr == -math.inf else best_psnr,
        "baseline_val_psnr": baseline,
        "stopped": stopped,
        "seconds": time.perf_counter() - started,
    }
    return history, summary
