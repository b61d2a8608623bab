"""CNN enhancement of short-exposure projections (Yang et al., Sci. Rep. 8:2575, 2018).

Train an :class:`Enhancer` on a few short/long exposure pairs of the same
sample with :func:`train_enhancer`, then call it on every short-exposure
projection. Two networks are available: ``"unet"`` (fully convolutional,
residual; any frame size) and ``"yang2018"`` (the paper's patch network, run
on Hann-blended strided patches). This is the only subpackage that imports
torch.

Examples
--------
>>> enhancer = train_enhancer(low_pairs, high_pairs, arch="unet", epochs=20)
>>> enhanced = enhancer(short_projections)          # (N, H, W) float32
>>> enhancer.save("enhancer.safetensors")
>>> same = Enhancer.load("enhancer.safetensors")
"""

from .blending import PatchLayout, blend_patches, extract_patches, hann_window, window_sum
from .checkpoint import FORMAT_VERSION
from .enhancer import Enhancer
from .losses import LOSSES, inverse_psnr_loss, psnr
from .networks import ARCHS, build_network
from .noise2inverse import (
    Noise2InverseConfig,
    Noise2InverseDenoiser,
    check_split,
    train_noise2inverse,
)
from .normalisation import Normalisation
from .ptychonn import PtychoNN, PtychoNNModel, normalise_patterns, train_ptychonn
from .runtime import set_cpu_threads
from .training import fine_tune, train_enhancer
from .unet import UNet
from .vdsr import VDSR, SRModel, train_vdsr
from .yang2018 import Yang2018Net

__all__ = [
    "ARCHS",
    "FORMAT_VERSION",
    "LOSSES",
    "VDSR",
    "Enhancer",
    "Noise2InverseConfig",
    "Noise2InverseDenoiser",
    "Normalisation",
    "PatchLayout",
    "PtychoNN",
    "PtychoNNModel",
    "SRModel",
    "UNet",
    "Yang2018Net",
    "blend_patches",
    "build_network",
    "check_split",
    "extract_patches",
    "fine_tune",
    "hann_window",
    "inverse_psnr_loss",
    "normalise_patterns",
    "psnr",
    "set_cpu_threads",
    "train_enhancer",
    "train_noise2inverse",
    "train_ptychonn",
    "train_vdsr",
    "window_sum",
]
