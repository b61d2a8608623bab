"""Validation of ``lowdose_ptycho_plan`` arguments, done before anything moves."""

from __future__ import annotations

import math
from typing import Any

import numpy as np
from pydantic import BaseModel, ConfigDict, field_validator, model_validator

from .validation import build_spec, finite_number

__all__ = ["PATTERNS", "PtychoScanSpec", "scan_positions", "validate_ptycho_scan"]

#: Position patterns of a scan.
PATTERNS = ("raster", "spiral")


def _rectangle(name: str, value: Any) -> tuple[float, float, float, float]:
    try:
        x0, y0, width, height = value
    except (TypeError, ValueError):
        raise ValueError(f"{name} must be (x0, y0, width, height), got {value!r}") from None
    out = tuple(finite_number(name, v) for v in (x0, y0, width, height))
    if out[2] < 0 or out[3] < 0:
        raise ValueError(f"{name} must have a width and height >= 0, got {value!r}")
    return out  # type: ignore[return-value]


def scan_positions(field: tuple[float, float, float, float], step: float,
                   pattern: str) -> np.ndarray:
    """Stage positions ``(N, 2)`` as ``(x, y)`` covering ``field`` with ``step``.

    ``raster``: rows of points ``step`` apart from ``(x0, y0)``, the last row and
    column at most ``step`` short of the far edges, in snake order (each row
    reversed from the last). ``spiral``: a Fermat spiral from the field's centre
    with the same density of points (one per ``step``²), kept inside the field.
    """
    x0, y0, width, height = field
    if pattern == "raster":
        xs = x0 + step * np.arange(math.floor(width / step + 1e-9) + 1)
        ys = y0 + step * np.arange(math.floor(height / step + 1e-9) + 1)
        rows = [np.column_stack([xs[::-1] if r % 2 else xs, np.full(xs.size, y)])
                for r, y in enumerate(ys)]
        return np.concatenate(rows)
    golden = math.pi * (3 - math.sqrt(5))
    radius = step / math.sqrt(math.pi)  # one point per step^2
    cx, cy = x0 + width / 2, y0 + height / 2
    n_max = int(4 * (width + step) * (height + step) / step**2) + 1
    k = np.arange(n_max)
    r, theta = radius * np.sqrt(k), k * golden
    points = np.column_stack([cx + r * np.cos(theta), cy + r * np.sin(theta)])
    inside = ((points[:, 0] >= x0 - 1e-9) & (points[:, 0] <= x0 + width + 1e-9)
              & (points[:, 1] >= y0 - 1e-9) & (points[:, 1] <= y0 + height + 1e-9))
    return points[inside]


class PtychoScanSpec(BaseModel):
    """The validated positions and exposure of one low-dose ptychography scan.

    Positions are stage coordinates (e.g. µm). ``field`` and ``train_field`` are
    ``(x0, y0, width, height)`` rectangles of positions; the training field is
    scanned densely (``train_step``), then the rest of the field sparsely
    (``sparse_step``; positions inside the training field are skipped). No training
    field (``None``) needs a pretrained model.
    """

    model_config = ConfigDict(frozen=True)

    field: tuple[float, float, float, float]
    train_field: tuple[float, float, float, float] | None
    train_step: float
    sparse_step: float
    exposure: float
    pattern: str
    pretrained: str | None

    @field_validator("field", "train_field", mode="before")
    @classmethod
    def _fields(cls, value: Any, info: Any) -> Any:
        if value is None and info.field_name == "train_field":
            return None
        return _rectangle(info.field_name, value)

    @field_validator("train_step", "sparse_step", "exposure", mode="before")
    @classmethod
    def _positive(cls, value: Any, info: Any) -> float:
        number = finite_number(info.field_name, value)
        if number <= 0:
            raise ValueError(f"{info.field_name} must be > 0, got {value!r}")
        return number

    @field_validator("pattern", mode="before")
    @classmethod
    def _pattern(cls, value: Any) -> str:
        if value not in PATTERNS:
            raise ValueError(f"pattern must be one of {', '.join(map(repr, PATTERNS))}, got "
                             f"{value!r}")
        return str(value)

    @field_validator("pretrained", mode="before")
    @classmethod
    def _pretrained(cls, value: Any) -> str | None:
        if value is not None and (not isinstance(value, str) or not value):
            raise ValueError(f"pretrained must be a result uid or a checkpoint path, got "
                             f"{value!r}")
        return value

    @model_validator(mode="after")
    def _consistent(self) -> PtychoScanSpec:
        if self.train_field is None and self.pretrained is None:
            raise ValueError("a scan with no training field (train_field=None) needs a "
                             "pretrained model (pretrained=result uid or checkpoint path)")
        if self.train_field is not None:
            fx, fy, fw, fh = self.field
            tx, ty, tw, th = self.train_field
            if tx < fx - 1e-9 or ty < fy - 1e-9 or tx + tw > fx + fw + 1e-9 or \
                    ty + th > fy + fh + 1e-9:
                raise ValueError(f"train_field {self.train_field} must lie inside field "
                                 f"{self.field}")
            if len(self.train_positions()) < 2:
                raise ValueError(f"train_field {self.train_field} with train_step "
                                 f"{self.train_step} holds fewer than 2 positions")
        if not len(self.sparse_positions()):
            raise ValueError(f"no sparse position in field {self.field} outside train_field "
                             f"{self.train_field} with sparse_step {self.sparse_step}")
        return self

    def train_positions(self) -> np.ndarray:
        """``(N, 2)`` ``(x, y)`` of the dense scan (none without a training field)."""
        if self.train_field is None:
            return np.zeros((0, 2))
        return scan_positions(self.train_field, self.train_step, self.pattern)

    def sparse_positions(self) -> np.ndarray:
        """``(N, 2)`` ``(x, y)`` of the sparse scan, outside the training field."""
        points = scan_positions(self.field, self.sparse_step, self.pattern)
        if self.train_field is None:
            return points
        tx, ty, tw, th = self.train_field
        inside = ((points[:, 0] >= tx - 1e-9) & (points[:, 0] <= tx + tw + 1e-9)
                  & (points[:, 1] >= ty - 1e-9) & (points[:, 1] <= ty + th + 1e-9))
        return points[~inside]


def validate_ptycho_scan(**arguments: Any) -> PtychoScanSpec:
    """Build a :class:`PtychoScanSpec`, raising a plain ``ValueError`` on bad arguments."""
    return build_spec(PtychoScanSpec, "lowdose_ptycho_plan", **arguments)
