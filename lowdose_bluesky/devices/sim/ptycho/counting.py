"""Photon counting of the simulated ptychography detector: far-field patterns of the object."""

from __future__ import annotations

from typing import Any

import numpy as np

from ....ptycho import check_object, check_probe, diffraction_patterns

__all__ = ["PtychoCounting"]


class PtychoCounting:
    """Draws the far-field pattern of the probe on the object where the stages put it.

    The stages move the object: stage position ``(x, y)`` µm puts the probe window's
    top-left corner on object pixel ``(y / pixel_size_um, x / pixel_size_um)``
    (rounded). A pattern is ``|F(P * O_window)|^2`` scaled so that a transparent
    object gives ``flux * exposure`` photons in all, with Poisson counts.

    Parameters
    ----------
    obj
        Complex transmission function of the object ``(H, W)``, amplitude <= 1.
    probe
        Complex probe ``(h, w)``: the pattern shape.
    flux
        Photons per second in the probe.
    pixel_size_um
        Object pixel size, µm.
    seed
        Seeds the Poisson noise.

    Raises
    ------
    ValueError
        For an invalid object, probe, flux or pixel size, naming it.
    """

    def __init__(self, obj: np.ndarray, probe: np.ndarray, *, flux: float,
                 pixel_size_um: float, seed: int | None = None) -> None:
        self.obj = check_object(obj)
        self.probe = check_probe(probe, np.shape(probe))
        if self.probe.shape[0] > self.obj.shape[0] or self.probe.shape[1] > self.obj.shape[1]:
            raise ValueError(f"the probe {self.probe.shape} is larger than the object "
                             f"{self.obj.shape}")
        if isinstance(flux, bool) or not np.isfinite(flux) or flux <= 0:
            raise ValueError(f"photons (per second) must be a positive number, got {flux!r}")
        if isinstance(pixel_size_um, bool) or not np.isfinite(pixel_size_um) or \
                pixel_size_um <= 0:
            raise ValueError(f"pixel_size_um must be a positive number, got {pixel_size_um!r}")
        self.flux = float(flux)
        self.pixel_size_um = float(pixel_size_um)
        self.seed = seed
        self._rng = np.random.default_rng(seed)

    @property
    def pattern_shape(self) -> tuple[int, int]:
        """``(h, w)`` of a pattern (the probe's shape)."""
        return (int(self.probe.shape[0]), int(self.probe.shape[1]))

    def corner(self, x: float, y: float) -> tuple[int, int]:
        """Object pixel ``(row, col)`` of the probe window's corner at stage ``(x, y)`` µm."""
        return (round(y / self.pixel_size_um), round(x / self.pixel_size_um))

    def position_limits_um(self) -> tuple[tuple[float, float], tuple[float, float]]:
        """``((x_min, x_max), (y_min, y_max))`` µm that keep the probe on the object."""
        h, w = self.obj.shape
        ph, pw = self.pattern_shape
        return ((0.0, (w - pw) * self.pixel_size_um), (0.0, (h - ph) * self.pixel_size_um))

    def draw(self, x: float, y: float, exposure: float, *, beam_open: bool) -> np.ndarray:
        """Counts ``uint32 (h, w)`` of one exposure at stage ``(x, y)`` (zeros when closed).

        Raises
        ------
        ValueError
            If the probe window at ``(x, y)`` leaves the object.
        """
        row, col = self.corner(x, y)
        h, w = self.obj.shape
        ph, pw = self.pattern_shape
        if not (0 <= row <= h - ph and 0 <= col <= w - pw):
            (x0, x1), (y0, y1) = self.position_limits_um()
            raise ValueError(f"stage position x={x:.4g} um, y={y:.4g} um puts the probe "
                             f"off the object (x must be within {x0:g}..{x1:.4g} um, y "
                             f"within {y0:g}..{y1:.4g} um)")
        if not beam_open or exposure <= 0:
            return np.zeros(self.pattern_shape, np.uint32)
        counts = diffraction_patterns(self.obj, self.probe, np.array([[row, col]], float),
                                      self.flux * exposure, rng=self._rng)[0]
        return np.asarray(counts).astype(np.uint32)

    def describe(self) -> dict[str, Any]:
        """JSON-serialisable facts of the counting (for the start document)."""
        return {"flux_photons_per_s": self.flux, "pixel_size_um": self.pixel_size_um,
                "object_shape": list(self.obj.shape), "pattern_shape": list(self.pattern_shape),
                "seed": self.seed}
