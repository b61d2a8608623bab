"""Training losses and the PSNR metric on normalised (``[0, 1]``-ish) data."""

from __future__ import annotations

from collections.abc import Callable

import torch
import torch.nn.functional as F

__all__ = ["LOSSES", "get_loss", "inverse_psnr_loss", "psnr"]

_EPS = 1e-10


def psnr(pred: torch.Tensor, target: torch.Tensor, data_range: float = 1.0) -> torch.Tensor:
    """Peak signal-to-noise ratio in dB over the whole tensors.

    Parameters
    ----------
    pred, target
        Tensors of the same shape.
    data_range
        Peak value (1 for normalised data).

    Returns
    -------
    torch.Tensor
        Scalar ``10 log10(data_range^2 / MSE)``.
    """
    mse = torch.mean((pred - target) ** 2).clamp_min(_EPS)
    return 10.0 * torch.log10(data_range**2 / mse)


def inverse_psnr_loss(pred: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    """The paper's loss, ``1 / PSNR``, per sample and averaged over the batch.

    The PSNR of each sample (peak 1) enters through ``1 + softplus(PSNR - 1)``,
    which equals PSNR above a few dB but stays >= 1, so the loss never changes
    sign or explodes for a badly initialised network (MSE near or above 1).

    Parameters
    ----------
    pred, target
        Tensors of shape ``(B, ...)``.

    Returns
    -------
    torch.Tensor
        Scalar loss.
    """
    mse = torch.mean((pred - target) ** 2, dim=tuple(range(1, pred.ndim))).clamp_min(_EPS)
    sample_psnr = -10.0 * torch.log10(mse)
    return torch.mean(1.0 / (1.0 + F.softplus(sample_psnr - 1.0)))


LOSSES: dict[str, Callable[[torch.Tensor, torch.Tensor], torch.Tensor]] = {
    "inverse_psnr": inverse_psnr_loss,
    "mse": F.mse_loss,
    "l1": F.l1_loss,
}


def get_loss(name: str) -> Callable[[torch.Tensor, torch.Tensor], torch.Tensor]:
    """Return the loss function called ``name`` (see :data:`LOSSES`)."""
    return LOSSES[name]
