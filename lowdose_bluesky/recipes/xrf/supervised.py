"""Supervised enhancement of XRF maps from long-dwell reference rows (Yang et al. 2018).

The scan maps every pixel at the short dwell and a few rows again at the long dwell.
A fully convolutional network takes the whole short-dwell map of an element and is
trained so that, on the reference rows, its output matches the long-dwell map: the loss
is masked to those rows, while the network's input (and so its receptive field) is the
whole two-dimensional map around them. The eight symmetries of the square turn the rows
into columns as well; a quarter of the reference pixels (every fourth column) is held
out to pick the best epoch. Each element's maps are divided by their own scale, so
trace elements weigh as much as major ones.
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from typing import Any

import numpy as np
import torch

__all__ = ["supervised_maps"]

_HOLD_OUT_EVERY = 4  # every fourth reference column validates


def _check(short: np.ndarray, long_rows: np.ndarray, rows: Sequence[int]) -> np.ndarray:
    if short.ndim != 3:
        raise ValueError(f"short maps must be (elements, H, W), got shape {short.shape}")
    rows_a = np.asarray(rows, dtype=int)
    if rows_a.size == 0:
        raise ValueError("the supervised method needs long-dwell reference rows; the run has "
                         "none (a blind map): use method='noise2noise' or 'noise2self'")
    expected = (short.shape[0], rows_a.size, short.shape[2])
    if long_rows.shape != expected:
        raise ValueError(f"long-dwell reference maps have shape {long_rows.shape}, expected "
                         f"{expected} (elements, reference rows, W)")
    if not (np.isfinite(short).all() and np.isfinite(long_rows).all()):
        raise ValueError("the short-dwell maps or the reference rows hold NaN/inf: every "
                         "line must be mapped before training")
    if rows_a.min() < 0 or rows_a.max() >= short.shape[1]:
        raise ValueError(f"reference rows {rows_a.tolist()} outside the map's "
                         f"{short.shape[1]} rows")
    return rows_a


def supervised_maps(short: np.ndarray, long_rows: np.ndarray, rows: Sequence[int], *,
                    epochs: int = 300, max_seconds: float | None = 20.0, seed: int = 0,
                    device: str = "auto", lr: float = 1e-3,
                    network_options: dict[str, Any] | None = None, init: Any = None
                    ) -> tuple[np.ndarray, Any]:
    """Enhanced maps ``(elements, H, W)`` learnt from the reference rows of the same map.

    Parameters
    ----------
    short
        Short-dwell maps ``(elements, H, W)``.
    long_rows
        Long-dwell maps of the reference rows ``(elements, len(rows), W)``.
    rows
        Map row of each reference row.
    epochs
        Passes over the elements (each a random symmetry of every element's map).
    max_seconds
        Training time limit (``None``: none).
    seed, device, lr, network_options
        Seed, torch device, Adam's learning rate and the U-Net's options.
    init
        An :class:`~lowdose_bluesky.model.Enhancer` (arch ``"unet"``, identity
        normalisation, inputs in the same element units) to start from.

    Returns
    -------
    tuple
        The maps and the trained :class:`~lowdose_bluesky.model.Enhancer` (in units
        of the per-element scale: its inputs are maps divided by their mean).
    """
    from ...model import Enhancer, build_network
    from ...model.normalisation import Normalisation
    from ...model.runtime import resolve_device, seeded
    from .noise2noise import dihedral_mean, element_scale

    rows_a = _check(short, long_rows, rows)
    n_el, h, w = short.shape
    scale = element_scale(short)
    x_np = (short / scale).astype(np.float32)
    target = np.zeros_like(x_np)
    target[:, rows_a, :] = long_rows / scale
    train_mask = np.zeros((h, w), np.float32)
    train_mask[rows_a, :] = 1.0
    val_mask = np.zeros_like(train_mask)
    held = np.arange(w) % _HOLD_OUT_EVERY == _HOLD_OUT_EVERY - 1
    val_mask[np.ix_(rows_a, held)] = 1.0
    train_mask -= val_mask

    dev = resolve_device(device)
    options = dict(network_options or {})
    if init is not None:
        options = dict(init.network_options)
    with seeded(seed, dev):
        net = build_network("unet", options).to(dev)
        if init is not None:
            net.load_state_dict(init.network.state_dict())
        opt = torch.optim.Adam(net.parameters(), lr=lr)
        x = torch.from_numpy(x_np)[:, None].to(dev)
        y = torch.from_numpy(target)[:, None].to(dev)
        masks = torch.from_numpy(np.stack([train_mask, val_mask]))[None].to(dev)
        rng = np.random.default_rng(seed)
        def val_loss() -> float:
            net.eval()
            with torch.no_grad():
                err = (net(x) - y) ** 2 * masks[:, 1:]
                return float(err.sum() / (masks[:, 1:].sum() * n_el))

        # the starting network is a candidate: fine-tuning never leaves a worse one
        best = val_loss()
        best_state = {k: v.detach().clone() for k, v in net.state_dict().items()}
        history: list[dict[str, float]] = []
        t0 = time.monotonic()
        for epoch in range(int(epochs)):
            code = int(rng.integers(8))
            xs, ys, ms = (_symmetry(t, code) for t in (x, y, masks))
            net.train()
            opt.zero_grad()
            err = (net(xs) - ys) ** 2
            loss = (err * ms[:, :1]).sum() / (ms[:, :1].sum() * n_el)
            loss.backward()
            opt.step()
            val = val_loss()
            history.append({"epoch": epoch, "loss": float(loss.detach()), "val_loss": val})
            if val < best:
                best = val
                best_state = {k: v.detach().clone() for k, v in net.state_dict().items()}
            if max_seconds is not None and time.monotonic() - t0 > max_seconds:
                break
        net.load_state_dict(best_state)
    enhancer = Enhancer(net, arch="unet", normalisation=Normalisation.identity(),
                        network_options=options, device=dev,
                        config={"trained_on": "long-dwell reference rows (masked loss)",
                                "reference_rows": rows_a.tolist(), "epochs_run": len(history),
                                "initialised_from": None if init is None else init.config,
                                "best_val_loss": best, "seconds": time.monotonic() - t0},
                        history=history)
    maps = dihedral_mean(enhancer, x_np) * scale
    return np.clip(maps, 0.0, None).astype(np.float32), enhancer


def _symmetry(t: torch.Tensor, code: int) -> torch.Tensor:
    """One of the eight symmetries of the square on the last two axes."""
    if code >= 4:
        t = t.flip(-1)
    return torch.rot90(t, code % 4, (-2, -1))
