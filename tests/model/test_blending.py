"""Patch geometry and Hann blending: partition of unity and exact identity reconstruction."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from lowdose_bluesky.model import (
    Enhancer,
    Normalisation,
    PatchLayout,
    blend_patches,
    extract_patches,
    hann_window,
    window_sum,
)


@st.composite
def geometries(draw: st.DrawFn) -> tuple[int, int, int, int]:
    patch = draw(st.integers(2, 24))
    stride = draw(st.integers(1, patch))
    height = draw(st.integers(1, 70))
    width = draw(st.integers(1, 70))
    return height, width, patch, stride


@settings(max_examples=60, deadline=None)
@given(geometries(), st.integers(0, 2**16))
def test_blend_of_extracted_patches_is_identity(geometry: tuple, seed: int) -> None:
    height, width, patch, stride = geometry
    layout = PatchLayout((height, width), patch, stride)
    frames = torch.from_numpy(np.random.default_rng(seed).random((2, height, width)))
    window = torch.from_numpy(hann_window(patch))
    patches = extract_patches(frames, layout)
    assert patches.shape == (2 * layout.n_patches, 1, patch, patch)
    restored = blend_patches(patches, layout, window)
    assert restored.shape == frames.shape
    torch.testing.assert_close(restored, frames, rtol=0, atol=1e-12)


@settings(max_examples=60, deadline=None)
@given(geometries())
def test_normalised_blending_weights_sum_to_one(geometry: tuple) -> None:
    height, width, patch, stride = geometry
    layout = PatchLayout((height, width), patch, stride)
    window = torch.from_numpy(hann_window(patch))
    ones = torch.ones(layout.n_patches, 1, patch, patch, dtype=torch.float64)
    weights = blend_patches(ones, layout, window)
    torch.testing.assert_close(weights, torch.ones(1, height, width, dtype=torch.float64))
    top, bottom, left, right = layout.pads
    assert (layout.padded_shape[0] - patch) % stride == 0
    assert (layout.padded_shape[1] - patch) % stride == 0
    assert min(top, left) == patch - stride and bottom >= patch - stride and right >= patch - stride


@pytest.mark.parametrize("patch", [8, 16, 32])
def test_hann_at_half_patch_stride_is_a_partition_of_unity_without_normalising(
    patch: int,
) -> None:
    layout = PatchLayout((45, 61), patch, patch // 2)
    total = window_sum(layout, torch.from_numpy(hann_window(patch)))
    top, _, left, _ = layout.pads
    inner = total[top : top + 45, left : left + 61]
    torch.testing.assert_close(inner, torch.ones_like(inner), rtol=0, atol=1e-12)


def test_hann_window_is_positive_and_symmetric() -> None:
    window = hann_window(16)
    assert window.shape == (16, 16)
    assert (window > 0).all()
    np.testing.assert_allclose(window, window.T)
    np.testing.assert_allclose(window, window[::-1, ::-1])


@pytest.mark.parametrize("shape", [(48, 48), (37, 53), (5, 3), (1, 1)])
def test_enhancer_with_identity_patch_network_reproduces_frames(shape: tuple) -> None:
    identity = Enhancer(
        torch.nn.Identity(),
        arch="yang2018",
        network_options={"patch_size": 16},
        normalisation=Normalisation.identity(),
        device="cpu",
    )
    frames = np.random.default_rng(0).random((3, *shape)).astype(np.float32)
    out = identity(frames, stride=8)
    assert out.dtype == np.float32 and out.shape == frames.shape
    np.testing.assert_allclose(out, frames, rtol=0, atol=2e-6)
    np.testing.assert_allclose(identity(frames, stride=5), frames, rtol=0, atol=2e-6)


def test_layout_rejects_bad_stride() -> None:
    with pytest.raises(ValueError, match="stride must be in"):
        PatchLayout((10, 10), 8, 9)
    with pytest.raises(ValueError, match="stride must be in"):
        PatchLayout((10, 10), 8, 0)
