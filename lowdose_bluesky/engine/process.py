"""The analysis in its own process: spawned once, fed documents, replaced when it dies.

The RunEngine's process only puts work items on a ``multiprocessing`` queue (a
non-blocking append; pickling happens in the queue's feeder thread). The spawned
process connects to the same Tiled server, reads the frames itself, runs
:class:`~lowdose_bluesky.engine.worker.AnalysisWorker` (the code of
``lowdose-bluesky worker``) at a lower priority, and reports back on a second queue.
If it dies (a signal, a crash in native code, the kernel's OOM killer), the runs it was
analysing are stored as ``failed`` with the cause, and a fresh process serves the next
run. See ``docs/decisions/0013-live-engine-and-recipes.md``.
"""

from __future__ import annotations

import logging
import multiprocessing as mp
import multiprocessing.connection
import os
import queue
import signal
import sys
import threading
import time
import weakref
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from .registry import RecipeSpec

__all__ = ["AnalysisProcess", "ProcessDied", "ProcessSettings", "describe_exit"]

log = logging.getLogger(__name__)

#: Seconds an exiting session spends marking unfinished analyses as failed.
EXIT_STORE_S = 10.0


class ProcessDied(RuntimeError):
    """The analysis process ended while it was analysing a run."""


@dataclass
class ProcessSettings:
    """Everything the analysis process is started with (it must pickle)."""

    uri: str
    api_key: str | None
    recipes: dict[str, tuple[RecipeSpec, dict[str, Any]]]
    frame_source: str = "file"
    nice: int = 10
    backup_directory: str | None = None
    log_level: int = logging.INFO
    figure: bool = False
    idle: bool = False
    environment: dict[str, str] = field(default_factory=dict)


def describe_exit(exitcode: int | None) -> str:
    """``-9`` -> ``"killed by signal SIGKILL (9)"``; ``3`` -> ``"exited with status 3"``."""
    if exitcode is None:
        return "is still running"
    if exitcode < 0:
        try:
            name = signal.Signals(-exitcode).name
        except ValueError:
            name = f"signal {-exitcode}"
        return f"killed by signal {name} ({-exitcode})"
    return f"exited with status {exitcode}"


