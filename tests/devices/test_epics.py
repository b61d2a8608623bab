"""EPICS TXM devices on ophyd's fake signals: configuration, PVs, shutter, camera, the plan."""

from __future__ import annotations

import dataclasses
import math
from collections import Counter
from pathlib import Path
from typing import Any

import h5py
import numpy as np
import ophyd
import pytest
import yaml
from ophyd.utils import StatusTimeoutError

from lowdose_bluesky.devices.epics import (
    EXAMPLE_CONFIG,
    EpicsConfigError,
    EpicsTXMConfig,
    emulate_ioc,
    load_epics_config,
    make_epics_txm,
)
from lowdose_bluesky.devices.sim import SimShutter
from lowdose_bluesky.plans import TomoScanWarning, lowdose_tomo_plan

CONFIG: dict[str, Any] = {
    "camera": {"prefix": "TST:SP1:", "write_path_template": "/data/%Y/%m/", "readout_time": 0.01},
    "rotation": {"prefix": "TST:rot:m1"},
    "sample_x": {"prefix": "TST:sx:m2"},
    "shutter": {"prefix": "TST:shtr:", "status_pv": "TST:shtr:status", "timeout": 0.5},
}

PLAN_ARGS = {"num_projections": 5, "num_darks": 2, "num_flats": 3, "long_exposure": 3.0,
             "short_exposure": 1.0, "reference_angles": (30.0, 120.0)}


def _config(**changes: Any) -> dict[str, Any]:
    """A deep copy of CONFIG with ``section.key`` entries replaced (``None`` deletes)."""
    cfg = {k: dict(v) for k, v in CONFIG.items()}
    for dotted, value in changes.items():
        section, _, key = dotted.partition("__")
        if not key:
            if value is None:
                cfg.pop(section, None)
            else:
                cfg[section] = value
        elif value is None:
            cfg[section].pop(key, None)
        else:
            cfg[section][key] = value
    return cfg


def _pv(device: Any, attr: str) -> str:
    """The PV a component of ``device`` connects to (fake signals do not keep it)."""
    cpt = getattr(type(device), attr)
    return cpt.maybe_add_prefix(device, "suffix", cpt.suffix)


@pytest.fixture
def fake_txm():
    return make_epics_txm(CONFIG, fake=True)


@pytest.fixture
def emulated(tmp_path: Path):
    cfg = _config(camera__write_path_template=str(tmp_path / "%Y" / "%m"),
                  camera__root=str(tmp_path))
    txm = make_epics_txm(cfg, fake=True)
    ioc = emulate_ioc(txm, frame_shape=(12, 16), counts_per_second=1000.0)
    yield txm, ioc
    ioc.close()


# ----------------------------------------------------------------- configuration
def test_example_config_loads():
    cfg = load_epics_config(EXAMPLE_CONFIG)
    assert cfg.camera.prefix == "32idcSP1:" and cfg.camera.name == "det"
    assert cfg.rotation.prefix == "32idcTXM:ens:c1:m1" and cfg.rotation.name == "rot"
    assert cfg.sample_x is not None and cfg.sample_x.name == "sample_x"
    assert cfg.shutter is not None
    assert cfg.shutter.open_command_pv == "32idb:rshtrB:Open"
    assert cfg.shutter.close_command_pv == "32idb:rshtrB:Close"


def test_example_config_is_package_data():
    assert EXAMPLE_CONFIG.is_file()
    assert EXAMPLE_CONFIG.parent.name == "epics"


def test_yaml_file_and_mapping_agree(tmp_path: Path):
    path = tmp_path / "pvs.yaml"
    path.write_text(yaml.safe_dump(CONFIG))
    assert load_epics_config(path) == load_epics_config(CONFIG)
    assert load_epics_config(str(path)).camera.readout_time == 0.01


