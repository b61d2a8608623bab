"""Checkpoints: exact round trips, metadata, and refusal of corrupted or foreign files."""

from __future__ import annotations

import json
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
