"""Checkpoint format of an Enhancer: safetensors with JSON metadata and a digest.

Layout: a standard ``.safetensors`` file (loadable by any safetensors reader)
whose header metadata holds two strings:

``"lowdose_bluesky.enhancer"``
    JSON with ``format_version``, ``arch``, ``network`` options, ``config``,
    ``normalisation``, ``history``, ``package_version`` and ``torch_version``.
``"sha256"``
    Digest of that JSON string and of every tensor (name, dtype, shape and
    bytes, in name order), so any corruption is detected.

Nothing is unpickled on load: pickle and ``torch.save`` files are recognised and refused
without being opened.
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
    "EXPECTED",
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


#: What a checkpoint must be, appended to every refusal.
EXPECTED = (f"expected a safetensors checkpoint written by Enhancer.save (or stored with a "
            f"LiveEnhancer result) whose metadata holds {FORMAT_KEY!r} and 'sha256'")


def _refuse(source: str, problem: str) -> ValueError:
    return ValueError(f"{source}: {problem}; {EXPECTED}")


def _pickle_kind(data: bytes) -> str | None:
    """Name the pickle-based format of ``data``, if it is one (it is never unpickled)."""
    if data[:4] == b"PK\x03\x04":
        return "a zip archive (torch.save's format, which holds a pickle)"
    if len(data) >= 2 and data[0] == 0x80 and 2 <= data[1] <= 5:
        return f"a Python pickle (protocol {data[1]}; also torch.save's legacy format)"
    return None


def _header(data: bytes, source: str) -> dict[str, Any]:
    kind = _pickle_kind(data)
    if kind is not None:
        raise _refuse(source, f"not an Enhancer checkpoint: it is {kind}; pickles can run "
                              "arbitrary code when loaded and are never opened")
    if len(data) < 8:
        raise _refuse(source, f"not an Enhancer checkpoint: {len(data)} bytes is too short "
                              "for a safetensors file")
    (size,) = struct.unpack("<Q", data[:8])
    if size > min(len(data) - 8, _MAX_HEADER):
        raise _refuse(source, f"not an Enhancer checkpoint: safetensors header claims {size} "
                              f"bytes but the file holds {len(data)} (truncated or not "
                              "safetensors)")
    try:
        header = json.loads(data[8 : 8 + size].decode("utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise _refuse(source, "not an Enhancer checkpoint: unreadable safetensors header "
                              f"({exc})") from None
    if not isinstance(header, dict):
        raise _refuse(source, "not an Enhancer checkpoint: safetensors header is not a JSON "
                              "object")
    return header


def read_checkpoint(data: bytes, *, source: str = "checkpoint data",
                    ) -> tuple[dict[str, torch.Tensor], dict[str, Any]]:
    """Parse and verify checkpoint bytes.

    Parameters
    ----------
    data
        Bytes written by :func:`write_checkpoint`.
    source
        What the bytes are (e.g. ``"checkpoint file '/path/model.safetensors'"``): every
        error message starts with it.

    Returns
    -------
    state : dict of str to torch.Tensor
    metadata : dict

    Raises
    ------
    ValueError
        If the bytes are a pickle (torch.save output included), not a safetensors file,
        carry no or unreadable Enhancer metadata, have an unsupported format version, or
        fail the digest check. Nothing is unpickled.
    """
    if not isinstance(data, bytes | bytearray | memoryview):
        raise ValueError(f"{source}: checkpoint data must be bytes; got {type(data).__name__}")
    data = bytes(data)
    extra = _header(data, source).get("__metadata__") or {}
    if not isinstance(extra, dict) or FORMAT_KEY not in extra:
        raise _refuse(source, f"not an Enhancer checkpoint: safetensors metadata has no "
                              f"{FORMAT_KEY!r} entry (a foreign safetensors file?)")
    if "sha256" not in extra:
        raise _refuse(source, "corrupted Enhancer checkpoint: safetensors metadata has no "
                              "'sha256' digest")
    meta_json = extra[FORMAT_KEY]
    try:
        metadata = json.loads(meta_json)
    except (TypeError, json.JSONDecodeError) as exc:
        raise _refuse(source, f"corrupted Enhancer checkpoint: bad metadata JSON in "
                              f"{FORMAT_KEY!r} ({exc})") from None
    if not isinstance(metadata, dict):
        raise _refuse(source, f"corrupted Enhancer checkpoint: metadata {FORMAT_KEY!r} is "
                              f"not a JSON object (got {type(metadata).__name__})")
    version = metadata.get("format_version")
    if isinstance(version, bool) or not isinstance(version, int) or (
            not 1 <= version <= FORMAT_VERSION):
        raise ValueError(
            f"{source}: unsupported Enhancer checkpoint format_version {version!r}; "
            f"this package reads versions 1..{FORMAT_VERSION}"
        )
    try:
        state = st_load(data)
    except Exception as exc:  # safetensors raises its own error type
        raise _refuse(source, f"corrupted Enhancer checkpoint: {exc}") from None
    if _digest(meta_json, state) != extra["sha256"]:
        raise _refuse(source, "corrupted Enhancer checkpoint: SHA-256 digest does not match "
                              "(changed or damaged after it was written)")
    return state, metadata
