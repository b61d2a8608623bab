"""Bad runs seen by LiveEnhancer: a failed result naming the problem, the raw run intact.

Each test runs the real plan on the tiny simulated TXM with Tiled. Bad frames are made
by the simulation itself where it can (saturating flux, beam lost, shutter stuck closed)
and otherwise by a frame source that alters the frames the callback reads (the raw data
in the files stays as acquired).
"""

from __future__ import annotations

import logging
import re
from collections.abc import Callable
from typing import Any

import numpy as np
import pytest

from lowdose_bluesky import results
from lowdose_bluesky.callbacks import LiveEnhancer
from lowdose_bluesky.devices.sim import SimTXM, make_sim_txm
from lowdose_bluesky.engine import FileFrameSource, FrameRef
from lowdose_bluesky.plans import TomoScanWarning
from lowdose_bluesky.storage import RAW

from ._live import TRAIN
from ._live import scan as _scan

Change = Callable[[FrameRef, np.ndarray], np.ndarray]


class _Altered(FileFrameSource):
    """Frames from the detector's files, altered by ``change(ref, frame)`` when read."""

    def __init__(self, change: Change) -> None:
        super().__init__()
        self.change = change

    def read(self, ref: FrameRef) -> np.ndarray:
        return self.change(ref, super().read(ref))


def _at(stream: str, index: int, change: Callable[[np.ndarray], np.ndarray]) -> Change:
    """Apply ``change`` to frame ``index`` of ``stream`` only (``index=-1``: every frame)."""
    def apply(ref: FrameRef, frame: np.ndarray) -> np.ndarray:
        if ref["stream"] == stream and index in (-1, ref["index"]):
            return change(frame.copy())
        return frame

    return apply


def _live(client: Any, change: Change | None = None, **kwargs: Any) -> LiveEnhancer:
    """A fast LiveEnhancer (1 epoch, no reconstruction unless asked)."""
    options = {"method": "supervised", "epochs": 1, "progress": False, "reconstruct": False,
               "train_options": TRAIN,
               "frame_source": None if change is None else _Altered(change), **kwargs}
    return LiveEnhancer(client, process=False, **options)


def _failure(client: Any, live: LiveEnhancer, uid: str, n_primary: int = 5) -> str:
    """The error stored for a failed run; checks that the raw run is intact."""
    with pytest.raises(RuntimeError, match=f"analysis of run {uid} failed: ValueError: "):
        live.wait(timeout=300)
    live.close()
    res = results(client, uid)
    assert res.status == "failed"
    raw = client[RAW][uid]["primary"]["det_image"].read()
    assert raw.shape[0] == n_primary  # nothing acquired is lost
    error = res.metadata["error"]
    assert error.startswith("ValueError: ")
    return error.removeprefix("ValueError: ")


def _run(client: Any, RE: Any, txm: SimTXM, live: LiveEnhancer, **kwargs: Any) -> str:
    RE.subscribe(live)
    (uid,) = _scan(RE, txm, **{"num_projections": 5, **kwargs})
    return uid


@pytest.fixture
def bright_txm(frames_root, request) -> SimTXM:
    """The live TXM at a flux that saturates the 30 s exposures (1.5e5 counts > 65535)."""
    return make_sim_txm(detector_shape=(32, 32), seed=3, flux=5000.0,
                        data_dir=frames_root / request.node.name)


@pytest.fixture
def tiny_txm(frames_root, request) -> SimTXM:
    """A TXM with an 8x8 detector."""
    return make_sim_txm(detector_shape=(8, 8), seed=3, flux=50.0,
                        data_dir=frames_root / request.node.name)


# ------------------------------------------------------ 1. NaN/inf and all-zero frames
def test_all_zero_primary_frame(tiled_client, live_RE, live_txm) -> None:
    live = _live(tiled_client, _at("primary", 2, np.zeros_like))
    uid = _run(tiled_client, live_RE, live_txm, live)
    assert _failure(tiled_client, live, uid) == (
        "primary frame 2 (exposure 1.0 s, angle 90.0 deg) is zero everywhere: no beam reached "
        "the detector (was the beam off or the shutter stuck closed?); every primary frame "
        "must hold counts")


