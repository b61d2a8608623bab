"""A tiny recipe for the engine tests: the mean frame of a run's primary stream.

Registered by the tests with
``register_recipe("mean", "tests.engine._mean_recipe:MeanRecipe", ("mean_count",))``.
It publishes the running mean to the live result as it goes, and can be told to fail
in ``finish``.
"""

from __future__ import annotations

import threading
from typing import Any

import numpy as np

from lowdose_bluesky.engine import AnalysisOutput, FrameRef, RunContext

PLAN = "mean_count"


class MeanRecipe:
    """Average the frames of data key ``key`` of the primary stream."""

    name = "mean"

    def __init__(self, key: str = "det_image", fail_in_finish: bool = False) -> None:
        self.settings = {"key": key, "fail_in_finish": fail_in_finish}

    def check(self, start: dict[str, Any]) -> None:
        if start.get("plan_name") != PLAN:
            raise ValueError(f"the mean recipe serves {PLAN!r} runs only")

    def open(self, start: dict[str, Any], context: RunContext) -> MeanAnalysis:
        return MeanAnalysis(context, **self.settings)

    def settings_metadata(self) -> dict[str, Any]:
        return dict(self.settings)


class MeanAnalysis:
    def __init__(self, context: RunContext, key: str, fail_in_finish: bool) -> None:
        self.context = context
        self.key = key
        self.fail_in_finish = fail_in_finish
        self.total: np.ndarray | None = None
        self.n = 0
        self.abandoned = False

    def add_frame(self, stream: str, ref: FrameRef, data: dict[str, Any],
                  received: float) -> None:
        if stream != "primary":
            return
        frame = np.asarray(self.context.source.read(ref.for_key(self.key, data)), np.float64)
        self.total = frame if self.total is None else self.total + frame
        self.n += 1
        self.context.progress(frames=self.n)

    def idle(self) -> None:
        pass

    def finish(self, stop: dict[str, Any]) -> AnalysisOutput:
        if self.fail_in_finish:
            raise RuntimeError(f"mean recipe told to fail after {self.n} frames")
        if self.total is None:
            raise ValueError("no primary frame")
        return AnalysisOutput({"status": "complete", "frames": self.n},
                              {"mean": (self.total / self.n).astype(np.float32)})

    def abandon(self) -> None:
        self.abandoned = True


#: Released by a test: until then :func:`gated_recipe` blocks (a recipe slow to build).
GATE = threading.Event()


def gated_recipe(**options: Any) -> MeanRecipe:
    """A :class:`MeanRecipe` that is built only once :data:`GATE` is set."""
    if not GATE.wait(60):
        raise TimeoutError("the test never opened the gate")
    return MeanRecipe(**options)
