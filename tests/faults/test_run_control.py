"""Fault injection: RunEngine abort, stop and pause/resume mid-rotation and mid-training.

Each test runs ``lowdose_tomo_plan`` on a tiny simulated TXM with the TiledWriter and a
``LiveEnhancer`` subscribed, pauses the RunEngine at an exact point of the rotation (a
``pause`` message inserted right after the trigger of projection 3, before its event is
read and saved), then aborts, stops or resumes. The pause is a plan message, so it lands
at the same message every time; in the mid-training tests it is held back until the
analysis worker has finished a training epoch, so the worker is training when it comes.

After each fault: shutter closed, sample stage back, the stored run has every projection
at most once and in order (all of them after a resume, a prefix after abort/stop), the
stop document says what bluesky says it should, the analysis result is complete only
after a resume, and the analysis leaves no thread behind.
"""

import threading

import bluesky.plan_stubs as bps
import bluesky.preprocessors as bpp
import h5py
import numpy as np
import pytest
from bluesky.utils import RunEngineInterrupted
from tqdm._monitor import TMonitor

from lowdose_bluesky import results
from lowdose_bluesky.callbacks import LiveEnhancer
from lowdose_bluesky.devices import DATASET
from lowdose_bluesky.devices.sim import make_sim_txm
from lowdose_bluesky.plans import lowdose_tomo_plan
from lowdose_bluesky.storage import RAW

from ..callbacks._live import TRAIN

PLAN = {"num_projections": 9, "num_darks": 2, "num_flats": 2, "long_exposure": 10.0,
        "short_exposure": 1.0, "reference_angles": (30.0, 120.0)}
ANGLES = np.linspace(0.0, 180.0, PLAN["num_projections"])
#: Frames the detector takes before the rotation: darks and flats at both exposures, and a
#: long and a short frame at each reference angle.
BEFORE_ROTATION = 2 * PLAN["num_darks"] + 2 * PLAN["num_flats"] + 2 * len(PLAN["reference_angles"])
#: The pause comes right after the trigger of this projection (0-based): its frame is in
#: the file, its event not yet emitted.
PAUSE_AFTER = 3
WAIT_S = 120  # upper bound for the worker to reach a state on a loaded machine


@pytest.fixture
def txm(frames_root, request):
    return make_sim_txm(detector_shape=(32, 32), seed=3, flux=50.0,
                        data_dir=frames_root / request.node.name)


def _pause_mid_rotation(plan, detector, ready=None):
    """Insert a ``pause`` right after the trigger of projection ``PAUSE_AFTER``.

    ``ready`` (a threading.Event) holds the pause back until it is set, so the
    interruption comes when the analysis worker is in a known state.
    """
    triggers = {"n": 0}

    def pause():
        if ready is not None and not ready.wait(WAIT_S):
            raise TimeoutError(f"the analysis worker did not get ready within {WAIT_S} s")
        yield from bps.pause()

    def insert(msg):
        if msg.command == "trigger" and msg.obj is detector:
            triggers["n"] += 1
            if triggers["n"] == BEFORE_ROTATION + PAUSE_AFTER + 1:
                return None, pause()
        return None, None

    return bpp.plan_mutator(plan, insert)


@pytest.fixture
def thread_origins(monkeypatch):
    """Record which thread started each thread started during the test."""
    origins = {}
    start = threading.Thread.start

    def recording_start(thread):
        origins[thread] = threading.current_thread()
        start(thread)

    monkeypatch.setattr(threading.Thread, "start", recording_start)
    return origins


def _leftover_threads(origins, roots, camera):
    """Threads started by ``roots`` (or by threads they started) still running.

    The roots are the test's own thread, the RunEngine's and the analysis worker; threads
    the embedded Tiled server starts for itself (its AnyIO workers, zarr's IO loop) are
    the server's. Not leftovers either: the camera's noise pool (it lives with the
    camera) and tqdm's monitor (one per process, shared by every progress bar).
    """
    def started_by_roots(thread):
        seen = set()
        while thread in origins and thread not in seen:
            seen.add(thread)
            thread = origins[thread]
            if thread in roots:
                return True
        return False

    ours = [t for t in origins if started_by_roots(t) and not isinstance(t, TMonitor)
            and not t.name.startswith(f"{camera.name}-noise")]
    for t in ours:  # e.g. an ophyd set() thread finishing
        t.join(timeout=10)
    return [t.name for t in ours if t.is_alive()]


