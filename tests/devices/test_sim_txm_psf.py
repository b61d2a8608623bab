"""Blur and binning of the simulated lens-coupled TXM camera, in both device flavours."""

from pathlib import Path

import bluesky.plan_stubs as bps
import h5py
import numpy as np
import pytest
from bluesky.plans import count
from scipy.special import erf

from lowdose_bluesky.devices import DATASET
from lowdose_bluesky.devices.sim import CountingModel, make_sim_txm
from lowdose_bluesky.devices.sim.counting import transmission
from lowdose_bluesky.phantoms import Phantom

H, W = 32, 64
MU = np.log(2.0) / 2.0  # the half-plane (2 voxels of value 1) transmits 50 %


def _half_plane() -> Phantom:
    """Material on columns 0..31 (edge between columns 31 and 32), open beyond."""
    box = [0.0, 0.0, -W / 4, H / 2, 1.0, W / 4, 0.0, 1.0]
    return Phantom(shape=(H, W, W), boxes=np.array([box]), ellipsoids=np.empty((0, 8)))


def _expected(tmp_path: Path, **kwargs) -> tuple[np.ndarray, object]:
    """Noiseless counts of a 1 s exposure of the half-plane under a uniform beam."""
    txm = make_sim_txm(_half_plane(), detector_shape=(H, W), mu=MU, flux=1000.0, seed=0,
                       data_dir=tmp_path, **kwargs)
    txm.detector.flat_field = np.ones((H, W))
    txm.shutter.set("open")
    return txm.detector.expected_counts(1.0), txm


