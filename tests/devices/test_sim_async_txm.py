"""The simulated TXM as ophyd-async devices: counting physics, files, step and fly scans."""

import asyncio
import time

import bluesky.plan_stubs as bps
import h5py
import numpy as np
import pytest
from bluesky.run_engine import call_in_bluesky_event_loop
from ophyd_async.core import DetectorTrigger, FlyMotorInfo, TriggerInfo

from lowdose_bluesky.devices import DATASET
from lowdose_bluesky.devices.sim import make_sim_txm
from lowdose_bluesky.devices.sim.async_devices import (
    ROTATION_DATASET,
    MotionProfile,
    SimClock,
)
from lowdose_bluesky.devices.sim.async_devices import factory as async_factory
from lowdose_bluesky.devices.sim.counting import transmission

SHAPE = (32, 32)
SEED = 5
FLUX = 1000.0


@pytest.fixture
def async_txm(RE, tmp_path):
    return make_sim_txm(detector_shape=SHAPE, seed=SEED, data_dir=tmp_path / "frames",
                        flux=FLUX, flavour="ophyd-async")


def _expected_mean(txm, angles, exposure):
    """Mean counts of a frame whose transmission is averaged over ``angles``."""
    det = txm.detector
    transmitted = np.mean([transmission(txm.optics.line_integrals_at(a, 0.0), txm.optics.mu)
                           for a in angles], axis=0, dtype=np.float32)
    lam = det.counting.expected_counts(exposure, transmitted)
    sigma = np.sqrt(lam.sum() + lam.size * det.read_noise**2) / lam.size
    return float(lam.mean() + det.dark_current * exposure), float(sigma)


def _file_of(collector):
    resources = {d["data_key"]: d for d in collector.of("stream_resource")}
    uris = {d["uri"] for d in resources.values()}
    assert len(uris) == 1
    return resources, uris.pop().removeprefix("file://localhost")


def test_step_frames_follow_the_counting_physics(RE, collector, async_txm, tmp_path):
    txm = async_txm
    det, rot = txm.detector, txm.rotation
    assert (det.name, rot.name, txm.flavour) == ("det", "rot", "ophyd-async")
    assert det.hints == {"fields": ["det"]} and det.angle_data_key == "det-rotation"
    assert det.frame_shape == SHAPE

    def plan():
        yield from bps.open_run()
        yield from bps.stage(det)
        yield from bps.mv(txm.shutter, "open")
        yield from bps.prepare(det, TriggerInfo(livetime=0.1), wait=True)
        yield from bps.mv(rot, 30)
        yield from bps.trigger_and_read([det, rot])
        yield from bps.mv(txm.shutter, "close")
        # a new exposure within the same stage: the same file
        yield from bps.prepare(det, TriggerInfo(livetime=4.0), wait=True)
        yield from bps.trigger_and_read([det, rot])
        yield from bps.unstage(det)
        yield from bps.close_run()

    RE(plan())
    names = [n for n, _ in collector.docs]
    assert names.count("stream_resource") == 2 and names.count("stream_datum") == 4
    resources, path = _file_of(collector)
    assert set(resources) == {"det", "det-rotation"}
    assert resources["det"]["mimetype"] == "application/x-hdf5"
    assert resources["det"]["parameters"]["dataset"] == DATASET
    assert resources["det-rotation"]["parameters"]["dataset"] == ROTATION_DATASET
    assert path.startswith(str(txm.data_dir)) and path.endswith(".h5")
    assert [d["data"] for d in collector.events("primary")] == [{"rot": 30.0}] * 2
    keys = collector.of("descriptor")[0]["data_keys"]
    assert keys["det"]["shape"] == [1, *SHAPE] and keys["det"]["external"] == "STREAM:"
    with h5py.File(path, "r") as f:
        frames = f[DATASET][()]
        angles = f[ROTATION_DATASET][()]
    assert frames.shape == (2, *SHAPE) and frames.dtype == np.uint16
    assert angles.tolist() == [30.0, 30.0]
    mean, sigma = _expected_mean(txm, [30.0], 0.1)
    assert frames[0].mean() == pytest.approx(mean, abs=5 * sigma)
    # the shutter closed: a dark frame
    assert frames[1].mean() == pytest.approx(det.dark_current * 4.0, abs=0.5)

    # same seed, angle and exposure: the ophyd flavour draws the very same frame
    twin = make_sim_txm(detector_shape=SHAPE, seed=SEED, data_dir=tmp_path / "twin", flux=FLUX)
    twin.shutter.set("open")
    twin.rotation.set(30.0)
    assert np.array_equal(twin.detector.flat_field, det.flat_field)
    assert np.array_equal(twin.detector.acquire_frame(0.1), frames[0])
    assert twin.detector.start_metadata() == det.start_metadata()


