"""lowdose_tomo_plan at the message level and against the simulated TXM."""

import threading
import time

import numpy as np
import pytest
from bluesky.simulators import RunEngineSimulator
from bluesky.suspenders import SuspendBoolHigh
from bluesky.utils import RunEngineInterrupted
from ophyd import Signal

from lowdose_bluesky.plans import TomoScanWarning, lowdose_tomo_plan


def _pause_now(RE):
    """Request an immediate pause from inside a msg_hook (which runs on the RE's loop).

    ``RE.request_pause`` waits on the loop, so it is called from a helper thread; the
    hook then gives it time to submit, and the pause lands at the next message.
    """
    threading.Thread(target=RE.request_pause, kwargs={"defer": False}).start()
    time.sleep(0.2)


SMALL = {"num_projections": 7, "num_darks": 2, "num_flats": 3, "long_exposure": 8.0,
         "short_exposure": 1.0, "reference_angles": (30.0, 120.0)}


def _plan(txm, **kwargs):
    args = {**SMALL, **kwargs}
    return lowdose_tomo_plan(txm.detector, txm.rotation, sample_x=txm.sample_x,
                             shutter=txm.shutter, **args)


def test_messages_in_order(txm):
    sim = RunEngineSimulator()
    sim.add_read_handler_for(txm.sample_x, 0.0)
    msgs = sim.simulate_plan(_plan(txm))
    cmds = [m.command for m in msgs]
    assert cmds[:3] == ["rewindable", "rewindable", "open_run"]  # query, then switch off
    assert msgs[1].args == (False,)
    streams = [m.kwargs["name"] for m in msgs if m.command == "create"]
    assert streams == ["dark"] * 4 + ["flat"] * 6 + ["reference"] * 4 + ["primary"] * 7
    # one stage per stream: a fresh file each
    assert cmds.count("stage") == 4 and cmds.count("unstage") == 4
    rot_moves = [m.args[0] for m in msgs if m.command == "set" and m.obj is txm.rotation]
    assert rot_moves == [30.0, 120.0, *np.linspace(0, 180, 7)]
    shutter_moves = [m.args[0] for m in msgs if m.command == "set" and m.obj is txm.shutter]
    assert shutter_moves[0] == "close" and shutter_moves[-1] == "close"  # finalize closes
    exposure = txm.detector.exposure_time
    exposures = [m.args[0] for m in msgs if m.command == "set" and m.obj is exposure]
    assert exposures == [1.0, 8.0, 1.0, 8.0, 8.0, 1.0, 8.0, 1.0, 1.0]


def test_full_run_documents(RE, collector, txm):
    RE(_plan(txm, md={"sample": "phantom A"}))
    start = collector.of("start")[0]
    assert start["plan_name"] == "lowdose_tomo_plan"
    assert start["plan_args"]["num_projections"] == 7
    assert start["reference_angles"] == [30.0, 120.0]
    assert (start["long_exposure"], start["short_exposure"], start["dose_ratio"]) == (8.0, 1.0, 8.0)
    assert start["detector_shape"] == [32, 40]
    assert start["simulation"]["seed"] == 7
    assert start["simulation"]["phantom"]["name"] == "spheres_in_cube"
    assert start["sample"] == "phantom A"
    assert collector.of("stop")[0]["exit_status"] == "success"
    streams = {d["name"] for d in collector.of("descriptor")}
    assert streams == {"dark", "flat", "reference", "primary"}
    key = "det_image"
    for stream, n, exposures in (("dark", 4, [1.0] * 2 + [8.0] * 2),
                                 ("flat", 6, [1.0] * 3 + [8.0] * 3),
                                 ("reference", 4, [8.0, 1.0, 8.0, 1.0]),
                                 ("primary", 7, [1.0] * 7)):
        events = collector.events(stream)
        assert len(events) == n
        assert [e["data"]["det_exposure_time"] for e in events] == exposures
        assert all(isinstance(e["data"][key], str) for e in events)  # references, never arrays
        assert all("rot" in e["data"] for e in events)
    angles = [e["data"]["rot"] for e in collector.events("primary")]
    assert np.allclose(angles, np.linspace(0, 180, 7))
    assert [e["data"]["rot"] for e in collector.events("reference")] == [30, 30, 120, 120]
    # each stream has its own resource, and datums start at 0 in it
    resources = collector.of("resource")
    assert len(resources) == 4 and all(r["spec"] == "AD_HDF5" for r in resources)
    assert txm.shutter.state.get() == "closed"
    assert txm.sample_x.position == 0.0


