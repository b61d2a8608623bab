"""Validation of ``lowdose_tomo_plan`` arguments, done before anything moves."""

from __future__ import annotations

import math
import warnings
from collections.abc import Sequence
from typing import Any

import numpy as np
from pydantic import BaseModel, ConfigDict, ValidationError, field_validator, model_validator

from ..recon._checks import ANGLE_TOLERANCE_DEG

__all__ = ["TomoScanSpec", "TomoScanWarning", "build_spec", "validate_scan"]


class TomoScanWarning(UserWarning):
    """Scan arguments that are accepted but likely to give poor results."""


def finite_number(name: str, value: Any) -> float:
    """``value`` as a float; ``ValueError`` naming ``name`` unless a finite number."""
    if isinstance(value, bool) or not isinstance(value, int | float | np.number):
        raise ValueError(f"{name} must be a number, got {value!r}")
    if not math.isfinite(float(value)):
        raise ValueError(f"{name} must be finite, got {value!r}")
    return float(value)


def build_spec(model: type[BaseModel], plan_name: str, **arguments: Any) -> Any:
    """``model(**arguments)``, its validation errors as one plain ``ValueError``.

    Each problem says what was received and what is allowed; the message names the plan.
    """
    try:
        return model(**arguments)
    except ValidationError as exc:
        problems = [str(e["msg"]).removeprefix("Value error, ") for e in exc.errors()]
        raise ValueError(f"invalid {plan_name} arguments: " + "; ".join(problems)) from None


