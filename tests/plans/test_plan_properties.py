"""Properties of lowdose_tomo_plan's messages for random valid and invalid arguments.

Valid arguments: the simulated messages hold exactly ``num_projections`` primary frames
at evenly spaced, monotonic angles from ``start`` to ``stop``, one long and one short
reference frame at each reference angle, and the dark/flat frames asked for (at the
short exposure only, and nothing at the long one, in a blind scan without reference
angles). Invalid
arguments: a ``ValueError`` naming the problem comes out of the plan's first step, so
not a single message (let alone one that moves something) is produced.
"""

from __future__ import annotations

import math
import re
import warnings
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from bluesky.simulators import RunEngineSimulator
from hypothesis import given, settings
from hypothesis import strategies as st

from lowdose_bluesky.devices.sim import SimTXM, make_sim_txm
from lowdose_bluesky.plans import TomoScanWarning, lowdose_tomo_plan

#: Plenty for message-level properties; each example simulates a plan of < 200 messages.
SETTINGS = settings(max_examples=40, deadline=None)


@pytest.fixture(scope="module")
def sim(tmp_path_factory: pytest.TempPathFactory) -> SimTXM:
    """An 8x8 simulated TXM; plans are only simulated, nothing is acquired."""
    return make_sim_txm(detector_shape=(8, 8), seed=0,
                        data_dir=Path(tmp_path_factory.mktemp("plan_properties")))


@dataclass(frozen=True)
class Scan:
    """One set of plan arguments, with which optional devices are given."""

    kwargs: dict[str, Any]
    shutter: bool
    stage: bool

    def plan(self, txm: SimTXM) -> Any:
        """The plan generator for ``txm``."""
        return lowdose_tomo_plan(txm.detector, txm.rotation,
                                 shutter=txm.shutter if self.shutter else None,
                                 sample_x=txm.sample_x if self.stage else None, **self.kwargs)


_angles = st.floats(-360.0, 360.0, allow_nan=False, allow_subnormal=False)


@st.composite
def valid_scans(draw: st.DrawFn) -> Scan:
    """Random valid arguments: any direction, 0 (blind) to 4 reference angles, optional
    darks/flats."""
    start = draw(_angles)
    stop = draw(_angles.filter(lambda a: abs(a - start) >= 1e-2))
    lo, hi = sorted((start, stop))
    references = draw(st.lists(st.floats(lo, hi, allow_subnormal=False), min_size=0,
                               max_size=4, unique=True))
    short = draw(st.floats(1e-3, 10.0))
    shutter, stage = draw(st.booleans()), draw(st.booleans())
    kwargs = {
        "start": start, "stop": stop, "reference_angles": tuple(references),
        "num_projections": draw(st.integers(2, 40)),
        "short_exposure": short, "long_exposure": short * draw(st.floats(1.01, 100.0)),
        "num_darks": draw(st.integers(0, 3)) if shutter else 0,
        "num_flats": draw(st.integers(0, 3)) if stage else 0,
        "flat_offset": draw(st.floats(0.1, 10.0) | st.floats(-10.0, -0.1)),
    }
    return Scan(kwargs, shutter, stage)


def _frames(msgs: list[Any], txm: SimTXM) -> list[tuple[str, float | None, float | None]]:
    """``(stream, rotation setpoint, exposure setpoint)`` of every acquired frame."""
    frames, rotation, exposure, pending = [], None, None, None
    for msg in msgs:
        if msg.command == "set" and msg.obj is txm.rotation:
            rotation = msg.args[0]
        elif msg.command == "set" and msg.obj is txm.detector.exposure_time:
            exposure = msg.args[0]
        elif msg.command == "trigger" and msg.obj is txm.detector:
            pending = (rotation, exposure)
        elif msg.command == "create":  # trigger_and_read: trigger, wait, then create
            assert pending is not None
            frames.append((msg.kwargs["name"], *pending))
            pending = None
    return frames


