"""The simulated TXM: physics of the counts, HDF5 files and asset documents."""

import h5py
import numpy as np
import pytest

from lowdose_bluesky.devices import DATASET
from lowdose_bluesky.devices.sim import make_sim_txm
from lowdose_bluesky.phantoms import spheres_in_cube


def _frames(txm, n, exposure, *, shutter="open", sample_x=0.0, angle=0.0):
    txm.shutter.set(shutter)
    txm.sample_x.set(sample_x)
    txm.rotation.set(angle)
    txm.detector.exposure_time.put(exposure)
    return np.stack([txm.detector.acquire_frame(exposure) for _ in range(n)]).astype(float)


def test_darks_follow_dark_current(txm):
    darks = _frames(txm, 20, 4.0, shutter="close")
    expected = txm.detector.dark_current * 4.0
    assert darks.mean() == pytest.approx(expected, abs=0.2)
    assert darks.std() == pytest.approx(txm.detector.read_noise, rel=0.1)


def test_flats_follow_flux_and_flat_field(txm):
    flats = _frames(txm, 10, 2.0, sample_x=5.0).mean(axis=0)
    expected = txm.detector.flux * 2.0 * txm.detector.flat_field + txm.detector.dark_current * 2
    assert np.abs(flats - expected).max() / expected.mean() < 0.03
    ff = txm.detector.flat_field
    assert 0.8 < ff.min() < ff.max() <= 1.0  # smooth non-uniform beam


def test_flat_snr_grows_as_sqrt_exposure(txm):
    snr = {}
    for t in (1.0, 16.0):
        flats = _frames(txm, 8, t, sample_x=5.0)
        signal = flats.mean(axis=0)
        snr[t] = float(np.mean(signal / flats.std(axis=0, ddof=1)))
    assert snr[16.0] / snr[1.0] == pytest.approx(4.0, rel=0.15)


def test_sample_attenuates_and_saturation_is_real(tmp_path):
    txm = make_sim_txm(detector_shape=(16, 16), seed=1, flux=5000.0, data_dir=tmp_path)
    frame = _frames(txm, 1, 20.0)[0]  # 100000 counts requested on open beam
    assert frame.max() == np.iinfo(np.uint16).max
    projection = _frames(txm, 1, 0.1)[0]
    flat = _frames(txm, 1, 0.1, sample_x=5.0)[0]
    assert projection.mean() < flat.mean()


def test_noise_is_seeded(tmp_path):
    a = make_sim_txm(detector_shape=(16, 16), seed=4, data_dir=tmp_path / "a")
    b = make_sim_txm(detector_shape=(16, 16), seed=4, data_dir=tmp_path / "b")
    assert np.array_equal(_frames(a, 2, 1.0), _frames(b, 2, 1.0))


def test_frames_go_to_hdf5_with_asset_docs(txm):
    det = txm.detector
    txm.shutter.set("open")
    det.stage()
    path = det.current_file
    frames = []
    for angle in (0.0, 45.0, 90.0):
        txm.rotation.set(angle)
        det.trigger().wait(5)
        frames.append(det.read()[f"{det.name}_image"]["value"])
    docs = list(det.collect_asset_docs())
    det.unstage()
    assert [name for name, _ in docs] == ["resource", "datum", "datum", "datum"]
    resource = docs[0][1]
    assert resource["spec"] == "AD_HDF5"
    assert [d["datum_kwargs"] for _, d in docs[1:]] == [{"point_number": i} for i in range(3)]
    assert [d["datum_id"] for _, d in docs[1:]] == frames
    with h5py.File(path, "r") as f:
        data = f[DATASET][()]
    assert data.shape == (3, 32, 40) and data.dtype == np.uint16
    desc = det.describe()[f"{det.name}_image"]
    assert desc["shape"] == [32, 40] and desc["external"] == "FILESTORE:"
    # a new stage opens a new file whose frames start at 0 again
    det.stage()
    det.trigger().wait(5)
    assert det.current_file != path
    assert list(det.collect_asset_docs())[1][1]["datum_kwargs"] == {"point_number": 0}
    det.unstage()


def test_trigger_needs_staging(txm):
    status = txm.detector.trigger()
    with pytest.raises(RuntimeError, match="not staged"):
        status.wait(5)


def test_realistic_timing_waits_for_exposure(tmp_path):
    txm = make_sim_txm(detector_shape=(8, 8), seed=0, data_dir=tmp_path, realistic_timing=True)
    txm.detector.exposure_time.put(0.3)
    txm.detector.stage()
    status = txm.detector.trigger()
    assert not status.done
    status.wait(5)
    assert status.done and status.success
    txm.detector.unstage()


def test_phantom_is_ground_truth_volume(tmp_path):
    ph = spheres_in_cube((16, 24), seed=2)
    txm = make_sim_txm(ph, detector_shape=(16, 24), data_dir=tmp_path)
    assert txm.phantom.shape == (16, 24, 24)
    assert np.array_equal(txm.phantom, ph.volume())


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [({"detector_shape": (4, 4)}, "at least"), ({"flux": 0}, "flux"),
     ({"read_noise": -1}, "read_noise"), ({"mu": -1.0}, "mu"),
     ({"phantom": "nope"}, "unknown phantom"),
     ({"phantom": spheres_in_cube(16, seed=0), "detector_shape": (16, 20)}, "does not fit")],
)
def test_make_sim_txm_bad_input(tmp_path, kwargs, match):
    with pytest.raises(ValueError, match=match):
        make_sim_txm(data_dir=tmp_path, **kwargs)


def test_shutter_rejects_unknown_command(txm):
    with pytest.raises(ValueError, match="shutter accepts"):
        txm.shutter.set("half-open")
    assert txm.shutter.state.get() == "closed"
