"""Training pairs from the measured camera model, and the network they train.

The sharp images are the project's own (:func:`lowdose_bluesky.sr.training_images`:
scikit-image's bundled photographs and rendered edges, lines and blobs); each pair is a
random crop degraded by the knife edge's measured blur and the background's measured
noise (:func:`lowdose_bluesky.sr.degrade`), as the camera degrades the sample's image.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from ...sr import degrade, training_images

__all__ = ["POOL_IMAGES", "PairSampler", "train_for_camera"]

#: Sharp images in the pool the training crops are drawn from.
POOL_IMAGES = 192


class PairSampler:
    """Draws (low, high) training pairs: sharp crops, blurred, binned and made noisy.

    Parameters
    ----------
    sigma_px
        PSF sigma in camera pixels (the knife edge's fit).
    noise
        Standard deviation of the noise in transmission units at full transmission;
        it scales as the square root of the transmission (photon counting).
    factor
        Up-sampling factor (2 or 4).
    seed
        Seed of the pool of sharp images.
    pool_shape
        Shape of each sharp image of the pool.
    """

    def __init__(self, sigma_px: float, noise: float, factor: int, *, seed: int = 0,
                 pool_shape: tuple[int, int] = (128, 128)) -> None:
        self.sigma_px = float(sigma_px)
        self.noise = float(noise)
        self.factor = int(factor)
        self.pool = training_images(shape=pool_shape, n=POOL_IMAGES, seed=seed)

    def __call__(self, rng: np.random.Generator, n: int, patch: int
                 ) -> tuple[np.ndarray, np.ndarray]:
        """``n`` pairs: low ``(n, patch, patch)`` and high ``(n, f*patch, f*patch)``."""
        size = self.factor * patch
        h, w = self.pool.shape[1:]
        if size > min(h, w):
            raise ValueError(f"patch {patch} x factor {self.factor} = {size} exceeds the pool's "
                             f"images of shape {(h, w)}")
        idx = rng.integers(0, len(self.pool), n)
        ys = rng.integers(0, h - size + 1, n)
        xs = rng.integers(0, w - size + 1, n)
        high = np.stack([self.pool[i, y:y + size, x:x + size]
                         for i, y, x in zip(idx, ys, xs, strict=True)])
        low = degrade(high, factor=self.factor, sigma_px=self.sigma_px)
        if self.noise > 0:
            low = low + self.noise * np.sqrt(np.clip(low, 1e-3, None)) * rng.standard_normal(
                low.shape).astype(np.float32)
        return low.astype(np.float32), high.astype(np.float32)


def train_for_camera(sigma_px: float, noise: float, *, factor: int = 2,
                     max_seconds: float | None = 60.0, epochs: int = 200, seed: int = 0,
                     device: str = "auto", **options: Any) -> tuple[Any, dict[str, Any]]:
    """A super-resolution network for a camera of measured blur and noise.

    Returns
    -------
    (SRModel, dict)
        The network and its training record.
    """
    from ...model.vdsr import train_vdsr

    sampler = PairSampler(sigma_px, noise, factor, seed=seed)
    patch = int(options.pop("patch", 32))
    model, record = train_vdsr(lambda rng, n: sampler(rng, n, patch), factor=factor,
                               epochs=epochs, max_seconds=max_seconds, patch=patch, seed=seed,
                               device=device, **options)
    record = {**record, "sigma_px": sigma_px, "noise": noise, "factor": factor,
              "sharp_images": "lowdose_bluesky.sr.training_images", "pool": POOL_IMAGES}
    return model, record