def test_fly_records_an_angle_per_frame(RE, collector, async_txm):
    txm = async_txm
    det, rot = txm.detector, txm.rotation
    n, livetime, deadtime, speed = 12, 0.05, 0.05, 10.0
    period = livetime + deadtime
    motor_info = FlyMotorInfo(start_position=0.0, end_position=speed * n * period,
                              time_for_move=n * period)

    def plan():
        yield from bps.open_run()
        yield from bps.stage_all(det, rot)
        yield from bps.mv(txm.shutter, "open")
        yield from bps.prepare(rot, motor_info, wait=True)
        yield from bps.prepare(det, TriggerInfo(number_of_events=n, livetime=livetime,
                                                deadtime=deadtime), wait=True)
        yield from bps.declare_stream(det, name="primary", collect=True)
        yield from bps.kickoff(rot, wait=True)
        yield from bps.kickoff(det, wait=True)
        yield from bps.collect_while_completing([rot, det], [det], flush_period=0.05)
        yield from bps.unstage_all(det, rot)
        yield from bps.close_run()

    RE(plan())
    datums = collector.of("stream_datum")
    assert datums and max(d["indices"]["stop"] for d in datums) == n
    _, path = _file_of(collector)
    with h5py.File(path, "r") as f:
        frames = f[DATASET][()].astype(float)
        angles = f[ROTATION_DATASET][()]
    assert frames.shape == (n, *SHAPE) and angles.shape == (n,)
    # kicked off once at speed: frame i is centred on start + speed * (i * period + t / 2)
    assert np.all(np.diff(angles) > 0)
    np.testing.assert_allclose(np.diff(angles), speed * period, rtol=1e-9)
    assert angles[0] == pytest.approx(speed * livetime / 2)
    # each frame integrates the beam over its arc (three sub-angles)
    arc = speed * livetime
    for frame, middle in zip(frames[::4], angles[::4], strict=True):
        sub = [middle + arc * ((k + 0.5) / 3 - 0.5) for k in range(3)]
        mean, sigma = _expected_mean(txm, sub, livetime)
        assert frame.mean() == pytest.approx(mean, abs=5 * sigma)
    # the stage stops at the ramp-down end
    acceleration = call_in_bluesky_event_loop(rot.acceleration_time.get_value())
    assert rot.position == pytest.approx(motor_info.ramp_down_end_pos(acceleration))
    assert rot.trajectory.speed == pytest.approx(speed)
    assert rot.position_at(rot.trajectory.t_start + acceleration) == pytest.approx(0.0)


def test_fly_faster_than_max_velocity_is_refused(RE, async_txm):
    rot = async_txm.rotation
    too_fast = FlyMotorInfo(start_position=0.0, end_position=100.0, time_for_move=0.5)
    with pytest.raises(ValueError, match=r"200 deg/s.*max_velocity 90 deg/s"):
        RE(bps.prepare(rot, too_fast, wait=True))
    assert rot.position == 0.0


def test_detector_reports_internal_trigger_and_readout(RE, async_txm):
    triggers, deadtime = call_in_bluesky_event_loop(
        async_txm.detector.get_trigger_deadtime())
    assert triggers == {DetectorTrigger.INTERNAL} and deadtime == pytest.approx(0.005)


