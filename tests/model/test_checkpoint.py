"""Checkpoints: exact round trips, metadata, and refusal of corrupted or foreign files."""

from __future__ import annotations

import json
import re
import struct
from pathlib import Path

import numpy as np
import pytest
import torch
from safetensors.torch import save as st_save

from lowdose_bluesky.model import FORMAT_VERSION, Enhancer


def test_save_load_round_trip_is_exact(enhancer: Enhancer, pairs: tuple, tmp_path: Path) -> None:
    low, _ = pairs
    path = enhancer.save(tmp_path / "enhancer.safetensors")
    loaded = Enhancer.load(path, device="cpu")
    np.testing.assert_array_equal(loaded(low), enhancer(low))
    assert loaded.arch == enhancer.arch
    assert loaded.config == enhancer.config
    assert loaded.history == enhancer.history
    assert loaded.normalisation == enhancer.normalisation
    assert loaded.network_options == enhancer.network_options
    assert not list(tmp_path.glob("*.part"))


def test_bytes_round_trip_and_metadata(unet: Enhancer, pairs: tuple) -> None:
    data = unet.to_bytes()
    again = Enhancer.from_bytes(data, device="cpu")
    np.testing.assert_array_equal(again(pairs[0]), unet(pairs[0]))
    (size,) = struct.unpack("<Q", data[:8])
    header = json.loads(data[8 : 8 + size])
    meta = json.loads(header["__metadata__"]["lowdose_bluesky.enhancer"])
    assert meta["format_version"] == FORMAT_VERSION
    assert meta["arch"] == "unet" and meta["package_version"]
    assert set(meta) >= {"config", "normalisation", "history", "network", "torch_version"}


def _flip(data: bytes, position: int) -> bytes:
    corrupted = bytearray(data)
    corrupted[position] ^= 0x01
    return bytes(corrupted)


