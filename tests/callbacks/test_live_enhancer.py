"""LiveEnhancer: a real plan, a real Tiled server, a real (tiny) network."""

import os
import sys
import time

import numpy as np
import pytest
from bluesky import RunEngine
from bluesky.utils import RunEngineInterrupted

from lowdose_bluesky import results
from lowdose_bluesky.callbacks import LiveEnhancer
from lowdose_bluesky.model import Enhancer
from lowdose_bluesky.storage import RAW, subscribe_writer

from ._live import TRAIN
from ._live import scan as _scan


def test_result_stored_with_provenance_and_better_than_raw(tiled_client, live_RE, live_txm):
    live = LiveEnhancer(tiled_client, method="supervised",  # the default: its own process
                        epochs=8, progress=False, train_options=TRAIN)
    live_RE.subscribe(live)
    # ~10 counts per pixel at the short exposure: a low-dose scan with a lot to enhance
    (uid,) = _scan(live_RE, live_txm, short_exposure=0.2, long_exposure=6.0)
    result_uid = live.wait(timeout=600)
    res = results(tiled_client, uid)
    assert res.uid == result_uid and res.status == "complete"
    md = res.metadata
    assert md["parent_uid"] == uid
    assert md["model"]["arch"] == "unet" and len(md["model"]["history"]) >= 1
    assert md["settings"]["epochs"] == 8
    assert {"training_s", "enhancement_s", "reconstruction_s"} <= set(md["timings"])
    assert md["version"]
    enhanced = res.enhanced
    assert enhanced.shape == (37, 32, 32) and enhanced.dtype == np.float32
    rec, rec_raw = res.reconstruction, res.reconstruction_raw
    assert rec.shape == rec_raw.shape == (32, 32, 32)
    truth = live_txm.phantom * live_txm.optics.mu
    err = np.abs(rec - truth).mean()
    err_raw = np.abs(rec_raw - truth).mean()
    assert err < 0.9 * err_raw, (err, err_raw)
    # the raw run is untouched and still readable
    assert tiled_client[RAW][uid]["primary"]["det_image"].read().shape == (37, 32, 32)
    # the stored checkpoint is a usable model
    model = Enhancer.from_bytes(res.checkpoint, device="cpu")
    assert model(enhanced[:2]).shape == (2, 32, 32)
    live.close()


def test_pretrained_from_previous_result_skips_training(tiled_client, live_RE, live_txm):
    first = LiveEnhancer(tiled_client, process=False, method="supervised",
                         epochs=2, progress=False, reconstruct=False,
                         train_options=TRAIN)
    live_RE.subscribe(first)
    _scan(live_RE, live_txm, num_projections=5)
    previous = first.wait(timeout=600)
    first.close()
    RE = RunEngine({}, call_returns_result=False)
    subscribe_writer(RE, tiled_client, batch_size=10)
    again = LiveEnhancer(tiled_client, process=False, method="supervised", pretrained=previous,
                         skip_training=True, progress=False, reconstruct=False)
    RE.subscribe(again)
    (uid2,) = _scan(RE, live_txm, num_projections=5)
    result_uid = again.wait(timeout=600)  # the result exists only once the analysis is done
    res = results(tiled_client, uid2)
    assert result_uid == res.uid
    assert res.metadata["model"]["pretrained"] == previous
    assert res.metadata["timings"]["training_s"] < 30
    again.close()


def test_failing_model_leaves_raw_run_intact_and_records_failure(
        tiled_client, live_RE, live_txm, monkeypatch):
    def broken(*args, **kwargs):
        raise RuntimeError("GPU on fire")

    monkeypatch.setattr("lowdose_bluesky.model.train_enhancer", broken)
    live = LiveEnhancer(tiled_client, process=False, method="supervised", epochs=1, progress=False)
    live_RE.subscribe(live)
    (uid,) = _scan(live_RE, live_txm, num_projections=5)
    with pytest.raises(RuntimeError, match="GPU on fire"):
        live.wait(timeout=300)
    failed = results(tiled_client, uid)
    assert failed.status == "failed" and "GPU on fire" in failed.metadata["error"]
    assert tiled_client[RAW][uid]["primary"]["det_image"].read().shape == (5, 32, 32)
    with pytest.raises(KeyError, match="has no 'enhanced' array"):
        _ = failed.enhanced
    # the next run works again
    monkeypatch.undo()
    live2 = LiveEnhancer(tiled_client, process=False, method="supervised",
                         epochs=1, progress=False, reconstruct=False,
                         train_options=TRAIN)
    RE = RunEngine({}, call_returns_result=False)
    RE.subscribe(live2)
    (uid2,) = _scan(RE, live_txm, num_projections=5)
    live2.wait(timeout=300)
    assert results(tiled_client, uid2).status == "complete"
    live.close()
    live2.close()


