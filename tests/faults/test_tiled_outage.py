"""Tiled killed in the middle of a run, or down before it: the scan completes, the run is
backed up as JSON lines, and ``lowdose-bluesky replay`` restores it with every frame."""

from __future__ import annotations

import logging
import time
from pathlib import Path

import h5py
import numpy as np
import pytest
import tiled.client.utils
from bluesky import RunEngine

from lowdose_bluesky.cli import main
from lowdose_bluesky.devices.sim import make_sim_txm
from lowdose_bluesky.plans import lowdose_tomo_plan
from lowdose_bluesky.storage import (
    API_KEY_ENV,
    RAW,
    BackgroundTiledWriter,
    backup_path,
    close,
    connect,
    ensure_container,
    event_counts,
    read_backup,
)

from .._servers import KEY, free_port, kill, start_server

pytestmark = pytest.mark.slow

N = 9
SHAPE = (16, 16)
STREAMS = {"dark": 4, "flat": 4, "reference": 4, "primary": N}


@pytest.fixture
def fast_retries(monkeypatch: pytest.MonkeyPatch) -> None:
    """tiled retries a refused connection for ~30 s; 2 s keeps the test short."""
    monkeypatch.setattr(tiled.client.utils, "TILED_RETRY_TIMEOUT", 2.0)
    monkeypatch.setenv(API_KEY_ENV, KEY)


def _server_and_writer(data: Path, backup: Path, *, batch_size: int):
    """A ``serve`` subprocess on ``data`` and a writer to it backing up to ``backup``."""
    port = free_port()
    server = start_server(data, port)
    uri = f"http://127.0.0.1:{port}/api/v1"
    client = connect(uri)
    raw = ensure_container(client, RAW, specs=["CatalogOfBlueskyRuns"])
    writer = BackgroundTiledWriter(raw, batch_size=batch_size, backup_directory=backup,
                                   flush_timeout=1.0)
    return server, port, uri, client, writer


def _plan(txm, **kwargs):
    return lowdose_tomo_plan(txm.detector, txm.rotation, sample_x=txm.sample_x,
                             shutter=txm.shutter, num_projections=N, num_darks=2,
                             num_flats=2, reference_angles=(30.0, 120.0), **kwargs)


def _scan(data: Path, writer: BackgroundTiledWriter, *, kill_after_events: int,
          server) -> tuple[str, float]:
    txm = make_sim_txm(detector_shape=SHAPE, seed=0, data_dir=data / "frames")
    RE = RunEngine()
    RE.subscribe(writer)
    seen = []

    def killer(name: str, doc: dict) -> None:
        seen.append(doc["uid"])
        if len(seen) == kill_after_events:
            assert writer.flush(timeout=60)  # what came before is on the server
            kill(server)
    RE.subscribe(killer, "event")
    started = time.monotonic()
    (uid,) = RE(_plan(txm))
    elapsed = time.monotonic() - started
    writer.close(timeout=120)
    return uid, elapsed


def _frames_in_files(data: Path) -> int:
    """Frames in all the detector's files under ``data``."""
    total = 0
    for path in (data / "frames").rglob("*.h5"):
        with h5py.File(path, "r") as f:
            total += f["entry/data/data"].shape[0]
    return total


def _check_restored(uri: str, uid: str, data: Path) -> None:
    client = connect(uri)
    try:
        run = client[RAW][uid]
        assert run.metadata["stop"]["exit_status"] == "success"
        for stream, count in STREAMS.items():
            frames = run[stream]["det_image"].read()
            assert frames.shape == (count, *SHAPE), stream
            assert frames.max() > 0
        angles = run["primary"]["rot"].read()
        np.testing.assert_allclose(angles, np.linspace(0, 180, N))
    finally:
        close(client)


def test_server_killed_mid_run_then_replayed(tmp_path, fast_retries, caplog, capsys):
    data, backup = tmp_path / "data", tmp_path / "backup"
    server, port, uri, _, writer = _server_and_writer(data, backup, batch_size=1)
    caplog.set_level(logging.WARNING, "lowdose_bluesky")
    try:
        # 11 events: darks, flats, and three of the four reference frames are written
        uid, elapsed = _scan(data, writer, kill_after_events=11, server=server)
    finally:
        kill(server)
    # the scan never waited on the dead server's retries
    assert elapsed < 20, elapsed
    assert writer.unstored == [uid]
    assert f"run {uid} was NOT stored in Tiled" in caplog.text
    assert "lowdose-bluesky replay" in caplog.text
    journal = backup_path(backup, uid)
    docs = read_backup(journal)
    assert docs[0][0] == "start" and docs[-1][0] == "stop"
    assert event_counts(docs) == STREAMS

    server = start_server(data, port)
    try:
        partial = connect(uri)
        assert uid in partial[RAW]                    # the part written before the kill
        assert partial[RAW][uid].metadata.get("stop") is None
        close(partial)
        capsys.readouterr()
        assert main(["replay", str(backup), "--tiled", uri]) == 0
        out = capsys.readouterr().out
        assert f"run {uid} restored (replaced a partial copy)" in out
        assert "primary 9" in out
        _check_restored(uri, uid, data)
        assert not journal.exists() and (backup / "replayed" / journal.name).exists()
        # the detector's files are untouched by replacing the partial copy
        assert _frames_in_files(data) == sum(STREAMS.values())
        # a second replay finds nothing to do
        assert main(["replay", str(backup), "--tiled", uri]) == 0
        assert "nothing to restore" in capsys.readouterr().out
    finally:
        kill(server)


