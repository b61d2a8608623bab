"""Classical denoisers: call shape of an enhancer, and they reduce noise.

BM3D/BM4D tests need the ``baselines`` extra (non-commercial licence) and are skipped
without it.
"""

from __future__ import annotations

import importlib.util
import re
import sys

import numpy as np
import pytest

from lowdose_bluesky.baselines import (
    AnscombeBM3D,
    AnscombeBM4D,
    BM3DDenoiser,
    MedianFilter,
    TVDenoiser,
    anscombe,
    inverse_anscombe,
)
from lowdose_bluesky.metrics import psnr
from lowdose_bluesky.phantoms import spheres_in_cube

HAS_BM3D = importlib.util.find_spec("bm3d") is not None
HAS_BM4D = importlib.util.find_spec("bm4d") is not None
needs_bm3d = pytest.mark.skipif(not HAS_BM3D, reason='needs "lowdose_bluesky[baselines]"')
needs_bm4d = pytest.mark.skipif(not HAS_BM4D, reason='needs "lowdose_bluesky[baselines]"')
INSTALL = 'pip install "lowdose_bluesky[baselines]"'


@pytest.fixture(scope="module")
def frames() -> tuple[np.ndarray, np.ndarray]:
    """Clean and noisy (10 % Gaussian) projections of the phantom, scaled to [0, 1]."""
    clean = spheres_in_cube(64, seed=4).project([0.0, 30.0])
    clean /= clean.max()
    rng = np.random.default_rng(0)
    noisy = (clean + rng.normal(0.0, 0.1, clean.shape)).astype(np.float32)
    return clean, noisy


DENOISERS = [MedianFilter(3), TVDenoiser(), TVDenoiser(weight=0.1),
             *([BM3DDenoiser(), BM3DDenoiser(sigma=0.1)] if HAS_BM3D else [])]


@pytest.mark.parametrize("denoiser", DENOISERS, ids=lambda d: f"{d.name}")
def test_reduces_noise(denoiser, frames) -> None:
    clean, noisy = frames
    out = denoiser(noisy)
    assert out.shape == noisy.shape and out.dtype == np.float32
    assert psnr(out, clean, data_range=1.0) > psnr(noisy, clean, data_range=1.0) + 3.0


@pytest.mark.parametrize("denoiser", [MedianFilter(), TVDenoiser(),
                                     *([BM3DDenoiser(sigma=0.1)] if HAS_BM3D else [])],
                         ids=lambda d: d.name)
def test_single_frame_matches_stack(denoiser, frames) -> None:
    _, noisy = frames
    one = denoiser(noisy[1])
    assert one.shape == noisy.shape[1:] and one.dtype == np.float32
    np.testing.assert_allclose(one, denoiser(noisy)[1], atol=1e-5)


def test_median_is_per_frame() -> None:
    stack = np.zeros((3, 8, 8), np.float32)
    stack[1] = 1.0  # a median across frames would erase it
    np.testing.assert_array_equal(MedianFilter(3)(stack), stack)


@needs_bm4d
@needs_bm3d
def test_names() -> None:
    assert [d.name for d in (MedianFilter(), TVDenoiser(), BM3DDenoiser(), AnscombeBM3D(),
                             AnscombeBM4D())] == [
        "median", "tv", "bm3d", "anscombe_bm3d", "anscombe_bm4d"]


def test_invalid_arguments() -> None:
    with pytest.raises(ValueError, match="positive odd integer"):
        MedianFilter(4)
    with pytest.raises(ValueError, match="weight must be a positive number"):
        TVDenoiser(weight=-1.0)
    with pytest.raises(ValueError, match="sigma must be a positive number"):
        BM3DDenoiser(sigma=0.0)
    with pytest.raises(ValueError, match=r"\(N, H, W\) or \(H, W\)"):
        MedianFilter()(np.zeros(5))
    with pytest.raises(ValueError, match="NaN or infinite"):
        TVDenoiser()(np.full((4, 4), np.nan))


