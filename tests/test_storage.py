"""Runs stored in a real (embedded) Tiled server and read back through Tiled and databroker."""

import subprocess
import sys
import textwrap

import databroker
import h5py
import numpy as np
import pytest
from bluesky import RunEngine
from tiled.queries import Key

from lowdose_bluesky.plans import lowdose_tomo_plan
from lowdose_bluesky.storage import RAW, close, connect, subscribe_writer


@pytest.fixture
def stored_run(tiled_client, stored_txm):
    RE = RunEngine({}, call_returns_result=False)
    subscribe_writer(RE, tiled_client, batch_size=5)
    files: dict[str, str] = {}
    stream_of_descriptor: dict[str, str] = {}
    resource_of_stream: dict[str, str] = {}
    datums: dict[str, str] = {}

    def track(name, doc):
        if name == "resource":
            files[doc["uid"]] = f"{doc['root']}/{doc['resource_path']}"
        elif name == "datum":
            datums[doc["datum_id"]] = doc["resource"]
        elif name == "descriptor":
            stream_of_descriptor[doc["uid"]] = doc["name"]
        elif name == "event":
            stream = stream_of_descriptor[doc["descriptor"]]
            resource_of_stream[stream] = datums[doc["data"]["det_image"]]

    RE.subscribe(track)
    (uid,) = RE(lowdose_tomo_plan(
        stored_txm.detector, stored_txm.rotation, sample_x=stored_txm.sample_x,
        shutter=stored_txm.shutter, num_projections=9, num_darks=2, num_flats=2,
        long_exposure=6.0, short_exposure=1.0, md={"operator": "test"}))
    written = {}
    for stream, resource in resource_of_stream.items():
        with h5py.File(files[resource], "r") as f:
            written[stream] = f["entry/data/data"][()]
    return uid, written


def test_every_stream_reads_back_exactly(tiled_client, stored_run):
    uid, written = stored_run
    run = tiled_client[RAW][uid]
    assert set(run) >= {"dark", "flat", "reference", "primary"}
    for stream, frames in written.items():
        back = run[stream]["det_image"].read()
        assert back.shape == frames.shape and back.dtype == np.uint16
        assert np.array_equal(back, frames), stream
    assert run["primary"]["det_image"].read().shape == (9, 32, 40)
    angles = run["primary"]["rot"].read()
    assert np.allclose(np.asarray(angles), np.linspace(0, 180, 9))


def test_runs_are_found_by_metadata_and_databroker(tiled_client, stored_run):
    uid, written = stored_run
    raw = tiled_client[RAW]
    assert "CatalogOfBlueskyRuns" in [s.name for s in raw.specs]
    assert uid in raw.search(Key("operator") == "test")
    assert raw[uid].metadata["start"]["plan_name"] == "lowdose_tomo_plan"
    db = databroker.Broker(raw)
    header = db[uid]
    assert header.start["dose_ratio"] == 6.0
    assert header.stop["exit_status"] == "success"
    assert len(header.table("primary")) == 9
    assert db[-1].start["uid"] in raw
    # databroker's view of one connection leaves other connections' run layout alone
    other = connect(tiled_client.embedded_server.uri)
    assert np.array_equal(other[RAW][uid]["primary"]["det_image"].read(), written["primary"])


def test_persistent_embedded_server_keeps_runs(tmp_path, stored_txm):
    directory = tmp_path / "catalog"
    client = connect(directory=directory, readable_storage=[stored_txm.data_dir])
    RE = RunEngine({}, call_returns_result=False)
    subscribe_writer(RE, client)
    (uid,) = RE(lowdose_tomo_plan(stored_txm.detector, stored_txm.rotation,
                                  sample_x=stored_txm.sample_x, shutter=stored_txm.shutter,
                                  num_projections=3, num_darks=1, num_flats=1,
                                  long_exposure=2.0, short_exposure=1.0))
    expected = client[RAW][uid]["primary"]["det_image"].read()
    close(client)
    again = connect(directory=directory, readable_storage=[stored_txm.data_dir])
    assert np.array_equal(again[RAW][uid]["primary"]["det_image"].read(), expected)
    close(again)


def test_script_with_embedded_server_exits_by_itself(tmp_path):
    script = textwrap.dedent("""
        from lowdose_bluesky.storage import connect
        client = connect()
        client.create_container("x")
        print("ok", "x" in client)
    """)
    out = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True,
                         timeout=60, cwd=tmp_path)
    assert out.returncode == 0, out.stderr
    assert "ok True" in out.stdout


def test_connect_bad_input(tmp_path):
    with pytest.raises(ValueError, match="is not an existing directory"):
        connect(readable_storage=[tmp_path / "missing"])
    with pytest.raises(ValueError, match="cannot be used with uri"):
        connect("http://127.0.0.1:1/api", directory=tmp_path)
    with pytest.raises(ConnectionError, match=r"cannot reach Tiled at http://127.0.0.1:9/api"):
        connect("http://127.0.0.1:9/api?api_key=secret")
    with pytest.raises(ValueError, match="must be http"):
        connect("ftp://example/api")


def test_connect_error_does_not_leak_the_api_key():
    with pytest.raises(ConnectionError) as info:
        connect("http://127.0.0.1:9/api?api_key=supersecret")
    assert "supersecret" not in str(info.value)


def test_subscribe_writer_rejects_bad_batch_size(tiled_client):
    with pytest.raises(ValueError, match="batch_size must be a positive integer, got 0"):
        subscribe_writer(RunEngine({}), tiled_client, batch_size=0)


def test_several_embedded_servers_in_one_process_all_keep_working(tmp_path, tiled_client):
    first = connect(directory=tmp_path / "a")
    first.create_container("one")
    second = connect(directory=tmp_path / "b")
    second.create_container("two")
    assert "one" in first and "two" in second and RAW in tiled_client
    close(first)
    close(second)
