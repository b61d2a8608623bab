"""Strided patch extraction and Hann-window blending for patch networks.

A frame is reflect-padded by ``margin = patch_size - stride`` on every side
(plus enough at the bottom/right to close the patch grid), cut into patches
with :func:`torch.nn.functional.unfold`, and the processed patches are
multiplied by a 2-D window and summed back with
:func:`torch.nn.functional.fold`. The sum is divided by the folded window, so
the blending weights of every pixel sum to one for any stride (a partition of
unity): an identity network reproduces the frame exactly. The margin makes
every pixel of the frame covered by the full set of overlapping patches, so
frame edges are treated like the interior.

The window is a *shifted* Hann window, ``w[n] = sin^2(pi (n + 1/2) / p)``. It
is strictly positive (no division by zero at any stride) and, for the default
stride ``p / 2``, its shifted copies already sum to exactly one.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch
import torch.nn.functional as F

__all__ = [
    "PatchLayout",
    "blend_patches",
    "extract_patches",
    "hann_window",
    "reflect_pad",
    "window_sum",
]


def hann_window(patch_size: int) -> np.ndarray:
    """Return the 2-D shifted Hann window of shape ``(patch_size, patch_size)``.

    Parameters
    ----------
    patch_size
        Side of the square patch.

    Returns
    -------
    numpy.ndarray
        float64 window, strictly positive, ``outer(w, w)`` with
        ``w[n] = sin^2(pi (n + 0.5) / patch_size)``.
    """
    n = np.arange(patch_size, dtype=np.float64)
    w = np.sin(np.pi * (n + 0.5) / patch_size) ** 2
    return np.outer(w, w)


def _axis_plan(length: int, patch_size: int, stride: int) -> tuple[int, int, int]:
    """Return ``(pad_before, pad_after, n_positions)`` for one axis."""
    margin = patch_size - stride
    inner = length + 2 * margin
    n_positions = max(1, -(-(inner - patch_size) // stride) + 1)
    padded = (n_positions - 1) * stride + patch_size
    return margin, padded - length - margin, n_positions


@dataclass(frozen=True)
class PatchLayout:
    """Geometry of a strided patch grid over frames of one shape.

    Parameters
    ----------
    frame_shape
        ``(H, W)`` of the frames.
    patch_size
        Side of the square patches.
    stride
        Step between patch origins, ``1 <= stride <= patch_size``.
    """

    frame_shape: tuple[int, int]
    patch_size: int
    stride: int

    def __post_init__(self) -> None:
        height, width = self.frame_shape
        if height < 1 or width < 1:
            raise ValueError(f"frame_shape must be positive; got {self.frame_shape}")
        if self.patch_size < 1:
            raise ValueError(f"patch_size must be >= 1; got {self.patch_size}")
        if not 1 <= self.stride <= self.patch_size:
            raise ValueError(
                f"stride must be in [1, patch_size={self.patch_size}]; got {self.stride}"
            )

    @property
    def pads(self) -> tuple[int, int, int, int]:
        """``(top, bottom, left, right)`` padding of a frame."""
        top, bottom, _ = _axis_plan(self.frame_shape[0], self.patch_size, self.stride)
        left, right, _ = _axis_plan(self.frame_shape[1], self.patch_size, self.stride)
        return top, bottom, left, right

    @property
    def grid(self) -> tuple[int, int]:
        """Number of patch positions along ``(H, W)``."""
        return (
            _axis_plan(self.frame_shape[0], self.patch_size, self.stride)[2],
            _axis_plan(self.frame_shape[1], self.patch_size, self.stride)[2],
        )

    @property
    def n_patches(self) -> int:
        """Patches per frame."""
        rows, cols = self.grid
        return rows * cols

    @property
    def padded_shape(self) -> tuple[int, int]:
        """Shape of a padded frame."""
        top, bottom, left, right = self.pads
        return self.frame_shape[0] + top + bottom, self.frame_shape[1] + left + right


def reflect_pad(x: torch.Tensor, pads: tuple[int, int, int, int]) -> torch.Tensor:
    """Reflect-pad the last two axes of a ``(N, C, H, W)`` tensor by any amount.

    Pads larger than the frame are done by repeated reflection (like
    :func:`numpy.pad` with ``mode="reflect"``); an axis of length 1 is
    replicated.

    Parameters
    ----------
    x
        Tensor of shape ``(N, C, H, W)``.
    pads
        ``(top, bottom, left, right)``.

    Returns
    -------
    torch.Tensor
    """
    top, bottom, left, right = pads
    while top or bottom or left or right:
        height, width = x.shape[-2:]
        step_t, step_b = min(top, height - 1), min(bottom, height - 1)
        step_l, step_r = min(left, width - 1), min(right, width - 1)
        if height == 1 and (top or bottom):
            x = F.pad(x, (0, 0, top, bottom), mode="replicate")
            top = bottom = 0
            continue
        if width == 1 and (left or right):
            x = F.pad(x, (left, right, 0, 0), mode="replicate")
            left = right = 0
            continue
        x = F.pad(x, (step_l, step_r, step_t, step_b), mode="reflect")
        top, bottom, left, right = top - step_t, bottom - step_b, left - step_l, right - step_r
    return x


def extract_patches(frames: torch.Tensor, layout: PatchLayout) -> torch.Tensor:
    """Cut frames into the patches of ``layout``.

    Parameters
    ----------
    frames
        Tensor of shape ``(N, H, W)`` with ``(H, W) == layout.frame_shape``.
    layout
        The patch grid.

    Returns
    -------
    torch.Tensor
        Patches of shape ``(N * layout.n_patches, 1, p, p)``, frame-major.
    """
    p = layout.patch_size
    padded = reflect_pad(frames.unsqueeze(1), layout.pads)
    cols = F.unfold(padded, kernel_size=p, stride=layout.stride)  # (N, p*p, L)
    return cols.transpose(1, 2).reshape(-1, 1, p, p)


def window_sum(layout: PatchLayout, window: torch.Tensor) -> torch.Tensor:
    """Sum of the shifted windows over the padded frame, shape ``padded_shape``.

    Parameters
    ----------
    layout
        The patch grid.
    window
        ``(p, p)`` window tensor.

    Returns
    -------
    torch.Tensor
    """
    p = layout.patch_size
    cols = window.reshape(1, p * p, 1).expand(1, p * p, layout.n_patches)
    return F.fold(cols, layout.padded_shape, kernel_size=p, stride=layout.stride)[0, 0]


def blend_patches(
    patches: torch.Tensor,
    layout: PatchLayout,
    window: torch.Tensor,
    weights: torch.Tensor | None = None,
) -> torch.Tensor:
    """Blend processed patches back into frames with normalised window weights.

    Parameters
    ----------
    patches
        ``(N * layout.n_patches, 1, p, p)`` as returned by :func:`extract_patches`
        (after processing).
    layout
        The patch grid.
    window
        ``(p, p)`` window tensor on the patches' device and dtype.
    weights
        Precomputed :func:`window_sum` (optional).

    Returns
    -------
    torch.Tensor
        Frames of shape ``(N, H, W)``.
    """
    p = layout.patch_size
    n_frames = patches.shape[0] // layout.n_patches
    cols = patches.reshape(n_frames, layout.n_patches, p * p) * window.reshape(1, 1, p * p)
    summed = F.fold(cols.transpose(1, 2), layout.padded_shape, kernel_size=p, stride=layout.stride)[
        :, 0
    ]
    if weights is None:
        weights = window_sum(layout, window)
    top, _, left, _ = layout.pads
    height, width = layout.frame_shape
    crop = (slice(None), slice(top, top + height), slice(left, left + width))
    return summed[crop] / weights[crop[1:]]
