"""Knife-edge calibration and live super-resolution on the live engine, through Tiled."""

from __future__ import annotations

import numpy as np
import pytest
from bluesky import RunEngine

from lowdose_bluesky import results
from lowdose_bluesky.callbacks import LiveEnhancer
from lowdose_bluesky.devices.sim import make_sim_txm
from lowdose_bluesky.plans import knife_edge_plan, super_resolution_plan
from lowdose_bluesky.sr import binned_sigma
from lowdose_bluesky.storage import find_calibration, subscribe_writer

FAST = {"knife_edge": {"max_seconds": 3.0, "epochs": 2}}


@pytest.fixture
def setup(tiled_client, frames_root, request):
    RE = RunEngine({}, call_returns_result=False)
    subscribe_writer(RE, tiled_client, batch_size=10)
    txm = make_sim_txm("resolution_chart", detector_shape=(128, 128), psf_sigma_px=3.0,
                       binning=2, seed=5, data_dir=frames_root / request.node.name)
    live = LiveEnhancer(tiled_client, process=False, progress=False, recipe_options=FAST)
    RE.subscribe(live)
    yield RE, txm, live
    live.close()


def test_calibration_then_live_super_resolution(setup, tiled_client):
    RE, txm, live = setup
    (cal_run,) = RE(knife_edge_plan(txm.detector, txm.sample_x, shutter=txm.shutter,
                                    num_darks=1, exposure=2.0))
    live.wait(timeout=300)
    cal = results(tiled_client, cal_run)
    md = cal.metadata
    assert cal.status == "complete" and md["recipe"] == "knife_edge"
    truth = binned_sigma(3.0, 2)
    assert cal.psf_sigma_px == pytest.approx(truth, rel=0.05)
    assert 0 < md["psf_sigma_std_px"] < 0.1 * truth
    assert 0 < md["noise"]["relative"] < 0.2
    assert md["detector"] == txm.detector.name and md["binning"] == 2
    assert cal.node["esf"].read().shape[0] == 2 and len(cal.checkpoint) > 0
    assert find_calibration(tiled_client, txm.detector.name, binning=2).uid == cal.uid

    (run,) = RE(super_resolution_plan(txm.detector, txm.rotation, sample_x=txm.sample_x,
                                      shutter=txm.shutter, num_frames=3, num_darks=1,
                                      num_flats=2))
    live.wait(timeout=300)
    res = results(tiled_client, run)
    assert res.status == "complete" and res.metadata["recipe"] == "super_resolution"
    assert res.metadata["calibration"]["uid"] == cal.uid
    sr = res.super_resolved
    assert sr.shape == (3, 128, 128) and np.isfinite(sr).all()
    # transmission: open beam near 1, the knife-edge block dark
    assert 0.8 < np.median(sr[0]) < 1.2
    assert res.metadata["timings"]["frames_per_s"] > 0


def test_rotation_is_reconstructed_from_the_super_resolved_frames(setup, tiled_client):
    RE, txm, live = setup
    RE(knife_edge_plan(txm.detector, txm.sample_x, shutter=txm.shutter, num_flats=2))
    live.wait(timeout=300)
    (run,) = RE(super_resolution_plan(txm.detector, txm.rotation, sample_x=txm.sample_x,
                                      shutter=txm.shutter, num_frames=6, start=0, stop=150,
                                      num_darks=0, num_flats=2))
    live.wait(timeout=300)
    res = results(tiled_client, run)
    assert res.status == "complete"
    assert res.super_resolved.shape == (6, 128, 128)
    assert res.reconstruction.shape == (128, 128, 128)
    assert res.reconstruction_raw.shape == (64, 64, 64)


def test_no_calibration_fails_the_result_and_keeps_the_run(setup, tiled_client, frames_root):
    RE, _, live = setup
    txm = make_sim_txm("resolution_chart", detector_shape=(128, 128), psf_sigma_px=3.0,
                       binning=2, seed=5, data_dir=frames_root / "uncalibrated",
                       detector_name="uncalibrated")
    (run,) = RE(super_resolution_plan(txm.detector, txm.rotation, sample_x=txm.sample_x,
                                      num_frames=2, num_darks=0, num_flats=1))
    with pytest.raises(RuntimeError, match="no complete knife-edge calibration"):
        live.wait(timeout=300)
    res = results(tiled_client, run)
    assert res.status == "failed"
    assert "no complete knife-edge calibration of camera" in res.metadata["error"]
    assert "primary" in tiled_client["raw"][run]


def test_a_field_without_an_edge_is_refused(tiled_client, frames_root):
    RE = RunEngine({}, call_returns_result=False)
    subscribe_writer(RE, tiled_client, batch_size=10)
    txm = make_sim_txm("spheres_in_cube", detector_shape=(64, 64), psf_sigma_px=2.0, seed=5,
                       data_dir=frames_root / "no-edge")
    live = LiveEnhancer(tiled_client, process=False, progress=False, recipe_options=FAST)
    RE.subscribe(live)
    # the sample moved far out of the field: open beam only
    txm.sample_x.set(10.0).wait()
    (run,) = RE(knife_edge_plan(txm.detector, txm.sample_x, shutter=txm.shutter, num_flats=2,
                                flat_offset=1.0))
    with pytest.raises(RuntimeError, match="no edge in the ROI"):
        live.wait(timeout=300)
    live.close()
    res = results(tiled_client, run)
    assert res.status == "failed" and "edge" in res.metadata["error"]