def test_config_from_environment_variables():
    env = {"LOWDOSE_PV_CAMERA": "ENV:cam:", "LOWDOSE_CAMERA_WRITE_PATH": "/data/",
           "LOWDOSE_PV_ROTATION": "ENV:m1", "LOWDOSE_PV_SHUTTER": "ENV:shtr:",
           "LOWDOSE_PV_SHUTTER_STATUS": "ENV:shtr:sts", "UNRELATED": "x"}
    cfg = load_epics_config(env=env)
    assert cfg.camera.prefix == "ENV:cam:" and cfg.camera.write_path_template == "/data/"
    assert cfg.rotation.prefix == "ENV:m1" and cfg.rotation.name == "rot"
    assert cfg.sample_x is None
    assert cfg.shutter is not None and cfg.shutter.open_command_pv == "ENV:shtr:Open"
    assert cfg.shutter.status_pv == "ENV:shtr:sts"


def test_config_file_named_by_environment(tmp_path: Path):
    path = tmp_path / "pvs.yaml"
    path.write_text(yaml.safe_dump(CONFIG))
    cfg = load_epics_config(env={"LOWDOSE_EPICS_CONFIG": str(path)})
    assert cfg == load_epics_config(CONFIG)
    with pytest.raises(EpicsConfigError, match="either LOWDOSE_EPICS_CONFIG or the variables "
                                                "LOWDOSE_PV_ROTATION, not both"):
        load_epics_config(env={"LOWDOSE_EPICS_CONFIG": str(path), "LOWDOSE_PV_ROTATION": "X:m"})


def test_empty_environment_says_what_to_set():
    with pytest.raises(EpicsConfigError) as info:
        load_epics_config(env={})
    message = str(info.value)
    assert "LOWDOSE_EPICS_CONFIG" in message
    assert "LOWDOSE_PV_CAMERA" in message and "LOWDOSE_PV_ROTATION" in message


def test_environment_missing_a_required_variable_is_named():
    with pytest.raises(EpicsConfigError,
                       match=r"missing required key 'camera\.write_path_template'"):
        load_epics_config(env={"LOWDOSE_PV_CAMERA": "A:", "LOWDOSE_PV_ROTATION": "A:m1"})


@pytest.mark.parametrize(("changes", "expected"), [
    ({"camera__prefix": None}, "missing required key 'camera.prefix'"),
    ({"rotation": None}, "missing required key 'rotation'"),
    ({"shutter__status_pv": None}, "missing required key 'shutter.status_pv'"),
    ({"camera__prefx": "A:"}, "unknown key 'camera.prefx' (allowed: prefix, name, "
                              "write_path_template"),
    ({"detector": {"prefix": "A:"}}, "unknown key 'detector' (allowed: camera, rotation, "
                                     "sample_x, shutter)"),
    ({"rotation__prefix": "TST:rot:m1.VAL"},
     "rotation.prefix: must be the motor record name without a field, e.g. 'TST:rot:m1' "
     "rather than 'TST:rot:m1.VAL'"),
    ({"camera__prefix": "TST SP1:"}, "camera.prefix: must be an EPICS PV name"),
    ({"camera__name": "my det"}, "camera.name: must be a Python identifier"),
    ({"camera__write_path_template": "data/"},
     "camera: write_path_template must be an absolute posix path, got 'data/'"),
    ({"camera__root": "/gpfs", "camera__write_path_template": "/local/data/"},
     "write_path_template '/local/data' must lie under root '/gpfs'"),
    ({"camera__readout_time": -1}, "camera.readout_time: Input should be greater than or "
                                   "equal to 0, got -1"),
    ({"camera__path_semantics": "dos"}, "camera.path_semantics: Input should be 'posix' or "
                                        "'windows', got 'dos'"),
    ({"shutter__prefix": None}, "shutter: give either prefix (for <prefix>Open and "
                                "<prefix>Close) or open_pv and close_pv"),
    ({"shutter__closed_value": 1}, "shutter: open_value and closed_value must differ"),
    ({"sample_x__name": "rot"}, "device names must be distinct, ['rot'] used more than once"),
])
def test_bad_config_names_key_and_allowed(changes, expected):
    with pytest.raises(EpicsConfigError) as info:
        load_epics_config(_config(**changes))
    assert expected in str(info.value)
    assert str(info.value).startswith("invalid EPICS configuration (mapping):")


