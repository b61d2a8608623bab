"""The whole job on a simulated TXM: scan, live training and enhancement, reconstruction.

:func:`run_demo` builds a simulated TXM, runs :func:`~lowdose_bluesky.plans.lowdose_tomo_plan`
in a :class:`bluesky.RunEngine` with the ``TiledWriter`` and a
:class:`~lowdose_bluesky.callbacks.LiveEnhancer` subscribed (training starts as soon as the
reference pairs are in, while the rotation is still being acquired), waits for the result,
reads everything back from the persistent embedded Tiled catalog and compares both
reconstructions with the phantom. With ``blind=True`` the scan is blind
(``reference_angles=()``: no reference pairs and nothing at the long exposure), for an
analysis that learns from the short-exposure frames alone.

Ctrl-C stops cleanly: during the scan the run is aborted at the next frame (its stop
document is written, so the frames taken so far stay readable and the analysis stores an
``"incomplete"`` result); during the analysis, training stops after the current batch.
Either way :class:`DemoInterrupted` (a ``KeyboardInterrupt``) is raised.
"""

from __future__ import annotations

import contextlib
import logging
import signal
import sys
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from bluesky import RunEngine
from bluesky.utils import RunEngineInterrupted
from tqdm.auto import tqdm

from .devices.sim import make_sim_txm
from .plans import lowdose_tomo_flyscan, lowdose_tomo_plan
from .report import RunReport, collect_report, format_table, save_report_figure
from .storage import close, connect, subscribe_writer

__all__ = ["DemoFailed", "DemoInterrupted", "DemoResult", "demo_table", "run_demo"]

#: Reference angles of the long/short training pairs (deg).
REFERENCE_ANGLES = (30.0, 120.0)
#: Short exposure (s) and open-beam flux (counts/pixel/s): 100 counts at the short
#: exposure, a strongly noisy projection that the network visibly improves.
SHORT_EXPOSURE = 0.05
FLUX = 2000.0
NUM_DARKS = NUM_FLATS = 5
#: How long an interrupted demo waits for the analysis to store its result.
INTERRUPT_WAIT_S = 30.0


class DemoInterrupted(KeyboardInterrupt):
    """Ctrl-C during the demo; ``str()`` says what was kept and where."""


class DemoFailed(RuntimeError):
    """The scan finished but its analysis failed (the failure is stored as a result)."""


@dataclass(frozen=True)
class DemoResult:
    """What :func:`run_demo` did, with the numbers of the printed table."""

    run_uid: str
    result_uid: str
    data_dir: Path
    figure: Path | None
    size: int
    projections: int
    dose_ratio: float
    short_exposure: float
    long_exposure: float
    scan_s: float
    latency_s: float
    total_s: float
    report: RunReport
    blind: bool = False


class _AbortOnSigint:
    """RunEngine context manager: Ctrl-C pauses the run so that it can be aborted.

    The first Ctrl-C asks for a pause at the next checkpoint (the next frame), a second
    one for an immediate pause; the RunEngine then raises ``RunEngineInterrupted`` and
    :func:`run_demo` aborts the run. The signal handler only sets flags; a helper thread
    talks to the RunEngine.
    """

    def __init__(self, RE: RunEngine, on_interrupt: Any) -> None:
        self._RE = RE
        self._on_interrupt = on_interrupt
        self._count = 0
        self._wake = threading.Event()
        self._done = False

    def _watch(self) -> None:
        handled = 0
        while True:
            self._wake.wait()
            self._wake.clear()
            if self._done:
                return
            while handled < self._count:
                handled += 1
                first = handled == 1
                if first:
                    self._on_interrupt()
                    print("\nCtrl-C: stopping the scan at the next frame (Ctrl-C again to stop "
                          "at once); the run is kept and marked aborted.", file=sys.stderr,
                          flush=True)
                try:
                    self._RE.request_pause(defer=first)
                except Exception:  # the RunEngine already left the running state
                    pass

    def __enter__(self) -> _AbortOnSigint:
        self._installed = False
        if threading.current_thread() is not threading.main_thread():
            return self  # signal handlers belong to the main thread; nothing to install
        self._previous = signal.getsignal(signal.SIGINT)
        threading.Thread(target=self._watch, name="lowdose-demo-sigint", daemon=True).start()

        def handler(signum: int, frame: Any) -> None:
            self._count += 1
            self._wake.set()

        signal.signal(signal.SIGINT, handler)
        self._installed = True
        return self

    def __exit__(self, *exc: object) -> None:
        if self._installed:
            signal.signal(signal.SIGINT, self._previous)
        self._done = True
        self._wake.set()