def test_darks_flats_and_pairs_have_the_right_physics(RE, txm):
    frames: dict[str, list] = {}
    import h5py

    files: dict[str, str] = {}

    def grab(name, doc):
        if name == "resource":
            files[doc["uid"]] = f"{doc['root']}/{doc['resource_path']}"

    RE.subscribe(grab)
    RE(_plan(txm))
    for uid, path in files.items():
        with h5py.File(path, "r") as f:
            frames[uid] = f["entry/data/data"][()].astype(float)
    dark, flat, ref, prim = (frames[u] for u in files)
    det = txm.detector
    assert dark[:2].mean() == pytest.approx(det.dark_current * 1.0, abs=1.0)
    assert dark[2:].mean() == pytest.approx(det.dark_current * 8.0, abs=1.0)
    assert flat[3:].mean() / flat[:3].mean() == pytest.approx(8.0, rel=0.02)
    # a reference pair: long and short at the same angle agree once scaled
    assert ref[0].mean() / ref[1].mean() == pytest.approx(8.0, rel=0.05)
    assert prim.shape == (7, 32, 40)


def test_pause_resume_has_no_duplicate_or_missing_projection(RE, collector, txm):
    n = {"triggers": 0}

    def pause_midway(msg):
        if msg.command == "trigger":
            n["triggers"] += 1
            if n["triggers"] in (13, 17):  # during references, then mid-rotation
                _pause_now(RE)

    RE.msg_hook = pause_midway
    with pytest.raises(RunEngineInterrupted):
        RE(_plan(txm))
    while RE.state == "paused":
        try:
            RE.resume()
        except RunEngineInterrupted:
            continue
    angles = [e["data"]["rot"] for e in collector.events("primary")]
    assert np.allclose(angles, np.linspace(0, 180, 7))
    assert [e["seq_num"] for e in collector.events("primary")] == list(range(1, 8))
    assert len(collector.events("reference")) == 4
    assert collector.of("stop")[0]["exit_status"] == "success"
    datums = collector.of("datum")
    assert len(datums) == len(collector.of("event")) == 21


def test_suspender_pauses_and_resumes_cleanly(RE, collector, txm):
    beam_dump = Signal(name="beam_dump", value=0)
    RE.install_suspender(SuspendBoolHigh(beam_dump, sleep=0.05))
    n = {"triggers": 0}

    def trip(msg):
        if msg.command == "trigger":
            n["triggers"] += 1
            if n["triggers"] == 17:
                beam_dump.put(1)
                threading.Timer(0.2, beam_dump.put, args=(0,)).start()

    RE.msg_hook = trip
    RE(_plan(txm))
    angles = [e["data"]["rot"] for e in collector.events("primary")]
    assert np.allclose(angles, np.linspace(0, 180, 7))
    assert collector.of("stop")[0]["exit_status"] == "success"
    assert txm.shutter.state.get() == "closed"


@pytest.mark.parametrize("how", ["abort", "stop", "halt"])
def test_interrupted_run_closes_shutter_and_returns_sample(RE, collector, txm, how):
    def interrupt(msg):
        if msg.command == "trigger" and len(collector.events("primary")) == 3:
            _pause_now(RE)

    RE.msg_hook = interrupt
    with pytest.raises(RunEngineInterrupted):
        RE(_plan(txm))
    assert txm.shutter.state.get() == "open"  # paused mid-rotation, beam on sample
    RE.msg_hook = None
    getattr(RE, how)()
    assert txm.shutter.state.get() == "closed" or how == "halt"
    if how != "halt":  # halt skips clean-up by design
        assert txm.sample_x.position == 0.0
    stop = collector.of("stop")[0]
    assert stop["exit_status"] == {"abort": "abort", "stop": "success", "halt": "abort"}[how]
    assert len(collector.events("primary")) == 3


