"""The IPython profile in ``profile_collection/``, run in fresh processes as a user would.

Under IPython (``ipython --profile-dir=...``) when it is installed, and as the queue server
loads it: every startup file executed in order in one plain namespace.
"""

from __future__ import annotations

import importlib.util
import json
import os
import shutil
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest
import zmq

from lowdose_bluesky import results
from lowdose_bluesky.callbacks.remote import deserialize_document
from lowdose_bluesky.storage import RAW, close, connect

PROFILE = Path(__file__).resolve().parents[1] / "profile_collection"
MARK = "LOWDOSE-TEST-RESULT "

# Every startup file in order, in one namespace, without IPython (as the queue server does).
PLAIN_RUNNER = """
import sys
from pathlib import Path

ns = {"__name__": "__main__"}
for path in sorted(Path(sys.argv[1]).glob("*.py")):
    ns["__file__"] = str(path)
    exec(compile(path.read_text(), str(path), "exec"), ns)
del ns["__file__"]
exec(sys.argv[2], ns)
"""

# What the user types, then a line the test reads back.
SCAN = """
(uid,) = RE(lowdose_tomo_plan(det, rot, sample_x=sample_x, shutter=shutter,
                              num_projections={n}, num_darks=1, num_flats=1,
                              long_exposure=20.0, short_exposure=1.0))
"""


def _report(expression: str) -> str:
    return f"import json; print({MARK!r} + json.dumps({expression}))"


def run_profile(tmp_path: Path, code: str, *, ipython: bool, timeout: float = 280,
                **env: str) -> subprocess.CompletedProcess[str]:
    """Start the profile in a fresh interpreter, run ``code`` in its namespace."""
    full_env = {k: v for k, v in os.environ.items() if not k.startswith("LOWDOSE_")}
    full_env.update({"LOWDOSE_DATA_DIR": str(tmp_path / "data"), "LOWDOSE_SIM_SIZE": "32",
                     "MPLBACKEND": "Agg", "IPYTHONDIR": str(tmp_path / "ipython"), **env})
    if ipython:
        # a copy, so that IPython's history and logs stay out of the source tree
        profile = tmp_path / "profile"
        shutil.copytree(PROFILE / "startup", profile / "startup")
        command = [sys.executable, "-m", "IPython", f"--profile-dir={profile}", "--no-banner",
                   "--colors=NoColor", "-c", code]
    else:
        command = [sys.executable, "-c", PLAIN_RUNNER, str(PROFILE / "startup"), code]
    return subprocess.run(command, env=full_env, cwd=tmp_path, capture_output=True, text=True,
                          timeout=timeout)


def reported(proc: subprocess.CompletedProcess[str]) -> dict:
    lines = [line for line in proc.stdout.splitlines() if line.startswith(MARK)]
    assert lines, f"no result line (rc={proc.returncode}):\n{proc.stdout[-3000:]}\n" \
                  f"{proc.stderr[-5000:]}"
    return json.loads(lines[-1][len(MARK):])


@pytest.mark.slow
def test_ipython_profile_scans_into_embedded_tiled_with_live_analysis(tmp_path):
    pytest.importorskip("IPython")
    code = SCAN.format(n=19) + "\n" + "result_uid = live.wait(timeout=200)\n" + _report(
        "{'uid': uid, 'result': result_uid, 'scan_id': RE.md['scan_id'], "
        "'live': type(live).__name__, 'publisher': publisher}")
    proc = run_profile(tmp_path, code, ipython=True, LOWDOSE_LIVE_EPOCHS="1",
                       LOWDOSE_LIVE_N2I_SECONDS="2")
    out = reported(proc)
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert out["live"] == "LiveEnhancer" and out["publisher"] is None
    assert out["scan_id"] == 1
    assert "Tiled embedded; live analysis on" in proc.stdout

    data = tmp_path / "data"
    if importlib.util.find_spec("zict") is not None:
        # RE.md persists: scan_id counts on in the next session
        from bluesky.utils import PersistentDict

        assert PersistentDict(str(data / "runengine-md"))["scan_id"] == 1
    else:
        assert "RE.md is not persistent" in proc.stdout
    # the embedded catalog persists in LOWDOSE_DATA_DIR/tiled, frames in .../frames
    client = connect(directory=data / "tiled", readable_storage=[data / "frames"])
    try:
        run = client[RAW][out["uid"]]
        assert run.metadata["start"]["plan_name"] == "lowdose_tomo_plan"
        assert run["primary"]["det_image"].read().shape == (19, 32, 32)
        res = results(client, out["uid"])
        assert res.uid == out["result"] and res.status == "complete"
        assert res.metadata["settings"]["epochs"] == 1
        assert res.enhanced.shape == (19, 32, 32)
    finally:
        close(client)


