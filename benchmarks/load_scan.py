"""Load test: a long scan with the live callback, memory measured frame by frame.

1801 projections of 256x256 (five times the 361 projections of the paper's rotation)
against the simulated TXM with realistic exposure timing, TiledWriter and LiveEnhancer
(unet, ``process=False``: the analysis on a thread, so that its memory is measured here;
``benchmarks/live_engine.py --parts load`` measures the default, the analysis in its own
process) subscribed. Reports the peak RSS of the process against the memory budget
computed from the sizes, the RSS at every primary event received (fitted: growth per
frame during the rotation, split into the transmission/enhanced stacks the callback
keeps for the reconstruction and the rest), the stored result read back from Tiled, and
the wall times. A second, identical scan then runs under tracemalloc (numpy buffers
included) to fit the growth of the Python heap per frame and list where it grew
(``--no-tracemalloc`` to skip): tracemalloc is started and stopped only while the process
is idle (stopping it while other threads allocate can crash CPython < 3.12.9), and it
is kept out of the first scan's RSS, peak and times. A short scan first (``--warmup``)
leaves imports and first-use caches out of the measurement.

Writes the section ``load_scan`` of ``benchmarks/RESULTS.md`` (or ``--output``) and
``benchmarks/figures/load_scan_rss.png`` (or ``--figures-dir``).

Usage: ``python benchmarks/load_scan.py [--size 256] [--projections 1801]``
"""

from __future__ import annotations

import argparse
import gc
import json
import os
import resource
import shlex
import shutil
import sys
import tempfile
import threading
import time
import tracemalloc
from pathlib import Path
from typing import Any

import _results
import numpy as np
from _results import machine_info
from bluesky import RunEngine
from matplotlib.figure import Figure

from lowdose_bluesky.callbacks import LiveEnhancer
from lowdose_bluesky.devices.sim import make_sim_txm
from lowdose_bluesky.plans import lowdose_tomo_plan
from lowdose_bluesky.storage import (
    STREAMING_CACHE_TTL_S,
    UPLOAD_BLOCK_BYTES,
    close,
    connect,
    results,
    subscribe_writer,
)

SECTION = "load_scan"
BENCH_DIR = Path(__file__).resolve().parent
KIB = 1024
MIB = 1024 * 1024
#: tracemalloc domain of numpy's array buffers (``NPY_TRACE_DOMAIN``).
NUMPY_DOMAIN = 389047
_PAGE_KIB = os.sysconf("SC_PAGE_SIZE") / KIB if hasattr(os, "sysconf") else 4.0


# ------------------------------------------------------------------------ memory
def rss_kib() -> float:
    """Resident set size of this process now (KiB), from ``/proc/self/statm``."""
    with open("/proc/self/statm") as f:
        return int(f.read().split()[1]) * _PAGE_KIB


def status_kib(field: str) -> float:
    """A ``Vm*`` line of ``/proc/self/status`` (KiB), e.g. ``VmHWM`` (peak RSS)."""
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith(field + ":"):
                return float(line.split()[1])
    raise KeyError(field)


def reset_peak() -> bool:
    """Reset ``VmHWM`` to the current RSS (Linux >= 4.0); False where refused."""
    try:
        with open("/proc/self/clear_refs", "w") as f:
            f.write("5")
        return True
    except OSError:
        return False


def malloc_trim() -> bool:
    """Have glibc give free heap memory back to the system; False where there is none."""
    try:
        import ctypes

        ctypes.CDLL("libc.so.6").malloc_trim(0)
        return True
    except (OSError, AttributeError):
        return False


def maxrss_kib() -> float:
    """``getrusage(RUSAGE_SELF).ru_maxrss`` in KiB (Linux reports KiB, macOS bytes)."""
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return peak / KIB if sys.platform == "darwin" else float(peak)


class Progress:
    """Stands in for a ``LiveFigure``: records what the analysis worker reports.

    ``LiveEnhancer(figure=...)`` calls these methods from its worker thread; only the
    number of enhanced projections and the times of the stages are kept (no arrays).
    """

    def __init__(self) -> None:
        self.enhanced = 0
        self.epochs = 0
        self.stages: list[tuple[float, str]] = []

    def reset(self, run_uid: str | None) -> None:
        self.enhanced = self.epochs = 0
        self.stages.append((time.perf_counter(), "start"))

    def stage(self, text: str) -> None:
        self.stages.append((time.perf_counter(), text))

    def add_epoch(self, record: dict[str, Any]) -> None:
        self.epochs += 1

    def set_projection(self, index: int, raw: np.ndarray, enhanced: np.ndarray) -> None:
        self.enhanced = max(self.enhanced, int(index) + 1)

    def set_slices(self, raw: np.ndarray, enhanced: np.ndarray) -> None:
        self.stages.append((time.perf_counter(), "reconstructed"))