def test_all_zero_reference_frames(tiled_client, live_RE, live_txm) -> None:
    live = _live(tiled_client, _at("reference", -1, np.zeros_like))
    uid = _run(tiled_client, live_RE, live_txm, live)
    assert _failure(tiled_client, live, uid) == (
        "reference frame 0 (exposure 30.0 s, angle 30.0 deg) is zero everywhere: no beam "
        "reached the detector (was the beam off or the shutter stuck closed?); every "
        "reference frame must hold counts")


def test_beam_lost_during_the_rotation(tiled_client, live_RE, live_txm) -> None:
    """Frames at the dark level (not exactly zero) are caught by their transmission."""
    stages: list[Any] = []

    def beam_dump(msg: Any) -> None:
        if msg.command == "stage":
            stages.append(msg)
            if len(stages) == 4:  # dark, flat, reference, then the rotation: beam lost
                live_txm.shutter.state.put("closed")

    live_RE.msg_hook = beam_dump
    live = _live(tiled_client)
    uid = _run(tiled_client, live_RE, live_txm, live)
    error = _failure(tiled_client, live, uid)
    assert re.fullmatch(
        r"primary frame 0 \(exposure 1.0 s, angle 0.0 deg\) has -?0\.\d\d% of the open-beam "
        r"counts above the dark level \(mean -?[\d.e-]+ of [\d.]+ counts\): no beam reached the "
        r"detector \(beam lost or shutter closed\?\); reference and primary frames need a mean "
        r"transmission of at least 1%", error), error


def test_nan_in_a_float_primary_frame(tiled_client, live_RE, live_txm) -> None:
    def with_nan(frame: np.ndarray) -> np.ndarray:
        out = frame.astype(np.float32)
        out[3, 4] = np.nan
        return out

    live = _live(tiled_client, _at("primary", 1, with_nan))
    uid = _run(tiled_client, live_RE, live_txm, live)
    assert _failure(tiled_client, live, uid) == (
        "primary frame 1 (exposure 1.0 s, angle 45.0 deg) holds 1 NaN and 0 infinite values "
        "(of 1024); only finite counts are allowed")


def test_inf_in_a_dark_frame(tiled_client, live_RE, live_txm) -> None:
    def with_inf(frame: np.ndarray) -> np.ndarray:
        out = frame.astype(np.float64)
        out[0, :2] = np.inf
        return out

    live = _live(tiled_client, _at("dark", 0, with_inf))
    uid = _run(tiled_client, live_RE, live_txm, live)
    assert _failure(tiled_client, live, uid) == (
        "dark frame 0 (exposure 1.0 s) holds 0 NaN and 2 infinite values (of 1024); only "
        "finite counts are allowed")


# ---------------------------------------------------------------- 2. saturated frames
def test_saturated_flats(tiled_client, live_RE, bright_txm) -> None:
    live = _live(tiled_client)
    uid = _run(tiled_client, live_RE, bright_txm, live)
    assert _failure(tiled_client, live, uid) == (
        "flat frame 3 (exposure 30.0 s) has 100.0% of its pixels at the detector maximum 65535 "
        "(saturated); at most 1% are allowed in flat frames: shorten long_exposure (30.0 s) or "
        "lower the flux")


def test_saturated_long_reference_frame(tiled_client, live_RE, live_txm) -> None:
    def saturate(frame: np.ndarray) -> np.ndarray:
        frame[:8] = np.iinfo(frame.dtype).max
        return frame

    live = _live(tiled_client, _at("reference", 2, saturate))
    uid = _run(tiled_client, live_RE, live_txm, live)
    assert _failure(tiled_client, live, uid) == (
        "reference frame 2 (exposure 30.0 s, angle 120.0 deg) has 25.0% of its pixels at the "
        "detector maximum 65535 (saturated); at most 1% are allowed in reference frames: "
        "shorten long_exposure (30.0 s) or lower the flux")