class _Subscriber:
    """Collects the documents a ``Publisher`` sends to a bound SUB socket.

    A SUB that binds only passes its subscription on to a connecting PUB once it is
    polled, so a thread keeps polling from before the publisher connects.
    """

    def __init__(self) -> None:
        self.docs: list[tuple[str, dict]] = []
        self._ctx = zmq.Context()
        self._sub = self._ctx.socket(zmq.SUB)
        self._sub.setsockopt(zmq.SUBSCRIBE, b"")
        self.port = self._sub.bind_to_random_port("tcp://127.0.0.1")
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._receive, daemon=True)
        self._thread.start()

    def _receive(self) -> None:
        while not self._stop.is_set():
            if self._sub.poll(100):
                _, name, payload = self._sub.recv().split(b" ", 2)
                self.docs.append((name.decode(), deserialize_document(payload)))

    def close(self, drain: float = 2.0) -> list[tuple[str, dict]]:
        if self._stop.is_set():
            return self.docs
        time.sleep(drain)
        self._stop.set()
        self._thread.join()
        self._sub.close(linger=0)
        self._ctx.term()
        return self.docs


@pytest.mark.slow
def test_plain_python_profile_with_remote_tiled_and_zmq_publisher(tmp_path):
    frames = tmp_path / "data" / "frames"
    frames.mkdir(parents=True)
    server = connect(directory=tmp_path / "server", readable_storage=[frames])
    subscriber = _Subscriber()
    try:
        # 0MQ's slow joiner: a PUB drops what it sends before the SUB's subscription has
        # reached it over the new connection; a beamline profile publishes long after startup
        code = ("import time; time.sleep(2)\n" + SCAN.format(n=5) + "publisher.close()\n"
                + _report(
            "{'uid': uid, 'live': live, 'tiled': TILED_URI.split('?')[0]}"))
        proc = run_profile(tmp_path, code, ipython=False,
                           LOWDOSE_TILED_URI=server.embedded_server.uri,
                           LOWDOSE_ZMQ_PUBLISH=f"127.0.0.1:{subscriber.port}")
        docs = subscriber.close()
        out = reported(proc)
        assert proc.returncode == 0, proc.stderr[-3000:]
        # publishing documents turns the local analysis off by default
        assert out["live"] is None
        assert f"publishing to tcp://127.0.0.1:{subscriber.port}" in proc.stdout
        # the run went to the given server: no embedded catalog was made
        assert not (tmp_path / "data" / "tiled").exists()
        run = server[RAW][out["uid"]]
        assert run["primary"]["det_image"].read().shape == (5, 32, 32)
        assert run.metadata["stop"]["exit_status"] == "success"

        names = [name for name, _ in docs]
        assert names and names[0] == "start" and names[-1] == "stop", names
        assert docs[0][1]["uid"] == out["uid"] and docs[-1][1]["run_start"] == out["uid"]
        assert names.count("event") == 5 + 2 + 2 + 2 * 2  # primary, darks, flats, references
    finally:
        subscriber.close(drain=0)
        close(server)


# The rotation flown: 45 deg steps every 2.5 s at 1 s exposures (0.4 of a step smeared).
FLYSCAN = """
(uid,) = RE(lowdose_tomo_flyscan(det, rot, sample_x=sample_x, shutter=shutter,
                                 num_projections={n}, num_darks=1, num_flats=1,
                                 long_exposure=20.0, short_exposure=1.0, frame_period=2.5))
"""


# The EPICS devices rehearsed on emulated IOCs (mock signals for ophyd-async).
EPICS_FAKE = {"LOWDOSE_DEVICES": "epics", "LOWDOSE_EPICS_FAKE": "1",
              "LOWDOSE_PV_CAMERA": "TST:SP1:", "LOWDOSE_PV_ROTATION": "TST:rot:m1",
              "LOWDOSE_PV_SAMPLE_X": "TST:x:m2", "LOWDOSE_PV_SHUTTER": "TST:shtr:",
              "LOWDOSE_PV_SHUTTER_STATUS": "TST:shtr:Status"}


