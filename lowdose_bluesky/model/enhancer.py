"""The trained enhancer: inference and (de)serialisation (fine-tuning: ``training.py``)."""

from __future__ import annotations

import copy
import os
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn

from ._checks import as_frame_stack, check_finite, check_positive_int
from .blending import PatchLayout, blend_patches, extract_patches, hann_window, window_sum
from .checkpoint import (
    EXPECTED,
    json_safe,
    package_version,
    read_checkpoint,
    write_checkpoint,
)
from .networks import ARCHS, PATCH_ARCHS, build_network
from .networks import network_options as merge_network_options
from .normalisation import Normalisation
from .runtime import resolve_device

__all__ = ["Enhancer"]

#: Pixels per forward pass of a fully convolutional network (auto batch size).
_PIXELS_PER_BATCH = 2**16
#: Patches per forward pass of a patch network.
_PATCHES_PER_BATCH = 1024


def _mismatch(expected: dict[str, torch.Tensor], found: dict[str, torch.Tensor]) -> str:
    """A short account of how the tensors ``found`` differ from those ``expected``."""

    def some(names: list[str]) -> str:
        return ", ".join(names[:3]) + (", ..." if len(names) > 3 else "")

    missing = sorted(set(expected) - set(found))
    unexpected = sorted(set(found) - set(expected))
    reshaped = sorted(k for k in set(expected) & set(found)
                      if tuple(expected[k].shape) != tuple(found[k].shape))
    parts = [f"{len(names)} {what} ({some(names)})" for what, names in (
        ("tensors missing", missing), ("unexpected tensors", unexpected),
        ("tensors of another shape", reshaped)) if names]
    return "; ".join(parts) if parts else "tensors of another dtype"