def analysis_backlog(live: LiveEnhancer) -> int:
    """Documents queued for the LiveEnhancer's worker and not yet handled by it."""
    q = getattr(live.worker, "_queue", None)
    return q.qsize() if q is not None else 0


class FrameProbe:
    """RunEngine callback: RSS (and the Python heap) at every primary event.

    ``rows`` holds ``(frame, t, rss KiB, analysis backlog, projections enhanced)``;
    with tracemalloc running, ``heap`` holds at the frames ``trace_at``
    ``(frame, traced bytes, of which numpy buffers, of which the two stacks)``.
    """

    def __init__(self, live: LiveEnhancer, progress: Progress, stack_bytes: int,
                 trace_at: list[int] | None = None) -> None:
        self.live, self.progress = live, progress
        self.stack_bytes = stack_bytes
        self.trace_at = set(trace_at or ())
        self.names: dict[str, str] = {}
        self.n = 0
        self.rows: list[tuple[int, float, float, int, int]] = []
        self.heap: list[tuple[int, int, int, int]] = []
        self.snapshots: list[tuple[int, tracemalloc.Snapshot]] = []
        self.t_first: float | None = None
        self.t_last: float | None = None
        self.trace_s = 0.0

    def __call__(self, name: str, doc: dict[str, Any]) -> None:
        if name == "descriptor":
            self.names[doc["uid"]] = doc["name"]
        elif name == "event" and self.names.get(doc["descriptor"]) == "primary":
            self.n += 1
            t = time.perf_counter()
            self.t_first = self.t_first or t
            self.t_last = t
            self.rows.append((self.n, t, rss_kib(), analysis_backlog(self.live),
                              self.progress.enhanced))
            if self.n in self.trace_at and tracemalloc.is_tracing():
                self._trace()

    def _trace(self) -> None:
        t = time.perf_counter()
        # leave out tracemalloc's own snapshots and this module's records
        snap = tracemalloc.take_snapshot().filter_traces(
            [tracemalloc.Filter(False, tracemalloc.__file__), tracemalloc.Filter(False, __file__)])
        total = numpy = stacks = 0
        for trace in snap.traces:
            total += trace.size
            if trace.domain == NUMPY_DOMAIN:
                numpy += trace.size
                if trace.size == self.stack_bytes:
                    stacks += trace.size
        self.heap.append((self.n, total, numpy, stacks))
        # keep the first and the latest snapshot only (for the diff of growth sites)
        self.snapshots = [*self.snapshots[:1], (self.n, snap)]
        self.trace_s += time.perf_counter() - t


class Sampler(threading.Thread):
    """Samples RSS every ``interval`` seconds: ``(t, rss KiB, primary frames, backlog)``."""

    def __init__(self, probe: FrameProbe, interval: float = 0.5) -> None:
        super().__init__(name="rss-sampler", daemon=True)
        self.probe, self.interval = probe, interval
        self.samples: list[tuple[float, float, int, int]] = []
        self._stop_event = threading.Event()

    def run(self) -> None:
        while True:
            self.samples.append((time.perf_counter(), rss_kib(), self.probe.n,
                                 analysis_backlog(self.probe.live)))
            if self._stop_event.wait(self.interval):
                return

    def stop(self) -> None:
        self._stop_event.set()
        self.join()


# --------------------------------------------------------------------- analysis
def fit_slope(x: np.ndarray, y: np.ndarray) -> tuple[float, float]:
    """Least-squares slope of ``y`` on ``x`` and its standard error."""
    if len(x) < 3:
        return float("nan"), float("nan")
    A = np.vstack([x, np.ones_like(x)]).T
    coef, *_ = np.linalg.lstsq(A, y, rcond=None)
    resid = y - A @ coef
    se = np.sqrt(resid @ resid / (len(x) - 2) / ((x - x.mean()) @ (x - x.mean())))
    return float(coef[0]), float(se)


def robust_slope(x: np.ndarray, y: np.ndarray) -> float:
    """Theil-Sen slope (median of the pairwise slopes): a snapshot taken while the worker
    holds a batch in flight does not tilt it, a steady growth does."""
    i, j = np.triu_indices(len(x), 1)
    return float(np.median((y[j] - y[i]) / (x[j] - x[i]))) if len(i) else float("nan")


