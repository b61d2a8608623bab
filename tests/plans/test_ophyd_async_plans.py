"""Both plans on ophyd-async's own simulated devices, stored and read back through Tiled."""

from __future__ import annotations

import warnings
from pathlib import Path
from urllib.parse import urlsplit

import databroker
import h5py
import numpy as np
import pytest
from bluesky import RunEngine
from bluesky.run_engine import call_in_bluesky_event_loop
from ophyd import Signal
from ophyd_async import sim
from ophyd_async.core import StaticPathProvider, UUIDFilenameProvider, init_devices

from lowdose_bluesky.devices.sim import make_sim_txm
from lowdose_bluesky.plans import TomoScanWarning, lowdose_tomo_flyscan, lowdose_tomo_plan
from lowdose_bluesky.storage import RAW, connect, subscribe_writer

SMALL = {"num_projections": 9, "num_darks": 0, "num_flats": 2, "long_exposure": 0.02,
         "short_exposure": 0.01, "reference_angles": (30.0, 120.0)}


class _Blobs:
    def __init__(self, directory: Path) -> None:
        with init_devices():  # names the devices after these variables
            det = sim.SimBlobDetector(StaticPathProvider(UUIDFilenameProvider(), directory),
                                      sim.PatternGenerator())
            rot = sim.SimMotor(units="deg")
            sx = sim.SimMotor()
        self.det, self.rot, self.sx = det, rot, sx


def _track_files(RE: RunEngine) -> dict[str, dict[str, str]]:
    """Stream name -> {data key: file} from the StreamResource documents."""
    files: dict[str, dict[str, str]] = {}
    resources: dict[str, tuple[str, str]] = {}
    streams: dict[str, str] = {}

    def track(name, doc):
        if name == "stream_resource":
            resources[doc["uid"]] = (doc["data_key"], unquote_path(doc["uri"]))
        elif name == "descriptor":
            streams[doc["uid"]] = doc["name"]
        elif name == "stream_datum":
            key, path = resources[doc["stream_resource"]]
            files.setdefault(streams[doc["descriptor"]], {})[key] = path

    RE.subscribe(track)
    return files


def unquote_path(uri: str) -> str:
    return urlsplit(uri).path


@pytest.fixture
def blobs(RE, frames_root, request) -> _Blobs:
    directory = frames_root / request.node.name
    directory.mkdir()
    return _Blobs(directory)


@pytest.mark.parametrize("plan", [lowdose_tomo_plan, lowdose_tomo_flyscan])
def test_ophyd_async_sim_devices_run_store_and_read_back(RE, collector, tiled_client, blobs,
                                                         plan):
    subscribe_writer(RE, tiled_client, batch_size=5)
    files = _track_files(RE)
    with warnings.catch_warnings():  # no frame width known: the smear warning may fire
        warnings.simplefilter("ignore", TomoScanWarning)
        RE(plan(blobs.det, blobs.rot, sample_x=blobs.sx, md={"operator": "async"}, **SMALL))
    uid = collector.of("start")[0]["uid"]
    assert collector.of("stop")[0]["exit_status"] == "success"
    assert collector.of("resource") == [] and collector.of("stream_resource")
    run = tiled_client[RAW][uid]
    start = run.metadata["start"]
    assert start["plan_name"] == plan.__name__
    assert start["lowdose"]["device_flavour"] == "ophyd-async"
    assert start["lowdose"]["image_key"] == "det"
    for stream, keys in files.items():
        with h5py.File(keys["det"], "r") as f:
            written = f["/entry/data/data"][()]
        back = np.asarray(run[stream]["det"].read())
        assert back.reshape(written.shape).dtype == written.dtype
        assert np.array_equal(back.reshape(written.shape), written), stream
    assert set(files) == {"flat", "reference", "primary"}
    assert np.asarray(run["primary"]["det"].read()).shape[0] == 9
    # exposures as prepared, recorded with every stepped event
    flat = np.asarray(run["flat"]["det_exposure_time"].read())
    assert list(flat) == [0.01, 0.01, 0.02, 0.02]
    # databroker on a connection of its own (it reshapes the runs of the one it wraps)
    db = databroker.Broker(connect(tiled_client.embedded_server.uri)[RAW])
    assert db[uid].start["plan_name"] == plan.__name__
    assert len(db[uid].table("reference")) == 4


