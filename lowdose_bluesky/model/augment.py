"""Dihedral (flip / rot90) augmentation of square patch pairs."""

from __future__ import annotations

import numpy as np
import torch

__all__ = ["dihedral"]


def dihedral(
    x: torch.Tensor, y: torch.Tensor, codes: np.ndarray
) -> tuple[torch.Tensor, torch.Tensor]:
    """Apply one of the 8 symmetries of the square to each pair of patches.

    Parameters
    ----------
    x, y
        Tensors of shape ``(B, C, p, p)``.
    codes
        Integers in ``[0, 8)``, one per sample: ``code % 4`` quarter turns,
        preceded by a horizontal flip when ``code >= 4``.

    Returns
    -------
    tuple of torch.Tensor
        Transformed copies of ``x`` and ``y`` (the same transform for both).
    """
    out_x, out_y = torch.empty_like(x), torch.empty_like(y)
    for code in np.unique(codes):
        sel = torch.from_numpy(np.flatnonzero(codes == code)).to(x.device)
        xs, ys = x[sel], y[sel]
        if code >= 4:
            xs, ys = xs.flip(-1), ys.flip(-1)
        turns = int(code) % 4
        out_x[sel] = torch.rot90(xs, turns, (-2, -1))
        out_y[sel] = torch.rot90(ys, turns, (-2, -1))
    return out_x, out_y
