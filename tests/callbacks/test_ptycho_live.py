"""The ptychography recipe on the live engine: PtychoNN trained on the dense field, stitched."""

from __future__ import annotations

import numpy as np
import pytest
from bluesky import RunEngine

from lowdose_bluesky import results
from lowdose_bluesky.callbacks import LiveEnhancer
from lowdose_bluesky.devices.sim.ptycho import make_sim_ptycho
from lowdose_bluesky.plans import lowdose_ptycho_plan
from lowdose_bluesky.ptycho import test_object as make_object
from lowdose_bluesky.storage import subscribe_writer

# a 96 x 96 object, 32 x 32 patterns (a probe 0.6 um across), 0.05 um pixels
SMALL = {"field": (0.0, 0.0, 3.2, 3.2), "train_field": (0.0, 0.0, 0.8, 3.2),
         "train_step": 0.2, "sparse_step": 0.6, "exposure": 0.1}
FAST = {"iterative_epochs": 10, "epochs": 3, "max_seconds": 10.0, "synthetic_pairs": 2000}


def scan_and_analyse(tiled_client, data_dir, options):
    """One default scan of the small setup with the recipe's ``options``: sim, result."""
    RE = RunEngine({}, call_returns_result=False)
    subscribe_writer(RE, tiled_client, batch_size=10)
    sim = make_sim_ptycho(make_object((96, 96), seed=3), pattern_shape=(32, 32), seed=3,
                          data_dir=data_dir)
    live = LiveEnhancer(tiled_client, process=False, progress=False,
                        recipe_options={"ptycho": {**FAST, **options}})
    RE.subscribe(live)
    (uid,) = RE(lowdose_ptycho_plan(**sim.devices, **SMALL))
    live.wait(timeout=300)
    live.close()
    return sim, results(tiled_client, uid)


@pytest.mark.parametrize("model", ["linear", "ptychonn"])
def test_scan_is_stitched_live_and_stored(tiled_client, frames_root, model):
    sim, res = scan_and_analyse(tiled_client, frames_root / f"ptycho-live-{model}",
                                {"model": model})
    md = res.metadata
    assert res.status == "complete" and md["recipe"] == "ptycho"
    assert md["patterns"] == {"train": 5 * 17, "sparse": 4 * 6}
    assert res.phase.shape == res.amplitude.shape == res.phase_iterative.shape == (96, 96)
    # stitched where the sparse probes reached, NaN elsewhere; the same pixels both ways
    covered = np.isfinite(res.phase)
    assert 0.05 < covered.mean() < 0.9 and not covered[:, :20].any()
    np.testing.assert_array_equal(covered, np.isfinite(res.amplitude))
    assert np.nanmax(np.abs(res.phase)) <= np.pi + 1e-6
    # the iterative reconstruction of the dense field: left strip only
    dense = np.isfinite(res.phase_iterative)
    assert dense[20:70, 16:30].all() and not dense[:, -10:].any()
    assert md["iterative"]["library"] == "pty-chi" and md["timings"]["patterns_per_s"] > 0
    assert len(res.checkpoint) > 0
    with pytest.raises(KeyError):
        res.phase_refined  # noqa: B018  (refine_epochs=0 by default)
    if model == "linear":  # fitted in a second; PtychoNN does not learn in 3 epochs
        assert md["model"]["simulated_pairs"] == 2000 and md["model"]["measured_pairs"] == 85
        correlation = np.corrcoef(res.phase[covered], np.angle(sim.obj)[covered])[0, 1]
        assert correlation > 0.7


def test_a_scan_without_training_field_uses_a_pretrained_model(tiled_client, frames_root):
    RE = RunEngine({}, call_returns_result=False)
    subscribe_writer(RE, tiled_client, batch_size=10)
    sim = make_sim_ptycho(make_object((96, 96), seed=4), pattern_shape=(32, 32), seed=4,
                          data_dir=frames_root / "ptycho-pretrained")
    live = LiveEnhancer(tiled_client, process=False, progress=False,
                        recipe_options={"ptycho": FAST})
    RE.subscribe(live)
    RE(lowdose_ptycho_plan(**sim.devices, **SMALL))
    trained = live.wait(timeout=300)
    # three times the training scan's exposure: the linear model reads it at its own dose
    (uid,) = RE(lowdose_ptycho_plan(**sim.devices, **{**SMALL, "train_field": None,
                                                      "exposure": 0.3}, pretrained=trained))
    live.wait(timeout=300)
    live.close()
    res = results(tiled_client, uid)
    assert res.status == "complete" and res.metadata["pretrained"] == trained
    assert res.metadata["patterns"] == {"train": 0, "sparse": 6 * 6}
    covered = np.isfinite(res.phase)
    assert 0.15 < covered.mean() < 0.9
    assert np.corrcoef(res.phase[covered], np.angle(sim.obj)[covered])[0, 1] > 0.7
    timings = res.metadata["timings"]
    # every sparse pattern reached Tiled in a stitched image, and its lag was timed
    assert timings["patterns_with_model_ready"] + timings["patterns_waited_for_model"] == 36
    lags = [timings["in_tiled_after_pattern_max_s"],
            timings["in_tiled_after_waiting_for_the_model_max_s"]]
    assert max(lag for lag in lags if lag is not None) > 0
    with pytest.raises(KeyError):
        res.phase_iterative  # noqa: B018


def test_a_scan_without_training_field_or_model_is_refused(RE, frames_root):
    sim = make_sim_ptycho(make_object((96, 96), seed=4), pattern_shape=(32, 32), seed=4,
                          data_dir=frames_root / "ptycho-refused")
    with pytest.raises(ValueError, match="needs a pretrained model"):
        RE(lowdose_ptycho_plan(**sim.devices, **{**SMALL, "train_field": None}))


def test_the_sparse_field_is_refined_from_the_learned_image(tiled_client, frames_root):
    sim, res = scan_and_analyse(tiled_client, frames_root / "ptycho-refined",
                                {"refine_epochs": 10})
    refined, learned = res.phase_refined, res.phase
    np.testing.assert_array_equal(np.isfinite(refined), np.isfinite(learned))
    assert res.metadata["refined"]["epochs"] == 10
    assert res.metadata["refined"]["library"] == "pty-chi"
    covered = np.isfinite(refined)
    truth = np.angle(sim.obj)[covered]
    # the refinement starts from the learned image and stays near it, not from scratch
    assert np.corrcoef(refined[covered], learned[covered])[0, 1] > 0.7
    assert np.corrcoef(refined[covered], truth)[0, 1] > 0.7
