"""``LiveEnhancer``: train during the scan, enhance frames as they arrive, store results."""

from __future__ import annotations

import logging
import os
import queue
import sys
import threading
import time
from pathlib import Path
from typing import Any

from ..result_backup import save_result
from ..result_store import is_result_uid, result_by_uid, write_result
from .frame_source import FileFrameSource, FrameRef, FrameSource
from .methods import check_method
from .processing import AnalysisSettings, RunProcessor

__all__ = ["LiveEnhancer", "ResultNotStored", "check_pretrained"]

log = logging.getLogger(__name__)
_STOP = object()
#: Seconds between the two attempts to write a result (each with tiled's own retries).
STORE_RETRY_S = 5.0


class LiveEnhancer:
    """A Bluesky callback that runs the low-dose analysis of every run it sees.

    Use as ``RE.subscribe(live)`` or under a ``RemoteDispatcher``. The callback only
    records documents and queues work: training, enhancement, reconstruction and
    writing happen on one background worker thread, so the RunEngine never waits and
    an analysis failure never aborts the scan.

    Parameters
    ----------
    client
        Root Tiled client; results go to ``client["results"]``.
    method
        What the analysis learns from (:mod:`lowdose_bluesky.callbacks.methods`):
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
        Where frames are read: :class:`FileFrameSource` (default, same machine) or
        :class:`TiledFrameSource` (another machine).
    batch_size
        Frames per enhancement batch.
    progress
        tqdm progress bars.
    threads
        torch CPU threads for the analysis (process-wide); default: one fewer than the
        machine's cores, leaving one to the RunEngine. ``None`` on a machine with one core.
    training_budget
        When training stops at the latest: ``"scan"`` (default) when the run's stop
        document arrives, so that the result follows the scan closely (but never before
        ``min_training_s`` seconds of training); a number of seconds; or ``None`` (only
        ``epochs`` and early stopping). Training always keeps the best weights so far.
    min_training_s
        Least training time under ``training_budget="scan"``.
    figure
        A :class:`~lowdose_bluesky.callbacks.LiveFigure` to update as the analysis goes
        on (training curve, latest projection raw vs enhanced, reconstructed slice).
    nice
        Niceness added to the analysis worker thread on Linux (0 leaves it alone): the
        scheduler then prefers the acquisition threads, so analysis never slows the scan
        on a busy machine.
    train_options
        Extra keyword arguments of :func:`lowdose_bluesky.model.train_enhancer`.
    backup_directory
        Where a result is saved when Tiled cannot take it (after tiled's own retries
        and one more attempt), for ``lowdose-bluesky replay``; ``wait()`` then raises
        :class:`ResultNotStored` naming the folder. Without it such a result is lost
        (the raw run is not: re-run the analysis with ``lowdose-bluesky reprocess``).
    """

    def __init__(self, client: Any, *, method: str = "auto",
                 n2i_options: dict[str, Any] | None = None, n2i_filter: str = "parzen",
                 arch: str = "unet", epochs: int = 30,
                 device: str = "auto", reconstruct: bool = True, pretrained: Any = None,
                 skip_training: bool = False, fine_tune_epochs: int = 5, batch_size: int = 8,
                 frame_source: FrameSource | None = None, seed: int = 0, progress: bool = True,
                 threads: int | str | None = "auto",
                 training_budget: str | float | None = "scan", min_training_s: float = 60.0,
                 nice: int = 10, figure: Any = None,
                 train_options: dict[str, Any] | None = None,
                 backup_directory: str | os.PathLike[str] | None = None) -> None:
        if skip_training and pretrained is None:
            raise ValueError("skip_training=True needs a pretrained model (pretrained=None given)")
        check_pretrained(pretrained)
        check_method(method)
        _check_n2i(n2i_options, n2i_filter)
        for name, value in (("epochs", epochs), ("batch_size", batch_size),
                            ("fine_tune_epochs", fine_tune_epochs)):
            if isinstance(value, bool) or not isinstance(value, int) or value < 1:
                raise ValueError(f"{name} must be a positive integer, got {value!r}")
        if threads == "auto":
            cores = os.cpu_count() or 1
            threads = cores - 1 if cores > 1 else None
        elif threads is not None and (isinstance(threads, bool) or not isinstance(threads, int)
                                      or threads < 1):
            raise ValueError(f"threads must be 'auto', None or a positive integer, got {threads!r}")
        _check_budget(training_budget, min_training_s)
        if isinstance(nice, bool) or not isinstance(nice, int) or not 0 <= nice <= 19:
            raise ValueError(f"nice must be an integer from 0 to 19, got {nice!r}")
        self.nice = nice
        self.client = client
        self.backup_directory = None if backup_directory is None else Path(backup_directory)
        self.settings = AnalysisSettings(
            arch=arch, epochs=epochs, device=device, reconstruct=reconstruct,
            pretrained=pretrained, skip_training=skip_training,
            fine_tune_epochs=fine_tune_epochs, batch_size=batch_size, seed=seed,
            progress=progress, threads=threads, training_budget=training_budget,
            min_training_s=float(min_training_s), figure=figure,
            train_options=dict(train_options or {}), method=method,
            n2i_options=dict(n2i_options or {}), n2i_filter=n2i_filter)
        self.source = frame_source if frame_source is not None else FileFrameSource()
        self._queue: queue.Queue[Any] = queue.Queue()
        self._descriptors: dict[str, str] = {}
        self._counters: dict[str, int] = {}
        self._run_uid: str | None = None
        self._done: dict[str, threading.Event] = {}
        self._scan_ended: dict[str, threading.Event] = {}
        self._outcome: dict[str, tuple[str | None, BaseException | None]] = {}
        self._last_run: str | None = None
        self._worker = threading.Thread(target=self._work, name="lowdose-live-enhancer",
                                        daemon=True)
        self._worker.start()

    # ---------------------------------------------------------- RunEngine side
    def __call__(self, name: str, doc: dict[str, Any]) -> None:
        """Receive a document (never raises into the RunEngine)."""
        try:
            getattr(self, f"_on_{name}", lambda d: None)(doc)
        except Exception:
            log.exception("LiveEnhancer could not handle a %r document", name)

    def _on_start(self, doc: dict[str, Any]) -> None:
        self._run_uid = doc["uid"]
        self._last_run = doc["uid"]
        self._descriptors.clear()
        self._counters.clear()
        self._done[doc["uid"]] = threading.Event()
        self._scan_ended[doc["uid"]] = threading.Event()
        if hasattr(self.source, "set_data_key") and doc.get("lowdose"):
            self.source.set_data_key(doc["uid"], doc["lowdose"]["image_key"])
        self._queue.put(("start", doc, self._scan_ended[doc["uid"]]))

    def _on_descriptor(self, doc: dict[str, Any]) -> None:
        self._descriptors[doc["uid"]] = doc["name"]

    def _on_resource(self, doc: dict[str, Any]) -> None:
        self.source.add_resource(doc)

    def _on_datum(self, doc: dict[str, Any]) -> None:
        self.source.add_datum(doc)

    def _on_event(self, doc: dict[str, Any]) -> None:
        stream = self._descriptors.get(doc["descriptor"])
        if stream is None or self._run_uid is None:
            return
        index = self._counters.get(stream, 0)
        self._counters[stream] = index + 1
        self._queue.put(("event", self._run_uid, stream, index, doc["data"],
                         time.perf_counter()))

    def _on_stop(self, doc: dict[str, Any]) -> None:
        ended = self._scan_ended.pop(doc["run_start"], None)
        if ended is not None:
            ended.set()  # lets training under training_budget="scan" end now
        self._queue.put(("stop", doc))
        self._run_uid = None

    # ------------------------------------------------------------------- user
    def wait(self, timeout: float | None = None) -> str:
        """Block until the result of the last run is stored; return its uid.

        Raises
        ------
        RuntimeError
            If no run was seen, or the analysis failed (the failure is stored too).
        ResultNotStored
            If Tiled could not take the result (saved in ``backup_directory`` if set).
        TimeoutError
            If the result is not stored within ``timeout`` seconds.
        """
        if self._last_run is None:
            raise RuntimeError("LiveEnhancer has not seen any run yet")
        if not self._done[self._last_run].wait(timeout):
            raise TimeoutError(f"no result for run {self._last_run} within {timeout} s")
        uid, error = self._outcome[self._last_run]
        if isinstance(error, ResultNotStored):
            raise error
        if error is not None:
            raise RuntimeError(f"analysis of run {self._last_run} failed: "
                               f"{type(error).__name__}: {error}") from error
        assert uid is not None
        return uid

    def close(self) -> None:
        """Stop the worker after the queued work is done."""
        self._queue.put(_STOP)
        self._worker.join()
        self.source.close()

    def _release(self, run_uid: str) -> None:
        """Let the frame source forget a run whose frames are all read (files, documents)."""
        release = getattr(self.source, "release", None)
        if release is None:
            return
        try:
            release(run_uid)
        except Exception:
            log.exception("could not release the frames of run %s", run_uid)

    # ------------------------------------------------------------------ worker
    def _work(self) -> None:
        _lower_priority(self.nice)
        proc: RunProcessor | None = None
        failed: BaseException | None = None
        while True:
            item = self._queue.get()
            if item is _STOP:
                return
            kind = item[0]
            try:
                if kind == "start":
                    proc, failed = None, None
                    proc = RunProcessor(item[1], self.settings, self.source, self._pretrained,
                                        scan_ended=item[2])
                elif kind == "event" and proc is not None and failed is None:
                    _, run_uid, stream, index, data, received = item
                    ref = FrameRef(run_uid=run_uid, stream=stream, index=index,
                                   datum_id=data[proc.image_key])
                    proc.add_frame(stream, ref, data, received)
                    if self._queue.empty():  # caught up: enhance what is waiting
                        proc.enhance_pending()
                elif kind == "stop":
                    self._release(item[1]["run_start"])  # every frame of the run is read
                    self._finish(proc, item[1], failed)
                    proc = None
            except Exception as exc:
                log.error("analysis error: %s", exc)
                failed = exc
                if kind == "stop":
                    self._finish(None, item[1], exc)

    def _finish(self, proc: RunProcessor | None, stop: dict[str, Any],
                failed: BaseException | None) -> None:
        run_uid = stop["run_start"]
        uid, error = None, failed
        try:
            if proc is None and failed is None:
                raise RuntimeError(f"no start document seen for run {run_uid}")
            if failed is None:
                t = time.perf_counter()
                md, arrays, checkpoint = proc.finish(stop)
                md["timings"]["result_after_last_frame_s"] = (
                    time.perf_counter() - (proc.last_frame_time or t))
                md["settings"] = _settings_md(self.settings)
                uid = self._store(run_uid, md, arrays, checkpoint)
                log.info("stored %s result %s for run %s", md["status"], uid, run_uid)
        except Exception as exc:
            uid, error = None, exc
        if error is not None and not isinstance(error, ResultNotStored):
            log.error("analysis of run %s failed: %s", run_uid, error)
            try:
                uid = self._store(run_uid, {
                    "status": "failed", "error": f"{type(error).__name__}: {error}",
                    "settings": _settings_md(self.settings), "finished": time.time()})
            except ResultNotStored as not_stored:
                log.error("%s", not_stored)
        self._outcome[run_uid] = (uid, error)
        self._done.setdefault(run_uid, threading.Event()).set()

    def _store(self, run_uid: str, md: dict[str, Any],
               arrays: dict[str, Any] | None = None, checkpoint: bytes | None = None) -> str:
        """Write a result to Tiled, trying twice; else save it locally and raise."""
        last: Exception | None = None
        for attempt in range(2):
            try:
                return write_result(self.client, parent_uid=run_uid, metadata=md,
                                    arrays=arrays, checkpoint=checkpoint)
            except Exception as exc:  # tiled has already retried for ~30 s
                last = exc
                log.warning("could not write the result of run %s to Tiled (attempt %d): %s",
                            run_uid, attempt + 1, exc)
                time.sleep(STORE_RETRY_S if attempt == 0 else 0)
        where = "it is lost (no backup_directory); the raw run is not"
        if self.backup_directory is not None:
            folder = save_result(self.backup_directory, parent_uid=run_uid, metadata=md,
                                 arrays=arrays, checkpoint=checkpoint)
            where = (f"it was saved in {folder}; restore it with: lowdose-bluesky replay "
                     f"{self.backup_directory}")
        raise ResultNotStored(f"the {md.get('status')} result of run {run_uid} could not be "
                              f"written to Tiled ({type(last).__name__}: {last}); {where}")

    def _pretrained(self, spec: Any) -> Any:
        from ..model import Enhancer

        if isinstance(spec, Enhancer):
            return spec
        text = str(spec)
        if Path(text).expanduser().exists():
            return Enhancer.load(Path(text).expanduser(), device=self.settings.device)
        return Enhancer.from_bytes(result_by_uid(self.client, text).checkpoint,
                                   device=self.settings.device,
                                   source=f"checkpoint of result {text}")


