"""The analysis worker killed mid-training: the scan is unaffected, and ``lowdose-bluesky
reprocess UID`` analyses the run again from Tiled."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time

import numpy as np
import pytest
from bluesky import RunEngine

from lowdose_bluesky import results
from lowdose_bluesky.callbacks.remote import make_publisher
from lowdose_bluesky.cli import main
from lowdose_bluesky.devices.sim import make_sim_txm
from lowdose_bluesky.plans import lowdose_tomo_plan
from lowdose_bluesky.storage import RAW, subscribe_writer

from .._servers import free_port

N = 9


def _wait_for(path, text: str, proc: subprocess.Popen, timeout: float) -> None:
    deadline = time.monotonic() + timeout
    while text not in path.read_text():
        assert proc.poll() is None, path.read_text()
        assert time.monotonic() < deadline, f"no {text!r} in the worker log:\n{path.read_text()}"
        time.sleep(0.2)


def _until_subscribed(publisher, path, proc: subprocess.Popen, timeout: float = 120) -> None:
    """Publish start documents of a plan no recipe serves until the worker logs one.

    0MQ's slow joiner: a PUB drops what it sends before the SUB's subscription has
    reached the proxy, and a busy machine may take seconds to get there.
    """
    deadline = time.monotonic() + timeout
    while "no recipe serves this plan" not in path.read_text():
        assert proc.poll() is None, path.read_text()
        assert time.monotonic() < deadline, f"worker never subscribed:\n{path.read_text()}"
        publisher("start", {"uid": "subscription-probe", "time": time.time(),
                            "plan_name": "subscription_probe"})
        time.sleep(0.5)


@pytest.mark.slow
def test_worker_killed_mid_training_then_reprocessed(tiled_client, frames_root, tmp_path,
                                                     capsys):
    uri = tiled_client.embedded_server.uri
    pin, pout = free_port(), free_port()
    proxy = subprocess.Popen(["bluesky-0MQ-proxy", str(pin), str(pout)],
                             stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    log_path = tmp_path / "worker.log"
    log = open(log_path, "w")
    # trains until killed: thousands of epochs, no time budget
    worker = subprocess.Popen(
        [sys.executable, "-m", "lowdose_bluesky.cli", "worker", "--zmq", f"127.0.0.1:{pout}",
         "--tiled", uri, "--epochs", "100000", "--training-budget", "none", "--method",
         "supervised", "--no-progress"],
        stdout=log, stderr=subprocess.STDOUT, env={**os.environ, "PYTHONUNBUFFERED": "1"})
    publisher = None
    killed_at = []
    try:
        _wait_for(log_path, "worker listening on", worker, 120)
        publisher = make_publisher(f"127.0.0.1:{pin}")
        _until_subscribed(publisher, log_path, worker)
        txm = make_sim_txm(detector_shape=(32, 32), seed=5, data_dir=frames_root / "killed")
        RE = RunEngine({}, call_returns_result=False)
        subscribe_writer(RE, tiled_client, batch_size=1)
        RE.subscribe(publisher)
        primary = set()

        def kill_when_training(name: str, doc: dict) -> None:
            if name == "descriptor" and doc["name"] == "primary":
                primary.add(doc["uid"])
            if name == "event" and doc["descriptor"] in primary and doc["seq_num"] == 3:
                _wait_for(log_path, "training unet model", worker, 120)
                worker.send_signal(signal.SIGKILL)
                worker.wait(30)
                killed_at.append(doc["seq_num"])

        RE.subscribe(kill_when_training)
        (uid,) = RE(lowdose_tomo_plan(txm.detector, txm.rotation, sample_x=txm.sample_x,
                                      shutter=txm.shutter, num_projections=N, num_darks=2,
                                      num_flats=2, long_exposure=10.0, short_exposure=1.0))
    finally:
        if publisher is not None:
            publisher._socket.close(linger=0)
            publisher._context.term()
        if worker.poll() is None:
            worker.kill()
        proxy.terminate()
        worker.wait(30)
        proxy.wait(30)
        log.close()
    assert killed_at == [3] and worker.returncode == -signal.SIGKILL
    # the scan is unaffected: complete, every frame stored, nothing from the dead worker
    run = tiled_client[RAW][uid]
    assert run.metadata["stop"]["exit_status"] == "success"
    frames = run["primary"]["det_image"].read()
    assert frames.shape == (N, 32, 32)
    np.testing.assert_allclose(run["primary"]["rot"].read(), np.linspace(0, 180, N))
    with pytest.raises(KeyError):
        results(tiled_client, uid)

    capsys.readouterr()
    assert main(["reprocess", uid, "--tiled", uri, "--epochs", "2", "--method", "supervised",
                 "--no-progress"]) == 0
    assert f"for run {uid}" in capsys.readouterr().out
    res = results(tiled_client, uid)
    assert res.status == "complete", res.metadata
    assert res.enhanced.shape == (N, 32, 32)
    assert res.reconstruction.shape == (32, 32, 32)
    assert res.metadata["settings"]["training_budget"] is None


def test_reprocess_names_an_unknown_run(tiled_client, capsys):
    uri = tiled_client.embedded_server.uri
    missing = "ffffffff-0000-4000-8000-000000000000"
    assert main(["reprocess", missing, "--tiled", uri]) == 2
    assert f"no raw run '{missing}' in Tiled" in capsys.readouterr().err