def test_aborted_scan_gives_incomplete_result_not_a_bogus_one(tiled_client, live_RE, live_txm):
    live = LiveEnhancer(tiled_client, process=False, method="supervised",
                        epochs=1, progress=False, train_options=TRAIN)
    live_RE.subscribe(live)
    seen = {"n": 0}

    def abort_midway(name, doc):
        if name == "event":
            seen["n"] += 1
            if seen["n"] == 20:
                raise RuntimeError("operator pulled the plug")

    live_RE.subscribe(abort_midway)
    with pytest.raises(RuntimeError, match="operator pulled the plug"):
        _scan(live_RE, live_txm)
    live.wait(timeout=300)
    uid = live._last_run
    res = results(tiled_client, uid)
    assert res.status == "incomplete"
    assert "exit_status='fail'" in res.metadata["error"]
    assert "reconstruction" not in res.node
    live.close()


def test_run_without_flats_explains_what_is_missing(tiled_client, live_RE, live_txm):
    live = LiveEnhancer(tiled_client, process=False, method="supervised", epochs=1, progress=False)
    live_RE.subscribe(live)
    (uid,) = _scan(live_RE, live_txm, num_flats=0, num_projections=3)
    with pytest.raises(RuntimeError, match="no flat frames at exposure"):
        live.wait(timeout=300)
    assert "no flat frames" in results(tiled_client, uid).metadata["error"]
    live.close()


def test_training_ends_with_the_scan(tiled_client, live_RE, live_txm):
    # far more epochs than the scan lasts: training must stop at the stop document
    live = LiveEnhancer(tiled_client, process=False, method="supervised",
                        epochs=100_000, min_training_s=0, progress=False,
                        train_options=TRAIN)
    live_RE.subscribe(live)
    (uid,) = _scan(live_RE, live_txm)
    live.wait(timeout=300)
    md = results(tiled_client, uid).metadata
    assert md["model"]["config"]["stopped"] == "requested"
    assert 1 <= len(md["model"]["history"]) < 100_000
    assert md["settings"]["training_budget"] == "scan"
    live.close()


def test_seconds_budget_reaches_train_enhancer(tiled_client, live_RE, live_txm):
    live = LiveEnhancer(tiled_client, process=False, method="supervised",
                        epochs=100_000, training_budget=0.5, progress=False,
                        train_options=TRAIN)
    live_RE.subscribe(live)
    (uid,) = _scan(live_RE, live_txm, num_projections=5)
    live.wait(timeout=300)
    config = results(tiled_client, uid).metadata["model"]["config"]
    assert config["stopped"] == "max_seconds" and config["max_seconds"] == 0.5
    live.close()


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="per-thread niceness is Linux")
@pytest.mark.parametrize("process", [False, True])
def test_analysis_runs_at_lower_priority(tiled_client, process):
    base = os.getpriority(os.PRIO_PROCESS, 0)
    live = LiveEnhancer(tiled_client, process=process, method="supervised", nice=5)
    # the worker thread of this process, or the analysis process
    target = live.pid if process else live.worker.thread.native_id
    deadline = time.monotonic() + 30
    while (os.getpriority(os.PRIO_PROCESS, target) == base
           and time.monotonic() < deadline):
        time.sleep(0.01)
    assert os.getpriority(os.PRIO_PROCESS, target) == min(19, base + 5)
    assert os.getpriority(os.PRIO_PROCESS, 0) == base  # the calling thread is unchanged
    live.close()


def test_bad_arguments(tiled_client):
    with pytest.raises(ValueError, match="skip_training=True needs a pretrained model"):
        LiveEnhancer(tiled_client, process=False, method="supervised", skip_training=True)
    with pytest.raises(ValueError, match="epochs must be a positive integer, got 0"):
        LiveEnhancer(tiled_client, process=False, method="supervised", epochs=0)
    with pytest.raises(ValueError, match="training_budget must be 'scan', a positive number "
                                         "of seconds or None, got 'forever'"):
        LiveEnhancer(tiled_client, process=False, method="supervised", training_budget="forever")
    with pytest.raises(ValueError, match="min_training_s must be a number >= 0, got -1"):
        LiveEnhancer(tiled_client, process=False, method="supervised", min_training_s=-1)
    with pytest.raises(ValueError, match="nice must be an integer from 0 to 19, got 25"):
        LiveEnhancer(tiled_client, process=False, method="supervised", nice=25)
    live = LiveEnhancer(tiled_client, process=False, method="supervised")
    with pytest.raises(RuntimeError, match="has not seen any run"):
        live.wait(timeout=1)
    live.close()


def test_no_result_for_unknown_run(tiled_client):
    with pytest.raises(KeyError, match="no result for raw run 'nope'"):
        results(tiled_client, "nope")


def test_pause_and_abort_do_not_break_the_callback(tiled_client, live_RE, live_txm):
    import threading
    import time

    live = LiveEnhancer(tiled_client, process=False, method="supervised",
                        epochs=1, progress=False, train_options=TRAIN)
    live_RE.subscribe(live)

    def pause(msg):
        if msg.command == "trigger" and live_txm.rotation.position > 90:
            live_RE.msg_hook = None
            threading.Thread(target=live_RE.request_pause, kwargs={"defer": False}).start()
            time.sleep(0.2)

    live_RE.msg_hook = pause
    with pytest.raises(RunEngineInterrupted):
        _scan(live_RE, live_txm, num_projections=9)
    live_RE.abort()
    live.wait(timeout=300)
    assert results(tiled_client, live._last_run).status == "incomplete"
    live.close()