def test_saturated_primary_frames_are_a_recorded_warning(tiled_client, live_RE, live_txm,
                                                         caplog) -> None:
    """Primary frames: the analysis goes on; the result lists the frames, a warning is logged."""
    def saturate(ref: FrameRef, frame: np.ndarray) -> np.ndarray:
        if ref["stream"] == "primary" and ref["index"] in (1, 3):
            frame = frame.copy()
            frame[: 4 * ref["index"]] = 65535
        return frame

    caplog.set_level(logging.WARNING, logger="lowdose_bluesky.recipes.tomography.analysis")
    live = _live(tiled_client, saturate, reconstruct=True)
    uid = _run(tiled_client, live_RE, live_txm, live)
    live.wait(timeout=300)
    live.close()
    res = results(tiled_client, uid)
    assert res.status == "complete" and res.reconstruction.shape == (32, 32, 32)
    assert res.metadata["warnings"] == [
        "2 primary frame(s) have more than 1% of their pixels at the detector maximum 65535 "
        "(frames 1, 3; worst: frame 3, 37.5%): their line integrals are clipped there; shorten "
        "short_exposure or lower the flux"]
    assert any("primary frame 1 (exposure 1.0 s, angle 45.0 deg) has 12.5% of its pixels at "
               "the detector maximum 65535 (saturated)" in r.getMessage() for r in caplog.records)


# ------------------------------------------------------- 3. flats minus darks <= 0
def test_shutter_stuck_closed(tiled_client, live_RE, live_txm, monkeypatch) -> None:
    """Flats without beam are no brighter than darks: the failure names pixels and exposure."""
    monkeypatch.setattr(live_txm.optics, "beam_open", lambda: False)
    live = _live(tiled_client)
    uid = _run(tiled_client, live_RE, live_txm, live)
    error = _failure(tiled_client, live, uid)
    assert re.fullmatch(
        rf"run {uid}: flats minus darks at exposure 30.0 s is <= 0 at \d+ of 1024 pixels "
        r"\(\d+\.\d%; mean flat [\d.]+, mean dark [\d.]+ counts\); allowed: at most 1 such dead "
        r"pixels \(0.1%\): was the beam off or the shutter closed during the flats, or are darks "
        r"and flats swapped\?", error), error
    assert int(re.search(r"<= 0 at (\d+) of", error).group(1)) > 100


def test_one_dead_pixel_is_a_recorded_warning(tiled_client, live_RE, live_txm) -> None:
    def dead(frame: np.ndarray) -> np.ndarray:
        frame[5, 7] = 0
        return frame

    live = _live(tiled_client, _at("flat", -1, dead))
    uid = _run(tiled_client, live_RE, live_txm, live)
    live.wait(timeout=300)
    live.close()
    res = results(tiled_client, uid)
    assert res.status == "complete"
    assert res.metadata["warnings"] == [
        f"flats minus darks at exposure {t} s is <= 0 at 1 of 1024 pixels (dead pixels): their "
        "transmission is set to 1" for t in (30.0, 1.0)]


# ------------------------------------------------------------ 4. mismatched shapes
def test_primary_frames_of_another_shape_than_the_darks(tiled_client, live_RE, live_txm) -> None:
    live = _live(tiled_client, _at("primary", -1, lambda f: f[:16, :16]))
    uid = _run(tiled_client, live_RE, live_txm, live)
    assert _failure(tiled_client, live, uid) == (
        "primary frame 0 (exposure 1.0 s, angle 0.0 deg) has shape (16, 16) but the run's "
        "first frame (dark frame 0) has shape (32, 32): frames of every stream (dark, flat, "
        "reference, primary) must have the same shape; was the detector's ROI or binning "
        "changed during the run?")


def test_reference_frames_of_another_shape_than_the_flats(tiled_client, live_RE,
                                                          live_txm) -> None:
    live = _live(tiled_client, _at("reference", 1, lambda f: f[:, :31]))
    uid = _run(tiled_client, live_RE, live_txm, live, num_darks=0)
    assert _failure(tiled_client, live, uid) == (
        "reference frame 1 (exposure 1.0 s, angle 30.0 deg) has shape (32, 31) but the run's "
        "first frame (flat frame 0) has shape (32, 32): frames of every stream (dark, flat, "
        "reference, primary) must have the same shape; was the detector's ROI or binning "
        "changed during the run?")


