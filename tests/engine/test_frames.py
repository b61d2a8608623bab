"""FileFrameSource: frames announced by StreamResource/StreamDatum or Resource/Datum
documents (built by hand as event-model 1.24 shapes them) are read back exactly."""

from __future__ import annotations

import uuid
from pathlib import Path

import event_model
import h5py
import numpy as np
import pytest

from lowdose_bluesky.engine import FileFrameSource, FrameRef, read_frames

RUN = "run-0001"
DESCRIPTOR = "descriptor-primary"
KEY = "det_image"
DATASET = "/entry/data/data"


def _frames(n: int = 5) -> np.ndarray:
    rng = np.random.default_rng(0)
    return rng.integers(0, 65535, size=(n, 32, 32), dtype=np.uint16)


def _write(path: Path, frames: np.ndarray) -> Path:
    with h5py.File(path, "w", libver="latest") as f:
        f.create_dataset(DATASET, data=frames, maxshape=(None, *frames.shape[1:]),
                         chunks=(1, *frames.shape[1:]))
    return path


def _valid(name: str, doc: dict) -> dict:
    """``doc``, checked against event-model's schema of document ``name``."""
    event_model.schema_validators[event_model.DocumentNames[name]].validate(doc)
    return doc


def _stream_docs(path: Path, *, mimetype: str = "application/x-hdf5"):
    resource = _valid("stream_resource", {
        "uid": str(uuid.uuid4()), "data_key": KEY, "mimetype": mimetype,
        "uri": f"file://localhost{path.resolve()}", "parameters": {"dataset": DATASET},
        "run_start": RUN})
    # events 1-2 are rows 0-1 of the file, events 3-5 rows 2-4 (stop exclusive)
    datums = [_valid("stream_datum", {
        "uid": f"{resource['uid']}/{i}", "stream_resource": resource["uid"],
        "descriptor": DESCRIPTOR, "indices": {"start": start, "stop": stop},
        "seq_nums": {"start": start + 1, "stop": stop + 1}})
        for i, (start, stop) in enumerate([(0, 2), (2, 5)])]
    return resource, datums


def _ref(seq_num: int, **kwargs) -> FrameRef:
    return FrameRef(run_uid=RUN, stream="primary", index=seq_num - 1, descriptor=DESCRIPTOR,
                    seq_num=seq_num, key=KEY, datum_id=None, **kwargs)


def test_stream_resource_and_datums_read_back_exactly(tmp_path):
    frames = _frames()
    resource, datums = _stream_docs(_write(tmp_path / "stream.h5", frames))
    source = FileFrameSource()
    source.add("stream_resource", resource)
    for datum in datums:
        source.add("stream_datum", datum)
    for seq_num in range(1, 6):
        got = source.read(_ref(seq_num))
        assert got.dtype == np.uint16
        np.testing.assert_array_equal(got, frames[seq_num - 1])
    assert source.path_of(resource["uid"]) == (tmp_path / "stream.h5").resolve()
    # no StreamDatum covers event 6 (seq_nums stop is exclusive)
    with pytest.raises(KeyError, match="no Datum or StreamDatum document seen"):
        source.read(_ref(6))
    source.release(RUN)
    with pytest.raises(KeyError):
        source.read(_ref(1))
    source.close()


def test_read_many_reads_runs_of_rows_in_order_across_datums(tmp_path):
    frames = _frames()
    resource, datums = _stream_docs(_write(tmp_path / "stream.h5", frames))
    source = FileFrameSource()
    source.add("stream_resource", resource)
    for datum in datums:
        source.add("stream_datum", datum)
    # rows 1-3 span both StreamDatums, then row 0, then row 4 twice
    order = [2, 3, 4, 1, 5, 5]
    got = read_frames(source, [_ref(s) for s in order])
    np.testing.assert_array_equal(got, frames[[s - 1 for s in order]])
    with pytest.raises(KeyError, match="no Datum or StreamDatum document seen"):
        source.read_many([_ref(5), _ref(6)])
    with pytest.raises(ValueError, match="at least one"):
        source.read_many([])
    source.close()


def test_read_frames_falls_back_to_one_read_per_frame():
    class OneByOne:
        def read(self, ref):
            return np.full((2, 2), ref["index"])

    got = read_frames(OneByOne(), [_ref(3), _ref(1)])
    np.testing.assert_array_equal(got[:, 0, 0], [2, 0])


def test_stream_datum_of_another_descriptor_or_key_is_not_mixed_up(tmp_path):
    frames = _frames()
    resource, datums = _stream_docs(_write(tmp_path / "stream.h5", frames))
    source = FileFrameSource()
    source.add("stream_resource", resource)
    for datum in datums:
        source.add("stream_datum", datum)
    with pytest.raises(KeyError):
        source.read(FrameRef(_ref(1), descriptor="descriptor-dark"))
    with pytest.raises(KeyError):
        source.read(FrameRef(_ref(1), key="other_image"))
    source.close()


def test_release_forgets_only_that_run(tmp_path):
    frames = _frames()
    resource, datums = _stream_docs(_write(tmp_path / "a.h5", frames))
    other = _write(tmp_path / "b.h5", frames[::-1].copy())
    other_resource = {**resource, "uid": str(uuid.uuid4()), "run_start": "run-0002",
                      "uri": f"file://localhost{other.resolve()}"}
    source = FileFrameSource()
    source.add("stream_resource", resource)
    source.add("stream_resource", other_resource)
    for datum in datums:
        source.add("stream_datum", datum)
    source.add("stream_datum", {**datums[0], "uid": "b/0", "descriptor": "descriptor-b",
                                "stream_resource": other_resource["uid"]})
    ref_b = FrameRef(run_uid="run-0002", stream="primary", index=0, descriptor="descriptor-b",
                     seq_num=1, key=KEY, datum_id=None)
    np.testing.assert_array_equal(source.read(_ref(2)), frames[1])
    np.testing.assert_array_equal(source.read(ref_b), frames[-1])
    source.release(RUN)
    with pytest.raises(KeyError):
        source.read(_ref(2))
    np.testing.assert_array_equal(source.read(ref_b), frames[-1])
    source.close()


