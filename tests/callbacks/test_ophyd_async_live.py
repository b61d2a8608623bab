"""The live analysis of runs acquired by ophyd-async devices, stepped and flown."""

from __future__ import annotations

import warnings

import numpy as np
import pytest
from bluesky import RunEngine
from skimage.metrics import structural_similarity

from lowdose_bluesky import results
from lowdose_bluesky.callbacks import LiveEnhancer
from lowdose_bluesky.devices.sim import make_sim_txm
from lowdose_bluesky.plans import TomoScanWarning, lowdose_tomo_flyscan, lowdose_tomo_plan
from lowdose_bluesky.storage import subscribe_writer

from ._live import TRAIN

SCAN = {"num_projections": 37, "num_darks": 3, "num_flats": 3, "long_exposure": 6.0,
        "short_exposure": 0.2, "reference_angles": (30.0, 120.0)}

CASES = {
    "ophyd step": ("ophyd", lowdose_tomo_plan, "file"),
    "ophyd-async step": ("ophyd-async", lowdose_tomo_plan, "file"),
    "ophyd-async fly": ("ophyd-async", lowdose_tomo_flyscan, "file"),
    "ophyd-async fly, frames through Tiled": ("ophyd-async", lowdose_tomo_flyscan, "tiled"),
}


def _ssim(volume: np.ndarray, truth: np.ndarray) -> float:
    rng = float(truth.max() - truth.min())
    return float(structural_similarity(volume, truth, data_range=rng))


@pytest.fixture(scope="module")
def analysed(tiled_client, frames_root):
    """Each case: the same phantom, seed and dose; the analysis result."""
    out = {}
    for case, (flavour, plan, source) in CASES.items():
        RE = RunEngine({}, call_returns_result=False)
        subscribe_writer(RE, tiled_client, batch_size=10)
        txm = make_sim_txm(detector_shape=(32, 32), seed=3, flux=50.0, flavour=flavour,
                           data_dir=frames_root / f"async-live-{len(out)}")
        live = LiveEnhancer(tiled_client, process=False, method="supervised", epochs=4,
                            progress=False, seed=0, train_options=TRAIN, frame_source=source)
        RE.subscribe(live)
        with warnings.catch_warnings():
            # 37 angles over 32 px: each exposure smears 1.4 px at the edge (it warns)
            warnings.simplefilter("ignore", TomoScanWarning)
            (uid,) = RE(plan(txm.detector, txm.rotation, sample_x=txm.sample_x,
                             shutter=txm.shutter, **SCAN))
        live.wait(timeout=600)
        live.close()
        out[case] = (uid, results(tiled_client, uid), txm.phantom * txm.optics.mu)
    return out


@pytest.mark.slow
def test_every_flavour_and_plan_gives_a_complete_result(analysed, tiled_client):
    for case, (uid, res, _) in analysed.items():
        assert res.status == "complete", case
        assert res.metadata["parent_uid"] == uid
        assert res.enhanced.shape == (37, 32, 32), case
        assert res.reconstruction.shape == (32, 32, 32), case
    start = tiled_client["raw"][analysed["ophyd-async fly"][0]].metadata["start"]
    assert start["plan_name"] == "lowdose_tomo_flyscan"
    assert start["lowdose"]["angle_key"] == "det-rotation"


@pytest.mark.slow
def test_reconstruction_quality_matches_the_ophyd_step_scan(analysed):
    _, step, truth = analysed["ophyd step"]
    for case, (_, res, _) in analysed.items():
        for name in ("reconstruction_raw", "reconstruction"):
            ours, ref = _ssim(getattr(res, name), truth), _ssim(getattr(step, name), truth)
            assert abs(ours - ref) <= 0.01, (case, name, ours, ref)


@pytest.mark.slow
def test_fly_angles_are_read_back_at_mid_exposure(analysed, tiled_client):
    uid = analysed["ophyd-async fly"][0]
    primary = tiled_client["raw"][uid]["primary"]
    angles = np.asarray(primary["det-rotation"].read(), dtype=float).reshape(-1)
    assert np.allclose(angles, np.linspace(0, 180, 37), atol=1e-6)
    assert np.asarray(primary["det"].read()).reshape(37, 32, 32).dtype == np.uint16


@pytest.mark.slow
def test_a_flown_run_is_analysed_again_from_tiled(analysed, tiled_client):
    from lowdose_bluesky.callbacks.reprocess import reprocess

    uid, first, _ = analysed["ophyd-async fly"]
    again = reprocess(tiled_client, uid, method="supervised", epochs=2, progress=False,
                      seed=0, train_options=TRAIN)
    res = results(tiled_client, uid)
    assert res.uid == again != first.uid and res.status == "complete"
    # the frames and angles read back from Tiled give the live analysis's raw
    # reconstruction again (to 0.1 % of its maximum: float32 rounding on another path)
    diff = np.abs(res.reconstruction_raw - first.reconstruction_raw)
    assert diff.max() <= 1e-3 * np.abs(first.reconstruction_raw).max(), (diff.max(), diff.mean())
