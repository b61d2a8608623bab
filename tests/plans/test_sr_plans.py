"""The knife-edge and super-resolution plans: documents, positions, clean-up, bad input."""

from __future__ import annotations

import numpy as np
import pytest
from bluesky import RunEngine

from lowdose_bluesky.devices.sim import make_sim_txm
from lowdose_bluesky.plans import knife_edge_plan, super_resolution_plan


@pytest.fixture
def run():
    RE = RunEngine()
    docs: list[tuple[str, dict]] = []
    RE.subscribe(lambda name, doc: docs.append((name, doc)))

    def _run(plan):
        RE(plan)
        return docs

    return _run


@pytest.fixture
def txm(tmp_path):
    return make_sim_txm(detector_shape=(32, 32), seed=3, data_dir=tmp_path)


def _events(docs, stream):
    descriptors = {d["uid"] for n, d in docs if n == "descriptor" and d["name"] == stream}
    return [d for n, d in docs if n == "event" and d["descriptor"] in descriptors]


def test_knife_edge_plan_steps_by_fractions_of_a_pixel(run, txm):
    docs = run(knife_edge_plan(txm.detector, txm.sample_x, shutter=txm.shutter, steps=4,
                               frames_per_step=2, num_darks=1, num_flats=2))
    start = next(d for n, d in docs if n == "start")
    assert start["plan_name"] == "knife_edge_plan"
    assert start["knife_edge"]["streams"] == ["dark", "flat", "primary"]
    assert start["knife_edge"]["pixel_size"] == pytest.approx(0.001)  # the sim's, binning 1
    xs = [e["data"]["sample_x"] for e in _events(docs, "primary")]
    assert xs == pytest.approx(np.repeat(np.arange(4) * 0.001 / 4, 2))
    flats = [e["data"]["sample_x"] for e in _events(docs, "flat")]
    assert flats == pytest.approx([5.0, 5.0])
    assert len(_events(docs, "dark")) == 1
    assert txm.sample_x.position == pytest.approx(0.0)
    assert txm.shutter.state.get() == "closed"


def test_knife_edge_plan_defaults_run(run, txm):
    docs = run(knife_edge_plan(txm.detector, txm.sample_x))
    assert len(_events(docs, "primary")) == 8
    assert next(d for n, d in docs if n == "stop")["exit_status"] == "success"


@pytest.mark.parametrize(("kwargs", "match"), [
    ({"steps": 0}, "steps must be an integer >= 1, got 0"),
    ({"frames_per_step": 1.5}, "frames_per_step must be an integer"),
    ({"exposure": -1}, "exposure must be a positive number, got -1"),
    ({"pixel_size": 0.0}, "pixel_size must be a positive number, got 0.0"),
    ({"num_darks": 2}, "no shutter was given"),
    ({"num_flats": 2, "flat_offset": 0}, "flat_offset must be a non-zero"),
    ({"edge_roi": (0, 40, 0, 16)}, "reaches outside the detector's frames of shape"),
    ({"edge_roi": (0, 4, 0, 16)}, "at least 8 rows"),
])
def test_knife_edge_plan_refuses_bad_input_before_moving(txm, kwargs, match):
    RE = RunEngine()
    docs: list = []
    RE.subscribe(lambda name, doc: docs.append(name))
    with pytest.raises(ValueError, match=match):
        RE(knife_edge_plan(txm.detector, txm.sample_x, **kwargs))
    assert docs == []
    assert txm.sample_x.position == 0.0


def test_knife_edge_plan_needs_a_pixel_size_for_a_camera_that_does_not_say(txm):
    txm.detector.optics = None
    with pytest.raises(ValueError, match="give pixel_size="):
        list(knife_edge_plan(txm.detector, txm.sample_x))


def test_super_resolution_plan_rotation(run, txm):
    docs = run(super_resolution_plan(txm.detector, txm.rotation, sample_x=txm.sample_x,
                                     shutter=txm.shutter, num_frames=5, start=0, stop=180,
                                     num_darks=1, num_flats=1, calibration="abc"))
    start = next(d for n, d in docs if n == "start")
    assert start["sr"]["rotation"] is True and start["sr"]["calibration"] == "abc"
    assert [e["data"]["rot"] for e in _events(docs, "primary")] == pytest.approx(
        [0, 45, 90, 135, 180])
    assert txm.shutter.state.get() == "closed"


def test_super_resolution_plan_radiographs_stay_put(run, txm):
    txm.rotation.set(30.0).wait()
    docs = run(super_resolution_plan(txm.detector, txm.rotation, sample_x=txm.sample_x,
                                     num_frames=3, num_darks=0, num_flats=1))
    start = next(d for n, d in docs if n == "start")
    assert start["sr"]["rotation"] is False and start["sr"]["rotation_key"] is None
    assert [e["data"]["rot"] for e in _events(docs, "primary")] == [30.0] * 3


@pytest.mark.parametrize(("kwargs", "match"), [
    ({"start": 0}, "give both start and stop"),
    ({"start": 0, "stop": 0}, "must be finite and differ"),
    ({"num_frames": 0}, "num_frames must be an integer >= 1, got 0"),
    ({"start": 0, "stop": 90, "num_frames": 1}, "a rotation needs num_frames >= 2"),
    ({"calibration": 5}, "calibration must be a result uid"),
    ({"num_darks": 1}, "no shutter was given"),
])
def test_super_resolution_plan_refuses_bad_input_before_moving(txm, kwargs, match):
    with pytest.raises(ValueError, match=match):
        list(super_resolution_plan(txm.detector, txm.rotation, sample_x=txm.sample_x,
                                   **kwargs))
    assert txm.rotation.position == 0.0


def test_super_resolution_plan_without_any_stage_is_refused(txm):
    with pytest.raises(ValueError, match="give a rotation or a sample_x stage"):
        list(super_resolution_plan(txm.detector, num_flats=0, num_darks=0))