def test_flyscan_records_the_schedule_and_announces_frames_in_batches(RE, collector, blobs):
    with pytest.warns(TomoScanWarning, match="sweeps"):
        RE(lowdose_tomo_flyscan(blobs.det, blobs.rot, sample_x=blobs.sx, **SMALL))
    start = collector.of("start")[0]
    fly = start["lowdose"]["fly"]
    assert fly["angle_source"] == "schedule" and start["lowdose"]["angle_key"] is None
    assert np.allclose(fly["angles"], np.linspace(0, 180, 9))
    assert fly["speed"] == pytest.approx(22.5 / 0.01)
    primary = [d["uid"] for d in collector.of("descriptor") if d["name"] == "primary"]
    assert collector.events("primary") == []  # flown: no events, only StreamDatum
    datums = [d for d in collector.of("stream_datum") if d["descriptor"] in primary]
    covered = sorted({(d["seq_nums"]["start"], d["seq_nums"]["stop"]) for d in datums})
    assert covered[0][0] == 1 and covered[-1][1] == 10
    # the stage flew through the whole range and ramped down beyond it
    position = call_in_bluesky_event_loop(blobs.rot.user_readback.get_value())
    assert position > fly["end_position"] > 180


def test_a_detector_with_no_way_to_set_an_exposure_names_both(RE, blobs):
    with pytest.raises(ValueError, match=r"exposure_time.*prepare\(TriggerInfo\)"):
        RE(lowdose_tomo_plan(Signal(name="meter"), blobs.rot, sample_x=blobs.sx, **SMALL))


def test_an_ophyd_detector_cannot_fly(RE, txm):
    with pytest.raises(ValueError, match="needs a detector that flies"):
        RE(lowdose_tomo_flyscan(txm.detector, txm.rotation, sample_x=txm.sample_x,
                                shutter=txm.shutter, **SMALL))


def test_fly_speeds_and_smear_beyond_the_limits_fail_before_anything_moves(RE, collector,
                                                                           blobs, tmp_path):
    rot = make_sim_txm(detector_shape=(16, 16), flavour="ophyd-async",
                       data_dir=tmp_path).rotation  # max_velocity 90 deg/s
    with pytest.raises(ValueError, match=r"2250 deg/s.*max_velocity is 90 deg/s"):
        RE(lowdose_tomo_flyscan(blobs.det, rot, sample_x=blobs.sx, **SMALL))
    with pytest.raises(ValueError, match=r"exceeds frame_period 0.005 s.*at most 0.005 s"):
        RE(lowdose_tomo_flyscan(blobs.det, blobs.rot, sample_x=blobs.sx, frame_period=0.005,
                                **SMALL))
    assert collector.of("start") == []  # nothing was opened, nothing moved


class _PickyTrigger(sim._blob_trigger_logic.BlobTriggerLogic):
    async def prepare_internal(self, num: int, livetime: float, deadtime: float) -> None:
        if livetime > 0.015:
            raise ValueError(f"livetime {livetime} s above the camera's 0.015 s")
        await super().prepare_internal(num, livetime, deadtime)


def test_a_detector_refusing_the_trigger_info_fails_before_anything_moves(RE, collector,
                                                                          blobs, tmp_path):
    blobs.det._trigger_logic = _PickyTrigger(blobs.det.pattern_generator)
    with pytest.raises(ValueError, match=r"refused TriggerInfo\(trigger=INTERNAL, "
                                         r"livetime=0.02.*above the camera's 0.015 s"):
        RE(lowdose_tomo_plan(blobs.det, blobs.rot, sample_x=blobs.sx, **SMALL))
    assert collector.of("start") == []
