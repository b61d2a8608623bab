"""A small fully convolutional U-Net that predicts a residual correction.

No dense layer, so it accepts frames of any size: inputs are reflect-padded
to a multiple of ``2**depth`` and the output is cropped back. The output
layer starts at zero, so an untrained network is the identity and training
learns the correction ``high - low`` in normalised units.
"""

from __future__ import annotations

import torch
from torch import nn

from .blending import reflect_pad

__all__ = ["UNet"]


def _block(c_in: int, c_out: int) -> nn.Sequential:
    return nn.Sequential(
        nn.Conv2d(c_in, c_out, 3, padding=1),
        nn.ReLU(inplace=True),
        nn.Conv2d(c_out, c_out, 3, padding=1),
        nn.ReLU(inplace=True),
    )


class UNet(nn.Module):
    """Residual U-Net for single-channel frames.

    Parameters
    ----------
    base_channels
        Channels at full resolution; doubled at each level.
    depth
        Number of 2x down-samplings (the padding factor is ``2**depth``).
    residual
        Add the input to the output (predict the correction); with several
        input channels, the centre channel is added.
    in_channels
        Input channels (odd): 1 for a frame, ``2 c + 1`` for a slice with its
        ``c`` neighbours on either side (2.5-D input).
    """

    def __init__(self, base_channels: int = 16, depth: int = 2, residual: bool = True,
                 in_channels: int = 1) -> None:
        super().__init__()
        if base_channels < 1 or depth < 1 or in_channels < 1 or in_channels % 2 == 0:
            raise ValueError(
                "UNet needs base_channels >= 1, depth >= 1 and an odd in_channels >= 1; got "
                f"{base_channels}, {depth}, {in_channels}"
            )
        self.depth = depth
        self.residual = residual
        self.in_channels = in_channels
        channels = [base_channels * 2**level for level in range(depth + 1)]
        self.down = nn.ModuleList()
        c_in = in_channels
        for c in channels[:-1]:
            self.down.append(_block(c_in, c))
            c_in = c
        self.pool = nn.MaxPool2d(2)
        self.bottom = _block(channels[-2], channels[-1])
        self.up = nn.ModuleList()
        self.merge = nn.ModuleList()
        for level in reversed(range(depth)):
            self.up.append(nn.ConvTranspose2d(channels[level + 1], channels[level], 2, stride=2))
            self.merge.append(_block(2 * channels[level], channels[level]))
        self.head = nn.Conv2d(channels[0], 1, 1)
        nn.init.zeros_(self.head.weight)
        nn.init.zeros_(self.head.bias)

    @property
    def factor(self) -> int:
        """Frame sides are padded to a multiple of this."""
        return 2**self.depth

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Map ``(B, C, H, W)`` to ``(B, 1, H, W)`` for any ``H, W >= 1``."""
        height, width = x.shape[-2:]
        pad_h = -height % self.factor
        pad_w = -width % self.factor
        top, left = pad_h // 2, pad_w // 2
        padded = reflect_pad(x, (top, pad_h - top, left, pad_w - left))
        skips = []
        h = padded
        for block in self.down:
            h = block(h)
            skips.append(h)
            h = self.pool(h)
        h = self.bottom(h)
        for up, merge, skip in zip(self.up, self.merge, reversed(skips), strict=True):
            h = merge(torch.cat([up(h), skip], dim=1))
        out = self.head(h)
        if self.residual:
            centre = self.in_channels // 2
            out = out + padded[:, centre : centre + 1]
        return out[..., top : top + height, left : left + width]