# ------------------------------------------------------------ 5. one reference angle
def test_single_reference_angle_trains_on_one_pair(tiled_client, live_RE, live_txm) -> None:
    live = _live(tiled_client)
    live_RE.subscribe(live)
    with pytest.warns(TomoScanWarning, match=r"a single reference angle \(90.0 deg\)"):
        (uid,) = _scan(live_RE, live_txm, num_projections=5, reference_angles=(90.0,))
    live.wait(timeout=300)
    live.close()
    res = results(tiled_client, uid)
    assert res.status == "complete" and res.enhanced.shape == (5, 32, 32)
    config = res.metadata["model"]["config"]
    assert config["n_pairs"] == 1
    assert config["split"] == "spatial" and config["n_val_patches"] > 0  # band inside the frame


# --------------------------------------------------------- 8. frames below the patch
def test_detector_smaller_than_the_patch(tiled_client, live_RE, tiny_txm) -> None:
    live = _live(tiled_client, arch="yang2018", train_options={})
    uid = _run(tiled_client, live_RE, tiny_txm, live)
    assert _failure(tiled_client, live, uid) == (
        "frames of 8x8 are smaller than the 32x32 patch of the 'yang2018' network: "
        "LiveEnhancer(arch='yang2018') needs frames of at least 32x32; use arch='unet' (any "
        "frame size) or a smaller train_options['patch_size'] (a multiple of 8, >= 16)")


# ------------------------------------------------------------- 9. missing streams
def test_run_without_darks(tiled_client, live_RE, live_txm) -> None:
    live = _live(tiled_client)
    uid = _run(tiled_client, live_RE, live_txm, live, num_darks=0)
    assert _failure(tiled_client, live, uid) == (
        f"run {uid} has no dark frames at exposure 1.0 s (darks at [] s, flats at [1.0, 30.0] "
        "s): flat-field correction needs dark and flat frames at every exposure; to acquire "
        "them pass shutter=<the shutter> and num_darks >= 1 to lowdose_tomo_plan")


def test_run_without_darks_or_flats(tiled_client, live_RE, live_txm) -> None:
    live = _live(tiled_client)
    uid = _run(tiled_client, live_RE, live_txm, live, num_darks=0, num_flats=0)
    assert _failure(tiled_client, live, uid) == (
        f"run {uid} has no dark and no flat frames at exposure 1.0 s (darks at [] s, flats at "
        "[] s): flat-field correction needs dark and flat frames at every exposure; to acquire "
        "them pass shutter=<the shutter> and num_darks >= 1 and pass sample_x=<the sample "
        "stage> and num_flats >= 1 to lowdose_tomo_plan")


def test_run_without_reference_stream(tiled_client, live_RE, live_txm) -> None:
    """A run whose reference stream never reaches the callback (e.g. another plan)."""
    live = _live(tiled_client)
    dropped: set[str] = set()

    def without_references(name: str, doc: dict) -> None:
        if name == "descriptor" and doc["name"] == "reference":
            dropped.add(doc["uid"])
        if not ((name == "descriptor" and doc["uid"] in dropped)
                or (name == "event" and doc["descriptor"] in dropped)):
            live(name, doc)

    live_RE.subscribe(without_references)
    (uid,) = _scan(live_RE, live_txm, num_projections=5)
    assert _failure(tiled_client, live, uid) == (
        f"run {uid} has no reference frames (no 'reference' stream; 4 frames expected at "
        "[30.0, 120.0] deg): the enhancer is trained on the long/short pairs taken at the "
        "reference angles; acquire them with lowdose_tomo_plan(..., reference_angles=(30.0, "
        "120.0)) or use a trained model with LiveEnhancer(pretrained=..., skip_training=True)")


def test_incomplete_reference_pairs(tiled_client, live_RE, live_txm) -> None:
    """Only long-exposure reference frames reach the callback: no pair to train on."""
    live = _live(tiled_client)
    reference: set[str] = set()

    def long_only(name: str, doc: dict) -> None:
        if name == "descriptor" and doc["name"] == "reference":
            reference.add(doc["uid"])
        if name == "event" and doc["descriptor"] in reference and \
                doc["data"]["det_exposure_time"] != 30.0:
            return
        live(name, doc)

    live_RE.subscribe(long_only)
    (uid,) = _scan(live_RE, live_txm, num_projections=5)
    assert _failure(tiled_client, live, uid) == (
        f"run {uid} has no complete long/short reference pair: reference frames (angle deg, "
        "exposure s) seen: [(30.0, 30.0), (120.0, 30.0)]; each reference angle needs one frame "
        "at long_exposure=30.0 s and one at short_exposure=1.0 s")
