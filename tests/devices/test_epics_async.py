"""The TXM's ophyd-async devices in mock mode: PVs, step and fly acquisitions, shutter."""

from __future__ import annotations

import importlib.util
from pathlib import Path
from typing import Any

import bluesky.plan_stubs as bps
import h5py
import numpy as np
import pytest
from bluesky import RunEngine
from bluesky.run_engine import call_in_bluesky_event_loop
from bluesky.utils import FailedStatus
from ophyd_async.core import (
    DetectorTrigger,
    FlyMotorInfo,
    StandardDetector,
    TriggerInfo,
    get_mock_put,
)

from lowdose_bluesky.devices.epics import (
    EXAMPLE_CONFIG,
    emulate_ioc_async,
    make_epics_txm_async,
)

CONFIG: dict[str, Any] = {
    "camera": {"prefix": "TST:SP1:", "write_path_template": "/data/", "readout_time": 0.01},
    "rotation": {"prefix": "TST:rot:m1"},
    "sample_x": {"prefix": "TST:sx:m2"},
    "shutter": {"prefix": "TST:shtr:", "status_pv": "TST:shtr:status", "timeout": 0.5},
}


def _pv(signal: Any) -> str:
    """The PV of a mock signal (its source without the ``mock+ca://`` scheme)."""
    return signal.source.split("://", 1)[1]


@pytest.fixture
def emulated(RE: RunEngine, tmp_path: Path):
    txm = make_epics_txm_async(CONFIG, mock=True, path_provider=tmp_path)
    ioc = emulate_ioc_async(txm, tmp_path, frame_shape=(6, 8))
    yield txm, ioc
    ioc.close()


# -------------------------------------------------------------------- building
def test_example_config_gives_the_pvs(RE: RunEngine, tmp_path: Path):
    txm = make_epics_txm_async(EXAMPLE_CONFIG, mock=True, path_provider=tmp_path)
    det = txm.detector
    assert isinstance(det, StandardDetector)
    assert det.name == "det" and det.hints == {"fields": ["det_image"]}
    assert _pv(det.driver.acquire_time) == "32idcSP1:cam1:AcquireTime_RBV"
    assert _pv(det.hdf.file_path) == "32idcSP1:HDF1:FilePath_RBV"
    assert _pv(txm.rotation.user_readback) == "32idcTXM:ens:c1:m1.RBV"
    assert _pv(txm.rotation.max_velocity) == "32idcTXM:ens:c1:m1.VMAX"
    assert txm.sample_x is not None and _pv(txm.sample_x.user_setpoint) == "32idcTXM:mcs:c3:m7.VAL"
    assert (txm.rotation.name, txm.sample_x.name) == ("rot", "sample_x")
    shutter = txm.shutter
    assert shutter is not None and shutter.name == "shutter"
    assert _pv(shutter.open_command) == "32idb:rshtrB:Open"
    assert _pv(shutter.close_command) == "32idb:rshtrB:Close"
    assert _pv(shutter.status) == "PA:32ID:STA_B_SBS_OPEN_PL"
    assert set(txm.devices) == {"detector", "rotation", "sample_x", "shutter"}
    assert det.start_metadata()["epics"]["hdf5_plugin"] == "32idcSP1:HDF1:"


def test_environment_variables_give_the_pvs(RE: RunEngine, tmp_path: Path,
                                            monkeypatch: pytest.MonkeyPatch):
    for var, value in {"LOWDOSE_PV_CAMERA": "ENV:cam:", "LOWDOSE_CAMERA_WRITE_PATH": "/data/",
                       "LOWDOSE_PV_ROTATION": "ENV:m1", "LOWDOSE_PV_SHUTTER": "ENV:shtr:",
                       "LOWDOSE_PV_SHUTTER_STATUS": "ENV:shtr:sts"}.items():
        monkeypatch.setenv(var, value)
    monkeypatch.delenv("LOWDOSE_EPICS_CONFIG", raising=False)
    monkeypatch.delenv("LOWDOSE_PV_SAMPLE_X", raising=False)
    txm = make_epics_txm_async(mock=True, path_provider=tmp_path)
    assert _pv(txm.detector.driver.acquire) == "ENV:cam:cam1:Acquire_RBV"
    assert _pv(txm.detector.hdf.capture) == "ENV:cam:HDF1:Capture_RBV"
    assert _pv(txm.rotation.user_setpoint) == "ENV:m1.VAL"
    assert txm.sample_x is None and txm.devices["sample_x"] is None
    assert txm.shutter is not None and _pv(txm.shutter.open_command) == "ENV:shtr:Open"
    assert _pv(txm.shutter.status) == "ENV:shtr:sts"


@pytest.mark.skipif(importlib.util.find_spec("aioca") is not None,
                    reason="aioca (Channel Access for ophyd-async) is installed")
