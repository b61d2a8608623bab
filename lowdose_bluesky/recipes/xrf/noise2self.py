"""Blind denoising of the spectral cube by Noise2Self (Batson & Royer 2019; Taylor et al.).

The map's spectra (summed over the live detector elements) form a cube ``(H, W,
channels)`` of Poisson counts whose noise is independent from voxel to voxel. A 3-D
convolutional autoencoder sees the cube with a random Bernoulli-chosen set of voxels
hidden (each replaced by the mean of its four neighbours in the same energy channel)
and is trained to predict the hidden voxels' counts (Poisson likelihood): it can only
do so from the other voxels, so it learns the expected counts from the correlation
between neighbouring pixels and between spectral channels, with no clean reference.
Optionally the transmission (absorption contrast) image, with far more counts, is fed
in beside the cube as a second input channel ("pansharpening"). The denoised cube is
then mapped by the same linear fit as the raw spectra.

The cube is cut to the fluorescence range (1 keV to just above the incident energy)
and its channels summed in groups, to about :data:`MAX_CHANNELS` channels: the peaks
stay several channels wide, and the network's cost falls with the channel count.
"""

from __future__ import annotations

import math
import time
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch
from torch import nn

__all__ = ["MAX_CHANNELS", "SpectralAutoencoder", "SpectralBinning", "noise2self_maps"]

#: Channels of the cube the network sees (the spectrum is summed in groups to fit).
MAX_CHANNELS = 128
#: Fraction of the voxels hidden at each step.
MASK_FRACTION = 0.05
_LOW_KEV = 1.0
_TILE = 32  # spatial side of the training tiles


@dataclass(frozen=True)
class SpectralBinning:
    """The channels of the cube: a range of detector channels summed in groups.

    Attributes
    ----------
    first, stop
        Detector channels ``first .. stop - 1`` are kept.
    group
        Neighbouring channels summed into one.
    """

    first: int
    stop: int
    group: int

    @classmethod
    def for_spectra(cls, bins: int, bin_kev: float, energy_kev: float,
                    max_channels: int = MAX_CHANNELS) -> SpectralBinning:
        """The fluorescence range of a detector's channels, grouped to ``max_channels``."""
        first = int(_LOW_KEV / bin_kev)
        stop = min(bins, math.ceil((energy_kev + 0.5) / bin_kev))
        group = max(1, math.ceil((stop - first) / max_channels))
        stop = first + (stop - first) // group * group
        if stop <= first or first >= bins:
            raise ValueError(f"no channel of {bins} x {bin_kev} keV lies between {_LOW_KEV} "
                             f"keV and the incident energy {energy_kev} keV")
        return cls(first, stop, group)

    @property
    def channels(self) -> int:
        """Channels of the cube."""
        return (self.stop - self.first) // self.group

    def apply(self, spectra: np.ndarray) -> np.ndarray:
        """Spectra ``(..., bins)`` to cube channels ``(..., channels)``."""
        cut = np.asarray(spectra)[..., self.first:self.stop]
        return cut.reshape(*cut.shape[:-1], self.channels, self.group).sum(axis=-1)