@SETTINGS
@given(valid_scans())
def test_valid_arguments_give_the_promised_frames(sim: SimTXM, scan: Scan) -> None:
    kw = scan.kwargs
    simulator = RunEngineSimulator()
    simulator.add_read_handler_for(sim.sample_x, 0.0)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        msgs = simulator.simulate_plan(scan.plan(sim))
    single = [w for w in caught if issubclass(w.category, TomoScanWarning)]
    assert len(single) == (len(kw["reference_angles"]) == 1)
    frames = _frames(msgs, sim)
    short, long = kw["short_exposure"], kw["long_exposure"]

    primary = [(a, e) for s, a, e in frames if s == "primary"]
    assert len(primary) == kw["num_projections"]
    angles = np.array([a for a, _ in primary])
    assert angles[0] == kw["start"] and math.isclose(angles[-1], kw["stop"], abs_tol=1e-9)
    steps = np.diff(angles)
    assert np.all(np.sign(steps) == np.sign(kw["stop"] - kw["start"]))  # strictly monotonic
    np.testing.assert_allclose(steps, steps[0], atol=1e-9)  # evenly spaced
    assert all(e == short for _, e in primary)

    references = [(a, e) for s, a, e in frames if s == "reference"]
    assert references == [(a, t) for a in kw["reference_angles"] for t in (long, short)]
    blind = not kw["reference_angles"]
    for stream, n in (("dark", kw["num_darks"]), ("flat", kw["num_flats"])):
        expected = [short] * n if blind else [short] * n + [long] * n
        assert [e for s, _, e in frames if s == stream] == expected
    if blind:
        exposure = sim.detector.exposure_time
        assert long not in [m.args[0] for m in msgs if m.command == "set" and m.obj is exposure]
        assert "reference" not in {m.kwargs["name"] for m in msgs if m.command == "create"}
    (start_doc,) = [m for m in msgs if m.command == "open_run"]
    assert start_doc.kwargs["lowdose"]["blind"] is blind
    order = [s for s, _, _ in frames]
    assert order == sorted(order, key=["dark", "flat", "reference", "primary"].index)
    if scan.shutter:
        shutter = [m.args[0] for m in msgs if m.command == "set" and m.obj is sim.shutter]
        assert shutter[-1] == "close"


# --------------------------------------------------------------------------- invalid
def _nonfinite(draw: st.DrawFn, scan: Scan) -> tuple[dict, str]:
    name = draw(st.sampled_from(["start", "stop", "short_exposure", "long_exposure",
                                 "flat_offset"]))
    value = draw(st.sampled_from([math.nan, math.inf, -math.inf]))
    return {name: value}, rf"{name} must be finite, got {value!r}"


def _projections(draw: st.DrawFn, scan: Scan) -> tuple[dict, str]:
    n = draw(st.integers(-3, 1))
    return {"num_projections": n}, (rf"num_projections must be >= 2, got {n}" if n >= 0
                                    else rf"num_projections must be >= 0, got {n}")


def _non_integer(draw: st.DrawFn, scan: Scan) -> tuple[dict, str]:
    name = draw(st.sampled_from(["num_projections", "num_darks", "num_flats"]))
    value = draw(st.floats(0.5, 50.0).filter(lambda v: v != int(v)))
    return {name: value}, rf"{name} must be an integer, got {re.escape(repr(value))}"


def _exposures(draw: st.DrawFn, scan: Scan) -> tuple[dict, str]:
    short = scan.kwargs["short_exposure"]
    if draw(st.booleans()):
        return ({"short_exposure": -draw(st.floats(0.0, 5.0))},
                r"exposures must be > 0 s, got long_exposure=")
    return ({"long_exposure": short * draw(st.floats(0.01, 1.0))},
            r"long_exposure must be longer than short_exposure, got long_exposure=")


def _outside(draw: st.DrawFn, scan: Scan) -> tuple[dict, str]:
    lo, hi = sorted((scan.kwargs["start"], scan.kwargs["stop"]))
    bad = draw(st.sampled_from([lo - draw(st.floats(1e-3, 90.0)),
                                hi + draw(st.floats(1e-3, 90.0))]))
    angles = (*scan.kwargs["reference_angles"], bad)
    return ({"reference_angles": angles},
            re.escape(f"reference angles [{bad}] lie outside the rotation range [{lo}, {hi}] deg"))


