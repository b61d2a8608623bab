"""Checkpoint format of an Enhancer: safetensors with JSON metadata and a digest.

Layout: a standard ``.safetensors`` file (loadable by any safetensors reader)
whose header metadata holds two strings:

``"lowdose_bluesky.enhancer"``
    JSON with ``format_version``, ``arch``, ``network`` options, ``config``,
    ``normalisation``, ``history``, ``package_version`` and ``torch_version``.
``"sha256"``
    Digest of that JSON string and of every tensor (name, dtype, shape and
    bytes, in name order), so any corruption is detected.

Nothing is unpickled on load.
"""

from __future__ import annotations

import hashlib
import json
import struct
from typing import Any

import torch
from safetensors.torch import load as st_load
from safetensors.torch import save as st_save

from ..jsonutil import json_safe

__all__ = [
    "FORMAT_KEY",
    "FORMAT_VERSION",
    "json_safe",
    "package_version",
    "read_checkpoint",
    "write_checkpoint",
]

FORMAT_KEY = "lowdose_bluesky.enhancer"
FORMAT_VERSION = 1
_MAX_HEADER = 100 * 2**20


def package_version() -> str:
    """Version of ``lowdose_bluesky`` (attribute, else installed metadata, else ``"unknown"``)."""
    import lowdose_bluesky

    version = getattr(lowdose_bluesky, "__version__", None)
    if version:
        return str(version)
    from importlib.metadata import PackageNotFoundError
    from importlib.metadata import version as dist_version

    try:
        return dist_version("lowdose_bluesky")
    except PackageNotFoundError:
        return "unknown"


def _digest(meta_json: str, tensors: dict[str, torch.Tensor]) -> str:
    h = hashlib.sha256(meta_json.encode("utf-8"))
    for name in sorted(tensors):
        tensor = tensors[name].detach().to("cpu").contiguous()
        h.update(f"{name}|{tensor.dtype}|{tuple(tensor.shape)}|".encode())
        h.update(tensor.reshape(-1).view(torch.uint8).numpy().tobytes())
    return h.hexdigest()


def write_checkpoint(state: dict[str, torch.Tensor], metadata: dict[str, Any]) -> bytes:
    """Serialise a state dict and metadata to checkpoint bytes.

    Parameters
    ----------
    state
        Network ``state_dict`` (tensors; moved to CPU).
    metadata
        JSON-serialisable metadata; ``format_version`` is added.

    Returns
    -------
    bytes
    """
    tensors = {k: v.detach().to("cpu").contiguous() for k, v in state.items()}
    meta_json = json.dumps({**metadata, "format_version": FORMAT_VERSION}, sort_keys=True)
    return st_save(tensors, metadata={FORMAT_KEY: meta_json, "sha256": _digest(meta_json, tensors)})


def _header(data: bytes) -> dict[str, Any]:
    if len(data) < 8:
        raise ValueError(
            f"not an Enhancer checkpoint: {len(data)} bytes is too short for a safetensors file"
        )
    (size,) = struct.unpack("<Q", data[:8])
    if size > min(len(data) - 8, _MAX_HEADER):
        raise ValueError(
            f"not an Enhancer checkpoint: safetensors header claims {size} bytes "
            f"but the file holds {len(data)} (truncated or not safetensors)"
        )
    try:
        header = json.loads(data[8 : 8 + size].decode("utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise ValueError(
            f"not an Enhancer checkpoint: unreadable safetensors header ({exc})"
        ) from exc
    if not isinstance(header, dict):
        raise ValueError("not an Enhancer checkpoint: safetensors header is not a JSON object")
    return header


def read_checkpoint(data: bytes) -> tuple[dict[str, torch.Tensor], dict[str, Any]]:
    """Parse and verify checkpoint bytes.

    Parameters
    ----------
    data
        Bytes written by :func:`write_checkpoint`.

    Returns
    -------
    state : dict of str to torch.Tensor
    metadata : dict

    Raises
    ------
    ValueError
        If the bytes are not a safetensors file, carry no Enhancer metadata,
        have an unsupported format version, or fail the digest check.
    """
    if not isinstance(data, bytes | bytearray | memoryview):
        raise ValueError(f"checkpoint data must be bytes; got {type(data).__name__}")
    data = bytes(data)
    extra = _header(data).get("__metadata__") or {}
    if FORMAT_KEY not in extra or "sha256" not in extra:
        raise ValueError(
            f"not an Enhancer checkpoint: safetensors metadata has no {FORMAT_KEY!r} entry "
            "(a foreign safetensors file?)"
        )
    meta_json = extra[FORMAT_KEY]
    try:
        metadata = json.loads(meta_json)
    except json.JSONDecodeError as exc:
        raise ValueError(f"corrupted Enhancer checkpoint: bad metadata JSON ({exc})") from exc
    version = metadata.get("format_version") if isinstance(metadata, dict) else None
    if not isinstance(version, int) or not 1 <= version <= FORMAT_VERSION:
        raise ValueError(
            f"unsupported Enhancer checkpoint format_version {version!r}; "
            f"this package reads versions 1..{FORMAT_VERSION}"
        )
    try:
        state = st_load(data)
    except Exception as exc:  # safetensors raises its own error type
        raise ValueError(f"corrupted Enhancer checkpoint: {exc}") from exc
    if _digest(meta_json, state) != extra["sha256"]:
        raise ValueError("corrupted Enhancer checkpoint: SHA-256 digest does not match")
    return state, metadata