def test_server_down_before_the_run_then_replayed(tmp_path, fast_retries, capsys):
    data, backup = tmp_path / "data", tmp_path / "backup"
    server, port, uri, _, writer = _server_and_writer(data, backup, batch_size=5)
    kill(server)
    txm = make_sim_txm(detector_shape=SHAPE, seed=0, data_dir=data / "frames")
    RE = RunEngine()
    RE.subscribe(writer)
    (uid,) = RE(_plan(txm))
    writer.close(timeout=120)
    assert writer.unstored == [uid]
    server = start_server(data, port)
    try:
        assert main(["replay", str(backup), "--tiled", uri]) == 0
        out = capsys.readouterr().out
        assert f"run {uid} restored [events: dark 4, flat 4, primary 9, reference 4]" in out
        _check_restored(uri, uid, data)
    finally:
        kill(server)


def test_replay_rejects_a_missing_directory_and_reports_a_bad_file(tmp_path, capsys):
    assert main(["replay", str(tmp_path / "nope"), "--tiled", "http://127.0.0.1:9/api"]) == 2
    assert "does not exist or is not a directory" in capsys.readouterr().err
    (tmp_path / "bad.jsonl").write_text('{"name": "start"}\n')
    client = connect()
    try:
        from lowdose_bluesky.storage import replay

        (report,) = replay(tmp_path, client)
    finally:
        close(client)
    assert report.outcome == "failed"
    assert "bad.jsonl:1 is not a Bluesky document line" in report.detail
    assert (tmp_path / "bad.jsonl").exists()              # left for the user


def test_live_result_saved_locally_when_tiled_dies_then_replayed(tmp_path, fast_retries,
                                                                    monkeypatch, caplog, capsys):
    from lowdose_bluesky import results
    from lowdose_bluesky.callbacks import LiveEnhancer, ResultNotStored
    from lowdose_bluesky.engine import results as live_module

    from ..callbacks._live import TRAIN

    monkeypatch.setattr(live_module, "STORE_RETRY_S", 0.1)
    data, backup = tmp_path / "data", tmp_path / "backup"
    server, port, uri, client, writer = _server_and_writer(data, backup, batch_size=5)
    live = LiveEnhancer(client, process=False, method="supervised", epochs=2, progress=False,
                        training_budget=None,
                        min_training_s=0, backup_directory=backup, train_options=TRAIN)
    txm = make_sim_txm(detector_shape=(32, 32), seed=3, flux=50.0, data_dir=data / "frames")
    RE = RunEngine()
    RE.subscribe(writer)
    RE.subscribe(live)
    RE.subscribe(lambda name, doc: kill(server), "descriptor")  # dead before any event
    (uid,) = RE(_plan(txm, long_exposure=30.0, short_exposure=1.0))
    writer.close(timeout=120)
    # the analysis ran from the detector's files; its result could not reach Tiled
    with pytest.raises(ResultNotStored, match=rf"the complete result of run {uid} could not "
                       rf"be written to Tiled .*saved in {backup}/results/") as err:
        live.wait(timeout=600)
    live.close()
    folder = Path(str(err.value).split("saved in ")[1].split(";")[0])
    assert (folder / "enhanced.npy").exists() and (folder / "metadata.json").exists()

    server = start_server(data, port)
    try:
        capsys.readouterr()
        assert main(["replay", str(backup), "--tiled", uri]) == 0
        out = capsys.readouterr().out
        assert f"run {uid} restored" in out
        assert f"result {folder.name} restored" in out
        client = connect(uri)
        res = results(client, uid)
        assert res.uid == folder.name and res.status == "complete"
        assert res.metadata["restored_from_backup"] is True
        assert res.enhanced.shape == (N, 32, 32)
        assert res.reconstruction.shape[0] == 32
        assert not folder.exists()
        close(client)
    finally:
        kill(server)
