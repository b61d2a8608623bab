"""Registry of the enhancement networks (``arch`` names and their options)."""

from __future__ import annotations

from typing import Any

from torch import nn

from .unet import UNet
from .yang2018 import Yang2018Net

__all__ = ["ARCHS", "PATCH_ARCHS", "build_network", "network_options"]

#: Known architectures and their default constructor options.
ARCHS: dict[str, dict[str, Any]] = {
    "unet": {"base_channels": 16, "depth": 2, "residual": True},
    "yang2018": {
        "patch_size": 32,
        "filters": 16,
        "dense_divisors": [128, 128, 64],
        "dropout": [0.2, 0.25, 0.25],
    },
}

#: Architectures with a fixed input size, run on blended patches.
PATCH_ARCHS = frozenset({"yang2018"})

_CLASSES: dict[str, type[nn.Module]] = {"unet": UNet, "yang2018": Yang2018Net}


def network_options(arch: str, options: dict[str, Any] | None = None) -> dict[str, Any]:
    """Merge ``options`` into the defaults of ``arch`` (JSON-friendly values).

    Raises
    ------
    ValueError
        For an unknown ``arch`` or unknown option names.
    """
    if arch not in ARCHS:
        raise ValueError(f"unknown arch {arch!r}; allowed: {', '.join(map(repr, ARCHS))}")
    merged = dict(ARCHS[arch])
    unknown = set(options or {}) - set(merged)
    if unknown:
        raise ValueError(
            f"unknown option(s) {sorted(unknown)} for arch {arch!r}; allowed: {sorted(merged)}"
        )
    merged.update(options or {})
    return {k: list(v) if isinstance(v, tuple) else v for k, v in merged.items()}


def build_network(arch: str, options: dict[str, Any] | None = None) -> nn.Module:
    """Instantiate the network ``arch`` with ``options`` merged into its defaults.

    Parameters
    ----------
    arch
        ``"unet"`` or ``"yang2018"``.
    options
        Constructor options (see :data:`ARCHS`).

    Returns
    -------
    torch.nn.Module

    Raises
    ------
    ValueError
        For an unknown ``arch``, unknown options or invalid values.
    """
    merged = network_options(arch, options)
    kwargs = {k: tuple(v) if isinstance(v, list) else v for k, v in merged.items()}
    try:
        return _CLASSES[arch](**kwargs)
    except TypeError as exc:
        raise ValueError(f"invalid options for arch {arch!r}: {exc}") from exc
