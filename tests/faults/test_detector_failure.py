"""Fault injection: the detector's HDF5 file cannot be written (disk full) or is removed.

The faults are injected from the test at an exact frame: a RunEngine ``msg_hook`` acts
just before the k-th trigger of the detector, and the disk fills by making h5py's flush
of that one file fail with ``ENOSPC`` (where a full disk shows up, as the frame is
flushed after being appended). Expected every time: an exception naming the file and
the cause, a stop document with exit_status "fail" and that reason, the shutter closed
and the sample back, the file closed, and every frame written before the failure
stored in Tiled and readable there (as many events as frames in the file).
"""

import errno
import logging
import os

import h5py
import numpy as np
import pytest
from bluesky.utils import FailedStatus

from lowdose_bluesky.devices import DATASET, HDF5FrameWriter
from lowdose_bluesky.devices.sim import make_sim_txm
from lowdose_bluesky.plans import lowdose_tomo_plan
from lowdose_bluesky.storage import RAW

SHAPE = (16, 16)
PLAN = {"num_projections": 7, "num_darks": 2, "num_flats": 2, "long_exposure": 8.0,
        "short_exposure": 1.0, "reference_angles": (30.0, 120.0)}
ANGLES = np.linspace(0.0, 180.0, PLAN["num_projections"])
#: Frames per stream, in acquisition order (darks and flats at two exposures, a long and
#: a short frame at each reference angle).
FRAMES = {"dark": 2 * PLAN["num_darks"], "flat": 2 * PLAN["num_flats"],
          "reference": 2 * len(PLAN["reference_angles"]), "primary": PLAN["num_projections"]}


def _trigger_number(stream, index):
    """1-based count of detector triggers up to frame ``index`` of ``stream``."""
    streams = list(FRAMES)
    return sum(FRAMES[s] for s in streams[:streams.index(stream)]) + index + 1


@pytest.fixture
def txm(frames_root, request):
    return make_sim_txm(detector_shape=SHAPE, seed=5, flux=200.0,
                        data_dir=frames_root / request.node.name)


@pytest.fixture
def docs(RE):
    collected = []
    RE.subscribe(lambda name, doc: collected.append((name, doc)))
    return collected


@pytest.fixture
def written(monkeypatch):
    """Frames each writer reported as written, by file path."""
    frames = {}
    write = HDF5FrameWriter.write

    def recording_write(writer, frame):
        datum_id = write(writer, frame)
        frames.setdefault(str(writer.path), []).append(frame.copy())
        return datum_id

    monkeypatch.setattr(HDF5FrameWriter, "write", recording_write)
    return frames


def _before_trigger(RE, detector, number, action):
    """Run ``action()`` just before the ``number``-th trigger of ``detector``."""
    seen = {"n": 0}

    def hook(msg):
        if msg.command == "trigger" and msg.obj is detector:
            seen["n"] += 1
            if seen["n"] == number:
                action()

    RE.msg_hook = hook


def _fill_disk(monkeypatch, detector):
    """From now on, flushing the detector's current file fails as on a full disk."""
    path = str(detector.current_file)
    flush = h5py.Dataset.flush

    def failing_flush(dset):
        if dset.file.filename == path:
            raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))
        return flush(dset)

    monkeypatch.setattr(h5py.Dataset, "flush", failing_flush)


def _run(RE, txm):
    with pytest.raises(FailedStatus) as info:
        RE(lowdose_tomo_plan(txm.detector, txm.rotation, sample_x=txm.sample_x,
                             shutter=txm.shutter, **PLAN))
    return info.value


def _open_for_writing(path):
    return [fid for fid in h5py.h5f.get_obj_ids(types=h5py.h5f.OBJ_FILE)
            if fid.name.decode() == str(path) and fid.get_intent() & h5py.h5f.ACC_RDWR]


def _check_clean_end(txm, docs, tiled_client, error):
    """Stop document, hardware, file handles; return the stored run."""
    (start,) = [d for n, d in docs if n == "start"]
    (stop,) = [d for n, d in docs if n == "stop"]
    assert stop["exit_status"] == "fail"
    assert stop["reason"] == str(error)
    assert txm.shutter.state.get() == "closed"
    assert txm.sample_x.position == 0.0
    assert txm.detector.current_file is None  # unstaged
    run = tiled_client[RAW][start["uid"]]
    assert run.metadata["stop"]["exit_status"] == "fail"
    assert run.metadata["stop"]["reason"] == str(error)
    return run