class TomoScanSpec(BaseModel):
    """The validated geometry and exposures of one low-dose tomography scan.

    Every check raises ``ValueError`` naming the value received and what is allowed.

    Reference angles may be given in any order (the pairs are taken in that
    order) but must be distinct and lie within ``[start, stop]``. A single
    reference angle is accepted (:func:`validate_scan` then warns with a
    :class:`TomoScanWarning`: the enhancer learns from one long/short pair,
    which generalises poorly to the other angles; at least 2 are
    recommended). No reference angle at all (an empty sequence) makes a
    *blind* scan (:attr:`blind`): nothing is acquired at the long exposure,
    neither reference pairs nor long darks and flats, so the enhancer has to
    learn from the short-exposure data alone. ``long_exposure`` is still
    required and checked in a blind scan: it is the nominal full-dose
    exposure that :attr:`dose_ratio` refers to. The rotation goes from
    ``start`` to ``stop`` (either direction) in steps of at least
    ``ANGLE_TOLERANCE_DEG``, so that no two projections share an angle.
    """

    model_config = ConfigDict(frozen=True, arbitrary_types_allowed=True)

    reference_angles: tuple[float, ...]
    long_exposure: float
    short_exposure: float
    start: float
    stop: float
    num_projections: int
    num_darks: int
    num_flats: int
    flat_offset: float
    has_sample_stage: bool
    has_shutter: bool

    @field_validator("reference_angles", mode="before")
    @classmethod
    def _angles(cls, value: Any) -> tuple[float, ...]:
        if isinstance(value, str | bytes) or not isinstance(value, Sequence | np.ndarray):
            raise ValueError(f"reference_angles must be a sequence of angles in degrees, "
                             f"got {value!r}")
        angles = tuple(finite_number("reference angle", a) for a in value)
        for j, angle in enumerate(angles):
            if angle in angles[:j]:
                raise ValueError(f"reference_angles must be distinct: reference_angles[{j}] = "
                                 f"{angle} repeats reference_angles[{angles.index(angle)}] "
                                 f"(got {list(angles)}); one long/short pair per angle")
        return angles

    @field_validator("long_exposure", "short_exposure", "start", "stop", "flat_offset",
                     mode="before")
    @classmethod
    def _number(cls, value: Any, info: Any) -> float:
        return finite_number(info.field_name, value)

    @field_validator("num_projections", "num_darks", "num_flats", mode="before")
    @classmethod
    def _count(cls, value: Any, info: Any) -> int:
        if isinstance(value, bool) or not isinstance(value, int | np.integer):
            raise ValueError(f"{info.field_name} must be an integer, got {value!r}")
        if value < 0:
            raise ValueError(f"{info.field_name} must be >= 0, got {value}")
        return int(value)

    @model_validator(mode="after")
    def _consistent(self) -> TomoScanSpec:
        if self.short_exposure <= 0 or self.long_exposure <= 0:
            raise ValueError(f"exposures must be > 0 s, got long_exposure={self.long_exposure}, "
                             f"short_exposure={self.short_exposure}")
        if self.long_exposure <= self.short_exposure:
            raise ValueError(f"long_exposure must be longer than short_exposure, got "
                             f"long_exposure={self.long_exposure} <= "
                             f"short_exposure={self.short_exposure}")
        if self.num_projections < 2:
            raise ValueError(f"num_projections must be >= 2, got {self.num_projections}")
        if self.stop == self.start:
            raise ValueError(f"start and stop must differ, got start=stop={self.start}")
        step = abs(self.stop - self.start) / (self.num_projections - 1)
        if step < ANGLE_TOLERANCE_DEG:
            raise ValueError(f"the angular step |stop - start| / (num_projections - 1) = "
                             f"{step:.3g} deg is below {ANGLE_TOLERANCE_DEG} deg (start="
                             f"{self.start}, stop={self.stop}, num_projections="
                             f"{self.num_projections}); projections would repeat angles")
        lo, hi = sorted((self.start, self.stop))
        outside = [a for a in self.reference_angles if not lo <= a <= hi]
        if outside:
            raise ValueError(f"reference angles {outside} lie outside the rotation range "
                             f"[{lo}, {hi}] deg (start={self.start}, stop={self.stop}); "
                             "reference pairs must be taken within the scanned range")
        if self.num_flats > 0 and not self.has_sample_stage:
            raise ValueError(f"num_flats={self.num_flats} flats requested but no sample_x stage "
                             "was given to move the sample out of the beam; pass sample_x= or "
                             "num_flats=0")
        if self.num_darks > 0 and not self.has_shutter:
            raise ValueError(f"num_darks={self.num_darks} darks requested but no shutter was "
                             "given to close the beam; pass shutter= or num_darks=0")
        if self.num_flats > 0 and self.flat_offset == 0:
            raise ValueError("flat_offset must be non-zero to move the sample out of the beam "
                             "for flats, got 0")
        return self

    @property
    def angles(self) -> np.ndarray:
        """The rotation angles, evenly spaced from start to stop inclusive."""
        return np.linspace(self.start, self.stop, self.num_projections)

    @property
    def blind(self) -> bool:
        """True when no reference angle is given: no long exposure is acquired at all."""
        return not self.reference_angles

    @property
    def exposures(self) -> tuple[float, ...]:
        """Exposures of the dark and flat frames: short then long, or short only if blind."""
        if self.blind:
            return (self.short_exposure,)
        return (self.short_exposure, self.long_exposure)

    @property
    def dose_ratio(self) -> float:
        """Long over short exposure (nominal in a blind scan, where nothing is long)."""
        return self.long_exposure / self.short_exposure


def validate_scan(**arguments: Any) -> TomoScanSpec:
    """Build a :class:`TomoScanSpec`, raising a plain ``ValueError`` on bad arguments.

    Warns (:class:`TomoScanWarning`) about accepted but poor choices: a single
    reference angle.

    Parameters
    ----------
    **arguments
        The fields of :class:`TomoScanSpec`.

    Returns
    -------
    TomoScanSpec

    Raises
    ------
    ValueError
        With every problem found, each saying what was received and what is allowed.
    """
    spec = build_spec(TomoScanSpec, "lowdose_tomo_plan", **arguments)
    if len(spec.reference_angles) == 1:
        warnings.warn(
            f"a single reference angle ({spec.reference_angles[0]} deg): the enhancer is "
            "trained on one long/short pair, which generalises poorly to other angles; at "
            "least 2 reference angles are recommended, e.g. reference_angles=(30.0, 120.0)",
            TomoScanWarning, stacklevel=2)
    return spec
