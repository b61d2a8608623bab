"""The engine's worker: runs the recipes of every run it is handed, one run at a time.

The same code serves the analysis process that :class:`~lowdose_bluesky.callbacks.
LiveEnhancer` spawns, ``lowdose-bluesky worker`` on another machine, and the in-process
mode. Items come from :class:`~lowdose_bluesky.engine.documents.DocumentRouter`; what
happens is reported through ``notify(kind, run_uid, **payload)``:

``opened``   the live result node exists (``result_uid``);
``outcome``  the run is over: ``result_uid`` (None if nothing could be stored),
             ``error`` (None, or ``(type name, message)``) and ``exception`` (same
             process only);
``figure``   a live-figure update: ``method`` and ``args``.
"""

from __future__ import annotations

import logging
import os
import queue
import sys
import threading
import time
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

from .. import __version__
from .frames import FrameRef, FrameSource
from .recipe import AnalysisOutput, Recipe, RunAnalysis, RunContext
from .registry import RecipeSpec, load_recipe
from .results import LiveResult, ResultNotStored, store_result

__all__ = ["IDLE_S", "AnalysisWorker", "lower_priority"]

log = logging.getLogger(__name__)

#: Seconds the worker waits for a document before giving the running analysis an idle call.
IDLE_S = 0.2
_STOP = ("__stop__",)

Notify = Callable[..., None]


class _Run:
    """What the worker keeps of the run under analysis."""

    def __init__(self, start: dict[str, Any], recipe_name: str) -> None:
        self.uid: str = start["uid"]
        self.start = start
        self.recipe_name = recipe_name
        self.analysis: RunAnalysis | None = None
        self.live: LiveResult | None = None
        self.failed: BaseException | None = None
        self.last_frame: float | None = None