def _check_stored(run, docs, written, expected):
    """Each stream in ``expected`` stored with that many events, frames as written."""
    assert sorted(run) == sorted(expected)
    resources = {d["uid"]: d for n, d in docs if n == "resource"}
    for stream, n in expected.items():
        (descriptor,) = [d["uid"] for name, d in docs
                         if name == "descriptor" and d["name"] == stream]
        events = [d for name, d in docs if name == "event" and d["descriptor"] == descriptor]
        (resource_uid,) = {e["data"]["det_image"].split("/")[0] for e in events}
        resource = resources[resource_uid]
        path = os.path.join(resource["root"], resource["resource_path"])
        images = run[stream]["det_image"].read()  # through Tiled
        assert len(events) == n
        np.testing.assert_array_equal(images, np.stack(written[path]))
        with h5py.File(path, "r") as f:
            assert f[DATASET].shape[0] == n  # as many frames in the file as events
        assert len([d for name, d in docs
                    if name == "datum" and d["resource"] == resource_uid]) == n
        assert not _open_for_writing(path), f"{path} is still open for writing"
    if "primary" in expected:
        np.testing.assert_allclose(run["primary"]["rot"].read(), ANGLES[:expected["primary"]])


@pytest.mark.parametrize(("stream", "index"), [("primary", 3), ("reference", 0)])
def test_disk_full(RE, txm, docs, written, tiled_client, monkeypatch, stream, index):
    paths = []

    def disk_full():
        paths.append(txm.detector.current_file)
        _fill_disk(monkeypatch, txm.detector)

    _before_trigger(RE, txm.detector, _trigger_number(stream, index), disk_full)
    error = _run(RE, txm)
    (path,) = paths
    # what the user sees: the file and the cause
    assert str(error) == (f"det failed: OSError: could not write frame {index} to {path}: "
                          "[Errno 28] No space left on device")
    assert isinstance(error.__cause__, OSError)
    assert error.__cause__.__cause__.errno == errno.ENOSPC
    run = _check_clean_end(txm, docs, tiled_client, error)
    # everything acquired before the failure is stored and readable; nothing dropped
    expected = {s: n for s, n in FRAMES.items() if list(FRAMES).index(s) < list(FRAMES).index(
        stream)}
    if index:
        expected[stream] = index
    _check_stored(run, docs, written, expected)
    with h5py.File(path, "r") as f:  # the frame that failed was not left in the file
        assert f[DATASET].shape[0] == index


def test_file_removed_mid_rotation(RE, txm, docs, written, tiled_client):
    paths = []

    def remove_file():
        paths.append(txm.detector.current_file)
        os.unlink(paths[-1])

    _before_trigger(RE, txm.detector, _trigger_number("primary", 3), remove_file)
    error = _run(RE, txm)
    (path,) = paths
    assert str(error) == (
        f"det failed: FileNotFoundError: [Errno 2] HDF5 file {path} was removed or replaced "
        "before frame 3 could be written; its 3 frames written before were saved again under "
        "the same name")
    assert error.__cause__.errno == errno.ENOENT
    run = _check_clean_end(txm, docs, tiled_client, error)
    _check_stored(run, docs, written, {**FRAMES, "primary": 3})


def test_file_removed_after_the_last_frame_of_a_stream(RE, txm, docs, written, tiled_client,
                                                       caplog):
    # removed between the last frame and the end of the stream: nothing left to fail, the
    # frames are saved again when the file is closed, and the error is logged
    removed = []

    def hook(msg):  # the first unstage ends the dark stream
        if msg.command == "unstage" and msg.obj is txm.detector and not removed:
            removed.append(txm.detector.current_file)
            os.unlink(removed[-1])

    RE.msg_hook = hook
    with caplog.at_level(logging.ERROR, logger="lowdose_bluesky.devices.hdf5_frames"):
        (uid,) = RE(lowdose_tomo_plan(txm.detector, txm.rotation, sample_x=txm.sample_x,
                                      shutter=txm.shutter, **PLAN))
    (path,) = removed
    assert (f"HDF5 file {path} was removed or replaced before it was closed; its 4 frames "
            "written before were saved again under the same name") in caplog.text
    run = tiled_client[RAW][uid]
    assert run.metadata["stop"]["exit_status"] == "success"
    _check_stored(run, docs, written, FRAMES)
