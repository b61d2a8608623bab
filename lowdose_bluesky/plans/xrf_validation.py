"""Validation of ``lowdose_xrf_plan`` arguments, done before anything moves."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
from pydantic import BaseModel, ConfigDict, field_validator, model_validator

from .validation import build_spec, finite_number

__all__ = ["XRFScanSpec", "validate_xrf_scan"]


class XRFScanSpec(BaseModel):
    """The validated raster and dwell times of one low-dose XRF map.

    The map is ``num_y`` rows of ``num_x`` pixels, pixel ``(row, col)`` at
    ``(x_start + col * step_x, y_start + row * step_y)``. The ``primary`` raster is
    taken at ``dwell`` seconds per pixel; each of ``reference_rows`` (row indices) is
    taken again at ``long_dwell`` first (the supervised method's training data). No
    reference row makes a *blind* map; ``long_dwell`` is then the nominal full dose
    that ``dwell_ratio`` refers to.
    """

    model_config = ConfigDict(frozen=True)

    x_start: float
    y_start: float
    step_x: float
    step_y: float
    num_x: int
    num_y: int
    dwell: float
    long_dwell: float
    reference_rows: tuple[int, ...]

    @field_validator("x_start", "y_start", "step_x", "step_y", "dwell", "long_dwell",
                     mode="before")
    @classmethod
    def _numbers(cls, value: Any, info: Any) -> float:
        return finite_number(info.field_name, value)

    @field_validator("num_x", "num_y", mode="before")
    @classmethod
    def _count(cls, value: Any, info: Any) -> int:
        if isinstance(value, bool) or not isinstance(value, int | np.integer) or value < 2:
            raise ValueError(f"{info.field_name} must be an integer >= 2, got {value!r}")
        return int(value)

    @field_validator("reference_rows", mode="before")
    @classmethod
    def _rows(cls, value: Any) -> tuple[int, ...]:
        if isinstance(value, str | bytes) or not isinstance(value, Sequence | np.ndarray):
            raise ValueError(f"reference_rows must be a sequence of row indices, got {value!r}")
        rows = []
        for row in value:
            if isinstance(row, bool) or not isinstance(row, int | np.integer):
                raise ValueError(f"reference_rows must hold integer row indices, got {row!r}")
            if int(row) in rows:
                raise ValueError(f"reference_rows must be distinct: row {row} repeats "
                                 f"(got {list(value)})")
            rows.append(int(row))
        return tuple(rows)

    @model_validator(mode="after")
    def _consistent(self) -> XRFScanSpec:
        if self.dwell <= 0:
            raise ValueError(f"dwell must be > 0 s, got {self.dwell}")
        if self.long_dwell <= self.dwell:
            raise ValueError(f"the dwell ratio long_dwell / dwell must be > 1, got "
                             f"long_dwell={self.long_dwell} / dwell={self.dwell} = "
                             f"{self.long_dwell / self.dwell:.3g}")
        for name in ("step_x", "step_y"):
            if getattr(self, name) == 0:
                raise ValueError(f"{name} must be non-zero, got 0")
        outside = [r for r in self.reference_rows if not 0 <= r < self.num_y]
        if outside:
            raise ValueError(f"reference_rows {outside} lie outside the map's rows 0.."
                             f"{self.num_y - 1} (num_y={self.num_y})")
        return self

    @property
    def blind(self) -> bool:
        """True when no reference row is taken: nothing at the long dwell."""
        return not self.reference_rows

    @property
    def dwell_ratio(self) -> float:
        """Long over short dwell."""
        return self.long_dwell / self.dwell

    def x(self, col: int) -> float:
        """x position of column ``col``."""
        return self.x_start + col * self.step_x

    def y(self, row: int) -> float:
        """y position of row ``row``."""
        return self.y_start + row * self.step_y


def validate_xrf_scan(**arguments: Any) -> XRFScanSpec:
    """Build an :class:`XRFScanSpec`, raising a plain ``ValueError`` on bad arguments."""
    return build_spec(XRFScanSpec, "lowdose_xrf_plan", **arguments)
