"""The XRF recipe on the live engine: element maps line by line, stored in Tiled."""

from __future__ import annotations

import numpy as np
import pytest
from bluesky import RunEngine

from lowdose_bluesky import results
from lowdose_bluesky.callbacks import LiveEnhancer
from lowdose_bluesky.devices.sim.xrf import make_sim_xrf
from lowdose_bluesky.plans import lowdose_xrf_plan
from lowdose_bluesky.storage import subscribe_writer


@pytest.mark.parametrize(("fly", "source"), [(False, "file"), (True, "file"), (True, "tiled")])
def test_maps_are_live_and_match_the_truth_at_long_dwell(tiled_client, frames_root, fly,
                                                         source):
    RE = RunEngine({}, call_returns_result=False)
    subscribe_writer(RE, tiled_client, batch_size=20)
    sim = make_sim_xrf(shape=(8, 10), bins=256, bin_kev=0.048, seed=3,
                       data_dir=frames_root / f"xrf-live-{fly}-{source}", dead_elements=(2,))
    live = LiveEnhancer(tiled_client, process=False, progress=False, frame_source=source,
                        recipe_options={
        "xrf": {"epochs": 2, "max_seconds": 5.0, "train_options": {"patch_size": 8}}})
    RE.subscribe(live)
    (uid,) = RE(lowdose_xrf_plan(**sim.devices, num_x=10, num_y=8, reference_rows=(2,),
                                 dwell=0.5, long_dwell=2.0, fly=fly))
    live.wait(timeout=120)
    live.close()
    res = results(tiled_client, uid)
    md = res.metadata
    assert res.status == "complete" and md["recipe"] == "xrf"
    assert md["elements"] == list(sim.elements) and md["maps_method"].startswith("linear fit")
    assert md["dead_detector_elements"] == [2] and md["units"] == "ug/cm^2"
    maps = res.maps_raw
    assert maps.shape == (len(sim.elements), 8, 10)
    # major elements at a long dwell: the fitted maps follow the true densities
    for k, element in enumerate(sim.elements):
        if element in ("P", "S", "K"):
            truth = sim.truth[element]
            assert np.corrcoef(maps[k].ravel(), truth.ravel())[0, 1] > 0.9, element
            assert maps[k].mean() == pytest.approx(truth.mean(), rel=0.15), element
    assert md["lines"] == {"mapped": 8, "of": 8}
    assert res.node["reference_maps_long"].shape == (len(sim.elements), 1, 10)
    # Noise2Noise across the two halves of the live detector elements (0 | 1, 3)
    assert md["method"] == "noise2noise" and res.maps.shape == maps.shape
    assert np.isfinite(res.maps).all() and len(res.checkpoint) > 0


@pytest.mark.parametrize(("method", "options"), [
    ("supervised", {"train_options": {"epochs": 20, "network_options": {"base_channels": 8}}}),
    ("hybrid", {"epochs": 2, "train_options": {"epochs": 10}}),
    ("noise2self", {"pansharpen": True, "train_options": {"epochs": 10, "width": 4}}),
])
def test_each_method_enhances_a_live_map(tiled_client, frames_root, method, options):
    RE = RunEngine({}, call_returns_result=False)
    subscribe_writer(RE, tiled_client, batch_size=20)
    sim = make_sim_xrf(shape=(8, 10), bins=256, bin_kev=0.048, seed=4,
                       data_dir=frames_root / f"xrf-{method}")
    live = LiveEnhancer(tiled_client, process=False, progress=False, recipe_options={
        "xrf": {"method": method, "max_seconds": 5.0, **options}})
    RE.subscribe(live)
    (uid,) = RE(lowdose_xrf_plan(**sim.devices, num_x=10, num_y=8, reference_rows=(1, 5),
                                 dwell=0.05, long_dwell=0.5))
    live.wait(timeout=120)
    live.close()
    res = results(tiled_client, uid)
    md = res.metadata
    assert res.status == "complete" and md["method"] == method
    assert res.maps.shape == res.maps_raw.shape == (len(sim.elements), 8, 10)
    assert np.isfinite(res.maps).all() and len(res.checkpoint) > 0
    check = md["reference_check"]
    assert set(check["raw"]) == set(check["enhanced"]) == set(sim.elements)
    if method == "noise2self":
        assert md["model"]["pansharpened"] and md["model"]["binning"]["group"] >= 1


def test_a_blind_map_cannot_be_enhanced_by_the_supervised_method():
    from lowdose_bluesky.recipes.xrf import XRFRecipe

    start = {"uid": "u", "xrf": {"elements": ["Fe"], "energy_kev": 10.0, "bins": 256,
                                 "bin_kev": 0.048, "reference_rows": []}}
    with pytest.raises(ValueError, match=r"blind map .* supervised method needs them"):
        XRFRecipe(method="supervised").check(start)
    with pytest.raises(ValueError, match="no transmission image"):
        XRFRecipe(method="noise2self", pansharpen=True).check(start)
    XRFRecipe(method="noise2noise").check(start)


def test_a_run_without_calibration_is_refused_with_what_is_missing():
    from lowdose_bluesky.recipes.xrf import check_xrf_start

    with pytest.raises(ValueError, match=r"lacks \['bins', 'bin_kev'\]"):
        check_xrf_start({"uid": "u", "xrf": {"elements": ["Fe"], "energy_kev": 10.0}})
    with pytest.raises(ValueError, match="not acquired by lowdose_xrf_plan"):
        check_xrf_start({"uid": "u"})
