"""The simulated XRF microprobe: step rasters, files, counting statistics, fly rows."""

import bluesky.plan_stubs as bps
import h5py
import numpy as np
import pytest
from ophyd_async.core import FlyMotorInfo, TriggerInfo

from lowdose_bluesky.devices import DATASET
from lowdose_bluesky.devices.sim.xrf import (
    I0_DATASET,
    TRANSMISSION_DATASET,
    X_DATASET,
    Y_DATASET,
    make_sim_xrf,
)
from lowdose_bluesky.devices.sim.xrf import microprobe as xrf_factory

SHAPE = (8, 8)
BINS, BIN_KEV = 256, 0.048  # 0-12.3 keV in few channels


def _sim(tmp_path, **kwargs):
    return make_sim_xrf(shape=SHAPE, seed=3, bins=BINS, bin_kev=BIN_KEV,
                        data_dir=tmp_path / "xrf", **kwargs)


def _raster(sim, dwell):
    """Step raster with plain plan stubs, one pixel per trigger."""
    det, x, y = sim.detector, sim.x, sim.y
    xs, ys = sim.pixel_positions()

    def plan():
        yield from bps.open_run(md=det.start_metadata())
        yield from bps.stage(det)
        yield from bps.mv(sim.shutter, "open")
        yield from bps.prepare(det, TriggerInfo(livetime=dwell), wait=True)
        for row in ys:
            for col in xs:
                yield from bps.mv(x, col, y, row)
                yield from bps.trigger_and_read([det, x, y])
        yield from bps.unstage(det)
        yield from bps.close_run()

    return plan()


def _files(collector):
    """HDF5 path of each run, in order."""
    uris = []
    for doc in collector.of("stream_resource"):
        if doc["uri"] not in uris:
            uris.append(doc["uri"])
    return [u.removeprefix("file://localhost") for u in uris]


def _expected(sim, dwell):
    """Expected counts ``(pixels, detector elements, bins)`` of a step raster."""
    counting = sim.detector.counting
    h, w = sim.shape
    return np.array([counting.expected_counts([(r, c)], dwell)
                     for r in range(h) for c in range(w)])


def test_step_raster_writes_an_xspress3_file(RE, collector, tmp_path):
    sim = _sim(tmp_path)
    det = sim.detector
    assert set(sim.devices) == {"detector", "x", "y", "shutter"}
    assert det.hints == {"fields": ["xrf"]}
    RE(_raster(sim, 0.01))

    names = [n for n, _ in collector.docs]
    assert names.count("stream_resource") == 5 and names.count("event") == 64
    assert names.count("stream_datum") == 5 * 64
    resources = {d["data_key"]: d for d in collector.of("stream_resource")}
    assert set(resources) == {"xrf", "xrf-I0", "xrf-transmission", "xrf-x", "xrf-y"}
    assert resources["xrf"]["parameters"]["dataset"] == DATASET
    keys = collector.of("descriptor")[0]["data_keys"]
    assert keys["xrf"]["shape"] == [1, 4, BINS] and keys["xrf"]["external"] == "STREAM:"
    start = collector.of("start")[0]["simulation"]
    assert start["elements"] == list(sim.elements) and start["detector_elements"] == 4
    assert start["energy_kev"] == 10.0 and start["seed"] == 3 and start["flux"] == 1e9

    (path,) = _files(collector)
    assert path.startswith(str(sim.data_dir))
    with h5py.File(path, "r") as f:
        spectra = f[DATASET][()]
        i0, trans = f[I0_DATASET][()], f[TRANSMISSION_DATASET][()]
        xs, ys = f[X_DATASET][()], f[Y_DATASET][()]
    assert spectra.shape == (64, 4, BINS) and spectra.dtype == np.uint32
    # positions in raster order, µm
    np.testing.assert_allclose(xs, np.tile(np.arange(8) * 0.5, 8))
    np.testing.assert_allclose(ys, np.repeat(np.arange(8) * 0.5, 8))
    # I0 ∝ flux × dwell; the transmission detector counts far more than the spectra
    assert i0.mean() == pytest.approx(det.counting.expected_i0(0.01), rel=0.01)
    assert trans.min() > 100 * spectra.sum(axis=(1, 2)).max()


def test_zn_counts_scale_with_dwell(RE, collector, tmp_path):
    sim = _sim(tmp_path)
    RE(_raster(sim, 0.01))
    RE(_raster(sim, 0.1))
    window = sim.spectra.peak_window("Zn", "Ka1", 1.0)
    measured, expected = [], []
    for path, dwell in zip(_files(collector), (0.01, 0.1), strict=True):
        with h5py.File(path, "r") as f:
            measured.append(float(f[DATASET][:, :, window].sum()))
        expected.append(float(_expected(sim, dwell)[:, :, window].sum()))
    for m, e in zip(measured, expected, strict=True):
        assert abs(m - e) < 5 * np.sqrt(e)
    assert expected[0] > 50  # Zn is seen, if noisily, at 10 ms
    ratio, sigma = measured[1] / measured[0], 10 * np.sqrt(1 / measured[0] + 1 / measured[1])
    assert abs(ratio - 10) < 5 * sigma