@pytest.mark.slow
@pytest.mark.parametrize(("devices", "module"), [
    ("sim", "lowdose_bluesky.devices.sim.async_devices"),
    ("epics", "lowdose_bluesky.devices.epics.async_detector"),
])
def test_ophyd_async_profile_flies_the_rotation_into_embedded_tiled(tmp_path, devices, module):
    env = {"LOWDOSE_DEVICES": devices}
    if devices == "epics":
        env.update(EPICS_FAKE, LOWDOSE_CAMERA_WRITE_PATH=f"{tmp_path / 'data' / 'frames'}/")
    code = FLYSCAN.format(n=5) + "\n" + _report("{'uid': uid, 'det': type(det).__module__}")
    proc = run_profile(tmp_path, code, ipython=False, LOWDOSE_DEVICE_FLAVOUR="ophyd-async",
                       LOWDOSE_LIVE="off", **env)
    out = reported(proc)
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert f"({devices}, ophyd-async)" in proc.stdout and "live analysis off" in proc.stdout
    assert out["det"].startswith(module)
    data = tmp_path / "data"
    client = connect(directory=data / "tiled", readable_storage=[data / "frames"])
    try:
        run = client[RAW][out["uid"]]
        start = run.metadata["start"]
        assert start["plan_name"] == "lowdose_tomo_flyscan"
        assert start["lowdose"]["device_flavour"] == "ophyd-async"
        assert start["lowdose"]["fly"]["angles"] == [0.0, 45.0, 90.0, 135.0, 180.0]
        assert run.metadata["stop"]["exit_status"] == "success"
        key = start["lowdose"]["image_key"]
        # ophyd-async frames come one per StreamDatum index: (N, 1, H, W)
        frames = run["primary"][key].read()
        assert frames.reshape(-1, 32, 32).shape == (5, 32, 32) and frames.max() > 0
        assert run["flat"][key].shape[-2:] == (32, 32)
    finally:
        close(client)


@pytest.mark.parametrize(("env", "message"), [
    ({"LOWDOSE_DEVICES": "tango"}, "LOWDOSE_DEVICES must be 'sim' or 'epics', got 'tango'"),
    ({"LOWDOSE_SIM_SIZE": "big"}, "LOWDOSE_SIM_SIZE must be N or HxW (pixels), got 'big'"),
    ({"LOWDOSE_LIVE": "maybe"}, "LOWDOSE_LIVE must be one of"),
    ({"LOWDOSE_DEVICE_FLAVOUR": "tango"},
     "LOWDOSE_DEVICE_FLAVOUR must be 'ophyd' or 'ophyd-async', got 'tango'"),
])
def test_bad_setting_stops_the_profile_with_its_name(tmp_path, env, message):
    proc = run_profile(tmp_path, _report("'loaded'"), ipython=False, **env)
    assert proc.returncode != 0
    assert MARK not in proc.stdout
    assert message in proc.stderr


@pytest.mark.slow
def test_epics_profile_rehearsal_with_emulated_iocs(tmp_path):
    frames = tmp_path / "data" / "frames"
    code = SCAN.format(n=5) + "\n" + _report(
        "{'uid': uid, 'det': type(det).__name__, "
        "'pv': type(det.cam).acquire_time.maybe_add_prefix(det.cam, 'suffix', "
        "type(det.cam).acquire_time.suffix), 'rot': rot.prefix}")
    proc = run_profile(
        tmp_path, code, ipython=False, LOWDOSE_DEVICES="epics", LOWDOSE_EPICS_FAKE="1",
        LOWDOSE_LIVE="off", LOWDOSE_PV_CAMERA="TST:SP1:", LOWDOSE_PV_ROTATION="TST:rot:m1",
        LOWDOSE_PV_SAMPLE_X="TST:x:m2", LOWDOSE_PV_SHUTTER="TST:shtr:",
        LOWDOSE_PV_SHUTTER_STATUS="TST:shtr:Status", LOWDOSE_CAMERA_WRITE_PATH=f"{frames}/")
    out = reported(proc)
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert out["det"] == "FakeTXMDetector" or out["det"].endswith("TXMDetector")
    assert out["pv"] == "TST:SP1:cam1:AcquireTime" and out["rot"] == "TST:rot:m1"
    client = connect(directory=tmp_path / "data" / "tiled", readable_storage=[frames])
    try:
        run = client[RAW][out["uid"]]
        assert run["primary"]["det_image"].read().shape == (5, 32, 32)
        assert run.metadata["start"]["plan_name"] == "lowdose_tomo_plan"
    finally:
        close(client)
