"""The analysis process (``LiveEnhancer(process=True)``, the default).

- a SIGKILL of the analysis process during training, or while frames are being
  enhanced, never touches the scan: the run's result is stored as ``failed`` naming the
  signal, ``wait()`` raises it, and a fresh process analyses the next run;
- a script that ends while an analysis runs exits with status 0 and says, on standard
  error, which run to analyse again and how;
- enhanced frames are readable from the live result while the scan is still running.

The scans stop at a chosen primary event (a RunEngine callback that blocks the scan)
until the analysis process has reached the state under test, so nothing depends on how
fast this machine trains.
"""

from __future__ import annotations

import logging
import os
import signal
import subprocess
import sys
import textwrap
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from lowdose_bluesky import results
from lowdose_bluesky.callbacks import LiveEnhancer
from lowdose_bluesky.devices.sim import make_sim_txm
from lowdose_bluesky.storage import RAW, RESULTS, close, connect

from ..callbacks._live import TRAIN
from ..callbacks._live import scan as _scan

REPO = Path(__file__).resolve().parents[2]
#: Training budget (seconds) of the kill tests: far longer than it takes to get to the
#: kill, short enough that the next run's analysis finishes soon.
TRAINING_S = 10.0
#: A low dose that the network learns to improve within a few epochs (as in
#: tests/callbacks/test_live_enhancer.py): ~10 counts per pixel at the short exposure.
LOW_DOSE = {"short_exposure": 0.2, "long_exposure": 6.0}


def _until(condition: Callable[[], Any], timeout: float, what: str) -> Any:
    """Poll ``condition`` until it returns something true; fail after ``timeout`` s."""
    deadline = time.monotonic() + timeout
    while True:
        value = condition()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"{what}: not within {timeout} s")
        time.sleep(0.1)


class AtPrimaryEvent:
    """RunEngine callback: ``action(run_uid)`` at the ``k``-th primary event.

    The scan waits while ``action`` runs; its return values are in ``returned``.
    Subscribe it after the LiveEnhancer, so that the event has been handed on first.
    """

    def __init__(self, k: int, action: Callable[[str], Any]) -> None:
        self.k = k
        self.action = action
        self.returned: list[Any] = []
        self._uid: str | None = None
        self._primary: str | None = None

    def __call__(self, name: str, doc: dict[str, Any]) -> None:
        if name == "start":
            self._uid, self._primary = doc["uid"], None
        elif name == "descriptor" and doc["name"] == "primary":
            self._primary = doc["uid"]
        elif (name == "event" and doc["descriptor"] == self._primary
              and doc["seq_num"] == self.k):
            self.returned.append(self.action(self._uid))


def _gone(pid: int) -> bool:
    """Whether process ``pid`` has ended (and been reaped, or is a zombie of init's)."""
    try:
        with open(f"/proc/{pid}/stat") as f:
            return f.read().rsplit(")", 1)[1].split()[0] == "Z"
    except FileNotFoundError:
        return True


def _statuses(client: Any, run_uid: str) -> list[str]:
    """Status of every result node (finished or not) of run ``run_uid``."""
    if RESULTS not in client:
        return []
    return sorted(node.metadata["status"] for node in client[RESULTS].values()
                  if node.metadata.get("parent_uid") == run_uid)


def _running(client: Any, run_uid: str) -> tuple[dict[str, Any], int] | None:
    """Progress metadata and length of ``enhanced`` of the run's live result (or None).

    The metadata is read first: the array can only have grown since.
    """
    try:
        res = results(client, run_uid, status="running")
    except KeyError:
        return None
    progress = res.metadata["progress"]
    return progress, res.node["enhanced"].shape[0] if "enhanced" in res.node else 0