class SpectralAutoencoder(nn.Module):
    """A small 3-D convolutional encoder-decoder over (energy, y, x).

    Input ``(B, C_in, channels, H, W)``: the (masked, normalised) cube and optionally
    the contrast image repeated along energy; output ``(B, 1, channels, H, W)``: the
    log of the expected counts relative to the map's mean spectrum.
    """

    def __init__(self, in_channels: int = 1, width: int = 8) -> None:
        super().__init__()
        act = nn.LeakyReLU(0.1)
        self.encode = nn.Sequential(
            nn.Conv3d(in_channels, width, 3, padding=1), act,
            nn.Conv3d(width, 2 * width, 3, stride=2, padding=1), act,
            nn.Conv3d(2 * width, 2 * width, 3, padding=1), act)
        self.decode = nn.Sequential(
            nn.ConvTranspose3d(2 * width, width, 4, stride=2, padding=1), act)
        self.head = nn.Conv3d(2 * width, 1, 3, padding=1)
        self.skip = nn.Sequential(nn.Conv3d(in_channels, width, 3, padding=1), act)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Log expected counts, relative to the mean spectrum, of every voxel."""
        size = x.shape[-3:]
        pads = [p for s in reversed(size) for p in (0, -s % 2)]
        xp = nn.functional.pad(x, pads, mode="replicate")
        up = self.decode(self.encode(xp))
        out = self.head(torch.cat([up, self.skip(xp)], dim=1))
        return out[..., :size[0], :size[1], :size[2]]


def _neighbour_mean(cube: torch.Tensor) -> torch.Tensor:
    """Mean of the four in-plane neighbours of every voxel (replicated edges)."""
    p = nn.functional.pad(cube, (1, 1, 1, 1, 0, 0), mode="replicate")
    return 0.25 * (p[..., :-2, 1:-1] + p[..., 2:, 1:-1] + p[..., 1:-1, :-2] + p[..., 1:-1, 2:])


def noise2self_maps(cube: np.ndarray, to_maps: Any, *, contrast: np.ndarray | None = None,
                    epochs: int = 400, max_seconds: float | None = 20.0, seed: int = 0,
                    device: str = "auto", lr: float = 2e-3, width: int = 8,
                    mask_fraction: float = MASK_FRACTION, inference_passes: int = 0
                    ) -> tuple[np.ndarray, dict[str, Any]]:
    """Element maps of the denoised cube.

    Parameters
    ----------
    cube
        Counts ``(H, W, channels)`` (see :class:`SpectralBinning`).
    to_maps
        ``to_maps(cube) -> (elements, H, W)``: the linear fit on the cube's channels.
    contrast
        The transmission (absorption) image ``(H, W)``, or ``None``.
    epochs
        Training steps (each on one random tile of the cube).
    max_seconds
        Training time limit (``None``: none).
    seed, device, lr, width
        Seed, torch device, Adam's learning rate, the network's base width.
    mask_fraction
        Fraction of the voxels hidden at each training step.
    inference_passes
        0: the network sees the whole cube once. ``n > 0``: ``n`` passes, each with
        a fresh mask; every voxel's prediction is the mean of the passes that hid it
        (J-invariant, as in training), the unmasked pass where none did.

    Returns
    -------
    tuple
        The maps, and the network's ``state_dict`` plus its description (for the
        checkpoint).
    """
    from ...model.runtime import resolve_device, seeded

    cube = np.asarray(cube, dtype=np.float32)
    if cube.ndim != 3 or not np.isfinite(cube).all() or (cube < 0).any():
        raise ValueError(f"the cube must be finite counts (H, W, channels) >= 0, got shape "
                         f"{cube.shape}")
    h, w, _ = cube.shape
    mean_spectrum = np.maximum(cube.mean(axis=(0, 1)), 1e-3)
    norm = (cube - mean_spectrum) / np.sqrt(mean_spectrum)  # Pearson residuals
    inputs = [np.moveaxis(norm, -1, 0)]
    if contrast is not None:
        c = -np.log(np.clip(np.asarray(contrast, np.float64), 1e-12, None))
        if c.shape != (h, w):
            raise ValueError(f"the contrast image has shape {c.shape}, the cube {(h, w)}")
        c = (c - c.mean()) / max(float(c.std()), 1e-12)
        inputs.append(np.broadcast_to(c, inputs[0].shape))
    dev = resolve_device(device)
    x_all = torch.from_numpy(np.stack(inputs).astype(np.float32))[None].to(dev)
    counts = torch.from_numpy(np.moveaxis(cube, -1, 0).copy())[None, None].to(dev)
    log_mean = torch.from_numpy(np.log(mean_spectrum))[None, None, :, None, None].to(dev)
    tile_h, tile_w = min(_TILE, h), min(_TILE, w)
    description = {"arch": "spectral_autoencoder_3d", "width": width,
                   "in_channels": len(inputs), "mask_fraction": mask_fraction,
                   "inference_passes": inference_passes,
                   "pansharpened": contrast is not None}
    with seeded(seed, dev):
        net = SpectralAutoencoder(len(inputs), width).to(dev)
        opt = torch.optim.Adam(net.parameters(), lr=lr)
        rng = np.random.default_rng(seed)
        t0, steps, losses = time.monotonic(), 0, []
        for _ in range(int(epochs)):
            r, c0 = int(rng.integers(h - tile_h + 1)), int(rng.integers(w - tile_w + 1))
            x = x_all[..., r:r + tile_h, c0:c0 + tile_w]
            y = counts[..., r:r + tile_h, c0:c0 + tile_w]
            mask = torch.rand(y.shape, device=dev) < mask_fraction
            hidden = torch.where(mask, _neighbour_mean(x[:, :1]), x[:, :1])
            x = torch.cat([hidden, x[:, 1:]], dim=1)
            net.train()
            opt.zero_grad()
            log_rate = net(x) + log_mean
            nll = torch.exp(log_rate) - y * log_rate
            loss = nll[mask].mean()
            loss.backward()
            opt.step()
            steps += 1
            losses.append(float(loss.detach()))
            if max_seconds is not None and time.monotonic() - t0 > max_seconds:
                break
        net.eval()
        with torch.no_grad():
            rate = torch.exp(net(x_all) + log_mean)[0, 0]
            if inference_passes:
                total = torch.zeros_like(rate)
                hits = torch.zeros_like(rate)
                for _ in range(int(inference_passes)):
                    mask = torch.rand(counts.shape, device=dev) < mask_fraction
                    hidden = torch.where(mask, _neighbour_mean(x_all[:, :1]), x_all[:, :1])
                    out = torch.exp(net(torch.cat([hidden, x_all[:, 1:]], 1)) + log_mean)
                    total += torch.where(mask, out, 0.0)[0, 0]
                    hits += mask[0, 0]
                rate = torch.where(hits > 0, total / hits.clamp(min=1), rate)
    denoised = np.moveaxis(rate.cpu().numpy(), 0, -1)
    description.update(steps=steps, seconds=time.monotonic() - t0,
                       final_loss=float(np.mean(losses[-20:])) if losses else None)
    return to_maps(denoised), {"state_dict": net.state_dict(), "description": description}