def test_corrupted_checkpoints_raise(unet: Enhancer, tmp_path: Path) -> None:
    data = unet.to_bytes()
    (size,) = struct.unpack("<Q", data[:8])
    cases = {
        "flipped weight bit": _flip(data, len(data) - 3),
        "truncated": data[: len(data) // 2],
        "header only": data[: 8 + size],
        "too short": data[:5],
        "empty": b"",
        "random": np.random.default_rng(0).bytes(4096),
        "bad header json": data[:8] + b"[" + data[9:],
    }
    for name, bad in cases.items():
        with pytest.raises(ValueError, match="checkpoint"):
            Enhancer.from_bytes(bad)
        path = tmp_path / f"{name}.safetensors"
        path.write_bytes(bad)
        with pytest.raises(ValueError, match="checkpoint"):
            Enhancer.load(path)


def test_tampered_metadata_is_detected(unet: Enhancer) -> None:
    data = unet.to_bytes()
    position = data.index(b'\\"arch\\": \\"unet\\"') + len(b'\\"arch\\": \\"')
    tampered = data[:position] + b"ynet" + data[position + 4 :]
    with pytest.raises(ValueError, match="digest"):
        Enhancer.from_bytes(tampered)


def test_foreign_safetensors_file_raises(tmp_path: Path) -> None:
    foreign = st_save({"weight": torch.zeros(3)}, metadata={"framework": "other"})
    with pytest.raises(ValueError, match="foreign"):
        Enhancer.from_bytes(foreign)
    path = tmp_path / "foreign.safetensors"
    path.write_bytes(st_save({"weight": torch.zeros(3)}))
    with pytest.raises(ValueError, match="not an Enhancer checkpoint"):
        Enhancer.load(path)


def test_wrong_type_raises() -> None:
    with pytest.raises(ValueError, match="must be bytes"):
        Enhancer.from_bytes("not bytes")  # type: ignore[arg-type]


# ------------------------------------------------------------ messages naming the file
def _rebuild(data: bytes, *, state=None, metadata=None) -> bytes:
    """The checkpoint ``data`` re-saved with other tensors and/or safetensors metadata."""
    from lowdose_bluesky.model.checkpoint import read_checkpoint

    tensors, _ = read_checkpoint(data)
    return st_save(tensors if state is None else state(tensors), metadata=metadata)


def _ours(data: bytes) -> dict[str, str]:
    (size,) = struct.unpack("<Q", data[:8])
    return json.loads(data[8 : 8 + size])["__metadata__"]


def _resigned(data: bytes, *, state=None, meta=None) -> bytes:
    """Tensors or metadata changed and signed again: well-formed, digest right, not ours."""
    from lowdose_bluesky.model.checkpoint import read_checkpoint, write_checkpoint

    tensors, metadata = read_checkpoint(data)
    return write_checkpoint(tensors if state is None else state(tensors),
                            metadata if meta is None else meta(metadata))


BAD_FILES = {
    "truncated": (lambda d: d[: len(d) * 2 // 3], "corrupted Enhancer checkpoint", True),
    "flipped byte": (lambda d: _flip(d, len(d) - 7),
                     "SHA-256 digest does not match (changed or damaged after it was written)",
                     True),
    "metadata missing": (lambda d: _rebuild(d), "safetensors metadata has no "
                         "'lowdose_bluesky.enhancer' entry (a foreign safetensors file?)", True),
    "digest missing": (lambda d: _rebuild(d, metadata={
        "lowdose_bluesky.enhancer": _ours(d)["lowdose_bluesky.enhancer"]}),
        "safetensors metadata has no 'sha256' digest", True),
    "metadata garbled": (lambda d: _rebuild(d, metadata={
        "lowdose_bluesky.enhancer": '{"arch": "unet", "format_ver', "sha256": "0" * 64}),
        "bad metadata JSON in 'lowdose_bluesky.enhancer'", True),
    "metadata not an object": (lambda d: _rebuild(d, metadata={
        "lowdose_bluesky.enhancer": "[1, 2]", "sha256": "0" * 64}),
        "metadata 'lowdose_bluesky.enhancer' is not a JSON object (got list)", True),
    "foreign safetensors": (lambda d: st_save({"model.weight": torch.ones(2, 2)},
                                              metadata={"format": "pt"}),
                            "not an Enhancer checkpoint: safetensors metadata has no", True),
    "foreign tensors, our signed metadata": (
        lambda d: _resigned(d, state=lambda t: {"encoder.weight": torch.zeros(3, 3)}),
        "Enhancer checkpoint weights do not fit arch 'unet'", False),
    "metadata without arch": (
        lambda d: _resigned(d, meta=lambda m: {k: v for k, v in m.items() if k != "arch"}),
        "invalid Enhancer checkpoint metadata (KeyError: 'arch')", True),
}


@pytest.mark.parametrize("case", list(BAD_FILES))
def test_bad_checkpoint_files_are_refused_with_the_file_and_what_is_expected(
        unet: Enhancer, tmp_path: Path, case: str) -> None:
    from lowdose_bluesky.model.checkpoint import EXPECTED

    make, problem, expected_named = BAD_FILES[case]
    path = tmp_path / f"{case.replace(' ', '_')}.safetensors"
    path.write_bytes(make(unet.to_bytes()))
    with pytest.raises(ValueError) as info:
        Enhancer.load(path)
    message = str(info.value)
    assert message.startswith(f"checkpoint file {str(path)!r}: "), message
    assert problem in message
    if expected_named:
        assert message.endswith(EXPECTED)
        assert "written by Enhancer.save" in EXPECTED and "'sha256'" in EXPECTED


def test_foreign_tensors_are_listed_briefly(unet: Enhancer) -> None:
    renamed = _resigned(unet.to_bytes(),
                        state=lambda t: {f"other.{k}": v for k, v in t.items()})
    with pytest.raises(ValueError) as info:
        Enhancer.from_bytes(renamed, source="checkpoint of result X")
    message = str(info.value)
    assert message.startswith("checkpoint of result X: Enhancer checkpoint weights do not fit "
                              "arch 'unet' with options {'base_channels': 4")
    assert re.search(r"\d+ tensors missing \(\S+, \S+, \S+, \.\.\.\); \d+ unexpected tensors "
                     r"\(other\.", message), message
    assert len(message) < 500