class _Cancel:
    """``stop_requested`` hook of training, set when the demo is interrupted."""

    def __init__(self) -> None:
        self.event = threading.Event()

    def __call__(self) -> bool:
        return self.event.is_set()

    def __str__(self) -> str:
        return "Ctrl-C of lowdose-bluesky demo"


class _ScanProgress:
    """A Bluesky callback: a tqdm bar over the frames of the run, and the run's clock."""

    def __init__(self, total: int, enabled: bool,
                 on_start: Callable[[str], None] | None = None) -> None:
        self.total = total
        self.fly_key: str | None = None  # image data key of a flown rotation
        self.on_start = on_start
        self.enabled = enabled
        self.bar: tqdm | None = None
        self.run_uid: str | None = None
        self.exit_status: str | None = None
        self.last_primary: float | None = None
        self.primary = 0
        self._streams: dict[str, str] = {}
        self._frame_key: dict[str, str] = {}  # stream resource uid -> data key

    def _primary(self, n: int) -> None:
        self.primary += n
        self.last_primary = time.perf_counter()
        if self.bar is not None:
            self.bar.update(n)

    def __call__(self, name: str, doc: dict[str, Any]) -> None:
        if name == "start":
            self.run_uid = doc["uid"]
            if self.on_start is not None:
                self.on_start(doc["uid"])
            if self.enabled:
                self.bar = tqdm(total=self.total, desc="scan", unit="frame")
        elif name == "descriptor":
            self._streams[doc["uid"]] = doc["name"]
        elif name == "event":
            if self._streams.get(doc["descriptor"]) == "primary":
                self._primary(1)
            elif self.bar is not None:
                self.bar.update(1)
        elif name == "stream_resource":
            self._frame_key[doc["uid"]] = doc["data_key"]
        elif name == "stream_datum" and self.fly_key is not None:
            # a flown rotation has no events: count the frames its StreamDatum announce
            if (self._streams.get(doc["descriptor"]) == "primary"
                    and self._frame_key.get(doc["stream_resource"]) == self.fly_key):
                self._primary(doc["seq_nums"]["stop"] - doc["seq_nums"]["start"])
        elif name == "stop":
            self.exit_status = doc.get("exit_status")
            self.close()

    def close(self) -> None:
        if self.bar is not None:
            self.bar.close()
            self.bar = None


def _check(size: int, projections: int, dose_ratio: float, epochs: int,
           training_budget: float | None, blind: bool) -> None:
    if isinstance(size, bool) or not isinstance(size, int) or size < 16:
        raise ValueError(f"size must be an integer >= 16 pixels (the network halves each side "
                         f"twice), got {size!r}")
    if isinstance(projections, bool) or not isinstance(projections, int) or projections < 3:
        raise ValueError(f"projections must be an integer >= 3, got {projections!r}")
    if not dose_ratio > 1:
        raise ValueError(f"dose_ratio must be > 1 (long / short exposure), got {dose_ratio!r}")
    if isinstance(epochs, bool) or not isinstance(epochs, int) or epochs < 1:
        raise ValueError(f"epochs must be a positive integer, got {epochs!r}")
    if training_budget is not None and not training_budget > 0:
        raise ValueError(f"training_budget must be a positive number of seconds or None, got "
                         f"{training_budget!r}")
    if not isinstance(blind, bool):
        raise ValueError(f"blind must be True or False, got {blind!r}")