class AnalysisWorker:
    """A thread that analyses runs with their recipes and stores the results.

    Parameters
    ----------
    client
        Root Tiled client; results go to ``client["results"]``.
    recipes
        The recipes by name, and the options each factory is called with.
    source
        Reads the frames the documents announce.
    notify
        Receives the worker's reports (see the module docstring).
    nice
        Niceness added to the worker thread (and the threads it starts) on Linux.
    backup_directory
        Where a result Tiled cannot take is saved (``lowdose-bluesky replay``).
    warm
        Build every recipe (importing torch and the like) as soon as the thread starts,
        so that the first run does not pay for it.
    """

    def __init__(self, client: Any, recipes: Mapping[str, tuple[RecipeSpec, dict[str, Any]]],
                 source: FrameSource, *, notify: Notify, nice: int = 10,
                 backup_directory: str | os.PathLike[str] | None = None,
                 warm: bool = True) -> None:
        self.client = client
        self.source = source
        self.notify = notify
        self.nice = nice
        self.backup_directory = None if backup_directory is None else Path(backup_directory)
        self._specs = dict(recipes)
        self._recipes: dict[str, Recipe] = {}
        self._queue: queue.Queue[Any] = queue.Queue()
        self._ended: dict[str, threading.Event] = {}
        self._warm = warm
        self._current: _Run | None = None
        #: Set once the thread has built its recipes (at once without ``warm``).
        self.ready = threading.Event()
        self.thread = threading.Thread(target=self._work, name="lowdose-analysis", daemon=True)
        self.thread.start()

    # ----------------------------------------------------------- producer side
    def submit(self, item: tuple[Any, ...]) -> None:
        """Hand over one item of :class:`~lowdose_bluesky.engine.documents.DocumentRouter`.

        Frame documents go to the source at once (before the events that use them are
        queued); a stop document marks its scan as ended at once (training bounded by
        the scan stops while the frames queued before it are still being read).
        """
        kind = item[0]
        if kind == "doc":
            self.source.add(item[1], item[2])
            return
        if kind == "start":
            self._ended[item[1]["uid"]] = threading.Event()
        elif kind == "stop":
            ended = self._ended.get(item[1]["run_start"])
            if ended is not None:
                ended.set()
        self._queue.put(item)

    def close(self, timeout: float | None = None) -> None:
        """Finish the queued work, then stop the thread."""
        self._queue.put(_STOP)
        self.thread.join(timeout)
        self.source.close()

    @property
    def busy(self) -> bool:
        """Whether work is queued or a run is under analysis."""
        return not self._queue.empty() or self._current is not None

    # ------------------------------------------------------------- the thread
    def _work(self) -> None:
        lower_priority(self.nice)
        if self._warm:
            for name in self._specs:
                try:
                    self._recipe(name)
                except Exception:
                    log.exception("recipe %r could not be built", name)
        self.ready.set()
        while True:
            try:
                item = self._queue.get(timeout=IDLE_S)
            except queue.Empty:
                self._idle()
                continue
            if item is _STOP:
                if self._current is not None:
                    self._abandon(self._current)
                return
            self._handle(item)
            if self._queue.empty():
                self._idle()

    def _recipe(self, name: str) -> Recipe:
        recipe = self._recipes.get(name)
        if recipe is None:
            spec, options = self._specs[name]
            recipe = self._recipes[name] = load_recipe(spec, options)
        return recipe

    def _handle(self, item: tuple[Any, ...]) -> None:
        kind, run = item[0], self._current
        try:
            if kind == "start":
                if run is not None:
                    self._fail_unfinished(run, "the next run started before its stop document")
                self._open(item[1], item[2])
            elif kind == "event":
                _, run_uid, stream, index, descriptor, seq_num, data, received = item
                if run is None or run.uid != run_uid or run.failed or run.analysis is None:
                    return
                ref = FrameRef(run_uid=run_uid, stream=stream, index=index,
                               descriptor=descriptor, seq_num=seq_num)
                run.analysis.add_frame(stream, ref, data, received)
                run.last_frame = received
            elif kind == "stop":
                self._finish(item[1])
        except Exception as exc:
            if run is None or kind == "start":
                run = self._current
            if run is not None and run.failed is None:
                log.error("analysis of run %s failed: %s", run.uid, exc)
                run.failed = exc
                self._abandon(run)
            if kind == "stop":
                self._finish(item[1])

    def _open(self, start: dict[str, Any], recipe_name: str) -> None:
        run = self._current = _Run(start, recipe_name)
        recipe = self._recipe(recipe_name)
        recipe.check(start)
        run.live = LiveResult(self.client, run.uid, {
            "recipe": recipe_name, "version": __version__,
            "settings": recipe.settings_metadata()})
        if run.live.ok:
            self.notify("opened", run.uid, result_uid=run.live.uid)
        context = RunContext(
            run_uid=run.uid, source=self.source,
            scan_ended=self._ended.setdefault(run.uid, threading.Event()),
            show=lambda method, *args: self._show(run.uid, method, *args),
            publish=run.live.publish, progress=run.live.progress,
            settings=getattr(recipe, "settings", None), client=self.client)
        run.analysis = recipe.open(start, context)

    def _show(self, run_uid: str, method: str, *args: Any) -> None:
        try:
            self.notify("figure", run_uid, method=method, args=args)
        except Exception as exc:
            log.warning("live figure update %r failed: %s", method, exc)

    def _idle(self) -> None:
        run = self._current
        if run is None or run.failed is not None or run.analysis is None:
            return
        try:
            run.analysis.idle()
        except Exception as exc:
            log.error("analysis of run %s failed: %s", run.uid, exc)
            run.failed = exc
            self._abandon(run)

    def _abandon(self, run: _Run) -> None:
        if run.analysis is not None:
            try:
                run.analysis.abandon()
            except Exception:
                log.exception("could not stop the analysis of run %s", run.uid)

    def _fail_unfinished(self, run: _Run, why: str) -> None:
        run.failed = run.failed or RuntimeError(why)
        self._abandon(run)
        self._finish({"run_start": run.uid, "exit_status": None})

    def _finish(self, stop: dict[str, Any]) -> None:
        """Finish the run of ``stop``: store its result (or its failure) and report."""
        run_uid = stop["run_start"]
        run = self._current if self._current is not None and self._current.uid == run_uid \
            else None
        self._current = None
        self._ended.pop(run_uid, None)
        self._release(run_uid)
        uid: str | None = None
        error: BaseException | None = None if run is None else run.failed
        recipe = None if run is None else self._recipes.get(run.recipe_name)
        settings = {} if recipe is None else recipe.settings_metadata()
        live_uid = None if run is None or run.live is None or run.live.node is None \
            else run.live.uid
        try:
            if run is None:
                raise RuntimeError(f"no start document seen for run {run_uid}")
            if error is None:
                t = time.monotonic()
                out: AnalysisOutput = run.analysis.finish(stop)
                md = out.metadata
                md.setdefault("version", __version__)
                md["recipe"] = run.recipe_name
                md["settings"] = settings
                md.setdefault("finished", time.time())
                md.setdefault("timings", {})["result_after_last_frame_s"] = (
                    time.monotonic() - (run.last_frame or t))
                uid = store_result(self.client, run_uid, md, out.arrays, out.checkpoint,
                                   uid=live_uid, backup_directory=self.backup_directory)
                log.info("stored %s result %s for run %s", md["status"], uid, run_uid)
        except Exception as exc:
            uid, error = None, exc
            if run is not None:
                run.failed = run.failed or exc
                self._abandon(run)
        if error is not None and not isinstance(error, ResultNotStored):
            if run is None or error is not run.failed:  # a run's failure is logged once
                log.error("analysis of run %s failed: %s", run_uid, error)
            try:
                uid = store_result(
                    self.client, run_uid,
                    {"status": "failed", "error": f"{type(error).__name__}: {error}",
                     "recipe": None if run is None else run.recipe_name,
                     "settings": settings, "version": __version__, "finished": time.time()},
                    uid=live_uid, backup_directory=self.backup_directory)
            except ResultNotStored as not_stored:
                log.error("%s", not_stored)
        self.notify("outcome", run_uid, result_uid=uid,
                    error=None if error is None else (type(error).__name__, str(error)),
                    exception=error)

    def _release(self, run_uid: str) -> None:
        """Let the frame source forget a run whose frames are all read (files, documents)."""
        try:
            self.source.release(run_uid)
        except Exception:
            log.exception("could not release the frames of run %s", run_uid)


def lower_priority(nice: int) -> None:
    """Add ``nice`` to the calling thread's niceness (Linux sets it per thread).

    Threads started afterwards by this thread inherit it.
    """
    if nice == 0 or not hasattr(os, "setpriority") or not sys.platform.startswith("linux"):
        return
    tid = threading.get_native_id()
    try:
        current = os.getpriority(os.PRIO_PROCESS, tid)
        os.setpriority(os.PRIO_PROCESS, tid, min(19, current + nice))
    except OSError as exc:  # e.g. a sandbox that forbids it: analysis still runs
        log.warning("could not lower the analysis thread's priority: %s", exc)