class Enhancer:
    """A network that maps low-exposure frames to high-exposure-like frames.

    Usually obtained from :func:`~lowdose_bluesky.model.train_enhancer` or
    :meth:`Enhancer.load`.

    Parameters
    ----------
    network
        The torch module (``(B, 1, h, w) -> (B, 1, h, w)``).
    arch
        ``"unet"`` or ``"yang2018"``.
    normalisation
        Maps inputs to network units and outputs to the units of the
        high-exposure training frames.
    network_options
        Constructor options of ``network`` (needed to save and reload it);
        for ``"yang2018"`` it must contain ``patch_size``.
    config
        Training hyper-parameters and summary.
    history
        Per-epoch training record.
    device
        Where inference runs: ``"auto"`` (CUDA if available), ``"cpu"``, ``"cuda"``...
    """

    def __init__(
        self,
        network: nn.Module,
        *,
        arch: str,
        normalisation: Normalisation,
        network_options: dict[str, Any] | None = None,
        config: dict[str, Any] | None = None,
        history: list[dict[str, Any]] | None = None,
        device: str | torch.device = "auto",
    ) -> None:
        if arch not in ARCHS:
            raise ValueError(f"unknown arch {arch!r}; allowed: {', '.join(map(repr, ARCHS))}")
        self._arch = arch
        self._options = merge_network_options(arch, network_options)
        self._normalisation = normalisation
        self._config = json_safe(dict(config or {}))
        self._history = json_safe(list(history or []))
        self._device = resolve_device(device)
        self.network = network.eval().to(self._device, memory_format=torch.channels_last)

    # ------------------------------------------------------------------ metadata
    @property
    def arch(self) -> str:
        """Architecture name."""
        return self._arch

    @property
    def config(self) -> dict[str, Any]:
        """Training hyper-parameters and summary (a copy)."""
        return copy.deepcopy(self._config)

    @property
    def history(self) -> list[dict[str, Any]]:
        """Per-epoch record ``{epoch, train_loss, val_loss, val_psnr, seconds}`` (a copy)."""
        return copy.deepcopy(self._history)

    @property
    def normalisation(self) -> Normalisation:
        """Intensity maps of inputs and outputs (``.to_dict()`` for plain metadata)."""
        return self._normalisation

    @property
    def network_options(self) -> dict[str, Any]:
        """Constructor options of the network (a copy)."""
        return copy.deepcopy(self._options)

    @property
    def patch_size(self) -> int | None:
        """Patch side of a patch network, ``None`` for a fully convolutional one."""
        return int(self._options["patch_size"]) if self._arch in PATCH_ARCHS else None

    @property
    def device(self) -> torch.device:
        """Device used for inference."""
        return self._device

    @property
    def n_parameters(self) -> int:
        """Number of trainable parameters."""
        return sum(p.numel() for p in self.network.parameters() if p.requires_grad)

    def to(self, device: str | torch.device) -> Enhancer:
        """Move inference to ``device`` (in place) and return ``self``."""
        self._device = resolve_device(device)
        self.network.to(self._device)
        return self

    def __repr__(self) -> str:
        return (
            f"Enhancer(arch={self._arch!r}, parameters={self.n_parameters}, "
            f"epochs_trained={len(self._history)}, device={str(self._device)!r})"
        )

    # ----------------------------------------------------------------- inference
    def __call__(
        self,
        frames: np.ndarray,
        *,
        batch_size: int | None = None,
        stride: int | None = None,
    ) -> np.ndarray:
        """Enhance low-exposure frames.

        Parameters
        ----------
        frames
            ``(N, H, W)`` or ``(H, W)``, any size, in the units of the
            low-exposure training frames.
        batch_size
            Frames per chunk; default chosen from the frame size.
        stride
            Patch-network only: step between blended patches (default
            ``config["inference_stride"]`` or ``patch_size // 2``).

        Returns
        -------
        numpy.ndarray
            float32 frames of the input's shape, in the units of the
            high-exposure training frames.

        Raises
        ------
        ValueError
            For a wrong shape, a non-numeric dtype, NaN/inf or bad arguments.
        """
        stack, was_2d = as_frame_stack(frames, "frames")
        check_finite(stack, "frames")
        n_frames, height, width = stack.shape
        patch = self.patch_size
        layout = None
        if patch is not None:
            if stride is None:
                stride = int(self._config.get("inference_stride") or max(1, patch // 2))
            stride = check_positive_int(stride, "stride")
            if stride > patch:
                raise ValueError(f"stride must be <= patch_size={patch}; got {stride}")
            layout = PatchLayout((height, width), patch, stride)
            per_chunk = max(1, 4 * _PATCHES_PER_BATCH // layout.n_patches)
        else:
            per_chunk = max(1, _PIXELS_PER_BATCH // (height * width))
        if batch_size is not None:
            per_chunk = check_positive_int(batch_size, "batch_size")
        out = np.empty(stack.shape, dtype=np.float32)
        self.network.eval()
        with torch.inference_mode():
            for start in range(0, n_frames, per_chunk):
                chunk = self._normalisation.normalise_low(stack[start : start + per_chunk])
                x = torch.from_numpy(chunk).to(self._device)
                y = self._run_frames(x) if layout is None else self._run_patches(x, layout)
                out[start : start + per_chunk] = y.cpu().numpy()
        out = self._normalisation.denormalise_high(out)
        return out[0] if was_2d else out

    def _forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.network(x.contiguous(memory_format=torch.channels_last))

    def _run_frames(self, x: torch.Tensor) -> torch.Tensor:
        return self._forward(x.unsqueeze(1))[:, 0]

    def _run_patches(self, x: torch.Tensor, layout: PatchLayout) -> torch.Tensor:
        window = torch.from_numpy(hann_window(layout.patch_size)).to(x.device, x.dtype)
        patches = extract_patches(x, layout)
        processed = torch.cat(
            [self._forward(part) for part in torch.split(patches, _PATCHES_PER_BATCH)]
        )
        return blend_patches(processed, layout, window, window_sum(layout, window))

    # ------------------------------------------------------------ serialisation
    def to_bytes(self) -> bytes:
        """Serialise weights and metadata to safetensors bytes (see ``checkpoint``)."""
        metadata = {
            "arch": self._arch,
            "network": self._options,
            "config": self._config,
            "normalisation": self._normalisation.to_dict(),
            "history": self._history,
            "package_version": package_version(),
            "torch_version": torch.__version__,
        }
        return write_checkpoint(self.network.state_dict(), json_safe(metadata))

    @classmethod
    def from_bytes(cls, data: bytes, *, device: str | torch.device = "auto",
                   source: str = "checkpoint data") -> Enhancer:
        """Rebuild an Enhancer from :meth:`to_bytes` output.

        ``source`` names the bytes in error messages (e.g. ``"checkpoint of result UID"``).

        Raises
        ------
        ValueError
            If the data is a pickle, corrupted, foreign or inconsistent (nothing is
            unpickled).
        """
        state, meta = read_checkpoint(data, source=source)
        try:
            arch = meta["arch"]
            options = meta["network"]
            normalisation = Normalisation.from_dict(meta["normalisation"])
            network = build_network(arch, options)
        except (KeyError, TypeError, ValueError) as exc:
            raise ValueError(f"{source}: invalid Enhancer checkpoint metadata "
                             f"({type(exc).__name__}: {exc}); {EXPECTED}") from None
        try:
            network.load_state_dict(state, strict=True)
        except RuntimeError:
            raise ValueError(
                f"{source}: Enhancer checkpoint weights do not fit arch {arch!r} with options "
                f"{options}: {_mismatch(network.state_dict(), state)}"
            ) from None
        return cls(
            network,
            arch=arch,
            normalisation=normalisation,
            network_options=options,
            config=meta.get("config") or {},
            history=meta.get("history") or [],
            device=device,
        )

    def save(self, path: str | os.PathLike[str]) -> Path:
        """Write the checkpoint to ``path`` atomically and return the path."""
        path = Path(path)
        data = self.to_bytes()
        tmp = path.with_name(path.name + ".part")
        tmp.write_bytes(data)
        os.replace(tmp, path)
        return path

    @classmethod
    def load(cls, path: str | os.PathLike[str], *, device: str | torch.device = "auto") -> Enhancer:
        """Read a checkpoint written by :meth:`save`.

        Raises
        ------
        ValueError
            If the file is a pickle (``torch.save`` output included), corrupted or not an
            Enhancer checkpoint; the message names the file. Nothing is unpickled.
        OSError
            If the file cannot be read.
        """
        return cls.from_bytes(Path(path).read_bytes(), device=device,
                              source=f"checkpoint file {str(path)!r}")