def run_demo(data_dir: str | Path, *, size: int = 128, projections: int = 181,
             dose_ratio: float = 15.0, epochs: int = 30, training_budget: float | None = 60.0,
             seed: int = 0, progress: bool = True, figure: str | Path | None = None,
             log: Callable[[str], None] | None = None, blind: bool = False,
             method: str = "auto", n2i_options: dict[str, Any] | None = None,
             fly: bool = False) -> DemoResult:
    """Scan a simulated sample with live enhancement and compare with the ground truth.

    Parameters
    ----------
    data_dir
        Frames go to ``data_dir/frames`` (HDF5), the Tiled catalog to ``data_dir/tiled``
        (kept: ``lowdose-bluesky show`` and ``serve`` use it later).
    size
        Detector width and height in pixels (>= 16).
    projections
        Short-exposure projections over 0..180 deg (>= 3).
    dose_ratio
        Long / short exposure (> 1); the short exposure is fixed at 0.05 s.
    epochs
        Maximum training epochs.
    training_budget
        Training stops after this many seconds at the latest (``None``: only ``epochs``
        and early stopping).
    seed
        Phantom, noise and training seed.
    progress
        tqdm bars for the scan, training and enhancement.
    figure
        PNG file of the figure; default ``data_dir/figures/demo-<run uid[:8]>.png``.
    log
        Called with one line at each stage (scan started, scan done, reading back).
    blind
        Acquire a blind scan: ``reference_angles=()``, so no reference pairs and no
        long-exposure darks or flats; ``dose_ratio`` then only sets the nominal long
        exposure recorded with the run.
    method, n2i_options
        The analysis method and Noise2Inverse settings (see
        :class:`~lowdose_bluesky.callbacks.LiveEnhancer`).
    fly
        Fly the rotation: :func:`~lowdose_bluesky.plans.lowdose_tomo_flyscan` on the
        ophyd-async simulated TXM instead of ``lowdose_tomo_plan`` on ophyd devices.

    Returns
    -------
    DemoResult

    Raises
    ------
    ValueError
        For an option out of range.
    DemoInterrupted
        On Ctrl-C (after aborting the run and closing the Tiled server).
    DemoFailed
        If the analysis failed (the raw run and the failure are stored).
    """
    _check(size, projections, dose_ratio, epochs, training_budget, blind)
    if not isinstance(fly, bool):
        raise ValueError(f"fly must be True or False, got {fly!r}")
    from .callbacks import LiveEnhancer

    t_start = time.perf_counter()
    root, frames, catalog = demo_dirs(data_dir)
    cancel = _Cancel()
    RE = RunEngine({}, call_returns_result=False,
                   context_managers=[lambda engine: _AbortOnSigint(engine, cancel.event.set)])
    txm = make_sim_txm(detector_shape=(size, size), seed=seed, flux=FLUX, data_dir=frames,
                       flavour="ophyd-async" if fly else "ophyd")
    client = connect(directory=catalog, readable_storage=[frames])
    live = None
    reference_angles: tuple[float, ...] = () if blind else REFERENCE_ANGLES
    exposures = 1 if blind else 2
    total = exposures * (NUM_DARKS + NUM_FLATS) + 2 * len(reference_angles) + projections
    say = log or (lambda line: None)
    kind = " (blind: no reference pairs, no long exposure)" if blind else ""
    clock = _ScanProgress(total, progress, on_start=lambda uid: say(
        f"run {uid}: scanning {projections} projections of {size}x{size}{kind} into {root} "
        "(Ctrl-C stops)"))
    try:
        subscribe_writer(RE, client)
        # on a thread of this process: Ctrl-C stops training through the in-process
        # stop_requested hook (an analysis process ignores Ctrl-C)
        live = LiveEnhancer(client, process=False, method=method, n2i_options=n2i_options,
                            epochs=epochs, training_budget=training_budget,
                            progress=progress, seed=seed,
                            train_options={"stop_requested": cancel})
        RE.subscribe(clock)
        RE.subscribe(live)
        if fly:
            clock.fly_key = txm.detector.name
        plan = (lowdose_tomo_flyscan if fly else lowdose_tomo_plan)(
            txm.detector, txm.rotation, sample_x=txm.sample_x, shutter=txm.shutter,
            reference_angles=reference_angles, short_exposure=SHORT_EXPOSURE,
            long_exposure=SHORT_EXPOSURE * dose_ratio, num_projections=projections,
            num_darks=NUM_DARKS, num_flats=NUM_FLATS, md={"purpose": "lowdose-bluesky demo"})

        def aborted() -> str:
            clock.close()
            return (f"scan aborted after {clock.primary} of {projections} projections; run "
                    f"{clock.run_uid} (exit status {clock.exit_status!r})")

        t0 = time.perf_counter()
        run_uid, result_uid, scan_s = run_and_wait(
            RE, plan, live, root=root, aborted=aborted,
            scanned=lambda seconds: say(f"scan done in {seconds:.1f} s; waiting for the "
                                        "analysis (Ctrl-C stops)"),
            cancel=cancel.event.set)
        latency = time.perf_counter() - (clock.last_primary or t0)
        live.close()
        live = None
        say("reading the run and its result back from Tiled, drawing the figure")
        report = collect_report(client, run_uid, phantom=txm.phantom)
        if report.result is None or report.result.uid != result_uid:
            raise DemoFailed(f"result {result_uid} of run {run_uid} not found in Tiled")
        path = Path(figure) if figure is not None else root / "figures" / f"demo-{run_uid[:8]}.png"
        written = save_report_figure(report, path)
    finally:
        clock.close()
        close(client)
    return DemoResult(
        run_uid=run_uid, result_uid=result_uid, data_dir=root, figure=written, size=size,
        projections=projections, dose_ratio=float(dose_ratio), short_exposure=SHORT_EXPOSURE,
        long_exposure=SHORT_EXPOSURE * dose_ratio, scan_s=scan_s, latency_s=latency,
        total_s=time.perf_counter() - t_start, report=report, blind=blind)