def _duplicate(draw: st.DrawFn, scan: Scan) -> tuple[dict, str]:
    angles = scan.kwargs["reference_angles"] or (scan.kwargs["start"],)
    again = draw(st.sampled_from(range(len(angles))))
    return ({"reference_angles": (*angles, angles[again])},
            re.escape(f"reference_angles[{len(angles)}] = {float(angles[again])} repeats "
                      f"reference_angles[{again}]"))


def _not_a_sequence(draw: st.DrawFn, scan: Scan) -> tuple[dict, str]:
    value = draw(st.sampled_from(["30", 30.0, None, {30.0}]))
    return ({"reference_angles": value},
            rf"reference_angles must be a sequence of angles in degrees, got "
            rf"{re.escape(repr(value))}")


def _same_start_stop(draw: st.DrawFn, scan: Scan) -> tuple[dict, str]:
    start = scan.kwargs["start"]
    return ({"stop": start, "reference_angles": (start,)},
            re.escape(f"start and stop must differ, got start=stop={float(start)}"))


def _tiny_step(draw: st.DrawFn, scan: Scan) -> tuple[dict, str]:
    start = scan.kwargs["start"]
    n = draw(st.integers(3, 1000))
    stop = start + (n - 1) * draw(st.floats(1e-9, 9e-7))
    if stop == start:
        stop = math.nextafter(start, math.inf)
    return ({"stop": stop, "num_projections": n, "reference_angles": (start,)},
            r"the angular step \|stop - start\| / \(num_projections - 1\) = .* deg is below "
            r"1e-06 deg")


def _negative_count(draw: st.DrawFn, scan: Scan) -> tuple[dict, str]:
    name = draw(st.sampled_from(["num_darks", "num_flats"]))
    n = draw(st.integers(-5, -1))
    return {name: n}, rf"{name} must be >= 0, got {n}"


def _missing_device(draw: st.DrawFn, scan: Scan) -> tuple[dict, str]:
    if draw(st.booleans()):
        return ({"num_darks": draw(st.integers(1, 3)), "_shutter": False},
                r"darks requested but no shutter was given to close the beam; pass shutter=")
    return ({"num_flats": draw(st.integers(1, 3)), "_stage": False},
            r"flats requested but no sample_x stage was given")


def _zero_offset(draw: st.DrawFn, scan: Scan) -> tuple[dict, str]:
    return ({"num_flats": draw(st.integers(1, 3)), "flat_offset": 0.0, "_stage": True},
            r"flat_offset must be non-zero to move the sample out of the beam for flats, got 0")


_MUTATIONS = [_nonfinite, _projections, _non_integer, _exposures, _outside, _duplicate,
              _not_a_sequence, _same_start_stop, _tiny_step, _negative_count, _missing_device,
              _zero_offset]


@st.composite
def invalid_scans(draw: st.DrawFn) -> tuple[Scan, str]:
    """A valid scan with one thing made invalid, and the message expected for it."""
    scan = draw(valid_scans())
    mutation = draw(st.sampled_from(_MUTATIONS))
    change, message = mutation(draw, scan)
    shutter = change.pop("_shutter", scan.shutter)
    stage = change.pop("_stage", scan.stage)
    return Scan({**scan.kwargs, **change}, shutter, stage), message


@SETTINGS
@given(invalid_scans())
def test_invalid_arguments_raise_before_any_message(sim: SimTXM,
                                                    case: tuple[Scan, str]) -> None:
    scan, message = case
    positions = (sim.rotation.position, sim.sample_x.position, sim.shutter.state.get(),
                 sim.detector.exposure_time.get())
    plan = scan.plan(sim)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", TomoScanWarning)
        with pytest.raises(ValueError, match=r"^invalid lowdose_tomo_plan arguments: .*"
                                             + message):
            next(plan)  # the very first step: not one message has been produced
    assert (sim.rotation.position, sim.sample_x.position, sim.shutter.state.get(),
            sim.detector.exposure_time.get()) == positions
