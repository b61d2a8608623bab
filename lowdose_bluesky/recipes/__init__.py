"""Recipes of the live engine: what each modality does with a run.

Each recipe is registered with :func:`lowdose_bluesky.engine.register_recipe` under the
plan names it serves; see ``docs/decisions/0013-live-engine-and-recipes.md``.
"""