def trace_points(args: argparse.Namespace, n: int) -> list[int]:
    """Frames of the tracemalloc snapshots: from ``--trace-from`` of the ``n`` on.

    Tracing runs from before the scan; by then bounded caches and buffers filled since
    (TiledWriter batches, the simulation's projection cache) have turned over.
    """
    first = max(1, int(args.trace_from * n))
    return sorted({round(v) for v in np.linspace(first, n, args.trace_points)})


def frame_growth(probe: FrameProbe, frame_kib: float,
                 window: tuple[int, int]) -> dict[str, Any]:
    """Growth of the RSS per primary frame over the frames ``window`` of the rotation.

    The expected part is the pages of the two stacks the worker has filled: one frame
    of the transmission stack per projection it has read (received minus backlog), one
    of the enhanced stack per projection enhanced.
    """
    rows = np.array(probe.rows, dtype=float)
    n, rss, backlog, enhanced = rows[:, 0], rows[:, 2], rows[:, 3], rows[:, 4]
    filed = np.clip(n - backlog, 0, None)
    expected = frame_kib * (filed + enhanced)
    keep = (n >= window[0]) & (n <= window[1])
    slope, se = fit_slope(n[keep], rss[keep])
    exp_slope, _ = fit_slope(n[keep], expected[keep])
    rest_slope, rest_se = fit_slope(n[keep], rss[keep] - expected[keep])
    out = {"window": (int(n[keep][0]), int(n[keep][-1])), "slope": slope, "se": se,
           "expected_slope": exp_slope, "rest_slope": rest_slope, "rest_se": rest_se,
           "rss_first": float(rss[0]), "rss_last": float(rss[-1]),
           "rest_change_mib": rest_slope * (n[keep][-1] - n[keep][0]) / KIB,
           "max_backlog": int(backlog.max()), "filed_last": int(filed[-1]),
           "enhanced_last": int(enhanced[-1])}
    return out


def heap_growth(probe: FrameProbe) -> dict[str, Any] | None:
    """Growth of the traced heap per primary frame, beyond the stacks (bytes/frame)."""
    if len(probe.heap) < 3:
        return None
    h = np.array(probe.heap, dtype=float)
    rest = h[:, 1] - h[:, 3]
    py = h[:, 1] - h[:, 2]
    (n0, s0), (n1, s1) = probe.snapshots[0], probe.snapshots[-1]
    stats = s1.compare_to(s0, "lineno")
    return {
        "points": len(h), "window": (int(h[0, 0]), int(h[-1, 0])),
        "rest_slope_b": robust_slope(h[:, 0], rest),
        "python_slope_b": robust_slope(h[:, 0], py),
        "numpy_slope_b": robust_slope(h[:, 0], h[:, 2] - h[:, 3]),
        "rest_change_kib": float(rest[-1] - rest[0]) / KIB,
        "traced_mib": float(h[-1, 1]) / MIB,
        "trace_s": probe.trace_s,
        "top": [(str(s.traceback[0]), s.size_diff, s.count_diff, s.size_diff / (n1 - n0))
                for s in sorted(stats, key=lambda s: -s.size_diff)[:8] if s.size_diff > 0],
    }


def budget(n: int, h: int, w: int) -> dict[str, float]:
    """Memory the analysis must hold above the RSS before the scan (MiB), from the sizes."""
    stack = n * h * w * 4 / MIB
    volume = h * w * w * 4 / MIB
    block = UPLOAD_BLOCK_BYTES / MIB
    return {
        "stack": stack,                      # one (N, H, W) float32 stack
        "stacks": 2 * stack,                 # transmission + enhanced, held to the end
        "volume": volume,                    # one (Z, X, X) float32 reconstruction
        # reconstruction: the stacks, one -log copy, both volumes
        "reconstruct": 2 * stack + stack + 2 * volume,
        # storing: the stacks and volumes, the enhanced stack again in the embedded
        # server's streaming cache (kept STREAMING_CACHE_TTL_S), ~5 copies of the block
        # in flight
        "store": 2 * stack + stack + 2 * volume + 5 * block,
    }


