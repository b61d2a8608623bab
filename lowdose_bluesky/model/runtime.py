"""Device selection and seeded, side-effect-free determinism for torch.

The library never changes torch's global state for good: seeds are applied
inside :func:`torch.random.fork_rng` and cuDNN flags are restored on exit;
``torch.set_num_threads`` is never called.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator

import torch

__all__ = ["resolve_device", "seeded"]

_DEVICE_HELP = "'auto', 'cpu', 'cuda' or 'cuda:N' (or a torch.device)"


def resolve_device(device: str | torch.device) -> torch.device:
    """Turn a device specification into a usable :class:`torch.device`.

    Parameters
    ----------
    device
        ``"auto"`` (CUDA when available, else CPU), ``"cpu"``, ``"cuda"``,
        ``"cuda:N"`` or a :class:`torch.device`.

    Returns
    -------
    torch.device

    Raises
    ------
    ValueError
        For an unknown specification, or CUDA requested but unavailable.
    """
    if isinstance(device, str) and device == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if isinstance(device, torch.device):
        resolved = device
    elif isinstance(device, str):
        try:
            resolved = torch.device(device)
        except (RuntimeError, ValueError) as exc:
            raise ValueError(f"unknown device {device!r}; allowed: {_DEVICE_HELP}") from exc
    else:
        raise ValueError(f"unknown device {device!r}; allowed: {_DEVICE_HELP}")
    if resolved.type not in ("cpu", "cuda"):
        raise ValueError(f"unsupported device {device!r}; allowed: {_DEVICE_HELP}")
    if resolved.type == "cuda":
        if not torch.cuda.is_available():
            raise ValueError(
                f"device {device!r} requested but CUDA is not available "
                "(torch.cuda.is_available() is False); use 'auto' or 'cpu'"
            )
        index = 0 if resolved.index is None else resolved.index
        if index >= torch.cuda.device_count():
            raise ValueError(
                f"device {device!r} requested but only {torch.cuda.device_count()} "
                "CUDA device(s) are visible"
            )
    return resolved


@contextlib.contextmanager
def seeded(seed: int, device: torch.device) -> Iterator[None]:
    """Seed torch's generators inside a forked RNG state; restore everything on exit.

    Parameters
    ----------
    seed
        Seed for torch's CPU generator and, when ``device`` is CUDA, that
        device's generator (other devices are left alone).
    device
        Device the work runs on; its generator is forked too when it is CUDA.
    """
    cuda_devices = []
    if device.type == "cuda":
        cuda_devices = [device.index if device.index is not None else torch.cuda.current_device()]
    cudnn = torch.backends.cudnn
    saved = (cudnn.deterministic, cudnn.benchmark)
    with torch.random.fork_rng(devices=cuda_devices):
        torch.random.default_generator.manual_seed(seed)
        for index in cuda_devices:
            with torch.cuda.device(index):
                torch.cuda.manual_seed(seed)
        cudnn.deterministic, cudnn.benchmark = True, False
        try:
            yield
        finally:
            cudnn.deterministic, cudnn.benchmark = saved


def set_cpu_threads(n: int) -> None:
    """Limit torch's intra-op CPU threads (process-wide) to ``n``.

    Used by the live callback to leave a core to the RunEngine; the training and
    inference functions themselves never change it.
    """
    if isinstance(n, bool) or not isinstance(n, int) or n < 1:
        raise ValueError(f"threads must be a positive integer, got {n!r}")
    torch.set_num_threads(n)
