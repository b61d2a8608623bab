"""LiveEnhancer methods: blind Noise2Inverse, the hybrid, and runs a method cannot use."""

import numpy as np
import pytest

from lowdose_bluesky import results
from lowdose_bluesky.callbacks import LiveEnhancer
from lowdose_bluesky.model import Noise2InverseDenoiser
from lowdose_bluesky.recipes.tomography.methods import DEFAULT_WITH_REFERENCES, resolve_method

from ._live import TRAIN
from ._live import scan as _scan

#: A tiny Noise2Inverse: deterministic step count instead of a time budget.
N2I = {"max_seconds": None, "max_iterations": 60, "base_channels": 8, "patch_size": 32,
       "batch_size": 8, "holdout_every": 4}


def test_blind_run_trains_self_supervised_only(tiled_client, live_RE, live_txm):
    live = LiveEnhancer(tiled_client, process=False, progress=False, n2i_options=N2I)
    live_RE.subscribe(live)
    (uid,) = _scan(live_RE, live_txm, reference_angles=(), short_exposure=0.2)
    live.wait(timeout=600)
    res = results(tiled_client, uid)
    md = res.metadata
    assert res.status == "complete"
    assert md["method"] == "noise2inverse" and md["blind"] is True
    assert md["model"]["arch"] is None and "training_s" not in md["timings"]
    assert "enhanced" not in res.node  # no projection was enhanced
    gate = md["gates"]["noise2inverse"]
    assert {"use_model", "model_error", "raw_reconstruction_error"} <= set(gate)
    rec, raw = res.reconstruction, res.reconstruction_raw
    assert rec.shape == raw.shape == (32, 32, 32)
    if gate["use_model"]:
        assert not np.allclose(rec, raw)
    else:
        np.testing.assert_allclose(rec, raw)
    model = Noise2InverseDenoiser.from_bytes(res.node["checkpoint_noise2inverse"].read()
                                             .tobytes())
    assert model.gate == gate
    live.close()


def test_hybrid_gates_both_stages(tiled_client, live_RE, live_txm):
    live = LiveEnhancer(tiled_client, process=False, method="hybrid", epochs=2, progress=False,
                        training_budget=None, train_options=TRAIN, n2i_options=N2I)
    live_RE.subscribe(live)
    (uid,) = _scan(live_RE, live_txm, short_exposure=0.2, long_exposure=6.0)
    live.wait(timeout=600)
    res = results(tiled_client, uid)
    md = res.metadata
    assert md["method"] == "hybrid" and md["blind"] is False
    assert set(md["gates"]) == {"projection", "noise2inverse"}
    assert res.enhanced.shape == (37, 32, 32)
    assert md["model"]["arch"] == "unet"
    assert "noise2inverse_training_s" in md["timings"]
    live.close()


def test_supervised_on_blind_run_fails_before_training(tiled_client, live_RE, live_txm):
    live = LiveEnhancer(tiled_client, process=False, method="supervised", progress=False)
    live_RE.subscribe(live)
    (uid,) = _scan(live_RE, live_txm, reference_angles=(), num_projections=5)
    with pytest.raises(RuntimeError, match=r"method='supervised' trains on long/short "
                                           r"reference pairs .* reference_angles=\(\)"):
        live.wait(timeout=300)
    res = results(tiled_client, uid)
    assert res.status == "failed"
    assert "training_s" not in res.metadata.get("timings", {})
    # the raw run is complete and readable
    assert tiled_client["raw"][uid]["primary"]["det_image"].read().shape == (5, 32, 32)
    live.close()


def test_too_few_projections_for_the_split(tiled_client, live_RE, live_txm):
    live = LiveEnhancer(tiled_client, process=False, method="noise2inverse", progress=False,
                        n2i_options=N2I)
    live_RE.subscribe(live)
    _scan(live_RE, live_txm, reference_angles=(), num_projections=9)
    with pytest.raises(RuntimeError, match=r"9 projections are too few for Noise2Inverse with "
                                           r"2 splits.*at least 16"):
        live.wait(timeout=300)
    live.close()


def test_bad_method_arguments_named(tiled_client):
    with pytest.raises(ValueError, match=r"method must be one of 'auto', 'supervised', "
                                         r"'noise2inverse', 'hybrid', got 'n2v'"):
        LiveEnhancer(tiled_client, process=False, method="n2v")
    with pytest.raises(ValueError, match=r"invalid n2i_options: splits: .* \(got 1\)"):
        LiveEnhancer(tiled_client, process=False, n2i_options={"splits": 1})
    with pytest.raises(ValueError, match=r"n2i_filter must be one of .* got 'box'"):
        LiveEnhancer(tiled_client, process=False, n2i_filter="box")


def test_auto_resolves_by_references():
    assert resolve_method("auto", False) == "noise2inverse"
    assert resolve_method("auto", True) == DEFAULT_WITH_REFERENCES
    assert resolve_method("hybrid", True) == "hybrid"
    with pytest.raises(ValueError, match="method='hybrid' trains on long/short"):
        resolve_method("hybrid", False)


def test_frames_too_narrow_for_the_network(tiled_client, live_RE, live_txm):
    live = LiveEnhancer(tiled_client, process=False, method="noise2inverse", progress=False,
                        n2i_options={**N2I, "depth": 4})
    live_RE.subscribe(live)
    (uid,) = _scan(live_RE, live_txm, reference_angles=(), num_projections=17)
    with pytest.raises(RuntimeError, match=r"frames of 32x32 give slices of 32x32, too small "
                                           r"for the Noise2Inverse network .* at least 64"):
        live.wait(timeout=300)
    assert tiled_client["raw"][uid]["primary"]["det_image"].read().shape == (17, 32, 32)
    live.close()
