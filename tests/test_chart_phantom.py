"""The resolution-chart phantom: bars, slanted edge, pad and background where its layout says."""

import json
import math

import numpy as np
import pytest

from lowdose_bluesky.chart_phantoms import (
    BAR_THICKNESS,
    BAR_WIDTHS_PX,
    CHART_VALUE,
    EDGE_THICKNESS,
    ChartLayout,
    chart_layout,
    resolution_chart,
)
from lowdose_bluesky.devices.sim import make_sim_txm
from lowdose_bluesky.phantoms import PHANTOM_NAMES, phantom_from_name

BAR = BAR_THICKNESS * CHART_VALUE  # line integral through a bar or the pad at 0 degrees
EDGE = EDGE_THICKNESS * CHART_VALUE  # through the knife-edge block


@pytest.fixture(scope="module")
def chart():
    return resolution_chart(256)


@pytest.fixture(scope="module")
def image(chart):
    """Noiseless line integrals at 0 degrees, offset 0."""
    return chart.project(0.0)[0]


def _bar_mask(layout: ChartLayout) -> np.ndarray:
    """Where the layout says the bars are."""
    mask = np.zeros(layout.shape, dtype=bool)
    for g in layout.groups:
        z0, z1, x0, x1 = g.roi
        w = int(g.bar_width_px)
        for c in g.bar_centres:
            lo = round(c - (w - 1) / 2)
            if g.orientation == "vertical":
                mask[z0:z1, lo:lo + w] = True
            else:
                mask[lo:lo + w, x0:x1] = True
    return mask


def test_layout_at_256(chart):
    layout = chart_layout(chart)
    assert layout.shape == (256, 256) and layout.binning == 1
    assert chart.params["bar_widths_px"] == list(BAR_WIDTHS_PX)
    assert len(layout.groups) == 2 * len(BAR_WIDTHS_PX)
    for g in layout.groups:
        w = int(g.bar_width_px)
        z0, z1, x0, x1 = g.roi
        extent, length = (z1 - z0, x1 - x0)[:: 1 if g.orientation == "horizontal" else -1]
        assert extent == 5 * w and length >= max(12, 5 * w) and g.n_bars == 3
        assert np.diff(g.bar_centres).tolist() == [2 * w, 2 * w]
        assert 0 <= z0 < z1 <= 256 and 0 <= x0 < x1 <= 256
    assert layout.gap_px >= 8
    z0, z1, x0, x1 = layout.background
    assert z1 - z0 >= 16 and x1 - x0 >= 16
    assert layout.edge_roi[1] - layout.edge_roi[0] >= 64


def test_bars_are_where_the_layout_says_with_full_modulation(chart, image):
    layout = chart_layout(chart)
    mask = _bar_mask(layout)
    mu = math.log(10.0) / float(chart.project([0.0, 45.0]).max())
    t_bar = math.exp(-mu * BAR)
    full = (1 - t_bar) / (1 + t_bar)
    for g in layout.groups:
        z0, z1, x0, x1 = g.roi
        roi = image[z0:z1, x0:x1]
        # bars and nothing else inside the tight box, and the box is tight
        np.testing.assert_array_equal(roi, np.where(mask[z0:z1, x0:x1], BAR, 0.0))
        assert mask[z0, x0:x1].any() and mask[z1 - 1, x0:x1].any()
        assert mask[z0:z1, x0].any() and mask[z0:z1, x1 - 1].any()
        # bar centres are material, space centres are open
        for c, value in [(c, BAR) for c in g.bar_centres] + [(c, 0.0) for c in g.space_centres]:
            lo, hi = math.floor(c), math.ceil(c)
            if g.orientation == "vertical":
                assert (roi[:, [lo - x0, hi - x0]] == value).all()
            else:
                assert (roi[[lo - z0, hi - z0], :] == value).all()
        transmitted = np.exp(-mu * roi)
        modulation = (transmitted.max() - transmitted.min()) / (transmitted.max()
                                                               + transmitted.min())
        assert modulation == pytest.approx(full, rel=1e-6)
        # nothing else within the gap around the group: a blurred image keeps them apart
        gap = int(layout.gap_px)
        ring = image[max(z0 - gap, 0):z1 + gap, max(x0 - gap, 0):x1 + gap].copy()
        ring[z0 - max(z0 - gap, 0):z1 - max(z0 - gap, 0),
             x0 - max(x0 - gap, 0):x1 - max(x0 - gap, 0)] = 0.0
        assert not ring.any()


def test_edge_is_slanted_by_its_angle(chart, image):
    layout = chart_layout(chart)
    z0, z1, x0, x1 = layout.edge_roi
    roi = image[z0:z1, x0:x1]
    material = (roi > 0).sum(axis=1)
    # every row a clean step: material (the block's thickness) then open beam
    for row, n in zip(roi, material, strict=True):
        assert (row[:n] == EDGE).all() and (row[n:] == 0).all()
        assert n >= 16 and x1 - x0 - n >= 16
    # the edge between the last material and the first open pixel centre
    rows = np.arange(z0, z1)
    position = x0 + material - 0.5
    slope, intercept = np.polyfit(rows, position, 1)
    assert math.degrees(math.atan(slope)) == pytest.approx(layout.edge_angle_deg, abs=0.2)
    assert layout.edge_angle_deg == 5.0
    zc, xc = layout.edge_centre
    assert slope * zc + intercept == pytest.approx(xc, abs=0.5)
    # the true edge lies within the pixel step of every row
    true = xc + (rows - zc) * math.tan(math.radians(layout.edge_angle_deg))
    assert (np.abs(true - position) < 0.5).all()


