"""Line-pair modulation, coordinate conversion for binned and super-resolved images."""

from __future__ import annotations

import numpy as np
import pytest
from scipy.ndimage import gaussian_filter
from skimage.transform import resize

from lowdose_bluesky.sr import (
    RAYLEIGH_CONTRAST,
    chart_contrasts,
    chart_levels,
    group_contrast,
    image_scale,
    sensor_to_image,
    smallest_resolved,
)
from lowdose_bluesky.sr._roi import scale_roi

from ._synthetic import bar_chart, bin_sum

WIDTHS = [2, 3, 4, 6, 8]


def test_unblurred_bars_have_full_contrast() -> None:
    image, layout = bar_chart((128, 256), WIDTHS)
    levels = chart_levels(image, layout)
    assert levels == pytest.approx((0.2, 1.0))
    for group in layout["groups"]:
        assert group_contrast(image, group, levels=levels) == pytest.approx(1.0)
    contrasts = chart_contrasts(image, layout)
    assert [c["bar_width_px"] for c in contrasts] == [w for w in WIDTHS for _ in range(2)]
    assert all(c["resolved"] for c in contrasts)
    assert smallest_resolved(contrasts) == 2.0


def test_heavy_blur_is_unresolved() -> None:
    image, layout = bar_chart((128, 256), WIDTHS)
    blurred = gaussian_filter(image, 3.0)
    contrasts = chart_contrasts(blurred, layout)
    by_width = {(c["bar_width_px"], c["orientation"]): c["contrast"] for c in contrasts}
    assert by_width[(2.0, "vertical")] < RAYLEIGH_CONTRAST
    assert by_width[(3.0, "horizontal")] < RAYLEIGH_CONTRAST
    assert by_width[(8.0, "vertical")] > RAYLEIGH_CONTRAST
    smallest = smallest_resolved(contrasts)
    assert smallest is not None and smallest > 3
    assert smallest_resolved(contrasts, orientation="vertical") == smallest
    assert smallest_resolved(chart_contrasts(gaussian_filter(image, 30.0), layout)) is None


@pytest.mark.parametrize(("binning", "factor"), [(1, 1), (2, 1), (4, 1), (2, 2), (4, 2)])
def test_sensor_coordinates_on_binned_and_upsampled_ramps(binning: int, factor: int) -> None:
    """A ramp equal to the sensor x coordinate, binned then up-sampled, reads back x."""
    width = 64
    ramp = np.broadcast_to(np.arange(width, dtype=float), (width, width))
    binned = bin_sum(ramp, binning) / binning**2
    image = resize(binned, (binned.shape[0] * factor, binned.shape[1] * factor), order=1,
                   mode="edge", anti_aliasing=False) if factor > 1 else binned
    scale = image_scale(binning, factor)
    assert scale == binning / factor
    c = np.linspace(8.0, 55.0, 11)
    read = np.interp(sensor_to_image(c, scale), np.arange(image.shape[1]), image[0])
    np.testing.assert_allclose(read, c, atol=1e-9)


def test_roi_bounds_round_inward() -> None:
    assert scale_roi([3, 9, 1, 8], 2) == (2, 4, 1, 4)
    assert scale_roi([4, 12, 0, 8], 4) == (1, 3, 0, 2)
    assert scale_roi([3, 9, 1, 8], 0.5) == (6, 18, 2, 16)


def test_binned_and_super_resolved_charts() -> None:
    image, layout = bar_chart((128, 256), WIDTHS, dark=0.25)
    binned = bin_sum(image, 2)
    contrasts = chart_contrasts(binned, layout, binning=2)
    wide = [c for c in contrasts if c["bar_width_px"] >= 4]
    assert all(c["contrast"] == pytest.approx(1.0) for c in wide)
    assert all(c["bar_width_image_px"] == c["bar_width_px"] / 2 for c in contrasts)
    assert chart_levels(binned, layout, binning=2) == pytest.approx((1.0, 4.0))
    # An ideal x2 super-resolution of the binned frame is the sensor image itself.
    ideal = chart_contrasts(image, layout, binning=2, factor=2)
    assert all(c["contrast"] == pytest.approx(1.0) for c in ideal)
    assert all(c["bar_width_image_px"] == c["bar_width_px"] for c in ideal)
    # 2-px bars on even sensor columns fill whole binned pixels (full modulation); moved by
    # one sensor pixel, every binned pixel is half bar, half space (none).
    fine = layout["groups"][0]
    assert fine["bar_width_px"] == 2 and fine["orientation"] == "vertical"
    levels = (1.0, 4.0)
    assert group_contrast(binned, fine, levels=levels, binning=2) == pytest.approx(1.0)
    z0, z1, x0, x1 = fine["roi"]
    moved = {**fine, "roi": [z0, z1, x0 + 1, x1 + 1],
             "bar_centres": [c + 1 for c in fine["bar_centres"]]}
    shifted = bin_sum(np.roll(image, 1, axis=1), 2)
    assert group_contrast(shifted, moved, levels=levels, binning=2) == pytest.approx(0.0)


def test_bad_levels_and_groups() -> None:
    image, layout = bar_chart((128, 256), WIDTHS)
    group = layout["groups"][0]
    with pytest.raises(ValueError, match="bright > dark"):
        group_contrast(image, group, levels=(1.0, 0.2))
    with pytest.raises(ValueError, match="orientation"):
        group_contrast(image, {**group, "orientation": "diagonal"}, levels=(0.2, 1.0))
    with pytest.raises(ValueError, match=">= 2 bar centres"):
        group_contrast(image, {**group, "bar_centres": [5.0]}, levels=(0.2, 1.0))
    with pytest.raises(ValueError, match="outside the image"):
        group_contrast(image[:20], group, levels=(0.2, 1.0))