# ------------------------------------------------------------- Anscombe + BM3D / BM4D
@pytest.fixture(scope="module")
def counts() -> tuple[np.ndarray, np.ndarray]:
    """Clean and Poisson-noisy transmission counts of two projections, mean 20 counts."""
    projection = spheres_in_cube(64, seed=4).project([0.0, 30.0])
    clean = np.exp(-2.0 * projection / projection.max())
    clean *= 20.0 / clean.mean()
    noisy = np.random.default_rng(1).poisson(clean).astype(np.float32)
    return clean, noisy


def _rmse(a: np.ndarray, b: np.ndarray) -> float:
    return float(np.sqrt(np.mean((np.asarray(a, float) - b) ** 2)))


def test_anscombe_round_trip_of_a_smooth_high_count_image() -> None:
    y, x = np.mgrid[0:64, 0:64] / 63.0
    image = 200.0 + 800.0 * np.sin(2.0 * y) ** 2 * np.cos(1.5 * x) ** 2
    back = inverse_anscombe(anscombe(image))
    np.testing.assert_allclose(back, image, rtol=0.01)
    np.testing.assert_allclose(anscombe(image), 2.0 * np.sqrt(image + 0.375))


def test_inverse_anscombe_is_non_negative_and_finite_near_zero() -> None:
    d = np.array([0.0, 0.3, 0.8, 1.0, 1.2, 2.0 * np.sqrt(0.375), 1.5, 3.0, 10.0])
    out = inverse_anscombe(d)
    assert np.all(np.isfinite(out)) and np.all(out >= 0.0)
    assert np.all(out[:5] == 0.0)  # below the transform of 0 counts (1.22): 0 counts
    assert np.all(np.diff(out[5:]) > 0)
    # the closed form of Makitalo & Foi (2011), e.g. at D = 10
    r = np.sqrt(1.5)
    assert out[-1] == pytest.approx(25 + r / 40 - 11 / 800 + 5 * r / 8000 - 1 / 8)


@needs_bm3d
def test_anscombe_bm3d_improves_poisson_frames(counts) -> None:
    clean, noisy = counts
    denoiser = AnscombeBM3D()
    out = denoiser(noisy[0])  # one (H, W) frame
    assert out.shape == (64, 64) and out.dtype == np.float32
    assert np.all(out >= 0.0)
    before, after = _rmse(noisy[0], clean[0]), _rmse(out, clean[0])
    assert after < 0.5 * before, (before, after)
    assert denoiser.last_sigmas.shape == (1,)
    assert abs(float(out.mean()) - float(clean[0].mean())) < 0.02 * clean[0].mean()  # unbiased


@needs_bm3d
def test_anscombe_sigma_of_pure_poisson_noise_is_about_one() -> None:
    flat = np.random.default_rng(2).poisson(20.0, (64, 64))
    denoiser = AnscombeBM3D()
    out = denoiser(flat)
    assert denoiser.last_sigmas[0] == pytest.approx(1.0, rel=0.15)
    assert abs(float(out.mean()) - 20.0) < 0.5


@needs_bm3d
def test_anscombe_bm3d_process_pool_matches_one_process(counts) -> None:
    _, noisy = counts
    one = AnscombeBM3D(sigma=1.0)(noisy)
    pooled = AnscombeBM3D(sigma=1.0, workers=2)
    out = pooled(noisy)
    assert out.shape == noisy.shape and out.dtype == np.float32
    np.testing.assert_array_equal(pooled.last_sigmas, [1.0, 1.0])
    # bm3d's own threads make it reproducible to rounding only
    np.testing.assert_allclose(out, one, atol=0.2)