def test_wrong_mimetype_is_refused_by_name(tmp_path):
    resource, _ = _stream_docs(_write(tmp_path / "stream.h5", _frames()),
                               mimetype="application/x-tiff")
    source = FileFrameSource()
    with pytest.raises(ValueError, match=r"application/x-hdf5, got 'application/x-tiff'"):
        source.add("stream_resource", resource)


def test_stream_datum_without_its_resource_is_refused(tmp_path):
    _, datums = _stream_docs(_write(tmp_path / "stream.h5", _frames()))
    with pytest.raises(ValueError, match="whose document was not seen"):
        FileFrameSource().add("stream_datum", datums[0])


def test_resource_and_datums_read_back_exactly(tmp_path):
    frames = _frames(3)
    _write(tmp_path / "frames.h5", frames)
    resource = _valid("resource", {
        "uid": str(uuid.uuid4()), "spec": "AD_HDF5", "root": str(tmp_path),
        "resource_path": "frames.h5", "resource_kwargs": {}, "path_semantics": "posix",
        "run_start": RUN})
    datums = [_valid("datum", {"datum_id": f"{resource['uid']}/{i}",
                               "resource": resource["uid"],
                               "datum_kwargs": {"point_number": i}}) for i in (2, 0, 1)]
    source = FileFrameSource()
    source.add("resource", resource)
    for datum in datums:
        source.add("datum", datum)
    for datum in datums:
        ref = FrameRef(run_uid=RUN, stream="primary", index=0, descriptor=DESCRIPTOR,
                       seq_num=1, key=KEY, datum_id=datum["datum_id"])
        np.testing.assert_array_equal(source.read(ref),
                                      frames[datum["datum_kwargs"]["point_number"]])
    source.release(RUN)
    with pytest.raises(KeyError, match="no Datum document seen"):
        source.read(FrameRef(ref, datum_id=datums[0]["datum_id"]))
    source.close()


def test_one_run_with_both_kinds_of_frame_documents(RE, tmp_path):
    """Darks from an ophyd camera (Resource/Datum, events), the primary stream flown by an
    ophyd-async camera (StreamResource/StreamDatum, no events): the router turns both into
    frame arrivals and one source reads every frame back exactly."""
    import bluesky.plan_stubs as bps
    import bluesky.preprocessors as bpp
    from ophyd_async.core import FlyMotorInfo, TriggerInfo

    from lowdose_bluesky.devices.sim import make_sim_txm
    from lowdose_bluesky.engine import DocumentRouter
    from lowdose_bluesky.engine.registry import RecipeSpec

    v1 = make_sim_txm(detector_shape=(16, 16), seed=1, data_dir=tmp_path / "v1")
    flying = make_sim_txm(detector_shape=(16, 16), seed=2, data_dir=tmp_path / "async",
                          flavour="ophyd-async")
    det, rot = flying.detector, flying.rotation

    @bpp.run_decorator(md={"plan_name": "mixed"})
    def mixed():
        yield from bps.stage(v1.detector)
        for _ in range(3):
            yield from bps.trigger_and_read([v1.detector], name="dark")
        yield from bps.unstage(v1.detector)
        yield from bps.stage(det, wait=True)
        yield from bps.prepare(det, TriggerInfo(number_of_events=5, livetime=0.1), wait=True)
        yield from bps.prepare(rot, FlyMotorInfo(start_position=0.0, end_position=50.0,
                                                 time_for_move=1.0), wait=True)
        yield from bps.declare_stream(det, name="primary", collect=True)
        yield from bps.kickoff(rot, wait=True)
        yield from bps.kickoff(det, wait=True)
        yield from bps.collect_while_completing([det, rot], [det], flush_period=0.05,
                                                stream_name="primary")
        yield from bps.unstage(det, wait=True)

    items: list[tuple] = []
    router = DocumentRouter(items.append, {"x": RecipeSpec("x", "none:none", ("mixed",))})
    RE.subscribe(router)
    RE(mixed())
    source = FileFrameSource()
    arrivals = []
    for item in items:
        if item[0] == "doc":
            source.add(item[1], item[2])
        elif item[0] == "event":
            _, run_uid, stream, index, descriptor, seq_num, data, _ = item
            ref = FrameRef(run_uid=run_uid, stream=stream, index=index, descriptor=descriptor,
                           seq_num=seq_num)
            key = "det_image" if stream == "dark" else "det"
            arrivals.append((stream, index, source.read(ref.for_key(key, data))))
    assert [(s, i) for s, i, _ in arrivals] == [("dark", i) for i in range(3)] + [
        ("primary", i) for i in range(5)]
    (dark_file,) = (tmp_path / "v1").rglob("*.h5")
    (primary_file,) = (tmp_path / "async").rglob("*.h5")
    for stream, path in (("dark", dark_file), ("primary", primary_file)):
        with h5py.File(path, "r") as f:
            written = f[DATASET][()]
        back = np.stack([frame for s, _, frame in arrivals if s == stream])
        assert np.array_equal(back, written), stream
    source.close()
