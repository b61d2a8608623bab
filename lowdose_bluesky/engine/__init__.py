"""The live engine: one document-handling and result-storing machine for every modality.

RunEngine side: :class:`DocumentRouter` records documents and hands them on.
Analysis side (a spawned process by default, :class:`AnalysisProcess`):
:class:`AnalysisWorker` reads frames through a :class:`FrameSource`, runs the
:class:`Recipe` chosen by the start document's ``plan_name`` (:func:`recipe_for`), and
stores results (a live node during the scan, :class:`LiveResult`; then the result with
retries and backups). ``lowdose_bluesky.callbacks.LiveEnhancer`` puts the pieces together.
"""

from .calibration import MAX_DEAD_FRACTION, FlatField, RunningMean
from .documents import DocumentRouter
from .frames import (
    FRAME_DOCUMENTS,
    FileFrameSource,
    FrameRef,
    FrameSource,
    TiledFrameSource,
    read_frames,
)
from .process import AnalysisProcess, ProcessDied, ProcessSettings, describe_exit
from .recipe import AnalysisOutput, Recipe, RunAnalysis, RunContext
from .registry import (
    RecipeSpec,
    builtin_recipes,
    load_recipe,
    recipe_for,
    register_recipe,
    unregister_recipe,
)
from .results import RUNNING, LiveResult, ResultNotStored, store_result
from .worker import AnalysisWorker

__all__ = ["FRAME_DOCUMENTS", "MAX_DEAD_FRACTION", "RUNNING", "AnalysisOutput",
           "AnalysisProcess", "AnalysisWorker", "DocumentRouter", "FileFrameSource",
           "FlatField", "FrameRef", "FrameSource", "LiveResult", "ProcessDied",
           "ProcessSettings", "Recipe", "RecipeSpec", "ResultNotStored", "RunAnalysis",
           "RunContext", "RunningMean", "TiledFrameSource", "builtin_recipes",
           "describe_exit", "load_recipe", "read_frames", "recipe_for", "register_recipe",
           "store_result", "unregister_recipe"]