def test_background_is_open_and_pad_uniform(chart, image):
    layout = chart_layout(chart)
    z0, z1, x0, x1 = layout.background
    assert (image[z0:z1, x0:x1] == 0).all()
    z0, z1, x0, x1 = layout.pad
    assert z1 - z0 >= 16 and x1 - x0 >= 16
    gap = int(layout.gap_px)
    # uniform material of the bars' thickness, and so for a gap around the ROI
    assert (image[z0 - gap:z1 + gap, x0 - gap:x1 + gap] == BAR).all()


def test_default_attenuation_makes_the_bars_half_transparent(tmp_path):
    txm = make_sim_txm("resolution_chart", detector_shape=(256, 256), seed=0,
                       data_dir=tmp_path, psf_sigma_px=2.0, binning=2)
    mu = txm.optics.mu
    assert mu == pytest.approx(math.log(10.0) / (EDGE * math.sqrt(2)))  # block at 45 deg
    assert 0.4 < math.exp(-mu * BAR) < 0.6
    assert math.exp(-mu * EDGE) < 0.25  # the knife edge is opaque-ish
    txm.shutter.set("open")
    frame = txm.detector.acquire_frame(0.1)
    assert frame.shape == (128, 128) and frame.dtype == np.uint16
    start = txm.detector.start_metadata()["simulation"]
    assert start["phantom"]["name"] == "resolution_chart"
    assert chart_layout(start["phantom"]) == chart_layout(txm.phantom_model)


def test_layout_survives_json(chart):
    desc = json.loads(json.dumps(chart.describe()))
    assert chart_layout(desc) == chart_layout(chart)
    rebuilt = phantom_from_name(desc["name"], tuple(desc["shape"][:2]), seed=desc["seed"])
    assert rebuilt.describe() == desc


def test_scaled_layout_maps_centres_and_rounds_rois_inward(chart, image):
    layout = chart_layout(chart)
    half = layout.scaled(2)
    assert half.binning == 2 and half.shape == (128, 128) and half.gap_px == layout.gap_px / 2
    assert layout.scaled(2).scaled(2) == layout.scaled(4)
    assert layout.scaled(1) == layout
    g, h = layout.group(4, "vertical"), half.group(4, "vertical")
    assert h.bar_width_px == 2.0
    assert h.bar_centres == tuple((c - 0.5) / 2 for c in g.bar_centres)
    assert h.roi == tuple(v // 2 if k % 2 else -(-v // 2) for k, v in enumerate(g.roi))
    # on the binned image: bars at their centres, pad and background uniform
    binned = image.reshape(128, 2, 128, 2).mean(axis=(1, 3))
    z0, z1, _, _ = h.roi
    for c in h.bar_centres:
        assert (binned[z0:z1, [math.floor(c), math.ceil(c)]] == BAR).all()
    z0, z1, x0, x1 = half.pad
    assert (binned[z0:z1, x0:x1] == BAR).all()
    z0, z1, x0, x1 = half.background
    assert (binned[z0:z1, x0:x1] == 0).all()
    with pytest.raises(ValueError, match="binning must be an integer >= 1, got 0"):
        layout.scaled(0)
    with pytest.raises(KeyError, match="no vertical group of 7 px"):
        layout.group(7, "vertical")


@pytest.mark.parametrize(("size", "widths"), [(128, (1, 2, 3, 4, 5)),
                                              (512, BAR_WIDTHS_PX),
                                              ((128, 256), (1, 2, 3, 4, 5, 6, 8))])
def test_other_sizes_keep_the_bars_that_fit(size, widths):
    chart = resolution_chart(size)
    layout = chart_layout(chart)
    assert tuple(chart.params["bar_widths_px"]) == widths
    image = chart.project(0.0)[0]
    assert layout.shape == image.shape
    np.testing.assert_array_equal(np.isin(image, [BAR]) & _bar_mask(layout), _bar_mask(layout))
    z0, z1, x0, x1 = layout.background
    assert (image[z0:z1, x0:x1] == 0).all()


def test_registered_by_name():
    assert "resolution_chart" in PHANTOM_NAMES
    chart = phantom_from_name("resolution_chart", 256)
    assert chart.name == "resolution_chart" and chart.shape == (256, 256, 256)
    assert chart_layout(chart) == chart_layout(resolution_chart(256))


@pytest.mark.parametrize("size", [64, 100, (64, 256)])
def test_too_small_is_refused(size):
    with pytest.raises(ValueError, match="too small for the resolution chart"):
        resolution_chart(size)


def test_layout_of_another_phantom_is_refused():
    with pytest.raises(ValueError, match="no resolution-chart layout"):
        chart_layout(phantom_from_name("shepp_logan_3d", 32))
