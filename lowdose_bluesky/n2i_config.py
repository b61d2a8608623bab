"""Settings of the Noise2Inverse stage (no torch import: validated where a run starts)."""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict, Field

__all__ = ["MIN_PROJECTIONS_PER_SPLIT", "Noise2InverseConfig", "check_split"]

#: Fewest projections one subset of angles may hold.
MIN_PROJECTIONS_PER_SPLIT = 8


class Noise2InverseConfig(BaseModel):
    """Settings of a Noise2Inverse model (validated; errors name the value and the range).

    Parameters
    ----------
    splits
        ``K``, the number of interleaved subsets of angles.
    context
        Neighbouring slices on either side given as extra input channels (2.5-D).
    base_channels, depth
        Width and number of down-samplings of the U-Net.
    patch_size
        Side of the square training crops (clipped to the slice size).
    batch_size
        Crops per optimisation step.
    lr
        Peak learning rate of Adam (cosine decay over the budget).
    max_seconds
        Training time budget; ``None`` trains ``max_iterations`` steps.
    max_iterations
        Upper bound on optimisation steps; ``None`` only the time budget.
    holdout_every
        Every ``holdout_every``-th slice is held out of training for the gate.
    gate_margin
        The model is used when its estimated error is below ``gate_margin`` times the
        noise variance of the full reconstruction.
    seed
        Seed of the initialisation and of the crop sampling.
    """

    model_config = ConfigDict(validate_assignment=True, extra="forbid")

    splits: int = Field(2, ge=2, le=16)
    context: int = Field(1, ge=0, le=4)
    base_channels: int = Field(16, ge=4, le=128)
    depth: int = Field(2, ge=1, le=4)
    patch_size: int = Field(64, ge=16, le=512)
    batch_size: int = Field(16, ge=1, le=1024)
    lr: float = Field(1e-3, gt=0, le=1.0)
    max_seconds: float | None = Field(40.0, gt=0)
    max_iterations: int | None = Field(None, ge=1)
    holdout_every: int = Field(8, ge=2)
    gate_margin: float = Field(1.0, gt=0, le=10.0)
    seed: int = 0

    @property
    def min_slice_side(self) -> int:
        """Smallest slice side (pixels) the network of this depth accepts."""
        return 4 * 2**self.depth


def check_split(n_projections: int, splits: int) -> None:
    """Reject a run with too few projections for ``splits`` subsets.

    Raises
    ------
    ValueError
        If a subset would hold fewer than :data:`MIN_PROJECTIONS_PER_SPLIT` angles.
    """
    if int(splits) != splits or splits < 2:
        raise ValueError(f"splits must be an integer >= 2, got {splits!r}")
    need = MIN_PROJECTIONS_PER_SPLIT * int(splits)
    if n_projections < need:
        raise ValueError(
            f"{n_projections} projections are too few for Noise2Inverse with {splits} splits: "
            f"each subset of angles needs at least {MIN_PROJECTIONS_PER_SPLIT}, so at least "
            f"{need} projections are needed (acquire more, or use fewer splits, >= 2)")
