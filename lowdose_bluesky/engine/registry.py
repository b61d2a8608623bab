"""Which recipe analyses a run: chosen from the start document's ``plan_name``.

Recipes are named by import path (``"package.module:Factory"``) so that the table can
be handed to the analysis process and the RunEngine's process never imports them (nor
torch). A factory is called with the recipe's options and returns a
:class:`~lowdose_bluesky.engine.recipe.Recipe`.
"""

from __future__ import annotations

import importlib
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

__all__ = ["RecipeSpec", "builtin_recipes", "load_recipe", "recipe_for", "register_recipe",
           "unregister_recipe"]


@dataclass(frozen=True)
class RecipeSpec:
    """A recipe by name: its factory's import path and the plans it serves."""

    name: str
    factory: str
    plan_names: tuple[str, ...]


_REGISTRY: dict[str, RecipeSpec] = {}


def register_recipe(name: str, factory: str, plan_names: tuple[str, ...] | list[str]) -> None:
    """Make recipe ``name`` (``factory``: ``"module:callable"``) serve ``plan_names``.

    Raises
    ------
    ValueError
        If ``factory`` is not of the form ``"module:callable"``, ``plan_names`` is empty,
        or a plan is already served by another recipe.
    """
    module, sep, attr = factory.partition(":")
    if not sep or not module or not attr:
        raise ValueError(f"factory must be 'package.module:callable', got {factory!r}")
    plans = tuple(plan_names)
    if not plans or not all(isinstance(p, str) and p for p in plans):
        raise ValueError(f"plan_names must be non-empty plan names, got {plan_names!r}")
    for other in _REGISTRY.values():
        taken = set(other.plan_names) & set(plans)
        if other.name != name and taken:
            raise ValueError(f"plan(s) {sorted(taken)} are already served by recipe "
                             f"{other.name!r}")
    _REGISTRY[name] = RecipeSpec(name, factory, plans)


def unregister_recipe(name: str) -> RecipeSpec:
    """Stop recipe ``name`` from serving its plans; return its spec.

    A :class:`~lowdose_bluesky.callbacks.LiveEnhancer` made before keeps the recipes it
    was made with.

    Raises
    ------
    KeyError
        If no recipe of that name is registered.
    """
    try:
        return _REGISTRY.pop(name)
    except KeyError:
        raise KeyError(f"no recipe {name!r} is registered (registered: "
                       f"{', '.join(sorted(_REGISTRY)) or 'none'})") from None


def builtin_recipes() -> dict[str, RecipeSpec]:
    """The registered recipes by name (a copy)."""
    return dict(_REGISTRY)


def recipe_for(start: Mapping[str, Any],
               recipes: Mapping[str, RecipeSpec] | None = None) -> RecipeSpec | None:
    """The recipe serving the run of start document ``start``, or None."""
    plan = start.get("plan_name")
    for spec in (_REGISTRY if recipes is None else recipes).values():
        if plan in spec.plan_names:
            return spec
    return None


def load_recipe(spec: RecipeSpec, options: Mapping[str, Any] | None = None) -> Any:
    """Import ``spec``'s factory and build the recipe with ``options``."""
    module, _, attr = spec.factory.partition(":")
    factory = getattr(importlib.import_module(module), attr)
    return factory(**dict(options or {}))


register_recipe("tomography", "lowdose_bluesky.recipes.tomography:TomographyRecipe",
                ("lowdose_tomo_plan", "lowdose_tomo_flyscan"))
register_recipe("xrf", "lowdose_bluesky.recipes.xrf:XRFRecipe", ("lowdose_xrf_plan",))
register_recipe("ptycho", "lowdose_bluesky.recipes.ptycho:PtychoRecipe",
                ("lowdose_ptycho_plan",))
register_recipe("knife_edge", "lowdose_bluesky.recipes.sr:KnifeEdgeRecipe", ("knife_edge_plan",))
register_recipe("super_resolution", "lowdose_bluesky.recipes.sr:SRRecipe",
                ("super_resolution_plan",))