def phase_peaks(info: dict[str, Any]) -> dict[str, float]:
    """Largest sampled RSS (MiB) in each phase: rotation, analysis after it, storing."""
    samples = np.array(info["samples"], dtype=float)
    t, rss = samples[:, 0], samples[:, 1] / KIB
    done = [x for x, name in info["stages"] if name == "reconstructed" and x > 0]
    t_rec = done[-1] if done else info["t_stored"]
    bounds = {"rotation": (info["t_first"], info["t_last"]),
              "analysis": (info["t_last"], t_rec), "store": (t_rec, info["t_stored"] + 0.5)}
    return {k: float(rss[(t >= a) & (t <= b)].max()) if np.any((t >= a) & (t <= b))
            else float("nan") for k, (a, b) in bounds.items()}


# ------------------------------------------------------------------------- runs
def run(args: argparse.Namespace) -> dict[str, Any]:
    """Run the scan with the live analysis and measure; return everything measured."""
    h = w = args.size
    n_proj = args.projections
    frame_bytes = h * w * 4
    load_before = os.getloadavg()[0]
    work = Path(args.work_dir or tempfile.mkdtemp(prefix="lowdose_load_"))
    (work / "frames").mkdir(parents=True, exist_ok=True)
    txm = make_sim_txm(detector_shape=(h, w), seed=0, flux=args.flux, data_dir=work / "frames",
                       realistic_timing=args.realistic_timing)
    client = connect(directory=work / "tiled", readable_storage=[work / "frames"])
    budget_s = {"scan": "scan", "none": None}.get(args.training_budget)
    if budget_s is None and args.training_budget != "none":
        budget_s = float(args.training_budget)
    progress = Progress()
    live = LiveEnhancer(client, process=False, arch=args.arch, epochs=args.epochs,
                        training_budget=budget_s,
                        min_training_s=args.min_training_s, progress=False, figure=progress,
                        train_options=json.loads(args.train_options))
    probe = FrameProbe(live, progress, n_proj * frame_bytes)
    rss_window = (max(1, int(args.skip * n_proj)), n_proj)
    RE = RunEngine({}, call_returns_result=False)
    subscribe_writer(RE, client, batch_size=args.batch_size)
    RE.subscribe(live)

    def scan(num: int) -> str:
        (uid,) = RE(lowdose_tomo_plan(
            txm.detector, txm.rotation, sample_x=txm.sample_x, shutter=txm.shutter,
            reference_angles=(30.0, 120.0), short_exposure=args.short,
            long_exposure=args.short * args.dose_ratio, num_projections=num))
        return uid

    if args.warmup:  # imports, first writes, caches: one-time growth outside the measurement
        scan(args.warmup)
        live.wait(timeout=args.timeout)
    token = RE.subscribe(probe)
    hwm_reset = reset_peak()
    rss_before = rss_kib()
    sampler = Sampler(probe, args.interval)
    sampler.start()
    t0 = time.perf_counter()
    uid = scan(n_proj)
    t_plan = time.perf_counter() - t0
    result_uid = live.wait(timeout=args.timeout)
    t_stored = time.perf_counter()
    time.sleep(2 * args.interval)
    sampler.stop()
    peak_hwm, peak_ru = status_kib("VmHWM"), maxrss_kib()
    rss_after = rss_kib()

    res = results(client, uid)
    node = res.node
    shapes = {k: tuple(node[k].shape) for k in ("enhanced", "reconstruction",
                                                 "reconstruction_raw") if k in node}
    enhanced = res.enhanced
    stored = {
        "status": res.status, "uid": res.uid, "shapes": shapes,
        "dtype": str(enhanced.dtype),
        "frames_nonzero": int(np.count_nonzero(enhanced.reshape(len(enhanced), -1).any(1))),
        "finite": bool(np.isfinite(enhanced).all()),
        "recon_finite": bool(np.isfinite(res.reconstruction).all()),
        "timings": res.metadata.get("timings", {}),
        "epochs": len(res.metadata.get("model", {}).get("history", [])),
        "checkpoint_kib": len(res.checkpoint) / KIB,
    }
    del enhanced
    raw_frames = tuple(client["raw"][uid]["primary"]["det_image"].shape)
    peak_readback = status_kib("VmHWM")
    # the embedded server drops expired streaming-cache entries at its next write
    time.sleep(args.settle_s)
    gc.collect()
    client.create_container(f"load_scan_{uid}")
    rss_settled = rss_kib()
    rss_trimmed = rss_kib() if malloc_trim() else float("nan")
    RE.unsubscribe(token)
    stages = [(t - t0, name) for t, name in progress.stages]

    heap, heap_status = None, None
    if args.tracemalloc:  # the same scan again, traced; started and stopped while idle
        n_heap = args.heap_projections or n_proj
        heap_probe = FrameProbe(live, progress, n_heap * frame_bytes, trace_points(args, n_heap))
        token = RE.subscribe(heap_probe)
        tracemalloc.start(args.trace_frames)
        heap_uid = scan(n_heap)
        live.wait(timeout=args.timeout)
        time.sleep(1)
        tracemalloc.stop()
        RE.unsubscribe(token)
        heap = heap_growth(heap_probe)
        heap_status = results(client, heap_uid).status
    close(client)
    live.close()
    if args.work_dir is None:  # frames and catalog of this run only (~0.9 GB at the default)
        shutil.rmtree(work, ignore_errors=True)
    assert result_uid == res.uid

    growth = frame_growth(probe, frame_bytes / KIB, rss_window)
    growth["heap"] = heap
    growth["heap_status"] = heap_status
    return {
        "args": args, "uid": uid, "stored": stored, "raw_frames": raw_frames,
        "growth": growth, "budget": budget(n_proj, h, w),
        "rss_before_mib": rss_before / KIB, "rss_after_mib": rss_after / KIB,
        "peak_hwm_mib": peak_hwm / KIB, "peak_ru_mib": peak_ru / KIB, "hwm_reset": hwm_reset,
        "peak_readback_mib": peak_readback / KIB, "rss_settled_mib": rss_settled / KIB,
        "rss_trimmed_mib": rss_trimmed / KIB,
        "t_plan": t_plan, "t_first": probe.t_first - t0, "t_last": probe.t_last - t0,
        "latency": t_stored - probe.t_last, "t_stored": t_stored - t0,
        "frames_seen": probe.n, "load_before": load_before, "load_after": os.getloadavg()[0],
        "samples": [(t - t0, r, k, b) for t, r, k, b in sampler.samples],
        "rows": [(k, t - t0, r, b, e) for k, t, r, b, e in probe.rows],
        "stages": stages,
        "t0": t0,
    }