@contextlib.contextmanager
def _quiet(name: str) -> Iterator[None]:
    """Silence a logger: an abort asked for by the user is no error worth a traceback."""
    logger = logging.getLogger(name)
    level = logger.level
    logger.setLevel(logging.CRITICAL)
    try:
        yield
    finally:
        logger.setLevel(level)


def _wait_briefly(live: Any) -> str | None:
    """Give the analysis a little time to store its result; return its uid if it did."""
    try:
        return live.wait(timeout=INTERRUPT_WAIT_S)
    except (RuntimeError, TimeoutError, KeyboardInterrupt):
        return None


def demo_dirs(data_dir: str | Path) -> tuple[Path, Path, Path]:
    """``(root, root/frames, root/tiled)`` of a demo's data directory; frames created.

    Raises
    ------
    ValueError
        If ``data_dir`` exists and is not a directory.
    """
    root = Path(data_dir).expanduser().resolve()
    if root.exists() and not root.is_dir():
        raise ValueError(f"data_dir {str(data_dir)!r} exists and is not a directory")
    frames, catalog = root / "frames", root / "tiled"
    frames.mkdir(parents=True, exist_ok=True)
    return root, frames, catalog


def run_and_wait(RE: RunEngine, plan: Any, live: Any, *, root: Path,
                 aborted: Callable[[], str], scanned: Callable[[float], None],
                 cancel: Callable[[], None] | None = None) -> tuple[str, str, float]:
    """Run ``plan`` with ``live`` subscribed, then wait for its result; Ctrl-C stops cleanly.

    The RunEngine's own messages (pausing, aborting) go to stderr with the demo's. On
    Ctrl-C during the scan the run is aborted (its stop document is written, the data
    so far stay readable) and :class:`DemoInterrupted` says ``aborted()`` (what was
    taken, the run) and what was kept; during the analysis ``cancel`` (if any) stops
    training early and the same exception names the complete run.

    Returns
    -------
    tuple
        ``(run uid, result uid, scan seconds)``.

    Raises
    ------
    DemoInterrupted
        On Ctrl-C.
    DemoFailed
        If the analysis failed (the raw run is stored).
    """
    t0 = time.perf_counter()
    try:
        with contextlib.redirect_stdout(sys.stderr):
            (run_uid,) = RE(plan)
    except RunEngineInterrupted:
        with contextlib.redirect_stdout(sys.stderr), _quiet("bluesky"):
            RE.abort(reason="interrupted by Ctrl-C")
        what = aborted()
        stored = _wait_briefly(live)
        kept = "" if stored is None else f" with its incomplete result {stored}"
        raise DemoInterrupted(f"{what}{kept} is stored in {root}") from None
    scan_s = time.perf_counter() - t0
    scanned(scan_s)
    try:
        result_uid = live.wait()
    except KeyboardInterrupt:
        if cancel is not None:
            cancel()
        stored = _wait_briefly(live)
        early = " (training stopped early)" if cancel is not None else ""
        kept = "" if stored is None else f" and result {stored}{early}"
        raise DemoInterrupted(
            f"analysis interrupted; the complete run {run_uid}{kept} is stored in {root}"
        ) from None
    except RuntimeError as exc:
        raise DemoFailed(f"{exc} (run {run_uid} is stored in {root})") from exc
    return run_uid, result_uid, scan_s


