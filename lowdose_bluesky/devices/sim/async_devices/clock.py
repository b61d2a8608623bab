"""The time of the simulated ophyd-async TXM: virtual (instant) or the real clock."""

from __future__ import annotations

import asyncio
import heapq
import itertools
import time

__all__ = ["SimClock"]


class SimClock:
    """Time shared by the simulated stages and camera.

    Parameters
    ----------
    realistic_timing
        ``False`` (default): virtual time in seconds, starting at ``start``;
        :meth:`sleep` advances it without waiting, so exposures and moves take no
        wall-clock time. ``True``: :func:`time.monotonic` and :func:`asyncio.sleep`.
    start
        Virtual time at construction.

    Notes
    -----
    With virtual time, two kinds of waiting exist. :meth:`sleep` and
    :meth:`sleep_until` *advance* the clock (the camera exposing, a stage moving to
    a target). :meth:`wait_until` only waits until something else has advanced the
    clock that far (a stage following its fly trajectory while the camera's frames
    advance the time), so a passive follower never moves time ahead of the devices
    that set the pace. Both must be awaited in the same event loop (bluesky's).
    """

    def __init__(self, realistic_timing: bool = False, start: float = 0.0) -> None:
        self._realistic = bool(realistic_timing)
        self._now = float(start)
        self._waiters: list[tuple[float, int, asyncio.Future[None]]] = []
        self._order = itertools.count()

    @property
    def realistic_timing(self) -> bool:
        """Whether this clock is the real one."""
        return self._realistic

    def now(self) -> float:
        """Current time in seconds (virtual, or :func:`time.monotonic`)."""
        return time.monotonic() if self._realistic else self._now

    async def sleep(self, dt: float) -> None:
        """Let ``dt`` seconds pass (virtual: advance the clock and return at once)."""
        dt = max(float(dt), 0.0)
        if self._realistic:
            await asyncio.sleep(dt)
            return
        self._advance(self._now + dt)
        await asyncio.sleep(0)  # let the waiters woken up run

    async def sleep_until(self, t: float) -> None:
        """Let the time pass until ``t`` (no-op if it is already past).

        A virtual clock is set to ``t`` itself, not advanced by ``t - now()``: in
        floating point ``now + (t - now)`` can fall an ulp short of ``t`` and leave a
        follower waiting for ``t`` (:meth:`wait_until`) asleep for ever.
        """
        t = float(t)
        if self._realistic:
            await asyncio.sleep(max(t - time.monotonic(), 0.0))
            return
        self._advance(t)
        await asyncio.sleep(0)  # let the waiters woken up run

    async def wait_until(self, t: float) -> None:
        """Wait until the time reaches ``t``, without advancing a virtual clock."""
        t = float(t)
        if self._realistic:
            await asyncio.sleep(max(t - time.monotonic(), 0.0))
            return
        if t <= self._now:
            return
        future: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        heapq.heappush(self._waiters, (t, next(self._order), future))
        await future

    def _advance(self, t: float) -> None:
        self._now = max(self._now, t)
        while self._waiters and self._waiters[0][0] <= self._now:
            _, _, future = heapq.heappop(self._waiters)
            if not future.done():
                future.set_result(None)

    def __repr__(self) -> str:
        kind = "realistic" if self._realistic else f"virtual, t={self._now:g} s"
        return f"SimClock({kind})"
