"""The tomography recipe of the live engine (``lowdose_tomo_plan`` runs)."""

from .analysis import MIN_MEAN_TRANSMISSION, TomographyAnalysis, check_start
from .methods import (
    DEFAULT_WITH_REFERENCES,
    METHODS,
    N2I_STAGE,
    SUPERVISED_STAGE,
    check_method,
    noise2inverse_stage,
    resolve_method,
)
from .recipe import TomographyRecipe
from .settings import AnalysisSettings, check_pretrained, settings_metadata, tomography_settings
from .versions import ModelVersions

__all__ = ["DEFAULT_WITH_REFERENCES", "METHODS", "MIN_MEAN_TRANSMISSION", "N2I_STAGE",
           "SUPERVISED_STAGE", "AnalysisSettings", "ModelVersions", "TomographyAnalysis",
           "TomographyRecipe", "check_method", "check_pretrained", "check_start",
           "noise2inverse_stage", "resolve_method", "settings_metadata",
           "tomography_settings"]