def test_shutter_rejects_unknown_command(RE, async_txm):
    with pytest.raises(ValueError, match="shutter accepts"):
        async_txm.shutter.set("half-open")
    assert not async_txm.shutter.is_open
    assert call_in_bluesky_event_loop(async_txm.shutter.state.get_value()) == "closed"


def test_bad_flavour_is_refused(tmp_path):
    with pytest.raises(ValueError, match=r"'ophyd', 'ophyd-async'.*'epics'"):
        make_sim_txm(detector_shape=(8, 8), data_dir=tmp_path, flavour="epics")


def test_async_flavour_needs_a_run_engine(tmp_path, monkeypatch):
    monkeypatch.setattr(async_factory, "get_bluesky_event_loop", lambda: None)
    with pytest.raises(RuntimeError, match=r"RunEngine\(\)"):
        make_sim_txm(detector_shape=(8, 8), data_dir=tmp_path, flavour="ophyd-async")


@pytest.mark.parametrize(("realistic", "livetime"), [(False, 30.0), (True, 0.2)])
def test_trigger_takes_the_exposure_on_the_clock(RE, tmp_path, realistic, livetime):
    txm = make_sim_txm(detector_shape=(8, 8), seed=0, data_dir=tmp_path, flavour="ophyd-async",
                       realistic_timing=realistic)
    det, elapsed = txm.detector, []

    def plan():
        yield from bps.stage(det)
        yield from bps.prepare(det, TriggerInfo(livetime=livetime), wait=True)
        before = (time.monotonic(), txm.clock.now())
        yield from bps.trigger(det, wait=True)
        elapsed.append((time.monotonic() - before[0], txm.clock.now() - before[1]))
        yield from bps.unstage(det)

    RE(plan())
    wall, clock = elapsed[0]
    assert clock >= livetime
    assert wall >= livetime if realistic else wall < 5.0


def test_virtual_clock_advances_without_waiting():
    async def scenario():
        clock = SimClock()
        woken = []

        async def follower():
            await clock.wait_until(5.0)
            woken.append(clock.now())

        task = asyncio.create_task(follower())
        await clock.sleep(2.0)
        assert not woken  # waiting does not advance the time
        await clock.sleep_until(6.0)
        await task
        return clock.now(), woken

    assert asyncio.run(scenario()) == (6.0, [6.0])


def test_sleep_until_reaches_the_very_time_a_follower_waits_for():
    # 0.0416... + (1.6533... - 0.0416...) is an ulp short of 1.6533...: advancing by the
    # difference left the follower (a flying stage) waiting for ever
    start, end = 0.0416208104052026, 1.6533166247903555
    assert start + (end - start) < end

    async def scenario():
        clock = SimClock(start=start)
        follower = asyncio.create_task(clock.wait_until(end))
        await asyncio.sleep(0)
        await clock.sleep_until(end)
        await asyncio.wait_for(follower, timeout=5.0)
        return clock.now()

    assert asyncio.run(scenario()) == end


def test_motion_profile_ramps_cruises_and_clamps():
    profile = MotionProfile(start=-0.5, end=10.5, speed=10.0, acceleration_time=0.1,
                            t_start=1.0)
    assert profile.duration == pytest.approx(1.2)  # 0.1 s ramps, 10 deg at 10 deg/s
    assert profile.position(0.0) == -0.5 and profile.position(5.0) == 10.5
    assert profile.position(1.05) == pytest.approx(-0.5 + 10.0 * 0.05**2 / 0.2)
    assert profile.position(1.1) == pytest.approx(0.0)
    assert profile.position(1.6) == pytest.approx(5.0)
    assert profile.position(2.1) == pytest.approx(10.0)
    assert profile.position(2.15) == pytest.approx(10.5 - 10.0 * 0.05**2 / 0.2)
    backwards = MotionProfile(start=3.0, end=1.0, speed=0.0, acceleration_time=0.1, t_start=0)
    assert backwards.duration == 0 and backwards.position(0.0) == 1.0