def test_every_error_is_reported_at_once():
    with pytest.raises(EpicsConfigError) as info:
        load_epics_config(_config(camera__prefix=None, rotation__prefix="A:m1.RBV"))
    message = str(info.value)
    assert "missing required key 'camera.prefix'" in message
    assert "rotation.prefix: must be the motor record name" in message


@pytest.mark.parametrize(("text", "expected"), [
    ("camera: [unclosed", "is not valid YAML"),
    ("- camera\n- rotation\n", "must be a mapping with the keys camera, rotation, sample_x, "
                               "shutter, got list"),
])
def test_bad_yaml_files(tmp_path: Path, text: str, expected: str):
    path = tmp_path / "pvs.yaml"
    path.write_text(text)
    with pytest.raises(EpicsConfigError) as info:
        load_epics_config(path)
    assert expected in str(info.value)


def test_missing_file_is_named(tmp_path: Path):
    with pytest.raises(EpicsConfigError,
                       match=r"cannot read EPICS configuration file .*nope\.yaml"):
        load_epics_config(tmp_path / "nope.yaml")


@pytest.mark.skipif(ophyd.get_cl().name != "dummy", reason="an EPICS control layer is installed")
def test_real_devices_need_a_control_layer():
    with pytest.raises(RuntimeError, match=r"no EPICS control layer: install pyepics .* or "
                                           r"pass fake=True"):
        make_epics_txm(CONFIG)


def test_config_errors_are_value_errors():
    with pytest.raises(ValueError, match="missing required key 'rotation'"):
        make_epics_txm(_config(rotation=None), fake=True)


# ------------------------------------------------------------------------ devices
def test_pv_names_come_from_config(fake_txm):
    det, rot, sx, shutter = (fake_txm.detector, fake_txm.rotation, fake_txm.sample_x,
                             fake_txm.shutter)
    assert (det.name, rot.name, sx.name, shutter.name) == ("det", "rot", "sample_x", "shutter")
    assert det.cam.prefix == "TST:SP1:cam1:" and det.hdf1.prefix == "TST:SP1:HDF1:"
    assert _pv(det.cam, "acquire_time") == "TST:SP1:cam1:AcquireTime"
    assert _pv(det.hdf1, "file_path") == "TST:SP1:HDF1:FilePath"
    assert _pv(rot, "user_setpoint") == "TST:rot:m1.VAL"
    assert _pv(rot, "user_readback") == "TST:rot:m1.RBV"
    assert _pv(sx, "motor_done_move") == "TST:sx:m2.DMOV"
    assert _pv(shutter, "open_signal") == "TST:shtr:Open"
    assert _pv(shutter, "close_signal") == "TST:shtr:Close"
    assert _pv(shutter, "status") == "TST:shtr:status"
    assert det.hdf1.write_path_template == "/data/%Y/%m"
    assert det.readout_time == 0.01


def test_explicit_shutter_pvs_and_optional_devices():
    cfg = _config(sample_x=None, shutter={"open_pv": "A:open", "close_pv": "A:close",
                                          "status_pv": "A:state", "name": "fe_shutter"})
    txm = make_epics_txm(cfg, fake=True)
    assert txm.sample_x is None
    assert txm.shutter.name == "fe_shutter"
    assert _pv(txm.shutter, "open_signal") == "A:open"
    assert _pv(txm.shutter, "close_signal") == "A:close"
    txm = make_epics_txm(_config(shutter=None, sample_x=None), fake=True)
    assert txm.shutter is None and set(txm.devices) == {"detector", "rotation", "sample_x",
                                                        "shutter"}