def _child_main(settings: ProcessSettings, items: Any, messages: Any) -> None:
    """Entry point of the analysis process."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # Ctrl-C in the session is for the scan
    os.environ.update(settings.environment)
    if settings.nice and hasattr(os, "nice"):
        try:
            os.nice(settings.nice)
        except OSError:
            pass
    if settings.idle and hasattr(os, "SCHED_IDLE"):  # threads started later inherit it
        try:
            os.sched_setscheduler(0, os.SCHED_IDLE, os.sched_param(0))
        except OSError:
            pass
    logging.basicConfig(
        level=logging.WARNING, stream=sys.stderr,
        format="%(asctime)s lowdose-analysis[%(process)d] %(levelname)s %(name)s: %(message)s")
    logging.getLogger("lowdose_bluesky").setLevel(settings.log_level)
    from ..storage import connect
    from .frames import FileFrameSource, TiledFrameSource
    from .worker import AnalysisWorker

    client = connect(settings.uri, api_key=settings.api_key)
    source = (TiledFrameSource(client) if settings.frame_source == "tiled"
              else FileFrameSource())

    def notify(kind: str, run_uid: str, **payload: Any) -> None:
        if kind == "figure" and not settings.figure:
            return  # nobody to show it to: the arrays are not sent
        payload.pop("exception", None)
        messages.put((kind, run_uid, payload))

    worker = AnalysisWorker(client, settings.recipes, source, notify=notify, nice=0,
                            backup_directory=settings.backup_directory, warm=True)
    worker.ready.wait()
    messages.put(("ready", None, {"pid": os.getpid()}))
    while True:
        item = items.get()
        if item is None:
            break
        if item[0] == "start":
            messages.put(("accepted", item[1]["uid"], {}))
        worker.submit(item)
    worker.close()
    messages.put(("closed", None, {}))


def _ended(process: Any) -> bool:
    """Whether ``process`` has ended: its sentinel is readable (no reaping, thread-safe)."""
    return bool(mp.connection.wait([process.sentinel], timeout=0))


class AnalysisProcess:
    """Runs the engine in a spawned process and watches it.

    Parameters
    ----------
    client
        The session's Tiled client: the process connects to the same server, and
        the failure of a run whose process died is stored through it.
    settings
        How to start the process.
    on_message
        Called (on a watcher thread) with ``(kind, run_uid, payload)`` for each report
        of the worker (see :mod:`lowdose_bluesky.engine.worker`); when the process dies
        during runs, with an ``outcome`` whose error is ``("ProcessDied", cause)``.
    """

    def __init__(self, client: Any, settings: ProcessSettings,
                 on_message: Callable[[str, str | None, dict[str, Any]], None]) -> None:
        self.client = client
        self.settings = settings
        self.on_message = on_message
        self._ctx = mp.get_context("spawn")
        self._lock = threading.Lock()
        self._in_flight: dict[str, str | None] = {}  # run uid -> live result uid
        self._dropping = False
        # the items of the run whose start the process has not yet accepted: they go to a
        # fresh process if this one turns out to have died before it read them
        self._unaccepted: tuple[str, list[tuple[Any, ...]]] | None = None
        self._closing = False
        self.restarts = 0
        self.ready = threading.Event()
        self._spawn()
        ref = weakref.ref(self)
        # threading's exit hooks run before atexit's, the last registered first: this one
        # runs before the embedded Tiled server stops, so failures can still be stored
        threading._register_atexit(  # type: ignore[attr-defined]
            lambda: (lambda p: p is not None and p.shutdown_at_exit())(ref()))

    # ------------------------------------------------------------- lifecycle
    def _spawn(self) -> None:
        self.ready.clear()
        self._items = self._ctx.Queue()
        self._messages = self._ctx.Queue()
        process = self._ctx.Process(target=_child_main, name="lowdose-analysis",
                                    args=(self.settings, self._items, self._messages),
                                    daemon=True)
        process.start()
        self.process = process
        threading.Thread(target=self._watch, args=(process, self._messages),
                         name="lowdose-analysis-watch", daemon=True).start()

    @property
    def pid(self) -> int | None:
        """Pid of the current analysis process."""
        return self.process.pid

    def send(self, item: tuple[Any, ...]) -> None:
        """Hand an item to the analysis process (never blocks)."""
        if item[0] == "start" and not self._closing and _ended(self.process):
            self._died(self.process)  # not noticed yet: the new run goes to a fresh process
        with self._lock:
            if item[0] == "start":
                self._dropping = False
                self._in_flight[item[1]["uid"]] = None
                self._unaccepted = (item[1]["uid"], [])
            elif self._dropping:
                return  # the rest of a run whose analysis process died
            if self._unaccepted is not None:
                self._unaccepted[1].append(item)
            self._items.put(item)

    def close(self, timeout: float | None = None) -> None:
        """Let the process finish the queued work, then stop it."""
        self._closing = True
        self._items.put(None)
        self.process.join(timeout)
        if self.process.is_alive():
            self.process.terminate()
            self.process.join(5)

    @property
    def unfinished(self) -> list[str]:
        """Runs handed over whose analysis has not ended."""
        with self._lock:
            return list(self._in_flight)

    # ----------------------------------------------------------------- watch
    def _watch(self, process: Any, messages: Any) -> None:
        while True:
            try:
                message = messages.get(timeout=0.5)
            except queue.Empty:
                if not _ended(process):
                    continue
                try:  # what it said before it died
                    while True:
                        self._dispatch(*messages.get(timeout=0.2))
                except queue.Empty:
                    break
            else:
                self._dispatch(*message)
                if message[0] == "closed":
                    return
        if not self._closing:
            self._died(process)

    def _dispatch(self, kind: str, run_uid: str | None, payload: dict[str, Any]) -> None:
        if kind == "ready":
            self.ready.set()
            return
        if kind == "accepted":
            with self._lock:
                if self._unaccepted is not None and self._unaccepted[0] == run_uid:
                    self._unaccepted = None
            return
        if kind == "closed":
            return
        with self._lock:
            if kind == "opened" and run_uid in self._in_flight:
                self._in_flight[run_uid] = payload.get("result_uid")
            elif kind == "outcome":
                self._in_flight.pop(run_uid, None)
        try:
            self.on_message(kind, run_uid, payload)
        except Exception:
            log.exception("handling the analysis process's %r report failed", kind)

    def _died(self, process: Any) -> None:
        """Replace the dead ``process``; its runs' failures are stored on another thread."""
        process.join(5.0)  # reap it: its exit code
        cause = (f"the analysis process (pid {process.pid}) {describe_exit(process.exitcode)}")
        with self._lock:
            if process is not self.process:
                return  # already replaced
            resend = self._unaccepted
            self._unaccepted = None
            lost = [(uid, result) for uid, result in self._in_flight.items()
                    if resend is None or uid != resend[0]]
            self._in_flight = {} if resend is None else {resend[0]: None}
            self._dropping = bool(lost) and resend is None
            self._items.cancel_join_thread()
            self._spawn()
            self.restarts += 1
            if resend is not None:  # never read by the dead process: the new one takes it
                self._unaccepted = resend
                for item in resend[1]:
                    self._items.put(item)
        log.error("%s; a new analysis process (pid %s) serves the next run", cause,
                  self.process.pid)

        def fail_lost() -> None:
            for run_uid, result_uid in lost:
                self._fail(run_uid, result_uid, f"{cause} during the analysis; the raw run "
                           "is intact: analyse it again with: lowdose-bluesky reprocess "
                           f"{run_uid}")

        if threading.current_thread().name == "lowdose-analysis-watch":
            fail_lost()
        else:  # never write to Tiled on the RunEngine's thread
            threading.Thread(target=fail_lost, name="lowdose-analysis-failed",
                             daemon=True).start()

    def _fail(self, run_uid: str, result_uid: str | None, message: str) -> None:
        """Store run ``run_uid``'s failure (over its live result) and report it."""
        from ..storage import write_result

        stored = None
        try:
            stored = write_result(self.client, parent_uid=run_uid, uid=result_uid,
                                  metadata={"status": "failed",
                                            "error": f"ProcessDied: {message}",
                                            "finished": time.time()})
        except Exception as exc:
            log.error("could not store the failure of run %s: %s", run_uid, exc)
        self.on_message("outcome", run_uid, {"result_uid": stored,
                                             "error": ("ProcessDied", message)})

    def shutdown_at_exit(self) -> None:
        """The session ends: say which analyses did not finish, then stop the process.

        Unfinished analyses are not waited for (an analysis can take minutes, and a
        session that hangs at exit looks broken); each is stored as ``failed`` with
        the command that analyses it again, and named on standard error.
        """
        if self._closing:
            return
        self._closing = True
        lost = self.unfinished
        if lost:
            with self._lock:
                flights = dict(self._in_flight)
            thread = threading.Thread(target=lambda: [
                self._fail(uid, flights.get(uid), "the session ended before the analysis "
                           "finished; the raw run is intact: analyse it again with: "
                           f"lowdose-bluesky reprocess {uid}") for uid in lost], daemon=True)
            thread.start()
            thread.join(EXIT_STORE_S)
            for uid in lost:
                sys.stderr.write(
                    f"lowdose-bluesky: the analysis of run {uid} had not finished when the "
                    f"session ended and was stopped; analyse it again with: lowdose-bluesky "
                    f"reprocess {uid} (call live.wait() before the end to finish it)\n")
        self._items.cancel_join_thread()
        try:
            self._items.put(None)
        except Exception:
            pass
        self.process.join(0.5 if lost else 5.0)
        if self.process.is_alive():
            self.process.terminate()
            self.process.join(5.0)
        if self.process.is_alive():
            self.process.kill()
