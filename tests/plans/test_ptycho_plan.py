"""lowdose_ptycho_plan against the simulated ptychography setup: stored, paused, refused."""

from __future__ import annotations

import re

import h5py
import numpy as np
import pytest
from bluesky.utils import RunEngineInterrupted

from lowdose_bluesky.devices.sim.ptycho import PROBE_DATASET, make_sim_ptycho
from lowdose_bluesky.plans import lowdose_ptycho_plan, validate_ptycho_scan
from lowdose_bluesky.plans.ptycho_validation import scan_positions
from lowdose_bluesky.ptycho import test_object as make_object
from lowdose_bluesky.storage import RAW, subscribe_writer

from .test_lowdose_tomo_plan import _pause_now

# a 64 x 64 object, 32 x 32 patterns (a probe 12 px = 0.6 um across), 0.05 um pixels:
# positions 0..1.6 um
SMALL = {"field": (0.0, 0.0, 1.6, 1.6), "train_field": (0.0, 0.0, 0.4, 1.6),
         "train_step": 0.2, "sparse_step": 0.6}


@pytest.fixture
def ptycho(RE, frames_root, request):
    return make_sim_ptycho(make_object((64, 64), seed=1), pattern_shape=(32, 32), seed=1,
                           data_dir=frames_root / request.node.name)


def test_raster_positions_cover_the_field_in_snake_order():
    points = scan_positions((0.0, 1.0, 2.0, 1.0), 1.0, "raster")
    np.testing.assert_allclose(points, [[0, 1], [1, 1], [2, 1], [2, 2], [1, 2], [0, 2]])


def test_spiral_positions_stay_inside_with_the_raster_density():
    points = scan_positions((0.0, 0.0, 10.0, 10.0), 1.0, "spiral")
    assert points[:, 0].min() >= 0 and points[:, 0].max() <= 10
    assert points[:, 1].min() >= 0 and points[:, 1].max() <= 10
    assert 90 <= len(points) <= 120  # one per step^2 over 100 um^2


def test_sparse_positions_skip_the_training_field():
    spec = validate_ptycho_scan(**SMALL, exposure=0.01, pattern="raster", pretrained=None)
    train, sparse = spec.train_positions(), spec.sparse_positions()
    assert len(train) == 3 * 9
    assert (sparse[:, 0] > 0.4).all() and len(sparse) == 2 * 3


def test_scan_is_stored_with_positions_and_metadata(RE, collector, tiled_client, ptycho):
    subscribe_writer(RE, tiled_client, batch_size=10)
    (uid,) = RE(lowdose_ptycho_plan(**ptycho.devices, **SMALL, md={"sample": "chip"}))
    stop = collector.of("stop")[0]
    assert stop["exit_status"] == "success"
    assert stop["num_events"] == {"train": 27, "primary": 6}
    meta = collector.of("start")[0]["ptycho"]
    assert meta["train_positions"] == 27 and meta["sparse_positions"] == 6
    diameter = ptycho.detector.probe_diameter_um
    assert diameter == pytest.approx(0.6, rel=0.05)
    assert meta["train_overlap"] == pytest.approx(1 - 0.2 / diameter)
    assert meta["sparse_overlap"] == pytest.approx(max(0.0, 1 - 0.6 / diameter))
    with h5py.File(meta["probe_file"]) as f:
        np.testing.assert_array_equal(f[PROBE_DATASET][()], ptycho.probe)
    run = tiled_client[RAW][uid]
    patterns = run["primary"]["pixel"].read()
    assert patterns.shape[-2:] == (32, 32) and patterns.reshape(6, -1).sum(axis=1).min() > 0
    x = run["primary"]["sample_x"].read()
    np.testing.assert_allclose(run["primary"]["pixel-x"].read().ravel(), x)
    # the shutter is closed and the stages are back where they started
    assert ptycho.shutter.is_open is False


def test_the_default_scan_suits_the_default_setup(RE, collector, frames_root):
    sim = make_sim_ptycho(seed=2, data_dir=frames_root / "default-ptycho")
    RE(lowdose_ptycho_plan(**sim.devices))
    stop = collector.of("stop")[0]
    assert stop["exit_status"] == "success"
    meta = collector.of("start")[0]["ptycho"]
    assert stop["num_events"] == {"train": meta["train_positions"],
                                  "primary": meta["sparse_positions"]}
    assert meta["sparse_overlap"] == pytest.approx(0.0, abs=0.05)


def test_pause_and_resume_neither_repeat_nor_drop_a_position(RE, collector, ptycho):
    n = {"triggers": 0}

    def pause_midway(msg):
        if msg.command == "trigger":
            n["triggers"] += 1
            if n["triggers"] in (5, 30):  # in the dense scan, then in the sparse one
                _pause_now(RE)

    RE.msg_hook = pause_midway
    with pytest.raises(RunEngineInterrupted):
        RE(lowdose_ptycho_plan(**ptycho.devices, **SMALL))
    while RE.state == "paused":
        try:
            RE.resume()
        except RunEngineInterrupted:
            continue
    for stream, count in (("train", 27), ("primary", 6)):
        events = collector.events(stream)
        positions = [(e["data"]["sample_y"], e["data"]["sample_x"]) for e in events]
        assert len(positions) == len(set(positions)) == count


@pytest.mark.parametrize(("kwargs", "message"), [
    ({"exposure": 0}, "exposure must be > 0, got 0"),
    ({"train_step": -1}, "train_step must be > 0, got -1"),
    ({"pattern": "zigzag"}, "pattern must be one of 'raster', 'spiral', got 'zigzag'"),
    ({"train_field": (2.0, 0.0, 1.0, 1.0)}, "must lie inside field"),
    ({"train_field": None}, "needs a pretrained model"),
    ({"field": (0.0, 0.0, 5.0, 1.6)}, "puts the probe off the object"),
    ({"field": (0, 0, 1)}, "field must be (x0, y0, width, height), got (0, 0, 1)"),
])
def test_bad_arguments_fail_before_anything_moves(RE, collector, ptycho, kwargs, message):
    args = {**SMALL, **kwargs}
    with pytest.raises(ValueError, match=re.escape(message)):
        RE(lowdose_ptycho_plan(**ptycho.devices, **args))
    assert collector.docs == []


def test_bad_simulation_arguments_are_named(RE, frames_root):
    with pytest.raises(ValueError, match=r"photons \(per second\) must be a positive number"):
        make_sim_ptycho(make_object((64, 64), seed=1), pattern_shape=(32, 32), photons=0,
                        data_dir=frames_root / "bad")
    with pytest.raises(ValueError, match="probe"):
        make_sim_ptycho(make_object((64, 64), seed=1), pattern_shape=(32, 32),
                        probe=np.ones((16, 16), complex), data_dir=frames_root / "bad")
