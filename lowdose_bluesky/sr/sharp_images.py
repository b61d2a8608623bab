"""Sharp training images: bundled scikit-image photographs and rendered edge/line mosaics.

Sources (:data:`IMAGE_SOURCES`):

* :data:`NATURAL_SOURCES`: images shipped inside scikit-image (no download), converted to
  grey, randomly cropped, flipped and rotated by multiples of 90 deg;
* ``"edges_lines"``: groups of parallel bars (widths 1-12 px, integer or not, at random or
  axis-aligned orientations) and rectangles, rendered with 4 x 4 supersampling;
* ``"ellipses"``: random ellipses, rendered the same way.

Values are transmission-like, within :data:`TRANSMISSION_RANGE` = (0.3, 1.0): natural
images map their grey level ``g`` in [0, 1] to ``0.3 + 0.7 g``; rendered shapes absorb
on an open (1.0) background, overlaps multiply (Beer-Lambert), clipped at 0.3.

:data:`TEXTURE_SOURCES` are textures; :data:`HELDOUT_TEXTURES` is the conventional set a
benchmark keeps out of training (``exclude=HELDOUT_TEXTURES``) and samples with
:func:`heldout_texture`.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterable
from functools import cache

import numpy as np
import skimage.data
from skimage.color import rgb2gray, rgba2rgb
from skimage.transform import downscale_local_mean

__all__ = [
    "HELDOUT_TEXTURES",
    "IMAGE_SOURCES",
    "NATURAL_SOURCES",
    "PROCEDURAL_SOURCES",
    "TEXTURE_SOURCES",
    "TRANSMISSION_RANGE",
    "heldout_texture",
    "load_source",
    "training_images",
]

#: scikit-image images bundled with the package (loaded without network access).
NATURAL_SOURCES: tuple[str, ...] = (
    "astronaut", "brick", "camera", "cell", "chelsea", "clock", "coffee", "coins", "grass",
    "gravel", "horse", "hubble_deep_field", "immunohistochemistry", "moon", "page", "rocket",
    "text",
)
#: Rendered sources.
PROCEDURAL_SOURCES: tuple[str, ...] = ("edges_lines", "ellipses")
#: Every source name :func:`training_images` draws from.
IMAGE_SOURCES: tuple[str, ...] = NATURAL_SOURCES + PROCEDURAL_SOURCES
#: Natural sources that are textures.
TEXTURE_SOURCES: tuple[str, ...] = ("brick", "grass", "gravel")
#: Textures conventionally held out of training for evaluation.
HELDOUT_TEXTURES: tuple[str, ...] = ("grass", "gravel")
#: Range of the returned values (dense absorber, open beam).
TRANSMISSION_RANGE: tuple[float, float] = (0.3, 1.0)

_SUPERSAMPLING = 4


@cache
def _grey(name: str) -> np.ndarray:
    if name not in NATURAL_SOURCES:
        raise ValueError(f"unknown natural image source {name!r}; choose from {NATURAL_SOURCES}")
    image = np.asarray(getattr(skimage.data, name)())
    if image.ndim == 3 and image.shape[-1] == 4:
        image = rgba2rgb(image)
    if image.ndim == 3:
        image = rgb2gray(image)
    elif image.dtype == np.uint8:
        image = image / 255.0
    grey = np.clip(image.astype(np.float32), 0.0, 1.0)
    grey.flags.writeable = False
    return grey


def load_source(name: str) -> np.ndarray:
    """Whole natural source image as transmission (float32, in :data:`TRANSMISSION_RANGE`).

    Parameters
    ----------
    name
        One of :data:`NATURAL_SOURCES`.

    Returns
    -------
    ndarray
        2-D float32 image.
    """
    low, high = TRANSMISSION_RANGE
    return (low + (high - low) * _grey(name)).astype(np.float32)


def _augment(image: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    if rng.random() < 0.5:
        image = image[:, ::-1]
    quarter_turns = int(rng.integers(4))
    if image.shape[0] != image.shape[1]:
        quarter_turns = 2 * (quarter_turns % 2)
    return np.rot90(image, quarter_turns)


def _crop(name: str, shape: tuple[int, int], rng: np.random.Generator) -> np.ndarray:
    grey = _grey(name)
    z = int(rng.integers(grey.shape[0] - shape[0] + 1))
    x = int(rng.integers(grey.shape[1] - shape[1] + 1))
    low, high = TRANSMISSION_RANGE
    crop = _augment(grey[z:z + shape[0], x:x + shape[1]], rng)
    return low + (high - low) * crop


def _to_supersampled(coordinate: np.ndarray) -> np.ndarray:
    """Supersampled pixel coordinate of an image pixel coordinate (pixel centres)."""
    return _SUPERSAMPLING * (coordinate + 0.5) - 0.5


def _add_shape(canvas: np.ndarray, kind: str, centre: np.ndarray, size: tuple[float, float],
               angle: float, attenuation: float) -> None:
    """Add ``attenuation`` inside a rotated rectangle or ellipse on the supersampled canvas.

    ``centre`` (row, column) and ``size`` (full extent along and across the direction
    ``angle``, radians from the row axis) are in image pixels.
    """
    along = np.array([math.cos(angle), math.sin(angle)])
    across = np.array([-math.sin(angle), math.cos(angle)])
    half = 0.5 * (np.abs(size[0] * along) + np.abs(size[1] * across))
    low = np.maximum(np.floor(_to_supersampled(centre - half)).astype(int), 0)
    high = np.minimum(np.ceil(_to_supersampled(centre + half)).astype(int) + 1, canvas.shape)
    if np.any(high <= low):
        return
    rows = ((np.arange(low[0], high[0]) + 0.5) / _SUPERSAMPLING - 0.5 - centre[0])[:, None]
    cols = ((np.arange(low[1], high[1]) + 0.5) / _SUPERSAMPLING - 0.5 - centre[1])[None, :]
    along, across = along.astype(np.float32), across.astype(np.float32)
    rows, cols = rows.astype(np.float32), cols.astype(np.float32)
    u = (rows * along[0] + cols * along[1]) * np.float32(2.0 / size[0])
    v = (rows * across[0] + cols * across[1]) * np.float32(2.0 / size[1])
    if kind == "rectangle":
        inside = (np.abs(u) <= 1.0) & (np.abs(v) <= 1.0)
    else:
        inside = u * u + v * v <= 1.0
    block = canvas[low[0]:high[0], low[1]:high[1]]
    np.add(block, np.float32(attenuation), out=block, where=inside)


def _angle(rng: np.random.Generator) -> float:
    if rng.random() < 0.5:
        return float(rng.choice([0.0, 0.5 * math.pi]))
    return float(rng.uniform(0.0, math.pi))


def _attenuation(rng: np.random.Generator) -> float:
    return -math.log(rng.uniform(TRANSMISSION_RANGE[0], 0.9))


def _draw_edges_lines(canvas: np.ndarray, shape: tuple[int, int],
                      rng: np.random.Generator) -> None:
    size = min(shape)
    for _ in range(int(rng.integers(8, 20))):
        centre = rng.uniform((0, 0), shape)
        angle = _angle(rng)
        if rng.random() < 0.6:
            width = rng.uniform(1.0, 12.0)
            if rng.random() < 0.5:
                width = float(round(width))
            gap = width if rng.random() < 0.5 else width * rng.uniform(0.7, 2.0)
            n_bars = int(rng.integers(2, 6))
            length = max(4.0 * width, rng.uniform(8.0, 0.6 * size))
            across = np.array([-math.sin(angle), math.cos(angle)])
            attenuation = _attenuation(rng)
            for k in range(n_bars):
                shift = (k - (n_bars - 1) / 2) * (width + gap)
                _add_shape(canvas, "rectangle", centre + shift * across, (length, width),
                           angle, attenuation)
        else:
            length, width = rng.uniform(2.0, 0.5 * size, 2)
            _add_shape(canvas, "rectangle", centre, (length, width), angle, _attenuation(rng))


def _draw_ellipses(canvas: np.ndarray, shape: tuple[int, int],
                   rng: np.random.Generator) -> None:
    size = min(shape)
    for _ in range(int(rng.integers(5, 20))):
        diameters = rng.uniform(2.0, 0.5 * size, 2)
        _add_shape(canvas, "ellipse", rng.uniform((0, 0), shape), (diameters[0], diameters[1]),
                   float(rng.uniform(0.0, math.pi)), _attenuation(rng))


_RENDERERS: dict[str, Callable[[np.ndarray, tuple[int, int], np.random.Generator], None]] = {
    "edges_lines": _draw_edges_lines,
    "ellipses": _draw_ellipses,
}


def _render(name: str, shape: tuple[int, int], rng: np.random.Generator) -> np.ndarray:
    canvas = np.zeros((shape[0] * _SUPERSAMPLING, shape[1] * _SUPERSAMPLING), np.float32)
    _RENDERERS[name](canvas, shape, rng)
    image = downscale_local_mean(np.exp(-canvas), (_SUPERSAMPLING, _SUPERSAMPLING))
    return np.clip(image, TRANSMISSION_RANGE[0], 1.0)


def _check_shape(shape: Iterable[int]) -> tuple[int, int]:
    values = tuple(int(s) for s in shape)
    if len(values) != 2 or min(values) < 8:
        raise ValueError(f"shape must be (H, W) with H, W >= 8, got {tuple(shape)!r}")
    return values[0], values[1]


def training_images(shape: tuple[int, int] = (128, 128), n: int = 256, seed: int = 0,
                    exclude: Iterable[str] = (),
                    procedural_fraction: float = 0.5) -> np.ndarray:
    """Sharp transmission-like images for training super-resolution.

    Parameters
    ----------
    shape
        ``(H, W)`` of each image.
    n
        Number of images.
    seed
        Seed; the same arguments give the same images.
    exclude
        Source names (from :data:`IMAGE_SOURCES`) to leave out, e.g.
        :data:`HELDOUT_TEXTURES`. Natural sources smaller than ``shape`` are left out too.
    procedural_fraction
        Probability that an image is rendered (``edges_lines`` or ``ellipses``) rather than
        cropped from a natural source, when both kinds are available.

    Returns
    -------
    ndarray
        ``(n, H, W)`` float32 in :data:`TRANSMISSION_RANGE` (within [0, 1]).

    Raises
    ------
    ValueError
        For unknown source names, a bad shape or ``n``, or when no source is left.
    """
    height, width = _check_shape(shape)
    if isinstance(n, bool) or int(n) != n or n < 0:
        raise ValueError(f"n must be a non-negative integer, got {n!r}")
    excluded = set(exclude)
    unknown = excluded - set(IMAGE_SOURCES)
    if unknown:
        raise ValueError(f"unknown sources {sorted(unknown)}; choose from {IMAGE_SOURCES}")
    if not 0.0 <= procedural_fraction <= 1.0:
        raise ValueError(f"procedural_fraction must be in [0, 1], got {procedural_fraction!r}")
    natural = [s for s in NATURAL_SOURCES if s not in excluded
               and min(_grey(s).shape[0] - height, _grey(s).shape[1] - width) >= 0]
    rendered = [s for s in PROCEDURAL_SOURCES if s not in excluded]
    if not natural and not rendered:
        raise ValueError(f"no image source left for shape {(height, width)} after "
                         f"excluding {sorted(excluded)}")
    rng = np.random.default_rng(seed)
    images = np.empty((int(n), height, width), np.float32)
    for i in range(int(n)):
        use_rendered = not natural or (bool(rendered) and rng.random() < procedural_fraction)
        if use_rendered:
            source = rendered[int(rng.integers(len(rendered)))]
            images[i] = _render(source, (height, width), rng)
        else:
            images[i] = _crop(natural[int(rng.integers(len(natural)))], (height, width), rng)
    return images


def heldout_texture(name: str, shape: tuple[int, int] = (128, 128), seed: int = 0) -> np.ndarray:
    """Random crop of one natural source (e.g. a held-out texture), flipped/rotated.

    Parameters
    ----------
    name
        One of :data:`NATURAL_SOURCES`, typically from :data:`HELDOUT_TEXTURES`.
    shape
        ``(H, W)`` of the crop; at most the source's size.
    seed
        Seed of the crop position and orientation.

    Returns
    -------
    ndarray
        ``(H, W)`` float32 in :data:`TRANSMISSION_RANGE`.
    """
    if name not in NATURAL_SOURCES:
        raise ValueError(f"heldout_texture needs a natural source {NATURAL_SOURCES}, "
                         f"got {name!r}")
    height, width = _check_shape(shape)
    source = _grey(name)
    if height > source.shape[0] or width > source.shape[1]:
        raise ValueError(f"shape {(height, width)} exceeds the {name!r} image "
                         f"{source.shape}")
    rng = np.random.default_rng(seed)
    return _crop(name, (height, width), rng).astype(np.float32)