def check_pretrained(spec: Any) -> None:
    """Refuse a ``pretrained`` value that cannot work, before anything starts.

    ``None``, an :class:`~lowdose_bluesky.model.Enhancer`, a checkpoint file (verified
    now: a pickle, ``torch.save`` output, a corrupted or a foreign file is refused, and
    nothing is unpickled) or a result uid (looked up when the first run is analysed).

    Raises
    ------
    ValueError
        With the value received and what is allowed.
    """
    if spec is None:
        return
    allowed = ("an Enhancer, an existing checkpoint file or a result uid (8-4-4-4-12 hex "
               "digits)")
    if isinstance(spec, str | os.PathLike):
        path = Path(spec).expanduser()
        if path.exists():
            if not path.is_file():
                raise ValueError(f"pretrained must be {allowed}; {str(spec)!r} is a directory")
            from ..model import Enhancer

            try:
                Enhancer.load(path, device="cpu")
            except ValueError as exc:
                raise ValueError(f"pretrained {exc}") from None
            except OSError as exc:
                raise ValueError(f"pretrained checkpoint file {str(path)!r} cannot be read: "
                                 f"{exc.strerror or exc}") from None
            return
        if isinstance(spec, str) and is_result_uid(spec):
            return
        raise ValueError(f"pretrained must be {allowed}, got {str(spec)!r}: no such file, "
                         "and not a uid")
    from ..model import Enhancer

    if not isinstance(spec, Enhancer):
        raise ValueError(f"pretrained must be {allowed}, got a {type(spec).__name__}")