def test_real_devices_need_channel_access(RE: RunEngine):
    with pytest.raises(RuntimeError, match=r"install aioca .* or pass mock=True"):
        make_epics_txm_async(CONFIG)


# ------------------------------------------------------------------- detector
def test_step_acquisition_emits_stream_documents(RE: RunEngine, collector, emulated):
    txm, ioc = emulated
    det, rot = txm.detector, txm.rotation

    def plan():
        yield from bps.open_run()
        yield from bps.stage(det)
        yield from bps.prepare(det, TriggerInfo(livetime=0.5), wait=True)
        yield from bps.mv(rot, 30)
        yield from bps.trigger_and_read([det, rot])
        yield from bps.mv(rot, 60)
        yield from bps.trigger_and_read([det, rot])
        yield from bps.unstage(det)
        yield from bps.close_run()

    RE(plan())
    get_mock_put(det.driver.acquire_time).assert_called_once_with(0.5)
    get_mock_put(det.driver.acquire_period).assert_called_once_with(0.51)  # + readout_time
    (resource,) = collector.of("stream_resource")
    assert resource["data_key"] == "det_image"
    assert resource["parameters"]["dataset"] == "/entry/data/data"
    datums = collector.of("stream_datum")
    assert [(d["indices"]["start"], d["indices"]["stop"]) for d in datums] == [(0, 1), (1, 2)]
    (descriptor,) = collector.of("descriptor")
    assert descriptor["data_keys"]["det_image"]["shape"] == [1, 6, 8]
    assert [e["data"]["rot"] for e in collector.events("primary")] == [30.0, 60.0]
    # the emulated IOC wrote the file the resource points to
    (path,) = ioc.files
    assert resource["uri"] == f"file://localhost{path}"
    with h5py.File(path, "r") as f:
        frames = f["/entry/data/data"][()]
    assert frames.shape == (2, 6, 8) and frames.dtype == np.uint16
    assert np.all(frames == 0)  # the shutter is closed


def test_fly_acquisition_covers_every_frame(RE: RunEngine, collector, emulated):
    txm, ioc = emulated
    det, rot = txm.detector, txm.rotation
    n = 7
    supported, deadtime = call_in_bluesky_event_loop(det.get_trigger_deadtime())
    assert supported == {DetectorTrigger.INTERNAL} and deadtime == pytest.approx(0.01)

    def plan():
        yield from bps.open_run()
        yield from bps.stage_all(det, rot)
        yield from bps.mv(txm.shutter, "open")
        yield from bps.prepare(rot, FlyMotorInfo(start_position=0.0, end_position=180.0,
                                                 time_for_move=2.5), wait=True)
        yield from bps.prepare(det, TriggerInfo(number_of_events=n, livetime=0.02,
                                                deadtime=deadtime), wait=True)
        yield from bps.declare_stream(det, name="primary", collect=True)
        yield from bps.kickoff(rot, wait=True)
        yield from bps.kickoff(det, wait=True)
        yield from bps.collect_while_completing([rot, det], [det], flush_period=0.05,
                                                stream_name="primary")
        yield from bps.unstage_all(det, rot)
        yield from bps.close_run()

    RE(plan())
    assert call_in_bluesky_event_loop(rot.max_velocity.get_value()) == 90.0
    assert call_in_bluesky_event_loop(rot.velocity.get_value()) == pytest.approx(72.0)
    assert call_in_bluesky_event_loop(rot.user_readback.get_value()) > 180.0  # run-down
    assert call_in_bluesky_event_loop(det.driver.num_images.get_value()) == n
    datums = collector.of("stream_datum")
    assert datums and datums[0]["indices"]["start"] == 0
    assert datums[-1]["indices"]["stop"] == n
    assert sum(d["indices"]["stop"] - d["indices"]["start"] for d in datums) == n
    with h5py.File(ioc.files[-1], "r") as f:
        frames = f["/entry/data/data"][()]
    assert frames.shape == (n, 6, 8)
    assert np.all(frames == 20)  # 1000 counts/s for 0.02 s, shutter open


def test_configured_paths_are_dated_and_created(RE: RunEngine, collector, tmp_path: Path):
    config = {**CONFIG, "camera": {"prefix": "TST:SP1:", "root": str(tmp_path),
                                   "write_path_template": str(tmp_path / "%Y" / "%m")}}
    txm = make_epics_txm_async(config, mock=True)
    ioc = emulate_ioc_async(txm, tmp_path)
    det = txm.detector

    def plan():
        yield from bps.open_run()
        yield from bps.stage(det)
        yield from bps.prepare(det, TriggerInfo(livetime=0.1), wait=True)
        yield from bps.trigger_and_read([det])
        yield from bps.unstage(det)
        yield from bps.close_run()

    RE(plan())
    (path,) = ioc.files
    assert path.parent.parent.parent == tmp_path  # <tmp>/<year>/<month>/<file>.h5
    assert path.parent.name.isdigit() and len(path.parent.parent.name) == 4
    assert collector.of("stream_resource")[0]["uri"] == f"file://localhost{path}"
    assert det.frame_shape == (64, 64)
    assert det.start_metadata()["epics"]["write_path_template"].endswith("/%Y/%m")


