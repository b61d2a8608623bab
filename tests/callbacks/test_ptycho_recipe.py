"""The ptychography recipe's settings: checked when the recipe is made."""

from __future__ import annotations

import pytest

from lowdose_bluesky.recipes.ptycho import PtychoRecipe


def test_defaults_are_the_linear_retrieval_without_refinement():
    settings = PtychoRecipe().settings_metadata()
    assert (settings["model"], settings["synthetic_pairs"], settings["ridge"],
            settings["refine_epochs"]) == ("linear", 16000, 0.3, 0)


@pytest.mark.parametrize(("option", "match"), [
    ({"model": "unet"}, "model must be one of 'linear', 'ptychonn', got 'unet'"),
    ({"synthetic_pairs": -1}, "synthetic_pairs must be an integer >= 0, got -1"),
    ({"synthetic_pairs": 1.5}, "synthetic_pairs must be an integer >= 0, got 1.5"),
    ({"ridge": 0}, "ridge must be a number > 0, got 0"),
    ({"refine_epochs": -2}, "refine_epochs must be an integer >= 0, got -2"),
    ({"refine_epochs": True}, "refine_epochs must be an integer >= 0, got True"),
    ({"algorithm": "dm"}, "algorithm must be one of"),
])
def test_bad_settings_are_refused(option, match):
    with pytest.raises(ValueError, match=match):
        PtychoRecipe(**option)
