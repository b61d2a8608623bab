"""Blind scans: ``lowdose_tomo_plan(..., reference_angles=())``, nothing at the long exposure."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from bluesky import RunEngine
from bluesky.simulators import RunEngineSimulator
from matplotlib.figure import Figure

from lowdose_bluesky.devices.sim import SimTXM, make_sim_txm
from lowdose_bluesky.plans import lowdose_tomo_plan, validate_scan
from lowdose_bluesky.report import collect_report, draw_report, summary_lines
from lowdose_bluesky.storage import RAW, subscribe_writer

BLIND = {"num_projections": 5, "num_darks": 2, "num_flats": 3, "long_exposure": 8.0,
         "short_exposure": 1.0, "reference_angles": ()}


def _plan(txm: SimTXM, **kwargs: object) -> object:
    return lowdose_tomo_plan(txm.detector, txm.rotation, sample_x=txm.sample_x,
                             shutter=txm.shutter, **{**BLIND, **kwargs})


def test_empty_reference_angles_make_a_blind_spec() -> None:
    spec = validate_scan(reference_angles=[], long_exposure=8.0, short_exposure=1.0,
                         start=0.0, stop=180.0, num_projections=5, num_darks=1, num_flats=1,
                         flat_offset=5.0, has_sample_stage=True, has_shutter=True)
    assert spec.blind and spec.reference_angles == ()
    assert spec.exposures == (1.0,) and spec.dose_ratio == 8.0
    assert not validate_scan(**{**spec.model_dump(), "reference_angles": (30.0, 90.0)}).blind


def test_blind_messages_set_no_long_exposure_and_open_no_reference_stream(txm: SimTXM) -> None:
    sim = RunEngineSimulator()
    sim.add_read_handler_for(txm.sample_x, 0.0)
    msgs = sim.simulate_plan(_plan(txm))
    exposure = txm.detector.exposure_time
    exposures = [m.args[0] for m in msgs if m.command == "set" and m.obj is exposure]
    assert exposures and set(exposures) == {1.0}  # never 8.0
    streams = [m.kwargs["name"] for m in msgs if m.command == "create"]
    assert streams == ["dark"] * 2 + ["flat"] * 3 + ["primary"] * 5
    cmds = [m.command for m in msgs]
    assert cmds.count("stage") == 3 and cmds.count("unstage") == 3  # dark, flat, primary
    assert msgs[1].command == "rewindable" and msgs[1].args == (False,)
    rot_moves = [m.args[0] for m in msgs if m.command == "set" and m.obj is txm.rotation]
    assert np.allclose(rot_moves, np.linspace(0, 180, 5))  # no visit to a reference angle
    shutter = [m.args[0] for m in msgs if m.command == "set" and m.obj is txm.shutter]
    assert shutter[0] == "close" and shutter[-1] == "close"
    (open_run,) = [m for m in msgs if m.command == "open_run"]
    assert open_run.kwargs["lowdose"]["blind"] is True
    assert open_run.kwargs["lowdose"]["streams"] == ["dark", "flat", "primary"]
    assert open_run.kwargs["reference_angles"] == []
    assert open_run.kwargs["long_exposure"] == 8.0 and open_run.kwargs["dose_ratio"] == 8.0


def test_runs_with_references_say_they_are_not_blind(txm: SimTXM) -> None:
    sim = RunEngineSimulator()
    sim.add_read_handler_for(txm.sample_x, 0.0)
    msgs = sim.simulate_plan(_plan(txm, reference_angles=(30.0, 120.0)))
    (open_run,) = [m for m in msgs if m.command == "open_run"]
    assert open_run.kwargs["lowdose"]["blind"] is False
    assert open_run.kwargs["lowdose"]["streams"] == ["dark", "flat", "reference", "primary"]


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({"reference_angles": "30"}, "must be a sequence of angles in degrees, got '30'"),
        ({"reference_angles": None}, "must be a sequence of angles in degrees, got None"),
        ({"reference_angles": (30.0, 30.0)}, "must be distinct"),
        ({"reference_angles": (200.0,)}, r"reference angles \[200.0\] lie outside"),
        ({"long_exposure": 0.5}, "long_exposure must be longer than short_exposure"),
        ({"long_exposure": float("nan")}, "long_exposure must be finite"),
    ],
)
def test_blind_scan_keeps_the_other_checks(txm: SimTXM, kwargs: dict, match: str) -> None:
    with pytest.raises(ValueError, match=match):
        next(_plan(txm, **kwargs))
    assert txm.rotation.position == 0.0 and txm.shutter.state.get() == "closed"


def test_blind_run_reads_back_through_tiled(tiled_client, frames_root: Path) -> None:
    txm = make_sim_txm(detector_shape=(16, 16), seed=0, data_dir=frames_root / "blind_run")
    RE = RunEngine({}, call_returns_result=False)
    subscribe_writer(RE, tiled_client)
    (uid,) = RE(_plan(txm, md={"sample": "blind"}))
    run = tiled_client[RAW][uid]
    assert set(run) == {"dark", "flat", "primary"}
    for stream, n in (("dark", 2), ("flat", 3), ("primary", 5)):
        assert run[stream]["det_image"].read().shape == (n, 16, 16), stream
        assert np.all(np.asarray(run[stream]["det_exposure_time"].read()) == 1.0), stream
    assert np.allclose(np.asarray(run["primary"]["rot"].read()), np.linspace(0, 180, 5))
    start = run.metadata["start"]
    assert start["lowdose"]["blind"] is True
    assert list(start["reference_angles"]) == []
    assert list(start["lowdose"]["streams"]) == ["dark", "flat", "primary"]
    assert (start["long_exposure"], start["short_exposure"], start["dose_ratio"]) == (8.0, 1.0,
                                                                                        8.0)
    assert start["sample"] == "blind"
    assert run.metadata["stop"]["exit_status"] == "success"
    assert txm.shutter.state.get() == "closed" and txm.sample_x.position == 0.0
    # the run summary of ``lowdose-bluesky show`` says so (no result: nothing analysed it)
    report = collect_report(tiled_client, uid)
    rows = dict(summary_lines(report))
    assert rows["exposures"] == "short 1.0 s only (blind run: long 8.0 s nominal, none acquired)"
    assert rows["stream dark"] == "(2, 16, 16)" and "stream reference" not in rows
    fig = Figure(figsize=(17, 8.5), layout="constrained")
    draw_report(fig, report)
    assert "dose ratio 8 (nominal), blind, no result" in fig.get_suptitle()
