"""The recipe's linear-retrieval parts: the probe support and the dose estimated from data."""

from __future__ import annotations

import numpy as np
import pytest

from lowdose_bluesky.ptycho import (
    diffraction_patterns,
    focused_probe,
    object_windows,
    probe_support,
    test_object,
)
from lowdose_bluesky.recipes.ptycho.linear import clear_field_counts

PROBE = focused_probe((32, 32), diameter_px=20.0)


def test_probe_support_is_where_the_intensity_reaches_the_fraction():
    intensity = np.abs(PROBE) ** 2
    support = probe_support(PROBE, 0.05)
    assert support.dtype == bool and support.shape == (32, 32)
    assert intensity[support].min() >= 0.05 * intensity.max()
    assert intensity[~support].max() < 0.05 * intensity.max()
    assert probe_support(PROBE, 0.02).sum() > support.sum()


def test_the_clear_field_dose_is_recovered_from_an_absorbing_object():
    obj = test_object((80, 80), seed=2)  # absorbs: its patterns hold fewer counts
    positions = np.array([(y, x) for y in range(0, 49, 6) for x in range(0, 49, 6)], float)
    patterns = diffraction_patterns(obj, PROBE, positions, 2e5, rng=0)
    windows = object_windows(obj, positions, (32, 32))
    assert patterns.sum(axis=(1, 2)).mean() < 0.97 * 2e5
    assert clear_field_counts(patterns, windows, PROBE) == pytest.approx(2e5, rel=0.01)


def test_patterns_without_counts_give_no_dose():
    windows = np.ones((3, 32, 32), complex)
    with pytest.raises(ValueError, match="hold no counts"):
        clear_field_counts(np.zeros((3, 32, 32)), windows, PROBE)
