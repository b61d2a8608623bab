"""The analysis in another process, fed over 0MQ, reading frames through Tiled."""

import os
import socket
import subprocess
import sys
import time

import pytest
from bluesky import RunEngine

from lowdose_bluesky import results
from lowdose_bluesky.callbacks.remote import make_publisher, parse_address
from lowdose_bluesky.cli import main
from lowdose_bluesky.devices.sim import make_sim_txm
from lowdose_bluesky.plans import lowdose_tomo_plan
from lowdose_bluesky.storage import subscribe_writer


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.mark.slow
def test_worker_process_stores_result(tiled_client, frames_root, tmp_path):
    pin, pout = _free_port(), _free_port()
    proxy = subprocess.Popen(["bluesky-0MQ-proxy", str(pin), str(pout)],
                             stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    log = open(tmp_path / "worker.log", "w")
    worker = subprocess.Popen(
        [sys.executable, "-m", "lowdose_bluesky.cli", "worker", "--zmq", f"127.0.0.1:{pout}",
         "--tiled", tiled_client.embedded_server.uri, "--epochs", "2", "--method", "supervised",
         "--no-progress"],
        stdout=log, stderr=subprocess.STDOUT, env={**os.environ, "PYTHONUNBUFFERED": "1"})
    publisher = None
    try:
        # the worker imports and connects first (slow on a loaded machine); then give its
        # 0MQ subscription time to reach the proxy
        ready = time.monotonic() + 120
        while "worker listening" not in (tmp_path / "worker.log").read_text():
            assert worker.poll() is None, (tmp_path / "worker.log").read_text()
            assert time.monotonic() < ready, (tmp_path / "worker.log").read_text()
            time.sleep(0.5)
        time.sleep(8)
        txm = make_sim_txm(detector_shape=(32, 32), seed=5, data_dir=frames_root / "remote")
        RE = RunEngine({}, call_returns_result=False)
        subscribe_writer(RE, tiled_client, batch_size=5)
        publisher = make_publisher(f"127.0.0.1:{pin}")  # JSON, as the worker expects
        RE.subscribe(publisher)
        (uid,) = RE(lowdose_tomo_plan(txm.detector, txm.rotation, sample_x=txm.sample_x,
                                      shutter=txm.shutter, num_projections=9, num_darks=2,
                                      num_flats=2, long_exposure=10.0, short_exposure=1.0))
        deadline = time.monotonic() + 300
        while True:
            try:
                res = results(tiled_client, uid)
                break
            except KeyError:
                assert worker.poll() is None, (tmp_path / "worker.log").read_text()
                assert time.monotonic() < deadline, (tmp_path / "worker.log").read_text()
                time.sleep(1)
        assert res.status == "complete", res.metadata
        assert res.enhanced.shape == (9, 32, 32)
        assert res.reconstruction.shape == (32, 32, 32)
    finally:
        if publisher is not None:
            # close now, without lingering: a Publisher left to the garbage collector runs
            # zmq's blocking Context.term() in whichever thread collects it
            publisher._socket.close(linger=0)
            publisher._context.term()
        worker.terminate()
        proxy.terminate()
        worker.wait(30)
        proxy.wait(30)
        log.close()


def test_parse_address():
    assert parse_address("localhost:5578") == ("localhost", 5578)
    for bad in ("5578", "host:", "host:99999", ":1"):
        with pytest.raises(ValueError, match="expected HOST:PORT"):
            parse_address(bad)


def test_worker_command_rejects_bad_address(capsys):
    assert main(["worker", "--zmq", "nohost", "--tiled", "http://127.0.0.1:9/api"]) == 2
    assert "expected HOST:PORT" in capsys.readouterr().err


@pytest.mark.parametrize("budget", ["abc", "-1", "0", "nan"])
def test_worker_command_rejects_bad_training_budget(capsys, budget):
    with pytest.raises(SystemExit) as exit_info:
        main(["worker", "--zmq", "127.0.0.1:9", "--tiled", "http://127.0.0.1:9/api",
              "--training-budget", budget])
    assert exit_info.value.code == 2
    assert ("argument --training-budget: expected 'scan', 'none' or a positive number of "
            f"seconds, got '{budget}'") in capsys.readouterr().err


def test_worker_command_reports_unreachable_tiled(capsys):
    assert main(["worker", "--zmq", "127.0.0.1:5999", "--tiled", "http://127.0.0.1:9/api"]) == 2
    assert "cannot reach Tiled" in capsys.readouterr().err
