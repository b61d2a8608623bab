"""The patch network of Yang et al., Sci. Rep. 8:2575 (2018), in PyTorch.

Encoder: 8 convolutions 3x3 with ReLU, 16 -> 64 kernels, three of them with
stride 2 (``p x p -> p/8 x p/8``), then (as in the authors' code) a 1-kernel
convolution feeding a fully connected block of widths
``(p^2/128, p^2/128, p^2/64)`` with dropout ``(0.2, 0.25, 0.25)``.
Decoder: the dense output reshaped to ``p/8 x p/8``, 9 transposed convolutions
3x3 with ReLU, 64 -> 1 kernels, three of them with stride 2; decoder maps are
concatenated with the encoder maps of the same scale. The last layer has one
kernel and a linear output (the authors used ReLU; the robust normalisation
used here lets targets dip slightly below zero).

The six stride-1 transposed convolutions are written as the equivalent 3x3
convolutions (a stride-1, padding-1 transposed convolution is a convolution
with a flipped kernel: same function class and parameter count), which run
about 1.5x faster on CPU; the three up-sampling layers are true transposed
convolutions.
"""

from __future__ import annotations

import torch
from torch import nn

__all__ = ["Yang2018Net"]


def _conv(c_in: int, c_out: int, stride: int = 1) -> nn.Sequential:
    return nn.Sequential(nn.Conv2d(c_in, c_out, 3, stride=stride, padding=1), nn.ReLU(inplace=True))


def _deconv(c_in: int, c_out: int, stride: int = 1, relu: bool = True) -> nn.Module:
    if stride == 1:
        layer = nn.Conv2d(c_in, c_out, 3, padding=1)
    else:
        layer = nn.ConvTranspose2d(c_in, c_out, 3, stride=stride, padding=1, output_padding=1)
    return nn.Sequential(layer, nn.ReLU(inplace=True)) if relu else layer


class Yang2018Net(nn.Module):
    """Encoder / fully-connected / decoder network on square patches.

    Parameters
    ----------
    patch_size
        Side of the input patches; a multiple of 8, at least 16.
    filters
        Kernels of the first layer (16 in the paper); the network uses
        ``filters``, ``2 filters`` and ``4 filters`` (16, 32, 64).
    dense_divisors
        The dense widths are ``patch_size**2 // d`` for each ``d``; the last one
        must give ``(patch_size / 8)**2`` (i.e. be 64).
    dropout
        Dropout rate after each dense layer.
    """

    def __init__(
        self,
        patch_size: int = 32,
        filters: int = 16,
        dense_divisors: tuple[int, int, int] = (128, 128, 64),
        dropout: tuple[float, float, float] = (0.2, 0.25, 0.25),
    ) -> None:
        super().__init__()
        if patch_size < 16 or patch_size % 8:
            raise ValueError(
                f"yang2018 needs a patch_size that is a multiple of 8 and >= 16; got {patch_size}"
            )
        if len(dense_divisors) != len(dropout):
            raise ValueError("dense_divisors and dropout must have the same length")
        side = patch_size // 8
        widths = [max(1, patch_size * patch_size // d) for d in dense_divisors]
        if widths[-1] != side * side:
            raise ValueError(
                f"the last dense width must be (patch_size/8)^2 = {side * side}; got {widths[-1]}"
            )
        self.patch_size = patch_size
        self._side = side
        f = filters
        self.enc1 = _conv(1, f)
        self.enc1_down = _conv(f, f, stride=2)
        self.enc2 = _conv(f, 2 * f)
        self.enc2_down = _conv(2 * f, 2 * f, stride=2)
        self.enc3 = _conv(2 * f, 2 * f)
        self.enc3_down = _conv(2 * f, 2 * f, stride=2)
        self.enc4 = nn.Sequential(_conv(2 * f, 4 * f), _conv(4 * f, 4 * f), _conv(4 * f, 1))
        dense: list[nn.Module] = [nn.Flatten()]
        n_in = side * side
        for width, rate in zip(widths, dropout, strict=True):
            dense += [nn.Linear(n_in, width), nn.ReLU(), nn.Dropout(rate)]
            n_in = width
        self.dense = nn.Sequential(*dense)
        self.dec1 = nn.Sequential(_deconv(1, 4 * f), _deconv(4 * f, 4 * f, stride=2))
        self.dec2 = nn.Sequential(_deconv(6 * f, 2 * f), _deconv(2 * f, 2 * f, stride=2))
        self.dec3 = nn.Sequential(_deconv(4 * f, 2 * f), _deconv(2 * f, 2 * f, stride=2))
        self.dec4 = nn.Sequential(_deconv(3 * f, f), _deconv(f, f), _deconv(f, 1, relu=False))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Map ``(B, 1, p, p)`` patches to ``(B, 1, p, p)`` patches."""
        if x.shape[-2:] != (self.patch_size, self.patch_size):
            raise ValueError(
                f"Yang2018Net expects patches of {self.patch_size}x{self.patch_size}; "
                f"got {tuple(x.shape[-2:])}"
            )
        e1 = self.enc1(x)
        e2 = self.enc2(self.enc1_down(e1))
        e3 = self.enc3(self.enc2_down(e2))
        code = self.dense(self.enc4(self.enc3_down(e3)))
        code = code.reshape(-1, 1, self._side, self._side)
        d = self.dec1(code)
        d = self.dec2(torch.cat([d, e3], dim=1))
        d = self.dec3(torch.cat([d, e2], dim=1))
        return self.dec4(torch.cat([d, e1], dim=1))