def test_failing_detector_still_cleans_up(RE, collector, txm):
    def fail(msg):
        if msg.command == "trigger" and len(collector.events("primary")) == 2:
            txm.detector.current_file.unlink()  # the file vanishes under the writer
            txm.detector._writer._file.close()

    RE.msg_hook = fail
    with pytest.raises(Exception) as info:
        RE(_plan(txm))
    chain, exc = [], info.value
    while exc is not None:
        chain.append(str(exc))
        exc = exc.__cause__ or exc.__context__
    assert any("was removed or replaced before frame 2 could be written" in text
               for text in chain), chain
    assert txm.shutter.state.get() == "closed"
    assert txm.sample_x.position == 0.0
    assert collector.of("stop")[0]["exit_status"] == "fail"


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({"reference_angles": (30.0, 200.0)}, r"reference angles \[200.0\] lie outside"),
        ({"reference_angles": [30.0, float("nan")]}, "reference angle must be finite"),
        ({"reference_angles": 30.0}, "sequence"),
        ({"reference_angles": (30.0, 30.0)}, "distinct"),
        ({"reference_angles": "30"}, "sequence"),
        ({"short_exposure": 0.0}, "exposures must be > 0"),
        ({"long_exposure": -1.0}, "exposures must be > 0"),
        ({"long_exposure": 1.0, "short_exposure": 2.0}, "long_exposure must be longer"),
        ({"long_exposure": 2.0, "short_exposure": 2.0}, "long_exposure must be longer"),
        ({"num_projections": 1}, "num_projections must be >= 2"),
        ({"num_projections": 10.5}, "num_projections must be an integer"),
        ({"num_darks": -1}, "num_darks must be >= 0"),
        ({"start": 0.0, "stop": 0.0}, "start and stop must differ"),
        ({"stop": float("nan")}, "stop must be finite"),
        ({"flat_offset": 0.0}, "flat_offset must be non-zero"),
        ({"md": ["not", "a", "dict"]}, "md must be a dict"),
    ],
)
def test_bad_arguments_raise_before_anything_moves(txm, kwargs, match):
    plan = _plan(txm, **kwargs)
    with pytest.raises(ValueError, match=match):
        next(plan)
    assert txm.rotation.position == 0.0 and txm.shutter.state.get() == "closed"


@pytest.mark.parametrize("empty", [(), [], np.array([])])
def test_empty_reference_angles_are_accepted_as_a_blind_run(txm, empty):
    # an empty sequence is valid (a blind run, tests/plans/test_blind_scan.py): no error
    assert next(_plan(txm, reference_angles=empty)).command == "rewindable"


def test_flats_need_sample_stage_and_darks_need_shutter(txm):
    with pytest.raises(ValueError, match="no sample_x stage"):
        next(lowdose_tomo_plan(txm.detector, txm.rotation, shutter=txm.shutter, **SMALL))
    with pytest.raises(ValueError, match="no shutter"):
        next(lowdose_tomo_plan(txm.detector, txm.rotation, sample_x=txm.sample_x, **SMALL))
    with pytest.raises(ValueError, match="exposure_time"):
        next(lowdose_tomo_plan(txm.rotation, txm.rotation, **{**SMALL, "num_darks": 0,
                                                               "num_flats": 0}))


def test_minimal_plan_without_shutter_or_stage(RE, collector, txm):
    txm.shutter.set("open")
    with pytest.warns(TomoScanWarning, match="single reference angle"):
        RE(lowdose_tomo_plan(txm.detector, txm.rotation, num_darks=0, num_flats=0,
                             num_projections=3, reference_angles=(90.0,), long_exposure=2.0,
                             short_exposure=1.0))
    assert {d["name"] for d in collector.of("descriptor")} == {"reference", "primary"}
    assert len(collector.events("primary")) == 3


def test_reverse_rotation_range(RE, collector, txm):
    RE(_plan(txm, start=180.0, stop=0.0, reference_angles=(150.0, 60.0)))
    angles = [e["data"]["rot"] for e in collector.events("primary")]
    assert np.allclose(angles, np.linspace(180, 0, 7))
