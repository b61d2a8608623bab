"""lowdose_xrf_plan against the simulated microprobe: stepped and flown, stored, paused."""

from __future__ import annotations

import re

import numpy as np
import pytest
from bluesky.run_engine import call_in_bluesky_event_loop
from bluesky.utils import RunEngineInterrupted

from lowdose_bluesky.devices.sim.xrf import make_sim_xrf
from lowdose_bluesky.plans import lowdose_xrf_plan
from lowdose_bluesky.storage import RAW, subscribe_writer

from .test_lowdose_tomo_plan import _pause_now

SMALL = {"num_x": 8, "num_y": 6, "reference_rows": (1, 4)}


@pytest.fixture
def xrf(RE, frames_root, request):
    return make_sim_xrf(shape=(6, 8), bins=256, bin_kev=0.048, seed=1,
                        data_dir=frames_root / request.node.name)


def _value(signal):
    return call_in_bluesky_event_loop(signal.get_value())


@pytest.mark.parametrize("fly", [False, True])
def test_map_is_stored_and_reads_back_with_its_metadata(RE, collector, tiled_client, xrf, fly):
    subscribe_writer(RE, tiled_client, batch_size=20)
    RE(lowdose_xrf_plan(**xrf.devices, **SMALL, fly=fly, md={"sample": "cells"}))
    stop = collector.of("stop")[0]
    assert stop["exit_status"] == "success"
    assert stop["num_events"] == {"reference": 16, "primary": 48}
    start = collector.of("start")[0]
    meta = start["xrf"]
    assert meta["dwell_ratio"] == pytest.approx(20.0) and meta["elements"] == list(xrf.elements)
    assert meta["energy_kev"] == 10.0 and meta["detector_elements"] == 4
    assert meta["region"]["num_x"] == 8 and start["shape"] == [6, 8]
    run = tiled_client[RAW][start["uid"]]
    spectra = np.asarray(run["primary"]["xrf"].read())
    assert spectra.reshape(48, 4, 256).sum() > 0
    # every pixel where the raster puts it, row by row (flown: read back at mid-dwell)
    x = np.asarray(run["primary"]["xrf-x"].read()).reshape(6, 8)
    y = np.asarray(run["primary"]["xrf-y"].read()).reshape(6, 8)
    assert np.allclose(x, np.arange(8) * 0.5, atol=1e-6)
    assert np.allclose(y, (np.arange(6) * 0.5)[:, None])
    ref_y = np.asarray(run["reference"]["xrf-y"].read()).reshape(2, 8)[:, 0]
    assert np.allclose(ref_y, [0.5, 2.0])
    # the shutter is closed and the stages are back where they started
    assert _value(xrf.devices["shutter"].state) == "closed"
    assert _value(xrf.devices["x"].user_readback) == 0.0
    assert _value(xrf.devices["y"].user_readback) == 0.0


def test_the_default_map_suits_the_default_microprobe(RE, collector, frames_root):
    sim = make_sim_xrf(bins=128, bin_kev=0.096, seed=2, data_dir=frames_root / "default-xrf")
    RE(lowdose_xrf_plan(**sim.devices, fly=True))
    stop = collector.of("stop")[0]
    assert stop["exit_status"] == "success"
    assert stop["num_events"] == {"reference": 128, "primary": 64 * 64}


def test_blind_map_takes_nothing_at_the_long_dwell(RE, collector, xrf):
    RE(lowdose_xrf_plan(**xrf.devices, num_x=8, num_y=6, reference_rows=()))
    assert collector.of("start")[0]["xrf"]["blind"] is True
    assert collector.of("stop")[0]["num_events"] == {"primary": 48}


def test_pause_and_resume_neither_repeat_nor_drop_a_pixel(RE, collector, xrf):
    n = {"triggers": 0}

    def pause_midway(msg):
        if msg.command == "trigger":
            n["triggers"] += 1
            if n["triggers"] in (5, 30):  # in a reference row, then mid-raster
                _pause_now(RE)

    RE.msg_hook = pause_midway
    with pytest.raises(RunEngineInterrupted):
        RE(lowdose_xrf_plan(**xrf.devices, **SMALL))
    while RE.state == "paused":
        try:
            RE.resume()
        except RunEngineInterrupted:
            continue
    events = collector.events("primary")
    positions = [(e["data"]["sample_y"], e["data"]["sample_x"]) for e in events]
    assert len(positions) == len(set(positions)) == 48
    assert [e["seq_num"] for e in events] == list(range(1, 49))
    assert len(collector.events("reference")) == 16


@pytest.mark.parametrize(("kwargs", "message"), [
    ({"long_dwell": 0.01}, "long_dwell / dwell must be > 1, got long_dwell=0.01 / dwell=0.01"),
    ({"reference_rows": (2, 9)}, "reference_rows [9] lie outside the map's rows 0..5"),
    ({"num_x": 1}, "num_x must be an integer >= 2, got 1"),
    ({"step_x": 0}, "step_x must be non-zero"),
    ({"reference_rows": (1, 1)}, "row 1 repeats"),
    ({"dwell": -1.0}, "dwell must be > 0 s, got -1.0"),
    ({"fly": "yes"}, "fly must be True or False"),
])
def test_bad_arguments_fail_before_anything_moves(RE, collector, xrf, kwargs, message):
    args = {**SMALL, **kwargs}
    with pytest.raises(ValueError, match=re.escape(message)):
        RE(lowdose_xrf_plan(**xrf.devices, **args))
    assert collector.docs == []


def test_a_row_too_fast_for_the_stage_is_refused_before_anything_moves(RE, collector, xrf):
    with pytest.raises(ValueError, match=r"max_velocity is 1000.*dwell of at least"):
        RE(lowdose_xrf_plan(**xrf.devices, **SMALL, step_x=20.0, dwell=0.001, fly=True))
    assert collector.docs == []
