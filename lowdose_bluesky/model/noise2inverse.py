"""Noise2Inverse: self-supervised denoising of a reconstruction from its own rotation.

After Hendriksen, Pelt & Batenburg, IEEE Trans. Comput. Imaging 6:1320 (2020). The
projections of one scan are split into ``K`` interleaved subsets of angles; each subset
is reconstructed on its own. The counting noise of the subsets is independent, their
noise-free reconstructions nearly equal, so a network trained to predict one
sub-reconstruction from the mean of the others ("X:1") learns the noise-free
reconstruction in expectation, with no clean reference. At inference it runs on every
``X:1`` input and the ``K`` outputs are averaged.

Two choices of this implementation (see ``docs/decisions/0012-self-supervised-default.md``):

- 2.5-D input: a slice and ``context`` neighbours on either side as channels, with the
  residual U-Net of :mod:`lowdose_bluesky.model.unet` (fine features that sit below the
  noise of one slice are continuous across slices);
- a gate measured on held-out slices: because the noise of the target subset is
  independent of the input, the held-out self-supervised loss is the model's error plus
  the noise variance, and the identity's loss gives that variance; the model is used only
  where its estimated error is below the noise of the plain full reconstruction.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable
from typing import Any

import numpy as np
import torch
from torch import nn
from tqdm import tqdm

from ..n2i_config import MIN_PROJECTIONS_PER_SPLIT, Noise2InverseConfig, check_split
from .augment import dihedral
from .checkpoint import read_checkpoint, write_checkpoint
from .runtime import resolve_device, seeded
from .unet import UNet

__all__ = [
    "MIN_PROJECTIONS_PER_SPLIT",
    "Noise2InverseConfig",
    "Noise2InverseDenoiser",
    "check_split",
    "split_indices",
    "train_noise2inverse",
]

_KIND = "noise2inverse"


def split_indices(n_projections: int, splits: int) -> list[np.ndarray]:
    """Interleaved subsets ``j, j + K, j + 2K, ...`` of ``n_projections`` angles."""
    check_split(n_projections, splits)
    return [np.arange(j, n_projections, splits) for j in range(splits)]


def _check_subs(subs: np.ndarray, config: Noise2InverseConfig) -> np.ndarray:
    arr = np.asarray(subs, dtype=np.float32)
    if arr.ndim != 4 or arr.shape[0] != config.splits:
        raise ValueError(
            f"sub-reconstructions must have shape (K={config.splits}, Z, Y, X), got {arr.shape}")
    smallest = config.min_slice_side
    if min(arr.shape[2:]) < smallest:
        raise ValueError(
            f"slices of {arr.shape[2]}x{arr.shape[3]} are too small for the Noise2Inverse "
            f"network (depth {config.depth}): slices need at least {smallest}x{smallest} pixels")
    if not np.isfinite(arr).all():
        raise ValueError("sub-reconstructions hold NaN or infinite values; only finite values "
                         "are allowed")
    return arr


def _inputs(subs: torch.Tensor, context: int) -> torch.Tensor:
    """``(K, Z + 2c, Y, X)``: for each split the mean of the others, slices edge-padded."""
    k = subs.shape[0]
    total = subs.sum(0, keepdim=True)
    others = (total - subs) / (k - 1)
    if context:
        others = torch.cat([others[:, :1].expand(-1, context, -1, -1), others,
                            others[:, -1:].expand(-1, context, -1, -1)], dim=1)
    return others


def _windows(inputs: torch.Tensor, z: torch.Tensor, c: int) -> torch.Tensor:
    """Channels ``z .. z + 2c`` of padded ``inputs (Zp, Y, X)``: ``(len(z), 2c + 1, Y, X)``."""
    offsets = torch.arange(2 * c + 1)
    return inputs[z[:, None] + offsets[None, :]]


class Noise2InverseDenoiser:
    """A trained Noise2Inverse network, its normalisation and its gate.

    Call it on ``(K, Z, Y, X)`` sub-reconstructions to get the ``(Z, Y, X)`` denoised
    volume. ``gate`` holds the held-out measurement and ``use_model`` its verdict.
    """

    kind = _KIND

    def __init__(self, network: UNet, config: Noise2InverseConfig, scale: float,
                 gate: dict[str, Any] | None = None, history: list[dict[str, Any]] | None = None,
                 device: str | torch.device = "cpu") -> None:
        self.network = network
        self.config = config
        self.scale = float(scale)
        self.gate = dict(gate or {})
        self.history = list(history or [])
        self.device = resolve_device(device)
        self.network.to(self.device).eval()

    @property
    def use_model(self) -> bool:
        """Whether the held-out gate found the model better than the raw reconstruction."""
        return bool(self.gate.get("use_model", False))

    def _predict(self, inputs: torch.Tensor, batch: int = 8) -> torch.Tensor:
        c = self.config.context
        z_all = torch.arange(inputs.shape[0] - 2 * c)
        out = torch.empty((z_all.numel(), *inputs.shape[1:]), dtype=torch.float32)
        with torch.no_grad():
            for i in range(0, z_all.numel(), batch):
                z = z_all[i : i + batch]
                x = _windows(inputs, z, c).to(self.device)
                out[i : i + z.numel()] = self.network(x)[:, 0].float().cpu()
        return out

    def __call__(self, subs: np.ndarray) -> np.ndarray:
        """Denoise ``(K, Z, Y, X)`` sub-reconstructions into one ``(Z, Y, X)`` volume."""
        arr = _check_subs(subs, self.config)
        x = torch.from_numpy(arr / self.scale)
        inputs = _inputs(x, self.config.context)
        total = torch.zeros(arr.shape[1:], dtype=torch.float32)
        for j in range(self.config.splits):
            total += self._predict(inputs[j])
        return (total / self.config.splits * self.scale).numpy()

    # ------------------------------------------------------------- checkpoints
    def to_bytes(self) -> bytes:
        """A safetensors checkpoint (weights, config, scale, gate, history)."""
        state = {k: v.detach().cpu() for k, v in self.network.state_dict().items()}
        meta = {"kind": _KIND, "config": self.config.model_dump(), "scale": self.scale,
                "gate": self.gate, "history": self.history}
        return write_checkpoint(state, meta)

    @classmethod
    def from_bytes(cls, data: bytes, *, device: str | torch.device = "cpu"
                   ) -> Noise2InverseDenoiser:
        """Rebuild a denoiser written by :meth:`to_bytes`."""
        state, meta = read_checkpoint(data, source="Noise2Inverse checkpoint")
        if meta.get("kind") != _KIND:
            raise ValueError(f"checkpoint holds a {meta.get('kind')!r} model, not a "
                             f"{_KIND!r} model")
        config = Noise2InverseConfig(**meta["config"])
        network = _network(config)
        network.load_state_dict(state)
        return cls(network, config, meta["scale"], meta.get("gate"), meta.get("history"),
                   device=device)


def _network(config: Noise2InverseConfig) -> UNet:
    return UNet(config.base_channels, config.depth, residual=True,
                in_channels=2 * config.context + 1)


def _lr_factor(progress: float) -> float:
    """Cosine decay from 1 to 0.05 over the budget."""
    return 0.05 + 0.95 * 0.5 * (1.0 + math.cos(math.pi * min(max(progress, 0.0), 1.0)))


def _held_out(n_slices: int, every: int) -> np.ndarray:
    held = np.arange(every // 2, n_slices, every)
    return held if held.size else np.array([n_slices // 2])


def _gate(network: nn.Module, inputs: torch.Tensor, targets: torch.Tensor, held: np.ndarray,
          config: Noise2InverseConfig, device: torch.device) -> dict[str, Any]:
    """Held-out self-supervised losses of the model and of the identity, and the verdict."""
    c, k = config.context, config.splits
    z = torch.from_numpy(held)
    model_sq = ident_sq = 0.0
    count = 0
    network.eval()
    with torch.no_grad():
        for j in range(k):
            for i in range(0, z.numel(), 8):
                zz = z[i : i + 8]
                x = _windows(inputs[j], zz, c).to(device)
                y = targets[j, zz].to(device)
                pred = network(x)[:, 0]
                model_sq += float(torch.sum((pred - y) ** 2))
                ident_sq += float(torch.sum((x[:, c] - y) ** 2))
                count += y.numel()
    model_loss, identity_loss = model_sq / count, ident_sq / count
    # identity: E|mean of K-1 - X_j|^2 = s2 / (K - 1) + s2, s2 the noise variance of one split
    noise_var = identity_loss * (k - 1) / k
    model_error = max(model_loss - noise_var, 0.0)
    raw_error = noise_var / k  # noise variance of the full reconstruction
    use = model_error < config.gate_margin * raw_error
    return {"use_model": bool(use), "held_out_slices": int(held.size),
            "model_loss": model_loss, "identity_loss": identity_loss,
            "noise_variance": noise_var, "model_error": model_error,
            "raw_reconstruction_error": raw_error,
            "units": "variance in units of the normalisation scale squared"}


def train_noise2inverse(subs: np.ndarray, config: Noise2InverseConfig | None = None, *,
                        device: str | torch.device = "auto", progress: bool = True,
                        stop_requested: Callable[[], bool] | None = None
                        ) -> Noise2InverseDenoiser:
    """Train a Noise2Inverse network on the sub-reconstructions of one scan.

    Parameters
    ----------
    subs
        ``(K, Z, Y, X)`` reconstructions of the ``K`` interleaved subsets of angles
        (:func:`split_indices`), same centre and filter.
    config
        :class:`Noise2InverseConfig` (defaults if ``None``).
    device
        ``"auto"`` (CUDA when available), ``"cpu"``, ``"cuda"``, ...
    progress
        Show a tqdm bar.
    stop_requested
        Polled each step; training ends early when it returns ``True``.

    Returns
    -------
    Noise2InverseDenoiser
        The trained network with its held-out gate measured.

    Raises
    ------
    ValueError
        For sub-reconstructions of the wrong shape, too small or not finite.
    """
    config = config or Noise2InverseConfig()
    arr = _check_subs(subs, config)
    dev = resolve_device(device)
    scale = float(np.std(arr.mean(0))) or 1.0
    x = torch.from_numpy(arr / scale)
    inputs = _inputs(x, config.context)
    k, n_z, height, width = arr.shape
    held = _held_out(n_z, config.holdout_every) if n_z > 1 else np.array([0])
    train_z = np.setdiff1d(np.arange(n_z), held) if n_z > 1 else np.array([0])
    ph, pw = min(config.patch_size, height), min(config.patch_size, width)
    rng = np.random.default_rng(config.seed)
    history: list[dict[str, Any]] = []
    with seeded(config.seed, dev):
        network = _network(config).to(dev)
    optimiser = torch.optim.Adam(network.parameters(), lr=config.lr)
    t0 = time.perf_counter()
    bar = tqdm(desc="noise2inverse", unit="step", disable=not progress, leave=False)
    step, running = 0, 0.0
    network.train()
    while True:
        elapsed = time.perf_counter() - t0
        fractions = []
        if config.max_seconds is not None:
            fractions.append(elapsed / config.max_seconds)
        if config.max_iterations is not None:
            fractions.append(step / config.max_iterations)
        done = max(fractions) if fractions else 1.0
        if done >= 1.0 or (stop_requested is not None and step and stop_requested()):
            break
        for group in optimiser.param_groups:
            group["lr"] = config.lr * _lr_factor(done)
        js = rng.integers(0, k, config.batch_size)
        zs = rng.choice(train_z, config.batch_size)
        ys = rng.integers(0, height - ph + 1, config.batch_size)
        xs = rng.integers(0, width - pw + 1, config.batch_size)
        batch_in = torch.stack([
            _windows(inputs[j], torch.tensor([z]), config.context)[0, :, y : y + ph, x0 : x0 + pw]
            for j, z, y, x0 in zip(js, zs, ys, xs, strict=True)])
        batch_out = torch.stack([x[j, z, y : y + ph, x0 : x0 + pw][None]
                                 for j, z, y, x0 in zip(js, zs, ys, xs, strict=True)])
        batch_in, batch_out = dihedral(batch_in, batch_out, rng.integers(0, 8, config.batch_size))
        loss = nn.functional.mse_loss(network(batch_in.to(dev)), batch_out.to(dev))
        optimiser.zero_grad(set_to_none=True)
        loss.backward()
        optimiser.step()
        step += 1
        running += float(loss.detach())
        bar.update()
        if step % 50 == 0:
            history.append({"step": step, "loss": running / 50,
                            "seconds": time.perf_counter() - t0})
            running = 0.0
    bar.close()
    gate = _gate(network, inputs, x, held, config, dev)
    gate.update(steps=step, seconds=time.perf_counter() - t0)
    return Noise2InverseDenoiser(network, config, scale, gate, history, device=dev)