def test_elements_count_independently_and_dead_ones_read_zero(RE, collector, tmp_path):
    sim = _sim(tmp_path, dead_elements=(2,))
    RE(_raster(sim, 0.05))
    (path,) = _files(collector)
    with h5py.File(path, "r") as f:
        spectra = f[DATASET][()].astype(float)
    assert not spectra[:, 2].any()
    live = spectra[:, [0, 1, 3]]
    brightest = int(np.argmax(live.sum(axis=(1, 2))))
    a, b, c = live[brightest]
    assert not (np.array_equal(a, b) or np.array_equal(b, c) or np.array_equal(a, c))
    totals = live.sum(axis=(0, 2))
    assert np.all(np.abs(totals - totals.mean()) < 5 * np.sqrt(totals.mean()))
    expected = _expected(sim, 0.05)
    assert not expected[:, 2].any()
    assert totals.mean() == pytest.approx(expected[:, 0].sum(), rel=5 / np.sqrt(totals.mean()))


def test_fly_rows_record_mid_dwell_positions(RE, collector, tmp_path):
    sim = _sim(tmp_path)
    det, x, y = sim.detector, sim.x, sim.y
    (h, w), p, dwell = sim.shape, sim.pixel_size_um, 0.01

    def plan():
        yield from bps.open_run()
        yield from bps.stage_all(det, x)
        yield from bps.mv(sim.shutter, "open")
        row_info = TriggerInfo(number_of_events=w, livetime=dwell)
        yield from bps.prepare(det, row_info, wait=True)
        yield from bps.declare_stream(det, name="primary", collect=True)
        for row in range(h):
            yield from bps.mv(y, row * p)
            yield from bps.prepare(x, FlyMotorInfo(start_position=-0.5 * p,
                                                   end_position=(w - 0.5) * p,
                                                   time_for_move=w * dwell), wait=True)
            if row:  # the same file: one more row of pixels
                yield from bps.prepare(det, row_info, wait=True)
            yield from bps.kickoff(x, wait=True)
            yield from bps.kickoff(det, wait=True)
            yield from bps.collect_while_completing([x, det], [det], flush_period=0.05)
        yield from bps.unstage_all(det, x)
        yield from bps.close_run()

    RE(plan())
    (path,) = _files(collector)
    with h5py.File(path, "r") as f:
        spectra, xs, ys = f[DATASET][()], f[X_DATASET][()], f[Y_DATASET][()]
    assert spectra.shape == (h * w, 4, BINS)
    np.testing.assert_allclose(xs, np.tile(np.arange(w) * p, h), atol=1e-9)
    np.testing.assert_allclose(ys, np.repeat(np.arange(h) * p, w))
    assert max(d["indices"]["stop"] for d in collector.of("stream_datum")) == h * w


def test_closed_shutter_counts_nothing(RE, tmp_path):
    sim = _sim(tmp_path)
    det, files = sim.detector, []

    def plan():
        yield from bps.stage(det)
        yield from bps.prepare(det, TriggerInfo(livetime=0.1), wait=True)
        files.append(det.current_file)
        yield from bps.trigger(det, wait=True)
        yield from bps.unstage(det)

    RE(plan())
    with h5py.File(files[0], "r") as f:
        assert f[DATASET].shape == (1, 4, BINS) and not f[DATASET][()].any()
        assert f[I0_DATASET][0] == 0 and f[TRANSMISSION_DATASET][0] == 0


def test_factory_checks(tmp_path, monkeypatch, RE):
    with pytest.raises(ValueError, match=r"dead_elements \[4\]"):
        _sim(tmp_path, dead_elements=(4,))
    with pytest.raises(ValueError, match=r"'Xx'"):
        _sim(tmp_path, elements=("Fe", "Xx"))
    with pytest.raises(ValueError, match=r"'Fe'.*-1\.0"):
        make_sim_xrf({"Fe": -np.ones((8, 8))}, data_dir=tmp_path, bins=BINS, bin_kev=BIN_KEV)
    sim = make_sim_xrf({"Fe": np.full((6, 5), 0.1)}, elements=("Fe", "Zn"),
                       data_dir=tmp_path, bins=BINS, bin_kev=BIN_KEV)
    assert sim.shape == (6, 5) and sim.elements == ("Fe", "Zn") and not sim.truth["Zn"].any()
    monkeypatch.setattr(xrf_factory, "get_bluesky_event_loop", lambda: None)
    with pytest.raises(RuntimeError, match=r"RunEngine\(\)"):
        _sim(tmp_path)
