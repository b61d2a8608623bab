"""Where a simulated stage is at any time of a move: ramp up, constant velocity, ramp down."""

from __future__ import annotations

import math
from dataclasses import dataclass

__all__ = ["MotionProfile"]


@dataclass(frozen=True)
class MotionProfile:
    """A move from ``start`` to ``end`` beginning at clock time ``t_start``.

    The stage accelerates uniformly for ``acceleration_time`` up to ``speed``, moves
    at constant velocity and decelerates uniformly to stop at ``end``. A move too
    short to reach ``speed`` is a triangle with the same acceleration. ``speed`` 0
    means an instant move.

    Attributes
    ----------
    start, end
        Positions (stage units).
    speed
        Cruise speed (units per second, positive).
    acceleration_time
        Seconds to reach ``speed`` from rest.
    t_start
        Clock time at which the move begins.
    """

    start: float
    end: float
    speed: float
    acceleration_time: float
    t_start: float

    @property
    def distance(self) -> float:
        """Length of the move (positive)."""
        return abs(self.end - self.start)

    @property
    def direction(self) -> float:
        """+1 or -1."""
        return 1.0 if self.end >= self.start else -1.0

    @property
    def peak_speed(self) -> float:
        """Highest speed of the move: ``speed``, or less for a short move."""
        if self.speed <= 0 or self.acceleration_time <= 0:
            return self.speed
        return min(self.speed, math.sqrt(self.distance * self.speed / self.acceleration_time))

    @property
    def ramp_time(self) -> float:
        """Seconds of the ramp up (and of the ramp down)."""
        if self.speed <= 0 or self.acceleration_time <= 0:
            return 0.0
        return self.acceleration_time * self.peak_speed / self.speed

    @property
    def duration(self) -> float:
        """Seconds from ``start`` to ``end``."""
        if self.speed <= 0 or self.distance == 0:
            return 0.0
        return 2 * self.ramp_time + self.cruise_time

    @property
    def cruise_time(self) -> float:
        """Seconds at constant velocity."""
        if self.speed <= 0 or self.distance == 0:
            return 0.0
        v, r = self.peak_speed, self.ramp_time
        return max((self.distance - v * r) / v, 0.0)

    @property
    def t_end(self) -> float:
        """Clock time at which the stage stops at ``end``."""
        return self.t_start + self.duration

    def position(self, t: float) -> float:
        """Position at clock time ``t`` (``start`` before, ``end`` after the move)."""
        tau = float(t) - self.t_start
        duration = self.duration
        if tau <= 0 or duration == 0:
            return self.end if duration == 0 and tau >= 0 else self.start
        if tau >= duration:
            return self.end
        v, r, s = self.peak_speed, self.ramp_time, self.direction
        if r > 0 and tau < r:  # ramp up
            return self.start + s * v * tau * tau / (2 * r)
        if r > 0 and tau > duration - r:  # ramp down
            left = duration - tau
            return self.end - s * v * left * left / (2 * r)
        return self.start + s * (v * r / 2 + v * (tau - r))