def _check_killed(client: Any, live: LiveEnhancer, uid: str, pid: int, n: int) -> None:
    """What a SIGKILL of analysis process ``pid`` during run ``uid`` must leave."""
    # the scan completed, every frame stored
    run = client[RAW][uid]
    assert run.metadata["stop"]["exit_status"] == "success"
    assert run["primary"]["det_image"].read().shape == (n, 32, 32)
    # the cause is named by wait() and in the stored result
    with pytest.raises(RuntimeError) as info:
        live.wait(timeout=60)
    message = str(info.value)
    assert "SIGKILL" in message
    assert (f"analysis of run {uid} failed: ProcessDied: the analysis process (pid {pid}) "
            "killed by signal SIGKILL (9) during the analysis") in message
    assert f"lowdose-bluesky reprocess {uid}" in message
    res = results(client, uid)
    assert res.status == "failed"
    assert "SIGKILL" in res.metadata["error"]
    assert res.metadata["error"].startswith(f"ProcessDied: the analysis process (pid {pid})")
    # the failure replaced the live result node: nothing is left "running"
    assert res.uid == live.live_result(uid)
    assert _statuses(client, uid) == ["failed"]
    # a fresh process; the dead one is gone, not a zombie
    assert live.pid != pid
    assert live.worker.restarts == 1
    assert live.worker.ready.wait(120)
    assert _gone(pid)


def _next_run_complete(client: Any, live: LiveEnhancer, RE: Any, txm: Any) -> None:
    (uid,) = _scan(RE, txm, num_projections=5, **LOW_DOSE)
    result_uid = live.wait(timeout=300)
    res = results(client, uid)
    assert res.status == "complete", res.metadata.get("error")
    assert res.uid == result_uid
    assert res.enhanced.shape == (5, 32, 32)


def _killable(client: Any) -> LiveEnhancer:
    """An analysis in its own process that trains ``TRAINING_S`` seconds."""
    live = LiveEnhancer(client, method="supervised", epochs=100_000,
                        training_budget=TRAINING_S, progress=False, reconstruct=False,
                        train_options={**TRAIN, "patience": None})
    assert live.process and live.worker.ready.wait(120)
    return live


@pytest.mark.slow
def test_killed_during_training(tiled_client, live_RE, live_txm, caplog, capfd):
    # the analysis process logs at the level of the "lowdose_bluesky" logger, to the
    # standard error it shares with this process: "training unet model" says it trains
    caplog.set_level(logging.INFO, logger="lowdose_bluesky")
    live = _killable(tiled_client)
    try:
        pid = live.pid
        stderr: list[str] = []

        def training() -> bool:
            stderr.append(capfd.readouterr().err)
            return (f"lowdose-analysis[{pid}] INFO lowdose_bluesky.recipes.tomography."
                    "analysis: training unet model on 2 reference pairs") in "".join(stderr)

        def kill(uid: str) -> str:
            _until(lambda: live.live_result(uid), 60, "the live result node")
            _until(training, 120, "the analysis process training")
            os.kill(pid, signal.SIGKILL)
            return uid

        killer = AtPrimaryEvent(3, kill)
        live_RE.subscribe(live)
        token = live_RE.subscribe(killer)
        (uid,) = _scan(live_RE, live_txm, num_projections=9, **LOW_DOSE)
        live_RE.unsubscribe(token)
        assert killer.returned == [uid]
        _check_killed(tiled_client, live, uid, pid, 9)
        _next_run_complete(tiled_client, live, live_RE, live_txm)
    finally:
        live.close(60)
    assert not live.worker.process.is_alive()


@pytest.mark.slow
def test_killed_while_enhancing(tiled_client, live_RE, live_txm):
    live = _killable(tiled_client)
    try:
        pid = live.pid

        def enhancing(uid: str) -> tuple[dict[str, Any], int] | None:
            state = _running(tiled_client, uid)
            if state is None or state[0].get("model_version", 0) < 1 or state[1] == 0:
                return None
            return state

        def kill(uid: str) -> tuple[dict[str, Any], int]:
            state = _until(lambda: enhancing(uid), 120, "the first enhanced frames")
            os.kill(pid, signal.SIGKILL)
            return state

        killer = AtPrimaryEvent(5, kill)
        live_RE.subscribe(live)
        token = live_RE.subscribe(killer)
        (uid,) = _scan(live_RE, live_txm, num_projections=9, **LOW_DOSE)
        live_RE.unsubscribe(token)
        ((progress, enhanced),) = killer.returned
        assert progress["model_version"] >= 1 and 1 <= enhanced <= 5
        _check_killed(tiled_client, live, uid, pid, 9)
        _next_run_complete(tiled_client, live, live_RE, live_txm)
    finally:
        live.close(60)
    assert not live.worker.process.is_alive()