def test_exposure_time_maps_to_acquire_time_and_period(fake_txm):
    det = fake_txm.detector
    det.exposure_time.set(2.5).wait(timeout=5)
    assert det.cam.acquire_time.get() == 2.5
    assert det.cam.acquire_period.get() == pytest.approx(2.51)  # plus readout_time
    det.cam.acquire_time.sim_put(0.25)  # what the camera reports back
    assert det.exposure_time.get() == 0.25
    assert det.read()["det_exposure_time"]["value"] == 0.25
    assert det.exposure_time.name == "det_exposure_time"
    det.exposure_time.set(np.int64(4)).wait(timeout=5)  # numpy numbers are numbers
    assert det.cam.acquire_time.get() == 4.0


@pytest.mark.parametrize("bad", [0, -1.0, math.nan, math.inf, "2", None, True, np.bool_(True)])
def test_bad_exposure_time_is_rejected_before_writing(fake_txm, bad):
    det = fake_txm.detector
    det.cam.acquire_time.sim_put(1.0)
    det.cam.acquire_period.sim_put(1.0)
    with pytest.raises(ValueError, match=r"det_exposure_time: exposure time must be a .*got"):
        det.exposure_time.set(bad)
    assert det.cam.acquire_time.get() == 1.0 and det.cam.acquire_period.get() == 1.0


def test_image_key_is_one_external_2d_key(fake_txm):
    det = fake_txm.detector
    det.cam.array_size.array_size_y.sim_put(480)
    det.cam.array_size.array_size_x.sim_put(640)
    description = det.describe()
    external_2d = [k for k, v in description.items()
                   if v.get("external") and len(v.get("shape", ())) == 2]
    assert external_2d == ["det_image"]
    assert description["det_image"]["shape"] == [480, 640]
    assert description["det_image"]["external"] == "FILESTORE:"
    assert "det_exposure_time" in description


def test_trigger_needs_staging(fake_txm):
    with pytest.raises(RuntimeError, match="det is not staged"):
        fake_txm.detector.trigger()


# ------------------------------------------------------------------------ shutter
def test_shutter_set_completes_when_status_reports(fake_txm):
    shutter = fake_txm.shutter
    shutter.status.sim_put(0)
    status = shutter.set("open")
    assert shutter.open_signal.get() == 1 and shutter.close_signal.get() == 0
    assert not status.done
    shutter.status.sim_put(0)  # an update that is not the requested state
    assert not status.done
    shutter.status.sim_put(1)
    status.wait(timeout=2)
    assert status.success and shutter.state == "open"


def test_shutter_close_and_case_insensitive(fake_txm):
    shutter = fake_txm.shutter
    shutter.status.sim_put(1)
    status = shutter.set("CLOSED")
    assert shutter.close_signal.get() == 1 and not status.done
    shutter.status.sim_put(0)
    status.wait(timeout=2)
    assert shutter.state == "closed"


def test_shutter_already_in_state_writes_nothing(fake_txm):
    shutter = fake_txm.shutter
    shutter.status.sim_put(0)
    status = shutter.set("close")
    assert status.done and status.success
    assert shutter.close_signal.get() == 0


def test_shutter_times_out_if_status_never_follows(fake_txm):
    shutter = fake_txm.shutter  # timeout 0.5 s in CONFIG
    shutter.status.sim_put(0)
    status = shutter.set("open")
    with pytest.raises(StatusTimeoutError):
        status.wait(timeout=5)
    assert not status.success


@pytest.mark.parametrize("bad", ["half", "", 1, None, ["open"]])
def test_shutter_rejects_other_values(fake_txm, bad):
    shutter = fake_txm.shutter
    shutter.status.sim_put(0)
    with pytest.raises(ValueError) as info:
        shutter.set(bad)
    assert str(info.value) == (f"shutter 'shutter' accepts 'open', 'opened', 'close', 'closed', "
                               f"got {bad!r}")
    assert shutter.open_signal.get() == 0 and shutter.close_signal.get() == 0