@pytest.mark.parametrize("during", ["rotation", "training"])
@pytest.mark.parametrize("how", ["abort", "stop", "resume"])
def test_interrupted_scan(tiled_client, RE, txm, thread_origins, how, during):
    docs, engine_thread = [], []

    def record(name, doc):
        docs.append((name, doc))
        if name == "start":
            engine_thread.append(threading.current_thread())

    RE.subscribe(record)
    sample_in = txm.sample_x.position

    epoch_done = threading.Event()
    train = {**TRAIN, "max_patches": 256, "on_epoch": lambda record: epoch_done.set()}
    if during == "training":
        # trains until the scan ends: still training when the pause comes (after epoch 1)
        live = LiveEnhancer(tiled_client, process=False, method="supervised",
                            epochs=100_000, min_training_s=0, progress=False,
                            train_options=train)
    else:
        # one epoch, over when the pause comes: the worker is enhancing projections
        live = LiveEnhancer(tiled_client, process=False, method="supervised",
                            epochs=1, progress=False, train_options=train)
    RE.subscribe(live)

    plan = lowdose_tomo_plan(txm.detector, txm.rotation, sample_x=txm.sample_x,
                             shutter=txm.shutter, **PLAN)
    with pytest.raises(RunEngineInterrupted):
        RE(_pause_mid_rotation(plan, txm.detector, ready=epoch_done))
    assert RE.state == "paused"
    assert txm.shutter.state.get() == "open"  # paused mid-rotation, beam on the sample
    primary_file = txm.detector.current_file
    if how == "abort":
        RE.abort(reason="operator abort")
    elif how == "stop":
        RE.stop()
    else:
        RE.resume()
    assert RE.state == "idle"

    # hardware left safe
    assert txm.shutter.state.get() == "closed"
    assert txm.sample_x.position == sample_in
    assert txm.detector.current_file is None  # unstaged: file closed

    # the stop document: RE.stop() ends the run as a success, RE.abort() as an abort
    (start,) = [d for n, d in docs if n == "start"]
    (stop,) = [d for n, d in docs if n == "stop"]
    uid = start["uid"]
    assert stop["exit_status"] == {"abort": "abort", "stop": "success", "resume": "success"}[how]
    if how == "abort":  # bluesky 1.15's run_wrapper closes an aborted run without the reason
        assert stop["reason"] in ("", "operator abort")
    n = PLAN["num_projections"] if how == "resume" else PAUSE_AFTER
    assert stop["num_events"] == {"dark": 4, "flat": 4, "reference": 4, "primary": n}

    # the analysis: a complete result only for a complete scan, and no thread left behind
    result_uid = live.wait(timeout=300)
    live.close()
    assert not live.worker.thread.is_alive()
    roots = {threading.current_thread(), engine_thread[0], live.worker.thread}
    leftovers = _leftover_threads(thread_origins, roots, txm.detector)
    assert not leftovers, f"threads still running after LiveEnhancer.close(): {leftovers}"
    res = results(tiled_client, uid)
    assert res.uid == result_uid and res.metadata["parent_uid"] == uid
    if during == "training":
        assert res.metadata["model"]["config"]["stopped"] == "requested"  # ended with the scan
    if how == "resume":
        assert res.status == "complete"
        assert res.metadata["num_projections"] == PLAN["num_projections"]
        assert res.enhanced.shape == (PLAN["num_projections"], 32, 32)
        assert res.reconstruction.shape == (32, 32, 32)
    else:
        assert res.status == "incomplete"
        assert res.metadata["error"] == (
            f"scan ended with exit_status={stop['exit_status']!r} after {n} of "
            f"{PLAN['num_projections']} projections; no reconstruction made")
        assert not {"enhanced", "reconstruction", "reconstruction_raw"} & set(res.node)

    # the stored run: every projection once, in order, with its own frame
    run = tiled_client[RAW][uid]
    assert run.metadata["stop"]["exit_status"] == stop["exit_status"]
    primary = run["primary"]
    angles = primary["rot"].read()
    assert np.all(np.diff(angles) > 0) and len(np.unique(angles)) == len(angles)
    np.testing.assert_allclose(angles, ANGLES[:n])
    assert list(primary["seq_num"].read()) == list(range(1, n + 1))
    frames = primary["det_image"].read()
    with h5py.File(primary_file, "r") as f:
        written = f[DATASET][()]
    # after abort/stop the paused projection's frame is in the file but was never announced
    assert len(written) == (n if how == "resume" else PAUSE_AFTER + 1)
    np.testing.assert_array_equal(frames, written[:n])
    for stream in ("dark", "flat", "reference"):
        assert run[stream]["det_image"].read().shape == (4, 32, 32)