def test_directory_outside_the_data_dir_fails_prepare(RE: RunEngine, tmp_path: Path):
    txm = make_epics_txm_async(CONFIG, mock=True)  # writes to /data/, not under tmp_path
    ioc = emulate_ioc_async(txm, tmp_path)
    det = txm.detector
    with pytest.raises(FailedStatus) as info:
        RE(bps.prepare(det, TriggerInfo(livetime=0.1), wait=True))
    assert isinstance(info.value.__cause__, FileNotFoundError)
    assert "/data/ doesn't exist" in str(info.value.__cause__)
    assert ioc.files == []


# -------------------------------------------------------------------- shutter
def test_shutter_rejects_a_bad_value_before_any_put(RE: RunEngine, emulated):
    txm, _ = emulated
    shutter = txm.shutter
    with pytest.raises(ValueError, match=r"shutter 'shutter' accepts 'open'.*got 'half'"):
        shutter.set("half")
    with pytest.raises(ValueError, match="got 1"):
        RE(bps.mv(shutter, 1))
    get_mock_put(shutter.open_command).assert_not_called()
    get_mock_put(shutter.close_command).assert_not_called()


def test_shutter_follows_its_commands(RE: RunEngine, emulated):
    txm, _ = emulated
    shutter = txm.shutter
    RE(bps.mv(shutter, "open"))
    get_mock_put(shutter.open_command).assert_called_once_with(1)
    assert call_in_bluesky_event_loop(shutter.state.get_value()) == "open"
    RE(bps.mv(shutter, "OPEN"))  # already open: nothing written
    get_mock_put(shutter.open_command).assert_called_once_with(1)
    RE(bps.mv(shutter, "close"))
    get_mock_put(shutter.close_command).assert_called_once_with(1)
    reading = call_in_bluesky_event_loop(shutter.read())
    assert reading["shutter-status"]["value"] == 0
    assert reading["shutter-state"]["value"] == "closed"


def test_shutter_times_out_without_status(RE: RunEngine, tmp_path: Path):
    txm = make_epics_txm_async(CONFIG, mock=True, path_provider=tmp_path)  # no emulation
    with pytest.raises(FailedStatus) as info:
        RE(bps.mv(txm.shutter, "open"))
    assert isinstance(info.value.__cause__, TimeoutError)
    assert "shutter 'shutter' did not report open" in str(info.value.__cause__)
    get_mock_put(txm.shutter.open_command).assert_called_once_with(1)


# ------------------------------------------------------------ both plans, mock IOC
@pytest.mark.parametrize("plan_name", ["lowdose_tomo_plan", "lowdose_tomo_flyscan"])
def test_both_plans_run_on_the_mock_epics_devices(RE: RunEngine, emulated, plan_name):
    import warnings

    from lowdose_bluesky import plans

    txm, ioc = emulated
    docs: list[tuple[str, dict]] = []
    RE.subscribe(lambda name, doc: docs.append((name, doc)))
    plan = getattr(plans, plan_name)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", plans.TomoScanWarning)  # width 8: smear below a pixel
        RE(plan(txm.detector, txm.rotation, sample_x=txm.sample_x, shutter=txm.shutter,
                num_projections=7, num_darks=2, num_flats=2, long_exposure=2.0,
                short_exposure=0.5))
    names = [n for n, _ in docs]
    stop = docs[-1][1]
    assert stop["exit_status"] == "success", stop.get("reason")
    assert stop["num_events"]["primary"] == 7
    start = docs[0][1]
    assert start["plan_name"] == plan_name and start["lowdose"]["image_key"] == "det_image"
    assert "resource" not in names and names.count("stream_resource") >= 4
    # one file per stream, each holding that stream's frames, at the prepared exposures
    sizes = sorted(h5py.File(f, "r")["/entry/data/data"].shape[0] for f in ioc.files)
    assert sizes == sorted([4, 4, 4, 7]), sizes
    acquire_times = [c.args[0] for c in get_mock_put(txm.detector.driver.acquire_time).mock_calls]
    assert 0.5 in acquire_times and 2.0 in acquire_times
    if plan_name == "lowdose_tomo_flyscan":
        fly = start["lowdose"]["fly"]
        assert fly["angle_source"] == "schedule"  # the emulated camera records no angle
        assert np.allclose(fly["angles"], np.linspace(0, 180, 7))
        assert fly["speed"] == pytest.approx(30 / (0.5 + 0.01))  # readout_time 0.01 s