def test_shutter_state_with_custom_values():
    txm = make_epics_txm(_config(shutter__open_value=3, shutter__closed_value=4), fake=True)
    shutter = txm.shutter
    for value, state in ((3, "open"), (4, "closed"), (0, "unknown")):
        shutter.status.sim_put(value)
        assert shutter.state == state


# ------------------------------------------------------------ the plan, unchanged
def _messages(txm, **kwargs) -> list:
    """Run the plan generator by hand, answering reads like a RunEngine would."""
    plan = lowdose_tomo_plan(txm.detector, txm.rotation, sample_x=txm.sample_x,
                             shutter=txm.shutter, **kwargs)
    msgs, reply = [], None
    while True:
        try:
            msg = plan.send(reply)
        except StopIteration:
            return msgs
        msgs.append(msg)
        reply = msg.obj.read() if msg.command == "read" else None


def test_plan_messages_on_fake_devices(fake_txm):
    txm = fake_txm
    txm.sample_x.user_readback.sim_put(2.0)
    msgs = _messages(txm, **PLAN_ARGS)
    sets = [(m.obj.name, m.args[0]) for m in msgs if m.command == "set"]
    assert sets[0] == ("shutter", "close") and ("shutter", "open") in sets
    assert sets[-2:] == [("shutter", "close"), ("sample_x", 2.0)]  # the cleanup
    exposures = [v for n, v in sets if n == "det_exposure_time"]
    assert exposures == [1.0, 3.0, 1.0, 3.0, 3.0, 1.0, 3.0, 1.0, 1.0]
    assert ("sample_x", 7.0) in sets  # flats: 5 mm out of the beam from 2 mm
    rotations = [v for n, v in sets if n == "rot"]
    assert rotations == [30.0, 120.0, *np.linspace(0, 180, 5)]
    counts = Counter(m.command for m in msgs)
    assert counts["stage"] == counts["unstage"] == 4
    n_frames = 2 * 2 + 2 * 3 + 2 * 2 + 5
    assert sum(1 for m in msgs if m.command == "trigger" and m.obj is txm.detector) == n_frames
    start = next(m for m in msgs if m.command == "open_run")
    assert start.kwargs["lowdose"]["image_key"] == "det_image"
    assert start.kwargs["lowdose"]["exposure_key"] == "det_exposure_time"
    assert start.kwargs["lowdose"]["rotation_key"] == "rot"
    assert start.kwargs["epics"]["detector_prefix"] == "TST:SP1:"


def test_plan_runs_in_run_engine_on_emulated_iocs(emulated, collector, RE):
    txm, ioc = emulated
    RE(lowdose_tomo_plan(txm.detector, txm.rotation, sample_x=txm.sample_x,
                         shutter=txm.shutter, **PLAN_ARGS))
    assert collector.of("stop")[0]["exit_status"] == "success"
    counts = {s: len(collector.events(s)) for s in ("dark", "flat", "reference", "primary")}
    assert counts == {"dark": 4, "flat": 6, "reference": 4, "primary": 5}
    resources = collector.of("resource")
    assert len(resources) == 4 and {r["spec"] for r in resources} == {"AD_HDF5"}
    assert all(r["resource_kwargs"] == {} for r in resources)
    assert [Path(r["root"], r["resource_path"]) for r in resources] == ioc.files
    descriptor = collector.of("descriptor")[0]
    assert descriptor["data_keys"]["det_image"]["shape"] == [12, 16]
    assert descriptor["data_keys"]["det_image"]["dtype_numpy"] == "<u2"

    datums = {d["datum_id"]: d for d in collector.of("datum")}
    by_uid = {r["uid"]: Path(r["root"], r["resource_path"]) for r in resources}
    for stream, n in counts.items():
        events = collector.events(stream)
        refs = [datums[e["data"]["det_image"]] for e in events]
        assert [d["datum_kwargs"]["point_number"] for d in refs] == list(range(n))
        (path,) = {by_uid[d["resource"]] for d in refs}
        with h5py.File(path, "r") as f:
            frames = f["entry/data/data"][()]
        assert frames.shape == (n, 12, 16)
        exposures = [e["data"]["det_exposure_time"] for e in events]
        expected = [0.0 if stream == "dark" else 1000.0 * t for t in exposures]
        assert frames[:, 0, 0].tolist() == expected  # counts follow exposure and shutter
    assert [e["data"]["rot"] for e in collector.events("primary")] == list(np.linspace(0, 180, 5))
    assert txm.shutter.state == "closed" and txm.sample_x.position == 0.0


