"""Iterative reconstruction with pty-chi: the position/scale/centring conventions
against pty-chi's own forward model, and one small reconstruction."""

from __future__ import annotations

import subprocess
import sys
import time

import numpy as np
import pytest
from scipy.ndimage import gaussian_filter

from lowdose_bluesky.ptycho import (
    IterativeReconstructor,
    Stitcher,
    diffraction_patterns,
    expected_intensity,
    focused_probe,
    phase_scores,
    probe_diameter_px,
    reconstruct,
    spiral_positions,
    step_for_overlap,
    test_object,
)
from lowdose_bluesky.ptycho.iterative import _GaussianBlurStandIn

# pty-chi 2.2.0 warns from its own internals (e.g. "Converting a tensor with
# requires_grad=True to a scalar"); reconstruct() silences exactly those, so the
# tests run under the project's filterwarnings = error without extra filters.


def test_import_loads_neither_torch_nor_bluesky() -> None:
    code = ("import sys, lowdose_bluesky.ptycho; "
            "print(sorted(m for m in ('torch', 'bluesky', 'ptychi') if m in sys.modules))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         check=True, timeout=60)
    assert out.stdout.strip() == "[]"


@pytest.mark.parametrize(("obj_shape", "probe_shape"),
                         [((48, 48), (32, 32)), ((49, 51), (31, 31)), ((48, 50), (31, 32))])
def test_conventions_match_ptychi_forward_model(obj_shape: tuple[int, int],
                                                probe_shape: tuple[int, int]) -> None:
    obj = test_object(obj_shape, seed=0)
    probe = focused_probe(probe_shape, diameter_px=12.0, defocus=1.0, seed=1)
    positions = spiral_positions((0, 0, *obj_shape), 5.0, probe_shape)
    expected = expected_intensity(obj, probe, positions, 1e4)
    rec = IterativeReconstructor(expected, positions, probe, obj_shape, photons=1e4,
                                 initial_object=obj, num_threads=1)
    np.testing.assert_allclose(rec.model_patterns(), expected, rtol=0,
                               atol=1e-5 * expected.max())


def test_reconstruction_of_a_small_object() -> None:
    obj = test_object((64, 64), seed=0)
    probe = focused_probe((32, 32), diameter_px=14.0, defocus=1.0)
    step = step_for_overlap(0.7, probe_diameter_px(probe))
    positions = spiral_positions((0, 0, 64, 64), step, (32, 32))
    assert 40 <= len(positions) <= 60
    patterns = diffraction_patterns(obj, probe, positions, 1e6, rng=0)
    numpy_state = np.random.get_state()[1].copy()  # noqa: NPY002

    start = time.perf_counter()
    result = reconstruct(patterns, positions, probe, obj.shape, epochs=30, photons=1e6,
                         num_threads=1)
    wall = time.perf_counter() - start

    stitcher = Stitcher(obj.shape, probe)
    ones = np.ones((len(positions), *probe.shape))
    stitcher.add(ones, 0 * ones, positions)
    covered = stitcher.mask()
    scores = phase_scores(np.where(covered, np.angle(result.obj), np.nan), np.angle(obj))
    assert scores["correlation"] > 0.9, scores
    amplitude_error = np.abs(np.abs(result.obj) - np.abs(obj))[covered].mean()
    assert amplitude_error < 0.02  # the fixed, known probe keeps the absolute amplitude
    assert result.obj.shape == obj.shape and result.obj.dtype == np.complex128
    assert result.algorithm == "lsqml" and result.epochs == 30 and len(result.losses) == 30
    assert result.losses[-1] < result.losses[0]
    np.testing.assert_allclose(result.probe, probe, atol=1e-6)  # not refined
    assert 0 < result.seconds <= wall
    # pty-chi reseeds numpy's global generator; the wrapper puts it back.
    np.testing.assert_array_equal(np.random.get_state()[1], numpy_state)  # noqa: NPY002


def test_gaussian_blur_stand_in_matches_scipy() -> None:
    torch = pytest.importorskip("torch")
    image = np.random.default_rng(0).random((20, 24))
    blurred = _GaussianBlurStandIn(kernel_size=(9, 9), sigma=(3, 3))(
        torch.as_tensor(image)[None, None])[0, 0].numpy()
    np.testing.assert_allclose(blurred, gaussian_filter(image, 3.0, mode="mirror", radius=4),
                               atol=1e-12)


def test_errors() -> None:
    probe = focused_probe((32, 32), diameter_px=12.0, defocus=1.0)
    patterns = np.ones((2, 32, 32))
    with pytest.raises(ValueError, match=r"algorithm must be one of \('lsqml', 'epie', 'rpie', "
                                         r"'dm'\), got 'pie2'"):
        reconstruct(patterns, [[0, 0], [4, 4]], probe, (48, 48), algorithm="pie2")
    with pytest.raises(ValueError, match="got 3 positions for 2 patterns"):
        reconstruct(patterns, [[0, 0], [4, 4], [8, 8]], probe, (48, 48))
    with pytest.raises(ValueError, match=r"probe shape \(32, 32\) must equal the pattern shape "
                                         r"\(16, 16\)"):
        reconstruct(np.ones((2, 16, 16)), [[0, 0], [4, 4]], probe, (48, 48))
    with pytest.raises(ValueError, match="batch_size must be None for 'dm'"):
        reconstruct(patterns, [[0, 0], [4, 4]], probe, (48, 48), algorithm="dm", batch_size=1)
    with pytest.raises(ValueError, match="epochs must be a positive integer, got 0"):
        reconstruct(patterns, [[0, 0], [4, 4]], probe, (48, 48), epochs=0)