# ----------------------------------------------------------------------- output
def figure(info: dict[str, Any], path: Path) -> Path:
    """RSS against primary frames received, and against time over the whole run."""
    rows = np.array(info["rows"], dtype=float)
    samples = np.array(info["samples"], dtype=float)
    frame_mib = info["args"].size ** 2 * 4 / MIB
    fig = Figure(figsize=(11, 4.2), layout="constrained")
    ax1, ax2 = fig.subplots(1, 2)
    n, rss = rows[:, 0], rows[:, 2] / KIB
    filed = np.clip(n - rows[:, 3], 0, None)
    expected = rss[0] + frame_mib * (filed + rows[:, 4]) - frame_mib * (filed[0] + rows[0, 4])
    ax1.plot(n, rss, lw=0.8, label="RSS at each primary event")
    ax1.plot(n, expected, "--", lw=1, label="RSS at frame 1 + stack pages filled")
    g = info["growth"]
    ax1.set(xlabel="primary frames received", ylabel="RSS (MiB)",
            title=f"rotation: {g['slope']:+.1f} KiB/frame "
                  f"({g['rest_slope']:+.1f} beyond the stacks)")
    ax1.legend(loc="upper left", fontsize=8)
    ax2.plot(samples[:, 0], samples[:, 1] / KIB, lw=0.8, color="C0", label="RSS")
    ax2.axhline(info["peak_hwm_mib"], color="C3", lw=0.8, ls=":",
                label=f"peak {info['peak_hwm_mib']:.0f} MiB")
    marks = [(info["t_first"], "first frame", "C2"), (info["t_last"], "last frame", "C2"),
             (info["t_stored"], "result stored", "C1")]
    marks += [(t, "reconstructed", "C1") for t, name in info["stages"]
              if name == "reconstructed" and t > 0]
    for t, text, c in marks:
        ax2.axvline(t, color=c, lw=0.8, ls="--")
        ax2.text(t, ax2.get_ylim()[0], f" {text}", rotation=90, va="bottom", fontsize=7)
    b = info["budget"]
    ax2.axhline(info["rss_before_mib"] + b["stacks"], color="C4", lw=0.8, ls="-.",
                label=f"before + two stacks ({b['stacks']:.0f} MiB)")
    ax2.set(xlabel="seconds since the plan started", ylabel="RSS (MiB)",
            title=f"whole run (sampled every {info['args'].interval:.1f} s)")
    ax2.legend(loc="upper left", fontsize=8)
    fig.suptitle(f"{info['args'].projections} projections of {info['args'].size}x"
                 f"{info['args'].size}, TiledWriter + LiveEnhancer ({info['args'].arch})")
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=110)
    return path


