"""A simulated ophyd-async motor that steps and flies on a :class:`SimClock`."""

from __future__ import annotations

import asyncio
import math
from dataclasses import dataclass
from functools import cached_property
from typing import Any

from ophyd_async.core import (
    AsyncStatus,
    FlyMotorInfo,
    MovableLogic,
    StandardMovable,
    StandardReadable,
    TimeoutCalculator,
    error_if_none,
    soft_signal_r_and_setter,
    soft_signal_rw,
)
from ophyd_async.core import StandardReadableFormat as Format

from .clock import SimClock
from .profile import MotionProfile

__all__ = ["SimAxis"]


@dataclass
class _AxisMoveLogic(MovableLogic[float]):
    """Step moves of a :class:`SimAxis` along a :class:`MotionProfile`."""

    axis: Any

    async def stop(self) -> None:
        await self.axis.halt()

    async def move(self, new_position: float, timeout: TimeoutCalculator) -> None:
        await self.axis.step_move(new_position)


class SimAxis(StandardReadable, StandardMovable[float]):
    """Simulated motor: readback named as the device, velocity, max_velocity, ramps.

    Step moves (``set``) follow a trapezoidal profile at ``velocity`` (0: instant).
    With a virtual clock the readback jumps to the target once the clock has been
    advanced by the move time; with realistic timing it is updated every
    ``update_period`` seconds on the way. Fly scans follow ``ophyd_async`` motors:
    ``prepare(FlyMotorInfo)`` moves to the ramp-up start, ``kickoff()`` starts the
    constant-velocity trajectory and returns once at speed, ``complete()`` finishes
    at the ramp-down end. :meth:`position_at` tells where the stage is at any clock
    time of the current or last move.

    Parameters
    ----------
    name
        Device name (and data key of the readback).
    clock
        Time of the simulation (default: a virtual clock of its own).
    units
        Engineering units of the position (velocities in ``units/s``).
    initial_value
        Starting position.
    velocity
        Speed of step moves, units per second (0: instant moves).
    max_velocity
        Fastest speed the stage accepts for a fly scan.
    acceleration_time
        Seconds to reach the speed from rest (and to stop).
    update_period
        Seconds between readback updates while following a trajectory.
    """

    def __init__(self, name: str = "", *, clock: SimClock | None = None, units: str = "deg",
                 initial_value: float = 0.0, velocity: float = 30.0,
                 max_velocity: float = 90.0, acceleration_time: float = 0.1,
                 update_period: float = 0.1) -> None:
        if not update_period > 0:
            raise ValueError(f"update_period must be > 0 s, got {update_period!r}")
        self.clock = clock if clock is not None else SimClock()
        self.units = str(units)
        self.update_period = float(update_period)
        with self.add_children_as_readables(Format.HINTED_SIGNAL):
            self.user_readback, self._set_readback = soft_signal_r_and_setter(
                float, float(initial_value), units=self.units)
        with self.add_children_as_readables(Format.CONFIG_SIGNAL):
            self.velocity = soft_signal_rw(float, float(velocity), units=f"{self.units}/s")
            self.max_velocity, _ = soft_signal_r_and_setter(
                float, float(max_velocity), units=f"{self.units}/s")
            self.acceleration_time = soft_signal_rw(float, float(acceleration_time), units="s")
        self.user_setpoint = soft_signal_rw(float, float(initial_value), units=self.units)
        self._position = float(initial_value)
        self._max_velocity = float(max_velocity)
        self._profile: MotionProfile | None = None
        self._fly_info: FlyMotorInfo | None = None
        self._fly_profile: MotionProfile | None = None
        self._fly_task: asyncio.Task[None] | None = None
        super().__init__(name=name)

    @cached_property
    def movable_logic(self) -> _AxisMoveLogic:
        """How ``set`` moves the stage."""
        return _AxisMoveLogic(setpoint=self.user_setpoint, readback=self.user_readback,
                              axis=self)

    # ----------------------------------------------------------------- state
    @property
    def position(self) -> float:
        """Latest readback, read synchronously."""
        return self._position

    @property
    def trajectory(self) -> MotionProfile | None:
        """The current or last move (its ``t_start``: the clock time it began), if any."""
        return self._profile

    def position_at(self, t: float) -> float:
        """Position at clock time ``t`` of the current or last move.

        During a fly: the ramp up, the constant velocity and the ramp down of the
        trajectory started by :meth:`kickoff`, clamped to its ends outside it. With
        no move since the stage was last stopped: the readback.
        """
        return self._position if self._profile is None else self._profile.position(t)

    def _set_position(self, value: float) -> None:
        self._position = float(value)
        self._set_readback(self._position)

    async def _follow(self, profile: MotionProfile, *, advance: bool) -> None:
        """Move along ``profile``; ``advance``: a virtual clock is advanced to its end."""
        self._profile = profile
        try:
            if profile.duration == 0:
                pass
            elif advance and not self.clock.realistic_timing:
                await self.clock.sleep_until(profile.t_end)
            else:
                steps = math.ceil(profile.duration / self.update_period)
                for k in range(1, steps):
                    t = profile.t_start + k * self.update_period
                    await self.clock.wait_until(t)
                    self._set_position(profile.position(t))
                await self.clock.wait_until(profile.t_end)
            self._set_position(profile.end)
        except asyncio.CancelledError:
            self._profile = None  # stopped where it is
            raise

    async def step_move(self, target: float, speed: float | None = None) -> None:
        """Move to ``target`` at ``speed`` (default: ``velocity``); used by ``set``."""
        target = float(target)
        await self.user_setpoint.set(target)
        if speed is None:
            speed = await self.velocity.get_value()
        acceleration = max(float(await self.acceleration_time.get_value()), 0.0)
        profile = MotionProfile(self._position, target, abs(float(speed)), acceleration,
                                self.clock.now())
        await self._follow(profile, advance=True)

    async def halt(self) -> None:
        """Stop a fly where the stage is (a step move is stopped by ``stop``)."""
        if self._fly_task is not None and not self._fly_task.done():
            self._fly_task.cancel()
        self._fly_task = None
        self._profile = None
        await self.user_setpoint.set(self._position)

    # ------------------------------------------------------------------- fly
    def prepare(self, value: FlyMotorInfo) -> AsyncStatus:
        """Check the speed, then move to the ramp-up start and set ``velocity``.

        Raises
        ------
        ValueError
            At once, before anything moves, if the fly speed is above ``max_velocity``.
        """
        if value.speed > self._max_velocity:
            raise ValueError(
                f"{self.name}: fly speed {value.speed:g} {self.units}/s "
                f"(from {value.start_position:g} to {value.end_position:g} {self.units} in "
                f"{value.time_for_move:g} s) is above max_velocity {self._max_velocity:g} "
                f"{self.units}/s")
        return AsyncStatus(self._prepare(value))

    async def _prepare(self, value: FlyMotorInfo) -> None:
        await self.halt()
        self._fly_info = None
        acceleration = await self.acceleration_time.get_value()
        await self.step_move(value.ramp_up_start_pos(acceleration), speed=self._max_velocity)
        await self.velocity.set(value.speed)
        self._fly_info = value

    @AsyncStatus.wrap
    async def kickoff(self) -> None:
        """Start the trajectory; return once at speed (``acceleration_time`` later)."""
        info = error_if_none(self._fly_info,
                             f"{self.name}: prepare() must be called before kickoff()")
        self._fly_info = None
        acceleration = max(float(await self.acceleration_time.get_value()), 0.0)
        end = info.ramp_down_end_pos(acceleration)
        await self.user_setpoint.set(end)
        profile = MotionProfile(self._position, end, info.speed, acceleration, self.clock.now())
        self._fly_profile = profile
        self._fly_task = asyncio.create_task(self._follow(profile, advance=False))
        await self.clock.sleep(profile.ramp_time)

    def complete(self) -> AsyncStatus:
        """Done once the trajectory has reached the ramp-down end position."""
        task = error_if_none(self._fly_task,
                             f"{self.name}: kickoff() must be called before complete()")
        profile = error_if_none(self._fly_profile, f"{self.name}: no trajectory")
        return AsyncStatus(self._complete(task, profile))

    async def _complete(self, task: asyncio.Task[None], profile: MotionProfile) -> None:
        await self.clock.sleep_until(profile.t_end)
        await task
        self._fly_task = None