class ResultNotStored(RuntimeError):
    """Tiled could not take an analysis result (saved locally when configured)."""


def _check_budget(budget: Any, floor: Any) -> None:
    """Raise ValueError for a training budget LiveEnhancer cannot use."""
    ok = budget is None or budget == "scan" or (
        isinstance(budget, int | float) and not isinstance(budget, bool) and budget > 0)
    if not ok:
        raise ValueError("training_budget must be 'scan', a positive number of seconds or "
                         f"None, got {budget!r}")
    if isinstance(floor, bool) or not isinstance(floor, int | float) or not floor >= 0:
        raise ValueError(f"min_training_s must be a number >= 0, got {floor!r}")


def _lower_priority(nice: int) -> None:
    """Add ``nice`` to the calling thread's niceness (Linux sets it per thread)."""
    if nice == 0 or not hasattr(os, "setpriority") or not sys.platform.startswith("linux"):
        return
    tid = threading.get_native_id()
    try:
        current = os.getpriority(os.PRIO_PROCESS, tid)
        os.setpriority(os.PRIO_PROCESS, tid, min(19, current + nice))
    except OSError as exc:  # e.g. a sandbox that forbids it: analysis still runs
        log.warning("could not lower the analysis thread's priority: %s", exc)


def _settings_md(s: AnalysisSettings) -> dict[str, Any]:
    return {"arch": s.arch, "epochs": s.epochs, "device": s.device,
            "reconstruct": s.reconstruct, "skip_training": s.skip_training,
            "fine_tune_epochs": s.fine_tune_epochs, "batch_size": s.batch_size, "seed": s.seed,
            "pretrained": None if s.pretrained is None else str(s.pretrained),
            "training_budget": s.training_budget, "min_training_s": s.min_training_s,
            "train_options": {k: str(v) for k, v in s.train_options.items()}}


def _check_n2i(options: dict[str, Any] | None, filter_name: str) -> None:
    """Validate Noise2Inverse options and filter before any run (errors name the value)."""
    from pydantic import ValidationError

    from ..n2i_config import Noise2InverseConfig
    from ..recon import FILTER_NAMES

    if options is not None and not isinstance(options, dict):
        raise ValueError(f"n2i_options must be a dict or None, got {type(options).__name__}")
    try:
        Noise2InverseConfig(**(options or {}))
    except ValidationError as exc:
        problems = "; ".join(f"{'.'.join(map(str, e['loc']))}: {e['msg']} (got {e['input']!r})"
                             for e in exc.errors())
        raise ValueError(f"invalid n2i_options: {problems}") from None
    if filter_name not in FILTER_NAMES:
        raise ValueError(f"n2i_filter must be one of {', '.join(map(repr, FILTER_NAMES))}, "
                         f"got {filter_name!r}")