def render(info: dict[str, Any], argv: list[str], fig_path: Path, output: Path) -> str:
    """Markdown body of the RESULTS.md section."""
    a = info["args"]
    g, b, s = info["growth"], info["budget"], info["stored"]
    p = phase_peaks(info)
    tm = s["timings"]
    command = "python benchmarks/load_scan.py" + ("" if not argv else " " + shlex.join(argv))
    frame_kib = a.size * a.size * 4 / KIB
    rel = os.path.relpath(fig_path, output.parent)
    lines = [
        "## Load test: long scan with the live callback (`benchmarks/load_scan.py`)",
        "",
        f"Command: `{command}` (load average {info['load_before']:.1f} before, "
        f"{info['load_after']:.1f} after). `lowdose_tomo_plan` on the simulated TXM "
        f"({'realistic exposure timing' if a.realistic_timing else 'no exposure wait'}), "
        f"{a.projections} projections of {a.size}x{a.size}, short exposure {a.short:g} s, "
        f"dose ratio {a.dose_ratio:g}, TiledWriter (batch_size={a.batch_size}) and "
        f"LiveEnhancer ({a.arch}, epochs {a.epochs}, training budget {a.training_budget!r}, "
        f"min_training_s {a.min_training_s:g}) subscribed in one process with the embedded "
        "Tiled server. RSS read from `/proc/self/statm` at every primary event and every "
        f"{a.interval:g} s; peak = `VmHWM` (and `ru_maxrss`).",
        "",
        "| quantity | value |",
        "| --- | ---: |",
        f"| RSS before the plan / at the first primary frame / at the last | "
        f"{info['rss_before_mib']:.0f} / {g['rss_first'] / KIB:.0f} / "
        f"{g['rss_last'] / KIB:.0f} MiB |",
        "| **peak RSS** until the result is stored (VmHWM"
        + (" from the scan on" if info["hwm_reset"] else "")
        + "; ru_maxrss of the whole process) | "
        f"**{info['peak_hwm_mib']:.0f} MiB** ({info['peak_ru_mib']:.0f} MiB) |",
        f"| RSS after the result is stored | {info['rss_after_mib']:.0f} MiB |",
        f"| peak RSS after reading the result back | {info['peak_readback_mib']:.0f} MiB |",
        f"| RSS {a.settle_s:g} s later, after one more write (the server's streaming cache "
        f"keeps entries {STREAMING_CACHE_TTL_S} s) | "
        f"{info['rss_settled_mib']:.0f} MiB |",
        f"| the same after `malloc_trim(0)` (free memory glibc kept, given back) | "
        f"{info['rss_trimmed_mib']:.0f} MiB |",
        f"| sampled peak: rotation / analysis after it / storing the result | "
        f"{p['rotation']:.0f} / {p['analysis']:.0f} / {p['store']:.0f} MiB |",
        f"| budget: one (N, H, W) float32 stack / the two the callback keeps | "
        f"{b['stack']:.0f} / {b['stacks']:.0f} MiB |",
        f"| budget, reconstruction: the stacks + one -log copy + both volumes | "
        f"{b['reconstruct']:.0f} MiB above the RSS before the plan |",
        f"| budget, storing: the stacks + both volumes + the enhanced stack in the server's "
        f"streaming cache ({STREAMING_CACHE_TTL_S} s) + ~5 copies of a "
        f"{UPLOAD_BLOCK_BYTES // MIB} MiB block in flight | "
        f"{b['store']:.0f} MiB above the RSS before the plan "
        f"(peak measured: {info['peak_hwm_mib'] - info['rss_before_mib']:+.0f} MiB) |",
        f"| RSS growth per primary frame, frames {g['window'][0]}-{g['window'][1]} (fit) | "
        f"{g['slope']:+.1f} +- {g['se']:.1f} KiB/frame |",
        f"| of which stack pages filled by the worker (expected, {frame_kib:.0f} KiB per "
        f"frame and stack) | {g['expected_slope']:+.1f} KiB/frame |",
        f"| **growth beyond the stacks** | **{g['rest_slope']:+.1f} +- {g['rest_se']:.1f} "
        f"KiB/frame** ({g['rest_change_mib']:+.1f} MiB over the window at that slope) |",
        f"| largest analysis backlog (documents queued for the worker) | "
        f"{g['max_backlog']} |",
    ]
    heap = g.get("heap")
    if heap:
        lines.append(
            "| Python heap beyond the stacks, a second scan of "
            f"{a.heap_projections or a.projections} projections under tracemalloc "
            f"({heap['points']} snapshots, frames {heap['window'][0]}-{heap['window'][1]}, "
            f"Theil-Sen; result `{g['heap_status']}`) | "
            f"{heap['rest_slope_b'] / KIB:+.2f} KiB/frame ({heap['rest_change_kib']:+.0f} KiB; "
            f"Python objects {heap['python_slope_b'] / KIB:+.2f}, numpy buffers "
            f"{heap['numpy_slope_b'] / KIB:+.2f} KiB/frame) |")
    rate = (a.projections - 1) / max(info["t_last"] - info["t_first"], 1e-9)
    lines += [
        f"| plan wall time | {info['t_plan']:.1f} s ({rate:.1f} primary frames/s) |",
        f"| result stored after the last frame | {info['latency']:.1f} s |",
        f"| training / enhancement / reconstruction (result metadata) | "
        f"{tm.get('training_s', 0):.1f} s / {tm.get('enhancement_s', 0):.1f} s / "
        f"{tm.get('reconstruction_s', 0):.1f} s ({s['epochs']} epochs) |",
        f"| result stored | status `{s['status']}`, uid `{s['uid']}` |",
        "| read back from Tiled | " + ", ".join(
            f"{k} {tuple(v)}" for k, v in s["shapes"].items())
        + f" {s['dtype']}; {s['frames_nonzero']} of {a.projections} enhanced frames non-zero, "
        f"all finite: {s['finite'] and s['recon_finite']}; raw primary {info['raw_frames']} |",
        "",
    ]
    bounded = g["rest_slope"] <= a.bound
    worker = (
        f"The worker was still training when the rotation ended (training budget "
        f"{a.training_budget!r}), so {g['max_backlog']} event documents waited in its queue "
        "and both stacks were filled after the scan, from that backlog."
        if g["filed_last"] < a.projections // 2 else
        "The worker kept up with the rotation (largest backlog "
        f"{g['max_backlog']} documents), filling the stacks as the frames arrived.")
    lines += [
        ("No growth per frame beyond the stacks" if bounded else
         "**Growth per frame beyond the stacks**")
        + f": {g['rest_slope']:+.1f} KiB/frame over frames {g['window'][0]}-{g['window'][1]} "
        f"(counted as growth above +{a.bound:g} KiB/frame; one frame is {frame_kib:.0f} KiB; "
        "a negative slope is memory given back, e.g. by training). "
        "Expected growth: the transmission and enhanced stacks (`np.zeros`, resident only "
        "once written): one frame of the first per projection the worker has read, one of "
        f"the second per projection enhanced. {worker}",
        "",
    ]
    if heap:
        lines += [
            "The RSS fit is only as steady as the training that runs in the same process "
            "(a spike at each epoch, left panel); the Python heap, followed by tracemalloc in "
            "the second scan, is exact: "
            f"{heap['rest_slope_b'] / KIB:+.2f} KiB/frame over frames {heap['window'][0]}-"
            f"{heap['window'][1]}, numpy buffers {heap['numpy_slope_b'] / KIB:+.2f} KiB/frame"
            + (" (no frame data is kept)" if abs(heap["numpy_slope_b"]) < frame_kib * KIB / 16
               else "") + "; the sites below are the per-run bookkeeping of the "
            "RunEngine, TiledWriter and callback (TiledWriter's index of datums, event-model "
            "copies of datums and events, the event documents queued for the worker).",
            "",
        ]
    above = info["peak_hwm_mib"] - info["rss_before_mib"]
    lines += [
        f"Peak: {info['peak_hwm_mib']:.0f} MiB, {above:+.0f} MiB above the RSS before the plan "
        f"(sampled: {p['rotation']:.0f} MiB during the rotation, {p['analysis']:.0f} MiB "
        "while the worker fills the stacks, enhances and reconstructs after it, "
        f"{p['store']:.0f} MiB while it stores the result); computed for the stacks, one "
        f"-log copy and both volumes: {b['reconstruct']:+.0f} MiB"
        + ("; the excess is the reconstruction's working arrays (filtered slabs, checks). "
           if max(p, key=lambda k: p[k]) == "analysis" and above > b["reconstruct"] else ". ")
        + f"After the result is stored and tiled's streaming cache has expired the RSS is "
        f"{info['rss_settled_mib']:.0f} MiB, and {info['rss_trimmed_mib']:.0f} MiB once "
        "glibc gives back the free memory it keeps "
        + ("(less than before the plan: nothing of the run is left)."
           if info["rss_trimmed_mib"] <= info["rss_before_mib"] else
           f"({info['rss_trimmed_mib'] - info['rss_before_mib']:+.0f} MiB above the RSS "
           "before the plan)."),
        "",
        f"![RSS vs frames]({rel})",
        "",
    ]
    if heap and heap.get("top"):
        lines += ["Largest growth of the Python heap between the first and the last "
                  "snapshot (tracemalloc, by line):", "",
                  "| where | bytes | blocks | bytes/frame |", "| --- | ---: | ---: | ---: |"]
        lines += [f"| `{_short(where)}` | {size:+,d} | {count:+d} | {per:+.0f} |"
                  for where, size, count, per in heap["top"]]
        lines.append("")
    lines.append(machine_info())
    return "\n".join(lines)


