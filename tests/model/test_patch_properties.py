"""Patch geometry properties: inference patches cover every pixel, identity models are
exact for any frame size and stride, training/validation patches stay inside the frame
and apart from each other (also for a single training pair)."""

from __future__ import annotations

import math

import numpy as np
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from lowdose_bluesky.model import Enhancer, Normalisation, PatchLayout, extract_patches, window_sum
from lowdose_bluesky.model.patches import sample_training_patches

SETTINGS = settings(max_examples=60, deadline=None)


@st.composite
def covering_geometries(draw: st.DrawFn) -> tuple[int, int, int, int]:
    """``(H, W, patch, stride)`` with frames at least one patch and ``stride <= patch``."""
    patch = draw(st.integers(1, 20))
    stride = draw(st.integers(1, patch))
    return draw(st.integers(patch, 64)), draw(st.integers(patch, 64)), patch, stride


@SETTINGS
@given(covering_geometries())
def test_extracted_patches_cover_every_pixel_alike(geometry: tuple) -> None:
    """Every frame pixel lies in at least ``floor(p / s)^2`` patches (``(p / s)^2`` when
    ``s`` divides ``p``): the edges are covered like the interior."""
    height, width, patch, stride = geometry
    layout = PatchLayout((height, width), patch, stride)
    coverage = window_sum(layout, torch.ones(patch, patch, dtype=torch.float64))
    top, _, left, _ = layout.pads
    frame = coverage[top: top + height, left: left + width]
    assert float(frame.min()) >= (patch // stride) ** 2
    if patch % stride == 0:
        assert torch.all(frame == (patch // stride) ** 2)
    # and the pixels themselves are in the patches: every value of a tagged frame appears
    tags = torch.arange(height * width, dtype=torch.float64).reshape(1, height, width)
    seen = torch.unique(extract_patches(tags, layout))
    assert torch.equal(seen, tags.flatten())


@SETTINGS
@given(st.integers(1, 50), st.integers(1, 50), st.integers(1, 16), st.integers(0, 2**16))
def test_identity_patch_model_reproduces_any_frame(height: int, width: int, stride: int,
                                                   seed: int) -> None:
    identity = Enhancer(torch.nn.Identity(), arch="yang2018", network_options={"patch_size": 16},
                        normalisation=Normalisation.identity(), device="cpu")
    frames = np.random.default_rng(seed).random((2, height, width)).astype(np.float32)
    out = identity(frames, stride=stride)
    assert out.shape == frames.shape and out.dtype == np.float32
    np.testing.assert_allclose(out, frames, rtol=0, atol=2e-6)


@st.composite
def training_geometries(draw: st.DrawFn) -> tuple:
    """``(K, H, W, patch, stride, val_fraction, max_patches, seed)``, one pair or more."""
    patch = draw(st.integers(2, 16))
    return (draw(st.integers(1, 3)), draw(st.integers(patch, 80)), draw(st.integers(patch, 40)),
            patch, draw(st.integers(1, patch)), draw(st.sampled_from([0.0, 0.05, 0.15, 0.4])),
            draw(st.none() | st.integers(1, 200)), draw(st.integers(0, 2**16)))


@SETTINGS
@given(training_geometries())
def test_validation_band_inside_the_frame_and_apart_from_training(geometry: tuple) -> None:
    n_frames, height, width, patch, stride, val_fraction, max_patches, seed = geometry
    tags = np.arange(n_frames * height * width, dtype=np.float32).reshape(n_frames, height, width)
    split = sample_training_patches(tags, tags, patch, stride, val_fraction, max_patches,
                                    np.random.default_rng(seed))

    def origins(patches: np.ndarray) -> np.ndarray:
        """``(frame, row, col)`` of each patch's top-left pixel."""
        return np.stack(np.unravel_index(patches[:, 0, 0].astype(np.int64),
                                         (n_frames, height, width)), axis=1)

    train, val = origins(split.train_low), origins(split.val_low)
    np.testing.assert_array_equal(split.train_low, split.train_high)
    assert len(train) >= 1
    for where in (train, val):
        assert np.all(where[:, 1] + patch <= height) and np.all(where[:, 2] + patch <= width)
    band = max(patch, math.ceil(val_fraction * height))
    if val_fraction == 0:
        assert split.split == "none" and len(val) == 0
    elif height - band >= patch:
        assert split.split == "spatial" and len(val) >= 1
        for k in range(n_frames):
            rows = val[val[:, 0] == k, 1]
            if rows.size == 0:
                continue
            top, bottom = rows.min(), rows.max() + patch  # the validation rows of frame k
            assert bottom - top <= band
            train_rows = train[train[:, 0] == k, 1]
            assert np.all((train_rows + patch <= top) | (train_rows >= bottom))
    else:
        assert split.split == "random"
