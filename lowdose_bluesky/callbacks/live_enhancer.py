"""``LiveEnhancer``: the live engine as one Bluesky callback, for every modality."""

from __future__ import annotations

import logging
import multiprocessing
import os
import threading
from multiprocessing.reduction import ForkingPickler
from typing import Any

from ..engine import (
    AnalysisProcess,
    AnalysisWorker,
    DocumentRouter,
    FileFrameSource,
    FrameSource,
    ProcessSettings,
    ResultNotStored,
    TiledFrameSource,
    builtin_recipes,
)
from ..recipes.tomography.settings import tomography_settings

__all__ = ["LiveEnhancer", "ResultNotStored"]

log = logging.getLogger(__name__)


class LiveEnhancer:
    """A Bluesky callback that runs the live analysis of every run it sees.

    Use as ``RE.subscribe(live)`` or under a ``RemoteDispatcher``. In the RunEngine's
    process the callback only records documents and hands them on: the analysis
    (reading frames, training, enhancement, reconstruction, writing results) runs in a
    spawned analysis process by default (``process=True``), started once, at a lower
    priority, with its own torch threads; a crash there never touches the RunEngine's
    process (the run's result is stored as ``failed`` naming the cause, ``wait()``
    raises it, and a fresh process serves the next run). ``process=False`` runs the same
    engine on a background thread of this process (notebooks, tests).

    The recipe is chosen from each run's start document (its ``plan_name``; see
    :mod:`lowdose_bluesky.engine.registry`): runs of other plans are ignored with one
    log line. The keywords below, except ``process``, ``frame_source``, ``figure``,
    ``nice``, ``backup_directory`` and ``recipe_options``, configure the tomography
    recipe (``lowdose_tomo_plan`` runs).

    Parameters
    ----------
    client
        Root Tiled client; results go to ``client["results"]``. With ``process=True``
        the analysis process connects to the same server (its URI and API key).
    process
        Run the analysis in its own process (default) or on a thread of this one.
    method
        What the analysis learns from (:mod:`lowdose_bluesky.recipes.tomography.methods`):
        ``"auto"`` (default: the benchmark's best where the run has reference pairs,
        ``"noise2inverse"`` where it has none), ``"supervised"`` (the paper's projection
        network on the long/short pairs), ``"noise2inverse"`` (blind: self-supervised
        from the whole rotation) or ``"hybrid"`` (both). The result's metadata records
        the method run and the held-out gates of each learned stage.
    n2i_options
        Fields of :class:`~lowdose_bluesky.model.Noise2InverseConfig` (e.g.
        ``{"max_seconds": 60, "splits": 2}``).
    n2i_filter
        FBP filter of the Noise2Inverse sub-reconstructions.
    arch, epochs, device
        Network, maximum training epochs, ``"auto" | "cpu" | "cuda"``.
    reconstruct
        Reconstruct raw and enhanced volumes after the stop document.
    pretrained
        A result uid (its stored checkpoint), a checkpoint path, or an Enhancer: fine-tune
        it for ``fine_tune_epochs`` (or use it as is with ``skip_training=True``).
    frame_source
        Where frames are read: ``"file"`` (default: the detector's HDF5 files, same
        machine) or ``"tiled"`` (through the Tiled server); with ``process=False``
        also a :class:`~lowdose_bluesky.engine.FrameSource` instance.
    batch_size
        Frames per enhancement batch.
    progress
        tqdm progress bars.
    threads
        torch CPU threads for the analysis (process-wide); default: one fewer than the
        machine's cores, leaving one to the RunEngine. ``None`` on a machine with one core.
    training_budget
        When training stops at the latest (frames are enhanced as they arrive by the
        best model so far, see ``docs/decisions/0013-live-engine-and-recipes.md``):
        ``"scan"`` (default) when the run's stop document arrives, so that the result
        follows the scan closely (but never before ``min_training_s`` seconds of
        training); a number of seconds; or ``None`` (only
        ``epochs`` and early stopping). Training always keeps the best weights so far.
    min_training_s
        Least training time under ``training_budget="scan"``.
    figure
        A :class:`~lowdose_bluesky.callbacks.LiveFigure` to update as the analysis goes
        on (training curve, latest projection raw vs enhanced, reconstructed slice).
    nice
        Niceness added to the analysis process (or, with ``process=False``, the worker
        thread) on Linux (0 leaves it alone): the scheduler then prefers the
        acquisition, so analysis never slows the scan on a busy machine.
    idle
        Run the analysis process under Linux's ``SCHED_IDLE`` policy: it gets only CPU
        time nothing else wants (stronger than ``nice``; on a machine that is never idle
        the analysis waits).
    train_options
        Extra keyword arguments of :func:`lowdose_bluesky.model.train_enhancer`.
    recipe_options
        Options of the other registered recipes, by recipe name.
    backup_directory
        Where a result is saved when Tiled cannot take it (after tiled's own retries
        and one more attempt), for ``lowdose-bluesky replay``; ``wait()`` then raises
        :class:`ResultNotStored` naming the folder. Without it such a result is lost
        (the raw run is not: re-run the analysis with ``lowdose-bluesky reprocess``).
    """

    def __init__(self, client: Any, *, process: bool = True, method: str = "auto",
                 n2i_options: dict[str, Any] | None = None, n2i_filter: str = "parzen",
                 arch: str = "unet", epochs: int = 30,
                 device: str = "auto", reconstruct: bool = True, pretrained: Any = None,
                 skip_training: bool = False, fine_tune_epochs: int = 5, batch_size: int = 8,
                 frame_source: FrameSource | str | None = None, seed: int = 0,
                 progress: bool = True, threads: int | str | None = "auto",
                 training_budget: str | float | None = "scan", min_training_s: float = 60.0,
                 nice: int = 10, idle: bool = False, figure: Any = None,
                 train_options: dict[str, Any] | None = None,
                 recipe_options: dict[str, dict[str, Any]] | None = None,
                 backup_directory: str | os.PathLike[str] | None = None) -> None:
        settings = tomography_settings(
            method=method, n2i_options=n2i_options, n2i_filter=n2i_filter, arch=arch,
            epochs=epochs, device=device, reconstruct=reconstruct, pretrained=pretrained,
            skip_training=skip_training, fine_tune_epochs=fine_tune_epochs,
            batch_size=batch_size, seed=seed, progress=progress, threads=threads,
            training_budget=training_budget, min_training_s=min_training_s,
            train_options=train_options)
        if isinstance(nice, bool) or not isinstance(nice, int) or not 0 <= nice <= 19:
            raise ValueError(f"nice must be an integer from 0 to 19, got {nice!r}")
        if not isinstance(process, bool):
            raise ValueError(f"process must be True or False, got {process!r}")
        if process and multiprocessing.current_process().daemon:
            log.warning("LiveEnhancer: this is a daemonic process, which cannot start the "
                        "analysis process; the analysis runs on a thread (process=False)")
            process = False
        specs = builtin_recipes()
        unknown = set(recipe_options or {}) - set(specs) | (
            {"tomography"} & set(recipe_options or {}))
        if unknown:
            raise ValueError(f"recipe_options names {sorted(unknown)}; allowed: "
                             f"{sorted(set(specs) - {'tomography'})} (the tomography "
                             "recipe takes LiveEnhancer's own keywords)")
        if isinstance(frame_source, str) and frame_source not in ("file", "tiled"):
            raise ValueError(f"frame_source must be 'file', 'tiled' or a FrameSource, got "
                             f"{frame_source!r}")
        self.client = client
        self.settings = settings
        self.figure = figure
        self.process = process
        self._done: dict[str, threading.Event] = {}
        self._outcome: dict[str, dict[str, Any]] = {}
        self._live: dict[str, str] = {}
        self._last_run: str | None = None
        backup = None if backup_directory is None else os.fspath(backup_directory)
        if process:
            recipes = {name: (spec, {"settings": _portable(settings)} if name == "tomography"
                              else dict((recipe_options or {}).get(name, {})))
                       for name, spec in specs.items()}
            _check_picklable(recipes)
            if frame_source is not None and not isinstance(frame_source, str):
                raise ValueError(
                    f"frame_source={type(frame_source).__name__} instance cannot be sent to "
                    "the analysis process: pass frame_source='file' or 'tiled', or "
                    "process=False")
            context = client.context
            self._backend: Any = AnalysisProcess(client, ProcessSettings(
                uri=str(context.api_uri), api_key=context.api_key, recipes=recipes,
                frame_source=frame_source or "file", nice=nice, backup_directory=backup,
                log_level=logging.getLogger("lowdose_bluesky").getEffectiveLevel(),
                figure=figure is not None, idle=bool(idle)),
                on_message=self._on_message)
            sink = self._backend.send
        else:
            recipes = {name: (spec, {"settings": settings} if name == "tomography"
                              else dict((recipe_options or {}).get(name, {})))
                       for name, spec in specs.items()}
            source = (TiledFrameSource(client) if frame_source == "tiled"
                      else FileFrameSource() if frame_source in (None, "file")
                      else frame_source)
            self._backend = AnalysisWorker(
                client, recipes, source, nice=nice, backup_directory=backup,
                notify=lambda kind, run_uid, **payload: self._on_message(kind, run_uid,
                                                                         payload))
            sink = self._backend.submit
        self._router = DocumentRouter(sink, specs, on_start=self._on_run)

    # ---------------------------------------------------------- RunEngine side
    def __call__(self, name: str, doc: dict[str, Any]) -> None:
        """Receive a document (never raises into the RunEngine)."""
        try:
            self._router(name, doc)
        except Exception:
            log.exception("LiveEnhancer could not handle a %r document", name)

    def _on_run(self, run_uid: str, recipe: str) -> None:
        self._done[run_uid] = threading.Event()
        self._last_run = run_uid

    def _on_message(self, kind: str, run_uid: str | None, payload: dict[str, Any]) -> None:
        """A report of the engine (worker thread, or the process's watcher thread)."""
        if kind == "figure":
            if self.figure is not None:
                try:
                    getattr(self.figure, payload["method"])(*payload["args"])
                except Exception as exc:
                    log.warning("live figure update %r failed: %s", payload["method"], exc)
        elif kind == "opened":
            self._live[run_uid] = payload["result_uid"]
        elif kind == "outcome":
            self._outcome[run_uid] = payload
            self._done.setdefault(run_uid, threading.Event()).set()

    # ------------------------------------------------------------------- user
    def wait(self, timeout: float | None = None) -> str:
        """Block until the result of the last run is stored; return its uid.

        Raises
        ------
        RuntimeError
            If no run was seen, or the analysis failed (the failure is stored too),
            including when the analysis process died (the cause is named).
        ResultNotStored
            If Tiled could not take the result (saved in ``backup_directory`` if set).
        TimeoutError
            If the result is not stored within ``timeout`` seconds.
        """
        if self._last_run is None:
            raise RuntimeError("LiveEnhancer has not seen any run yet")
        run = self._last_run
        if not self._done[run].wait(timeout):
            raise TimeoutError(f"no result for run {run} within {timeout} s")
        outcome = self._outcome[run]
        error, exc = outcome.get("error"), outcome.get("exception")
        if error is None:
            return outcome["result_uid"]
        if isinstance(exc, ResultNotStored):
            raise exc
        if error[0] == "ResultNotStored":
            raise ResultNotStored(error[1])
        raise RuntimeError(f"analysis of run {run} failed: {error[0]}: {error[1]}") from exc

    def wait_ready(self, timeout: float | None = None) -> bool:
        """Block until the analysis (process) has started and built its recipes.

        Runs started earlier are not lost (their documents queue up), but their first
        frames wait for the start-up; a session that wants its first scan live from
        the first line waits here once.

        Returns
        -------
        bool
            Whether it is ready (``False`` when ``timeout`` ran out first).
        """
        return self._backend.ready.wait(timeout)

    @property
    def last_run(self) -> str | None:
        """Uid of the last run handed to the analysis."""
        return self._last_run

    def live_result(self, run_uid: str) -> str | None:
        """Uid of the result node of run ``run_uid`` (it grows during the scan)."""
        return self._live.get(run_uid)

    @property
    def pid(self) -> int:
        """Pid of the analysis process (this process with ``process=False``)."""
        return self._backend.pid if self.process else os.getpid()

    @property
    def worker(self) -> Any:
        """The :class:`AnalysisWorker` (``process=False``) or :class:`AnalysisProcess`."""
        return self._backend

    def close(self, timeout: float | None = None) -> None:
        """Finish the queued analyses, then stop the worker (or the analysis process)."""
        self._backend.close(timeout)


def _portable(settings: Any) -> Any:
    """Settings that can be sent to the analysis process (an Enhancer goes as bytes)."""
    from dataclasses import replace

    pretrained = settings.pretrained
    if pretrained is not None and hasattr(pretrained, "to_bytes"):
        return replace(settings, pretrained=pretrained.to_bytes())
    return settings


def _check_picklable(recipes: dict[str, Any]) -> None:
    """Refuse options the analysis process cannot receive (e.g. a lambda in train_options)."""
    try:
        ForkingPickler.dumps(recipes)  # what the queue to the process does
    except Exception as exc:
        raise ValueError(
            f"the analysis options cannot be sent to the analysis process ({exc}); pass "
            "module-level functions and plain values, or use LiveEnhancer(process=False)"
        ) from None
