"""What a modality provides to the live engine: a :class:`Recipe` and its :class:`RunAnalysis`.

The engine (:mod:`lowdose_bluesky.engine`) records a run's documents, reads the frames
they announce, schedules the work, stores results and handles failures; a recipe says
what one modality does with a run. Adding a modality is a plan, a simulated device and
a recipe registered with :func:`~lowdose_bluesky.engine.register_recipe`, with no change
to the engine. See ``docs/decisions/0013-live-engine-and-recipes.md``.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, Protocol, runtime_checkable

import numpy as np

from .frames import FrameRef, FrameSource

__all__ = ["AnalysisOutput", "Recipe", "RunAnalysis", "RunContext"]


@dataclass
class RunContext:
    """What the engine lends a :class:`RunAnalysis` for one run.

    Attributes
    ----------
    run_uid
        Uid of the raw run.
    source
        Reads the frames the run's documents announce.
    scan_ended
        Set as soon as the run's stop document reaches the analysis process, before
        the frames queued ahead of it are read: training bounded by the scan looks here.
    show
        ``show(method, *args)`` updates the live figure (``reset``, ``stage``,
        ``add_epoch``, ``set_projection``, ``set_slices``); never raises.
    publish
        ``publish(key, start, frames)`` writes ``frames`` at ``start`` along the first
        axis of the growing array ``key`` of the run's live result in Tiled (an index
        equal to the current length extends it); never raises.
    progress
        ``progress(**fields)`` merges fields into the live result's ``progress``
        metadata (rate-limited by the engine); never raises.
    settings
        The recipe's own settings (whatever its factory was given).
    client
        The Tiled client results go to (e.g. to find an earlier result's checkpoint).
    """

    run_uid: str
    source: FrameSource
    scan_ended: Any
    show: Callable[..., None] = lambda *args: None
    publish: Callable[[str, int, np.ndarray], None] = lambda key, start, frames: None
    progress: Callable[..., None] = lambda **fields: None
    settings: Any = None
    client: Any = None


@dataclass
class AnalysisOutput:
    """A finished analysis: result metadata, arrays and an optional checkpoint.

    ``metadata["status"]`` is ``"complete"`` or ``"incomplete"`` (the scan ended early);
    the engine adds provenance (settings, recipe, version, timings it measured).
    """

    metadata: dict[str, Any]
    arrays: dict[str, np.ndarray] = field(default_factory=dict)
    checkpoint: bytes | None = None


@runtime_checkable
class RunAnalysis(Protocol):
    """The analysis of one run; every method runs on the engine's worker thread.

    Methods may start threads of their own (training in the background), but must
    not call the engine back from them other than through the :class:`RunContext`
    callables. Any exception fails the run: the engine stores a ``failed`` result
    naming it, and the raw run is untouched.
    """

    def add_frame(self, stream: str, ref: FrameRef, data: dict[str, Any],
                  received: float) -> None:
        """One event of ``stream``: its scalar readings ``data`` and the frame at ``ref``.

        ``received`` is when the event document reached the RunEngine side
        (``time.monotonic()``, the same clock in every process of the machine).
        """

    def idle(self) -> None:
        """Do a slice of background work (enhance waiting frames, publish).

        Called whenever no document is waiting, and at least every
        :data:`~lowdose_bluesky.engine.worker.IDLE_S` seconds; keep each call short
        (a batch), so that documents are never held up for long.
        """

    def finish(self, stop: dict[str, Any]) -> AnalysisOutput:
        """The stop document arrived and every frame before it was added: finish."""

    def abandon(self) -> None:
        """The run failed or the engine shuts down: stop background work, free memory."""


@runtime_checkable
class Recipe(Protocol):
    """A modality: which runs it serves and how it analyses one.

    Attributes
    ----------
    name
        Short name recorded in every result (``"tomography"``).
    """

    name: str

    def check(self, start: dict[str, Any]) -> None:
        """Refuse a run this recipe cannot analyse (``ValueError`` saying why).

        Called on the start document before anything is read or trained.
        """

    def open(self, start: dict[str, Any], context: RunContext) -> RunAnalysis:
        """Begin the analysis of the run whose start document is ``start``."""

    def settings_metadata(self) -> dict[str, Any]:
        """The settings, JSON-safe, for the result's provenance."""
