"""Which runs are analysed, and by what: the recipe registry seen through LiveEnhancer.

A run of a plan no recipe serves is ignored (one log line, nothing stored) while the
next ``lowdose_tomo_plan`` run on the same RunEngine is analysed; a recipe registered
for another plan (:mod:`tests.engine._mean_recipe`) is served without any engine
change, in a thread and in the analysis process; a recipe whose ``finish`` raises
gives a ``failed`` result naming the error.
"""

from __future__ import annotations

import logging

import bluesky.plans as bp
import numpy as np
import pytest
from ophyd.sim import SynAxis, SynGauss

from lowdose_bluesky import results
from lowdose_bluesky.callbacks import LiveEnhancer
from lowdose_bluesky.engine import (
    AnalysisWorker,
    FileFrameSource,
    RecipeSpec,
    builtin_recipes,
    recipe_for,
    register_recipe,
    unregister_recipe,
)
from lowdose_bluesky.storage import RAW, RESULTS

from ..callbacks._live import TRAIN
from ..callbacks._live import scan as _scan
from ._mean_recipe import GATE, PLAN

MEAN = "tests.engine._mean_recipe:MeanRecipe"


def _results_of(client, run_uid: str) -> list[dict]:
    """Metadata of every result node (any status) whose parent is ``run_uid``."""
    if RESULTS not in client:
        return []
    return [dict(node.metadata) for node in client[RESULTS].values()
            if node.metadata.get("parent_uid") == run_uid]


@pytest.fixture
def mean_recipe():
    """The mean recipe registered for ``mean_count`` runs during one test."""
    register_recipe("mean", MEAN, (PLAN,))
    yield
    unregister_recipe("mean")


def _mean_count(RE, txm, num: int = 4) -> str:
    (uid,) = RE(bp.count([txm.detector], num=num, md={"plan_name": PLAN}))
    return uid


def test_register_and_unregister():
    assert "mean" not in builtin_recipes()
    register_recipe("mean", MEAN, [PLAN])
    try:
        assert builtin_recipes()["mean"] == RecipeSpec("mean", MEAN, (PLAN,))
        assert recipe_for({"plan_name": PLAN}).name == "mean"
        with pytest.raises(ValueError, match=r"plan\(s\) \['mean_count'\] are already served "
                                             "by recipe 'mean'"):
            register_recipe("other", MEAN, (PLAN,))
    finally:
        assert unregister_recipe("mean") == RecipeSpec("mean", MEAN, (PLAN,))
    assert "mean" not in builtin_recipes()
    assert recipe_for({"plan_name": PLAN}) is None
    assert recipe_for({"plan_name": "lowdose_tomo_plan"}).name == "tomography"
    with pytest.raises(KeyError, match="no recipe 'mean' is registered"):
        unregister_recipe("mean")


def test_run_without_recipe_is_ignored_and_the_next_tomo_run_analysed(
        tiled_client, live_RE, live_txm, caplog):
    caplog.set_level(logging.INFO, logger="lowdose_bluesky.engine.documents")
    live = LiveEnhancer(tiled_client, process=False, method="supervised", epochs=2,
                        progress=False, reconstruct=False, train_options=TRAIN)
    live_RE.subscribe(live)
    motor = SynAxis(name="motor")
    det = SynGauss("det", motor, "motor", center=0, Imax=1, labels={"detectors"})
    (count_uid,) = live_RE(bp.count([det], num=3))
    assert tiled_client[RAW][count_uid].metadata["start"]["plan_name"] == "count"
    ignored = [r for r in caplog.records if r.name == "lowdose_bluesky.engine.documents"]
    assert len(ignored) == 1
    assert ignored[0].levelno == logging.INFO
    assert count_uid in ignored[0].getMessage()
    assert "plan_name 'count'" in ignored[0].getMessage()
    assert "tomography for lowdose_tomo_plan" in ignored[0].getMessage()
    with pytest.raises(RuntimeError, match="has not seen any run"):
        live.wait(timeout=1)
    assert live.live_result(count_uid) is None

    (uid,) = _scan(live_RE, live_txm, num_projections=5)
    result_uid = live.wait(timeout=300)
    res = results(tiled_client, uid)
    assert res.uid == result_uid and res.status == "complete"
    assert res.metadata["recipe"] == "tomography"
    assert res.enhanced.shape == (5, 32, 32)
    # the analysed run logged nothing there; the ignored run has no result at all
    assert [r for r in caplog.records if r.name == "lowdose_bluesky.engine.documents"] \
        == ignored
    assert _results_of(tiled_client, count_uid) == []
    live.close()


@pytest.mark.parametrize("process", [False, True], ids=["thread", "process"])
def test_registered_recipe_is_served_without_engine_change(
        tiled_client, live_RE, live_txm, mean_recipe, process):
    live = LiveEnhancer(tiled_client, process=process, progress=False)
    live_RE.subscribe(live)
    uid = _mean_count(live_RE, live_txm)
    result_uid = live.wait(timeout=300)
    res = results(tiled_client, uid)
    assert res.uid == result_uid == live.live_result(uid)  # the live node became the result
    assert res.status == "complete"
    md = res.metadata
    assert md["recipe"] == "mean" and md["frames"] == 4
    assert md["settings"] == {"key": "det_image", "fail_in_finish": False}
    frames = tiled_client[RAW][uid]["primary"]["det_image"].read()
    assert frames.shape == (4, 32, 32)
    mean = res.node["mean"].read()
    assert mean.dtype == np.float32
    np.testing.assert_allclose(mean, frames.astype(np.float64).mean(axis=0), rtol=1e-6)
    assert len(_results_of(tiled_client, uid)) == 1
    live.close()


@pytest.mark.parametrize("process", [False, True], ids=["thread", "process"])
def test_recipe_failing_in_finish_stores_a_failed_result(
        tiled_client, live_RE, live_txm, mean_recipe, process):
    live = LiveEnhancer(tiled_client, process=process, progress=False,
                        recipe_options={"mean": {"fail_in_finish": True}})
    live_RE.subscribe(live)
    uid = _mean_count(live_RE, live_txm, num=3)
    with pytest.raises(RuntimeError, match=f"analysis of run {uid} failed: RuntimeError: mean "
                                           "recipe told to fail after 3 frames"):
        live.wait(timeout=300)
    failed = results(tiled_client, uid)
    assert failed.status == "failed"
    assert failed.metadata["error"] == "RuntimeError: mean recipe told to fail after 3 frames"
    assert failed.metadata["recipe"] == "mean"
    assert failed.uid == live.live_result(uid)
    assert "mean" not in failed.node
    # the raw run is untouched
    assert tiled_client[RAW][uid]["primary"]["det_image"].read().shape == (3, 32, 32)
    live.close()


def test_worker_is_ready_once_its_recipes_are_built():
    spec = RecipeSpec("gated", "tests.engine._mean_recipe:gated_recipe", ("gated_count",))
    worker = AnalysisWorker(None, {"gated": (spec, {})}, FileFrameSource(),
                            notify=lambda *args, **kwargs: None, nice=0)
    try:
        assert not worker.ready.wait(0.5)  # still building the recipe
        GATE.set()
        assert worker.ready.wait(30)
        assert worker._recipes["gated"].name == "mean"
    finally:
        GATE.set()
        worker.close(30)


def test_live_enhancer_wait_ready_in_process(tiled_client):
    live = LiveEnhancer(tiled_client, process=False, progress=False)
    try:
        assert live.wait_ready(120)
    finally:
        live.close(30)
