"""Darks and flats of an imaging run, and the transmission of its frames."""

from __future__ import annotations

import numpy as np

from ...engine.calibration import RunningMean

__all__ = ["Normaliser"]


class Normaliser:
    """Running dark and flat means; a frame's transmission ``(frame - dark) / (flat - dark)``.

    Without darks the dark is zero; without flats a frame cannot be normalised.
    """

    def __init__(self) -> None:
        self.darks = RunningMean()
        self.flats = RunningMean()

    def add(self, stream: str, frame: np.ndarray) -> None:
        """Add a ``"dark"`` or ``"flat"`` frame."""
        (self.darks if stream == "dark" else self.flats).add(frame)

    @property
    def ready(self) -> bool:
        """Whether flats were seen."""
        return self.flats.count > 0

    def transmission(self, frames: np.ndarray) -> np.ndarray:
        """``(frames - dark) / (flat - dark)`` as float32, the denominator floored at 1 count.

        Raises
        ------
        ValueError
            If no flat was seen, or the frames' shape differs from the flats'.
        """
        if not self.ready:
            raise ValueError("no flat frames: frames cannot be normalised to transmission")
        flat = self.flats.value
        dark = self.darks.value if self.darks.count else np.zeros_like(flat)
        frames = np.asarray(frames, dtype=np.float32)
        if frames.shape[-2:] != flat.shape:
            raise ValueError(f"frames of shape {frames.shape[-2:]} do not match the flats' "
                             f"shape {flat.shape}")
        return (frames - dark) / np.maximum(flat - dark, 1.0)