def demo_table(demo: DemoResult) -> str:
    """The printed summary of a demo: quality, dose, timings, uids, where things went."""
    report = demo.report
    md = report.result_metadata
    timings = md.get("timings", {})
    config = md.get("model", {}).get("config") or {}
    if demo.blind:
        acquisition = "blind (short exposure only: no reference pairs, no long darks or flats)"
    else:
        angles = ", ".join(f"{a:g}" for a in report.start.get("reference_angles", []))
        acquisition = f"long/short reference pairs at {angles} deg"
    rows: list[tuple[str, str]] = []
    for name in ("raw", "enhanced"):
        q = report.quality.get(name)
        if q is not None:
            rows.append((f"{name} reconstruction vs phantom",
                         f"PSNR {q.psnr:6.2f} dB   SSIM {q.ssim:.3f}   fine detail "
                         f"{q.fine:.3f}"))
    if {"raw", "enhanced"} <= report.quality.keys():
        gain = report.quality["enhanced"], report.quality["raw"]
        rows.append(("gain of enhancement", f"PSNR {gain[0].psnr - gain[1].psnr:+6.2f} dB   "
                                            f"SSIM {gain[0].ssim - gain[1].ssim:+.3f}   "
                                            f"fine detail {gain[0].fine - gain[1].fine:+.3f}"))
    rows += [
        ("dose ratio (long / short)", f"{demo.dose_ratio:g} ({demo.long_exposure:g} s / "
                                      f"{demo.short_exposure:g} s per frame)"),
        ("acquisition", acquisition),
        ("method", _method_line(md)),
        ("scan", f"{demo.scan_s:.1f} s ({demo.projections} projections of "
                 f"{demo.size}x{demo.size})"),
        ("training", f"{timings.get('training_s', 0.0):.1f} s ({len(report.history)} epochs, "
                     f"stopped: {config.get('stopped', '-')})"),
        ("enhancement", f"{timings.get('enhancement_s', 0.0):.1f} s"),
        ("reconstruction", f"{timings.get('reconstruction_s', 0.0):.1f} s"),
        ("result stored after last frame", f"{demo.latency_s:.1f} s"),
        ("total", f"{demo.total_s:.1f} s"),
        ("run uid", demo.run_uid),
        ("result uid", demo.result_uid),
        ("figure", str(demo.figure)),
        ("data", str(demo.data_dir)),
    ]
    return format_table(rows, header=("quantity", "value"))


def _method_line(md: dict[str, Any]) -> str:
    """The analysis method and what its held-out gates decided."""
    gates = md.get("gates") or {}
    verdicts = [f"{stage} {'used' if gate.get('use_model') else 'NOT used (gate)'}"
                for stage, gate in gates.items()]
    return f"{md.get('method', '-')}" + (f" ({', '.join(verdicts)})" if verdicts else "")
