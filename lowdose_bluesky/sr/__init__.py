"""Super-resolution support for lens-coupled X-ray microscope images.

Measure the imaging system (slanted knife-edge PSF sigma, background noise, resolution
chart modulation), and build training pairs from sharp images with the measured blur and
noise. Depends on numpy, scipy and scikit-image only.
"""

from __future__ import annotations

from .chart import (
    RAYLEIGH_CONTRAST,
    chart_contrasts,
    chart_levels,
    group_contrast,
    image_scale,
    sensor_to_image,
    smallest_resolved,
)
from .degrade import SR_FACTORS, degrade, sharp_sigma
from .knife_edge import (
    MAX_EMPTY_FRACTION,
    MAX_LINE_RMS_PX,
    MAX_RELATIVE_UNCERTAINTY,
    MIN_EDGE_SNR,
    EdgeSpread,
    KnifeEdgeResult,
    edge_spread,
    knife_edge_sigma,
    line_spread,
)
from .noise import MIN_NOISE_PIXELS, NoiseEstimate, background_noise
from .profile_fit import ProfileFit, fit_erf_esf, fit_gaussian_lsf
from .sampling import binned_sigma, binning_variance, sensor_sigma
from .sharp_images import (
    HELDOUT_TEXTURES,
    IMAGE_SOURCES,
    NATURAL_SOURCES,
    PROCEDURAL_SOURCES,
    TEXTURE_SOURCES,
    TRANSMISSION_RANGE,
    heldout_texture,
    load_source,
    training_images,
)

__all__ = [
    "HELDOUT_TEXTURES",
    "IMAGE_SOURCES",
    "MAX_EMPTY_FRACTION",
    "MAX_LINE_RMS_PX",
    "MAX_RELATIVE_UNCERTAINTY",
    "MIN_EDGE_SNR",
    "MIN_NOISE_PIXELS",
    "NATURAL_SOURCES",
    "PROCEDURAL_SOURCES",
    "RAYLEIGH_CONTRAST",
    "SR_FACTORS",
    "TEXTURE_SOURCES",
    "TRANSMISSION_RANGE",
    "EdgeSpread",
    "KnifeEdgeResult",
    "NoiseEstimate",
    "ProfileFit",
    "background_noise",
    "binned_sigma",
    "binning_variance",
    "chart_contrasts",
    "chart_levels",
    "degrade",
    "edge_spread",
    "fit_erf_esf",
    "fit_gaussian_lsf",
    "group_contrast",
    "heldout_texture",
    "image_scale",
    "knife_edge_sigma",
    "line_spread",
    "load_source",
    "sensor_sigma",
    "sensor_to_image",
    "sharp_sigma",
    "smallest_resolved",
    "training_images",
]