def test_plan_without_shutter_or_sample_stage(tmp_path: Path, collector, RE):
    cfg = _config(camera__write_path_template=str(tmp_path), camera__root=str(tmp_path),
                  shutter=None, sample_x=None)
    txm = make_epics_txm(cfg, fake=True)
    ioc = emulate_ioc(txm, frame_shape=(8, 8))
    try:
        with pytest.warns(TomoScanWarning, match="single reference angle"):
            RE(lowdose_tomo_plan(txm.detector, txm.rotation, num_darks=0, num_flats=0,
                                 num_projections=3, long_exposure=2.0, short_exposure=1.0,
                                 reference_angles=(90.0,)))
    finally:
        ioc.close()
    assert [len(collector.events(s)) for s in ("reference", "primary")] == [2, 3]
    assert len(ioc.files) == 2


def test_frames_per_point_kept_when_more_than_one(emulated):
    txm, _ = emulated
    det = txm.detector
    det.stage_sigs["cam.num_images"] = 3
    det.stage()
    try:
        (resource,) = [doc for name, doc in det.collect_asset_docs() if name == "resource"]
    finally:
        det.unstage()
    assert resource["resource_kwargs"] == {"frame_per_point": 3}


def test_emulation_refuses_real_devices(fake_txm):
    txm = dataclasses.replace(fake_txm, shutter=SimShutter(name="shutter"))
    with pytest.raises(ValueError, match=r"\['shutter'\] have no fake signals"):
        emulate_ioc(txm)


def test_run_reads_back_through_tiled(tiled_client, frames_root: Path, collector, RE):
    from lowdose_bluesky.storage import RAW, subscribe_writer

    root = frames_root / "epics_emulated"
    txm = make_epics_txm(_config(camera__write_path_template=str(root / "%Y"),
                                 camera__root=str(frames_root)), fake=True)
    ioc = emulate_ioc(txm, frame_shape=(12, 16))
    subscribe_writer(RE, tiled_client, batch_size=3)
    try:
        (uid,) = RE(lowdose_tomo_plan(txm.detector, txm.rotation, sample_x=txm.sample_x,
                                      shutter=txm.shutter, **PLAN_ARGS))
    finally:
        ioc.close()
    run = tiled_client[RAW][uid]
    files = {r["uid"]: Path(r["root"], r["resource_path"]) for r in collector.of("resource")}
    datums = {d["datum_id"]: d["resource"] for d in collector.of("datum")}
    for stream in ("dark", "flat", "reference", "primary"):
        first = collector.events(stream)[0]["data"]["det_image"]
        with h5py.File(files[datums[first]], "r") as f:
            written = f["entry/data/data"][()]
        back = run[stream]["det_image"].read()
        assert back.shape == written.shape and np.array_equal(back, written), stream


def test_config_model_is_frozen():
    cfg = load_epics_config(CONFIG)
    assert isinstance(cfg, EpicsTXMConfig)
    with pytest.raises(ValueError, match="frozen"):
        cfg.camera.prefix = "OTHER:"