@pytest.mark.parametrize("sigma", [1.0, 2.0, 3.5])
def test_blur_spreads_an_edge_as_a_gaussian(tmp_path, sigma):
    sharp, _ = _expected(tmp_path / "sharp")
    blurred, txm = _expected(tmp_path / "blurred", psf_sigma_px=sigma)
    assert txm.detector.psf_sigma_px == sigma and blurred.shape == (H, W)
    x = np.arange(W) - 31.5  # distance of each pixel centre from the edge
    # un-blurred: a sharp step from 500 (50 % transmitted) to 1000 counts
    assert np.array_equal(sharp[H // 2], np.where(x < 0, 500.0, 1000.0).astype(np.float32))
    def profile(s: float) -> np.ndarray:
        return 500.0 + 500.0 * 0.5 * (1 + erf(x / (s * np.sqrt(2))))

    # the kernel is sampled at pixel centres: off the continuous profile by at most
    # max|phi'| / 24 = 1 % / sigma**2 of the step (midpoint rule)
    atol = 500.0 * 0.01 / sigma**2 + 0.5
    for row in blurred:
        np.testing.assert_allclose(row, profile(sigma), atol=atol)
    assert np.abs(blurred[H // 2] - profile(1.5 * sigma)).max() > 3 * atol
    # the contrast next to the edge drops as the Gaussian says, e.g. 1 px away
    near = blurred[H // 2, 32] - blurred[H // 2, 31]
    assert near == pytest.approx(500.0 * erf(0.5 / (sigma * np.sqrt(2))), abs=2 * atol)
    assert near < 0.5 * (sharp[H // 2, 32] - sharp[H // 2, 31])
    # the blur moves counts, it does not make or lose them
    assert blurred.sum() == pytest.approx(sharp.sum(), rel=1e-5)


def test_binning_sums_blocks_of_sensor_pixels(tmp_path):
    txm = make_sim_txm(detector_shape=(H, W), flux=1000.0, seed=3, data_dir=tmp_path,
                       binning=4)
    det = txm.detector
    assert (det.binning, det.sensor_shape, det.frame_shape) == (4, (H, W), (H // 4, W // 4))
    assert det.flat_field.shape == (H, W)  # the beam lies on the sensor
    txm.shutter.set("open")
    transmitted = transmission(txm.optics.line_integrals_at(0.0, 0.0), txm.optics.mu)
    sensor = det.counting.sensor_counts(2.0, transmitted)
    binned = det.expected_counts(2.0)
    assert binned.shape == (H // 4, W // 4)
    np.testing.assert_allclose(binned, sensor.reshape(H // 4, 4, W // 4, 4).sum(axis=(1, 3)),
                               rtol=1e-6)
    assert binned[0, 0] == pytest.approx(sensor[:4, :4].sum(), rel=1e-6)
    # flux is per sensor pixel: an open-beam binned pixel collects 16 times as much
    txm.sample_x.set(5.0)
    flat = det.expected_counts(2.0)
    assert flat[3, 5] == pytest.approx(1000.0 * 2.0 * det.flat_field[12:16, 20:24].sum(),
                                       rel=1e-6)
    frames = np.stack([det.acquire_frame(2.0) for _ in range(4)]).astype(float)
    assert frames.shape == (4, H // 4, W // 4)
    assert frames.mean() == pytest.approx(flat.mean() + det.dark_current * 2.0, rel=0.01)
    # dark frames too are binned; dark current and read noise are per binned pixel
    txm.shutter.set("close")
    darks = np.stack([det.acquire_frame(4.0) for _ in range(20)]).astype(float)
    assert darks.shape == (20, H // 4, W // 4)
    assert darks.mean() == pytest.approx(det.dark_current * 4.0, abs=0.3)
    assert darks.std() == pytest.approx(det.read_noise, rel=0.15)


def test_binned_counts_saturate_per_binned_pixel(tmp_path):
    # 6000 counts per sensor pixel: 24000 per 2x2 block, 96000 (clipped) per 4x4 block
    for b, saturated in ((2, False), (4, True)):
        txm = make_sim_txm(detector_shape=(16, 16), flux=6000.0, seed=1, binning=b,
                           data_dir=tmp_path / str(b))
        txm.shutter.set("open")
        txm.sample_x.set(5.0)
        frame = txm.detector.acquire_frame(1.0)
        assert (frame.max() == np.iinfo(np.uint16).max) == saturated


def test_blur_and_binning_are_recorded(tmp_path):
    txm = make_sim_txm(detector_shape=(16, 16), seed=1, data_dir=tmp_path, psf_sigma_px=1.5,
                       binning=2)
    sim = txm.detector.start_metadata()["simulation"]
    assert (sim["psf_sigma_px"], sim["binning"]) == (1.5, 2)
    plain = make_sim_txm(detector_shape=(16, 16), seed=1, data_dir=tmp_path / "plain")
    sim = plain.detector.start_metadata()["simulation"]
    assert (sim["psf_sigma_px"], sim["binning"]) == (0.0, 1)
    assert (plain.detector.psf_sigma_px, plain.detector.binning) == (0.0, 1)
    assert plain.detector.frame_shape == plain.detector.sensor_shape == (16, 16)


def test_ophyd_camera_writes_binned_frames_in_a_run(RE, collector, tmp_path):
    txm = make_sim_txm(detector_shape=(H, W), seed=2, flux=1000.0, data_dir=tmp_path,
                       psf_sigma_px=2.0, binning=2)
    det = txm.detector
    txm.shutter.set("open")
    det.exposure_time.put(0.5)
    RE(count([det], num=2, md=det.start_metadata()))
    start = collector.of("start")[0]
    assert (start["simulation"]["psf_sigma_px"], start["simulation"]["binning"]) == (2.0, 2)
    keys = collector.of("descriptor")[0]["data_keys"]
    assert keys[f"{det.name}_image"]["shape"] == [H // 2, W // 2]
    resource = collector.of("resource")[0]
    with h5py.File(Path(resource["root"]) / resource["resource_path"], "r") as f:
        frames = f[DATASET][()]
    assert frames.shape == (2, H // 2, W // 2) and frames.dtype == np.uint16
    mean = det.expected_counts(0.5).mean() + det.dark_current * 0.5
    assert frames.mean() == pytest.approx(mean, rel=0.02)


def test_async_camera_writes_binned_frames_in_a_run(RE, collector, tmp_path):
    txm = make_sim_txm(detector_shape=(H, W), seed=2, flux=1000.0, data_dir=tmp_path,
                       psf_sigma_px=2.0, binning=2, flavour="ophyd-async")
    det = txm.detector
    assert (det.psf_sigma_px, det.binning) == (2.0, 2)
    assert (det.sensor_shape, det.frame_shape) == ((H, W), (H // 2, W // 2))
    assert det.flat_field.shape == (H, W)
    RE(bps.mv(txm.shutter, "open"))
    RE(count([det], num=2, md=det.start_metadata()))
    start = collector.of("start")[-1]
    assert (start["simulation"]["psf_sigma_px"], start["simulation"]["binning"]) == (2.0, 2)
    keys = collector.of("descriptor")[0]["data_keys"]
    assert keys["det"]["shape"] == [1, H // 2, W // 2]
    resource = next(d for d in collector.of("stream_resource") if d["data_key"] == "det")
    assert list(resource["parameters"]["chunk_shape"]) == [1, H // 2, W // 2]
    with h5py.File(resource["uri"].removeprefix("file://localhost"), "r") as f:
        frames = f[DATASET][()]
    assert frames.shape == (2, H // 2, W // 2) and frames.dtype == np.uint16
    # the same physics as the ophyd camera
    twin = make_sim_txm(detector_shape=(H, W), seed=2, flux=1000.0, data_dir=tmp_path / "twin",
                        psf_sigma_px=2.0, binning=2)
    twin.shutter.set("open")
    exposure = 1.0  # the async camera's default exposure
    np.testing.assert_array_equal(twin.detector.expected_counts(exposure),
                                  det.counting.expected_counts(exposure, transmission(
                                      txm.optics.line_integrals_at(0.0, 0.0), txm.optics.mu)))
    assert twin.detector.start_metadata() == det.start_metadata()


@pytest.mark.parametrize(("kwargs", "match"), [
    ({"psf_sigma_px": -0.5}, r"psf_sigma_px must be a finite number >= 0 .* got -0\.5"),
    ({"psf_sigma_px": float("nan")}, r"psf_sigma_px .* got nan"),
    ({"psf_sigma_px": float("inf")}, r"psf_sigma_px .* got inf"),
    ({"psf_sigma_px": "2"}, r"psf_sigma_px .* got '2'"),
    ({"psf_sigma_px": None}, r"psf_sigma_px .* got None"),
    ({"psf_sigma_px": True}, r"psf_sigma_px .* got True"),
    ({"binning": 0}, r"binning must be an integer >= 1 .* got 0"),
    ({"binning": 1.5}, r"binning must be an integer >= 1 .* got 1\.5"),
    ({"binning": 2.0}, r"binning .* got 2\.0"),
    ({"binning": True}, r"binning .* got True"),
    ({"binning": "2"}, r"binning .* got '2'"),
    ({"binning": 3}, r"binning 3 must divide both sides of the sensor shape \(32, 40\)"),
])
@pytest.mark.parametrize("flavour", ["ophyd", "ophyd-async"])
def test_bad_blur_or_binning_is_refused_before_building(RE, tmp_path, monkeypatch, kwargs,
                                                        match, flavour):
    def no_phantom(*args, **kw):
        raise AssertionError("the phantom was built before the arguments were checked")

    monkeypatch.setattr("lowdose_bluesky.devices.sim.txm.spheres_in_cube", no_phantom)
    with pytest.raises(ValueError, match=match):
        make_sim_txm(detector_shape=(32, 40), data_dir=tmp_path / "frames", flavour=flavour,
                     **kwargs)
    assert not (tmp_path / "frames").exists()


def test_counting_model_checks_its_own_arguments():
    with pytest.raises(ValueError, match="binning 5 must divide"):
        CountingModel((16, 16), flux=1.0, dark_current=0.0, read_noise=0.0, binning=5)
    with pytest.raises(ValueError, match="psf_sigma_px"):
        CountingModel((16, 16), flux=1.0, dark_current=0.0, read_noise=0.0, psf_sigma_px=-1)
    model = CountingModel((16, 16), flux=1.0, dark_current=0.0, read_noise=0.0, binning=4)
    with pytest.raises(ValueError, match=r"mean counts of shape \(16, 16\) do not match"):
        model.draw(np.ones((16, 16)), 1.0)