def _short(where: str) -> str:
    """A source location without the installation's directories."""
    for marker in ("site-packages/", "/lowdose_bluesky/", "/benchmarks/", "/lib/python3"):
        if marker in where:
            return where[where.index(marker):].removeprefix("site-packages/").lstrip("/")
    return where


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--size", type=int, default=256)
    parser.add_argument("--projections", type=int, default=1801)
    parser.add_argument("--arch", default="unet")
    parser.add_argument("--short", type=float, default=0.05, help="short exposure (s)")
    parser.add_argument("--dose-ratio", type=float, default=15.0)
    parser.add_argument("--flux", type=float, default=2000.0, help="counts/pixel/s")
    parser.add_argument("--epochs", type=int, default=30)
    parser.add_argument("--training-budget", default="scan",
                        help="'scan' (default), seconds, or 'none'")
    parser.add_argument("--min-training-s", type=float, default=60.0,
                        help="least training seconds under --training-budget scan")
    parser.add_argument("--train-options", default="{}",
                        help="JSON of extra train_enhancer options")
    parser.add_argument("--batch-size", type=int, default=50, help="TiledWriter batch size")
    parser.add_argument("--no-realistic-timing", dest="realistic_timing",
                        action="store_false", help="do not wait the exposure time")
    parser.add_argument("--warmup", type=int, default=37,
                        help="projections of a first, unmeasured scan (0: none)")
    parser.add_argument("--no-tracemalloc", dest="tracemalloc", action="store_false",
                        help="no second scan under tracemalloc")
    parser.add_argument("--heap-projections", type=int, default=None,
                        help="projections of the traced scan (default: --projections)")
    parser.add_argument("--trace-from", type=float, default=0.2,
                        help="fraction of the traced scan's rotation where snapshots begin")
    parser.add_argument("--trace-frames", type=int, default=1,
                        help="traceback depth of tracemalloc")
    parser.add_argument("--trace-points", type=int, default=8,
                        help="tracemalloc snapshots over the rotation")
    parser.add_argument("--skip", type=float, default=0.1,
                        help="fraction of the rotation left out of the RSS fit (warm-up)")
    parser.add_argument("--interval", type=float, default=0.5, help="RSS sampling (s)")
    parser.add_argument("--settle-s", type=float, default=STREAMING_CACHE_TTL_S + 1,
                        help="wait before the RSS once the server's streaming cache expired")
    parser.add_argument("--bound", type=float, default=16.0,
                        help="KiB/frame beyond the stacks reported as no growth")
    parser.add_argument("--timeout", type=float, default=3600.0, help="result wait (s)")
    parser.add_argument("--work-dir", type=Path, default=None)
    parser.add_argument("--output", type=Path, default=_results.RESULTS,
                        help="RESULTS.md file to update (default benchmarks/RESULTS.md)")
    parser.add_argument("--figures-dir", type=Path, default=BENCH_DIR / "figures")
    args = parser.parse_args(argv)
    args.output = args.output.resolve()
    return args


def main(argv: list[str] | None = None) -> dict[str, Any]:
    """Run the load test, write the figure and the RESULTS.md section; return the numbers."""
    raw_argv = list(sys.argv[1:] if argv is None else argv)
    args = parse_args(raw_argv)
    info = run(args)
    fig_path = figure(info, args.figures_dir / "load_scan_rss.png")
    markdown = render(info, raw_argv, fig_path, args.output)
    _results.write_section(SECTION, markdown, args.output)
    info["markdown"] = markdown
    info["figure"] = fig_path
    print(markdown)
    return info


if __name__ == "__main__":
    main()