def test_run_started_right_after_the_process_died_is_analysed(tiled_client, live_RE,
                                                               live_txm):
    # the analysis process dies between two runs (nothing to analyse: nothing is lost);
    # the next run starts at once, before the watcher has noticed (it looks every 0.5 s):
    # its start document must not go to the dead process's queue
    live = LiveEnhancer(tiled_client, method="supervised", epochs=2, progress=False,
                        reconstruct=False, train_options=TRAIN)
    try:
        assert live.worker.ready.wait(120)
        pid = live.pid
        live_RE.subscribe(live)
        os.kill(pid, signal.SIGKILL)
        _until(lambda: _gone(pid), 10, "the end of the analysis process")
        (uid,) = _scan(live_RE, live_txm, num_projections=5, **LOW_DOSE)
        try:
            live.wait(timeout=300)
        except RuntimeError as exc:
            pytest.fail(f"a run that began after the analysis process died was not "
                        f"analysed by the fresh process: {exc}")
        assert results(tiled_client, uid).status == "complete"
        assert live.pid != pid
    finally:
        live.close(60)


#: A session that runs a scan and ends while its analysis is still training.
SCRIPT = textwrap.dedent("""
    import sys
    from pathlib import Path

    from bluesky import RunEngine

    from lowdose_bluesky.callbacks import LiveEnhancer
    from lowdose_bluesky.devices.sim import make_sim_txm
    from lowdose_bluesky.plans import lowdose_tomo_plan
    from lowdose_bluesky.storage import connect, subscribe_writer

    here = Path(sys.argv[1])
    (here / "frames").mkdir(parents=True)
    client = connect(directory=here / "tiled", readable_storage=[here / "frames"])
    txm = make_sim_txm(detector_shape=(32, 32), seed=3, flux=50.0, data_dir=here / "frames")
    RE = RunEngine({}, call_returns_result=False)
    subscribe_writer(RE, client, batch_size=10)
    live = LiveEnhancer(client, method="supervised", epochs=50, training_budget=None,
                        progress=False, train_options=%(train)r)
    RE.subscribe(live)
    (uid,) = RE(lowdose_tomo_plan(txm.detector, txm.rotation, sample_x=txm.sample_x,
                                  shutter=txm.shutter, num_projections=9, num_darks=3,
                                  num_flats=3, long_exposure=30.0, short_exposure=1.0))
    print(uid, live.pid, flush=True)
    # no live.wait(): the session ends here
""") % {"train": {**TRAIN, "patience": None}}


def _session(directory: Path) -> tuple[subprocess.CompletedProcess, str, int]:
    """Run ``SCRIPT``: its result, the run uid and the analysis process's pid."""
    done = subprocess.run([sys.executable, "-c", SCRIPT, str(directory)], cwd=REPO,
                          capture_output=True, text=True, timeout=240)
    assert done.stdout.strip(), done.stderr
    uid, pid = done.stdout.split()
    return done, uid, int(pid)


@pytest.mark.slow
def test_script_ending_during_an_analysis_exits_cleanly(tmp_path):
    for attempt in range(3):
        done, uid, pid = _session(tmp_path / f"session{attempt}")
        assert done.returncode == 0, done.stderr
        assert (f"lowdose-bluesky: the analysis of run {uid} had not finished when the "
                "session ended and was stopped") in done.stderr
        assert f"lowdose-bluesky reprocess {uid}" in done.stderr
        assert "Traceback" not in done.stderr, done.stderr
        # the analysis process did not outlive the session
        _until(lambda: _gone(pid), 10, f"the end of the analysis process {pid}")  # noqa: B023