@needs_bm4d
def test_anscombe_bm4d_denoises_the_stack_as_one_volume(counts) -> None:
    clean, noisy = counts
    denoiser = AnscombeBM4D()
    out = denoiser(noisy)
    assert out.shape == noisy.shape and out.dtype == np.float32
    assert _rmse(out, clean) < 0.5 * _rmse(noisy, clean)
    assert denoiser.last_sigmas.shape == (2,)
    assert denoiser.last_sigma == pytest.approx(float(np.median(denoiser.last_sigmas)))
    assert denoiser.last_sigma == pytest.approx(1.0, rel=0.15)


@needs_bm4d
@needs_bm3d
@pytest.mark.parametrize("make", [AnscombeBM3D, AnscombeBM4D], ids=lambda m: m.name)
@pytest.mark.parametrize(("frames", "message"), [
    (np.full((8, 8), -1.0), "counts must be >= -3/8 (the Anscombe transform is 2 sqrt(x + 3/8)), "
                            "got -1 at index (0, 0)"),
    (np.where(np.eye(8) > 0, np.nan, 5.0), "counts must be finite, got nan at index (0, 0) "
                                           "(8 non-finite values)"),
    (np.zeros(16), "counts must be a non-empty (N, H, W) or (H, W) array, got shape (16,)"),
    (np.zeros((2, 0, 8)), "counts must be a non-empty (N, H, W) or (H, W) array, got shape "
                          "(2, 0, 8)"),
    (np.full((8, 8), "1"), "counts must be real numbers, got dtype <U1"),
])
def test_anscombe_denoisers_reject_bad_counts(make, frames, message) -> None:
    with pytest.raises(ValueError, match=re.escape(message)):
        make()(frames)


def test_anscombe_rejects_counts_below_minus_three_eighths() -> None:
    assert anscombe(np.array([-0.375, 0.0]))[0] == 0.0
    with pytest.raises(ValueError, match=re.escape("got -0.5 at index (1,)")):
        anscombe(np.array([0.0, -0.5]))
    stack = np.zeros((2, 8, 8))
    stack[1, 2, 3] = -2.5
    with pytest.raises(ValueError, match=re.escape("got -2.5 at index (1, 2, 3); clip")):
        anscombe(stack)


@needs_bm3d
def test_anscombe_bm3d_invalid_options() -> None:
    for workers in (0, -2, 1.5, True, "2"):
        with pytest.raises(ValueError, match=re.escape(
                f"workers must be a positive integer (1: no process pool), got {workers!r}")):
            AnscombeBM3D(workers=workers)
    with pytest.raises(ValueError, match="sigma must be a positive number or None"):
        AnscombeBM3D(sigma=-1.0)


@pytest.mark.parametrize(("module", "make"), [
    ("bm3d", BM3DDenoiser), ("bm3d", AnscombeBM3D), ("bm4d", AnscombeBM4D)])
def test_missing_bm3d_or_bm4d_says_which_extra_to_install(monkeypatch, module, make) -> None:
    monkeypatch.setitem(sys.modules, module, None)  # "import bm3d" now raises ImportError
    with pytest.raises(ImportError, match=re.escape(INSTALL)) as info:
        make()
    assert repr(module) in str(info.value)


@needs_bm3d
def test_bm3d_missing_at_call_time(monkeypatch) -> None:
    denoiser = BM3DDenoiser(sigma=0.1)
    monkeypatch.setitem(sys.modules, "bm3d", None)
    with pytest.raises(ImportError, match=re.escape(INSTALL)):
        denoiser(np.zeros((16, 16), np.float32))


def test_core_modules_do_not_import_bm3d_or_bm4d() -> None:
    import subprocess

    code = ("import sys, lowdose_bluesky, lowdose_bluesky.baselines, lowdose_bluesky.plans, "
            "lowdose_bluesky.cli, lowdose_bluesky.demo, lowdose_bluesky.report; "
            "print(sorted(m for m in ('bm3d', 'bm4d') if m in sys.modules))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         timeout=120)
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == "[]"