@pytest.mark.slow
def test_script_ending_during_an_analysis_stores_the_failure(tmp_path):
    done, uid, _ = _session(tmp_path / "session")
    assert done.returncode == 0, done.stderr
    # "each is stored as failed with the command that analyses it again"
    # (AnalysisProcess.shutdown_at_exit); not after tiled's retries on a stopped server
    client = connect(directory=tmp_path / "session" / "tiled")
    try:
        res = results(client, uid)
        assert res.status == "failed"
        assert res.metadata["error"] == (
            "ProcessDied: the session ended before the analysis finished; the raw run is "
            f"intact: analyse it again with: lowdose-bluesky reprocess {uid}")
    finally:
        close(client)
    assert "Retrying" not in done.stderr, done.stderr


@pytest.mark.slow
def test_enhanced_frames_readable_during_the_scan(tiled_client, live_RE, frames_root, request):
    n = 24
    # real exposure times: the scan takes ~20 s (darks, flats and reference pairs ~7 s)
    txm = make_sim_txm(detector_shape=(32, 32), seed=3, flux=100.0, realistic_timing=True,
                       data_dir=frames_root / request.node.name)
    live = LiveEnhancer(tiled_client, method="supervised", epochs=12, training_budget=None,
                        progress=False, reconstruct=False, train_options=TRAIN)
    try:
        assert live.worker.ready.wait(120)
        samples: list[tuple[int, int | None, int]] = []

        def sample(uid: str) -> tuple[dict[str, Any], int] | None:
            state = _running(tiled_client, uid)
            if state is not None:
                samples.append((len(samples), state[0].get("enhanced_frames"), state[1]))
            return state

        def caught_up(uid: str) -> bool:
            state = sample(uid)
            return state is not None and 0 < state[1] == state[0].get("enhanced_frames")

        class Sampler(AtPrimaryEvent):
            def __call__(self, name: str, doc: dict[str, Any]) -> None:
                if name == "event" and doc["descriptor"] == self._primary:
                    sample(self._uid)
                super().__call__(name, doc)

        # half-way through the rotation, wait (the scan too) until the enhanced frames
        # in Tiled and the progress metadata agree
        sampler = Sampler(n // 2, lambda uid: _until(lambda: caught_up(uid), 120,
                                                     "enhanced frames in the live result"))
        live_RE.subscribe(live)
        live_RE.subscribe(sampler)
        t = time.monotonic()
        (uid,) = _scan(live_RE, txm, num_projections=n, num_darks=2, num_flats=2,
                       long_exposure=1.0, short_exposure=0.2)
        scan_s = time.monotonic() - t
        assert scan_s > 10  # the exposures were real
        assert sampler.returned == [True]
        during = [(m, length) for _, m, length in samples if 0 < length < n and m == length]
        assert during, samples
        result_uid = live.wait(timeout=300)
    finally:
        live.close(60)
    res = results(tiled_client, uid)
    assert res.status == "complete", res.metadata.get("error")
    assert res.uid == result_uid == live.live_result(uid)  # the live node became the result
    assert _statuses(tiled_client, uid) == ["complete"]
    md = res.metadata
    enhanced_by = res.node["enhanced_by"].read()
    assert enhanced_by.shape == (n,) and (enhanced_by >= 1).all()
    # every frame ends enhanced by the version in use at the end
    assert set(enhanced_by.tolist()) == {md["model"]["version_used"]}
    versions = md["model"]["versions"]
    assert versions and [v["version"] for v in versions] == list(range(1, len(versions) + 1))
    assert res.enhanced.shape == (n, 32, 32)
    frames = md["frames"]
    assert frames["enhanced_before_stop"] >= max(length for _, length in during)
    median = frames["latency_after_first_model_s"]["median"]
    assert np.isfinite(median) and median > 0
