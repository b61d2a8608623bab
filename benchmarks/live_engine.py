"""The live engine in its own process: RunEngine overhead, memory, exits and crashes.

Four parts (``--parts``, all by default), each a section of ``benchmarks/RESULTS.md``:

``overhead``  plan wall time with and without ``LiveEnhancer`` on 91 projections of
              48x64 against the simulated TXM with no exposure wait, including the
              first scan after subscribing (a fresh analysis process each time), for the
              analysis process (default) and the in-process thread (``process=False``).
``load``      1801 projections of 256x256 (realistic exposure timing): RSS of the
              RunEngine's process and of the analysis process, sampled every 0.5 s.
``exit``      a script that ends while its analysis runs, tried ``--exit-tries`` times:
              exit status, and what it says about the unfinished run.
``kill``      the analysis process killed (SIGKILL) mid-training and mid-enhancement:
              the scan, the stored failure, the next run.

Usage: ``python benchmarks/live_engine.py [--parts overhead,load,exit,kill]``
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

from _results import machine_info, write_section
from bluesky import RunEngine

from lowdose_bluesky.callbacks import LiveEnhancer
from lowdose_bluesky.devices.sim import make_sim_txm
from lowdose_bluesky.plans import lowdose_tomo_plan
from lowdose_bluesky.storage import close, connect, results, subscribe_writer

REPO = Path(__file__).resolve().parents[1]
PAGE = os.sysconf("SC_PAGE_SIZE")


def rss_mib(pid: int | str = "self") -> float:
    """Resident set size of a process (MiB), from ``/proc/<pid>/statm``."""
    try:
        return int(Path(f"/proc/{pid}/statm").read_text().split()[1]) * PAGE / 2**20
    except (OSError, IndexError):
        return float("nan")


def scan(RE: RunEngine, txm: Any, n: int, short: float = 0.05, ratio: float = 15.0,
         refs: tuple[float, ...] = (30.0, 120.0)) -> tuple[str, float]:
    """One ``lowdose_tomo_plan`` run; ``(uid, wall time)``."""
    t = time.perf_counter()
    (uid,) = RE(lowdose_tomo_plan(txm.detector, txm.rotation, sample_x=txm.sample_x,
                                  shutter=txm.shutter, num_projections=n,
                                  short_exposure=short, long_exposure=short * ratio,
                                  reference_angles=refs))
    return uid, time.perf_counter() - t


# -------------------------------------------------------------------- overhead
def overhead(args: argparse.Namespace, work: Path) -> str:
    txm = make_sim_txm(detector_shape=(48, 64), seed=0, flux=2000.0,
                       data_dir=work / "frames_overhead")
    client = connect(directory=work / "tiled_overhead",
                     readable_storage=[work / "frames_overhead"])
    RE = RunEngine({}, call_returns_result=False)
    subscribe_writer(RE, client)
    scan(RE, txm, 91)  # warm-up: plan, writer and file first-use costs
    base = [scan(RE, txm, 91)[1] for _ in range(args.reps)]
    t0 = statistics.median(base)
    rows = []
    for process, idle in ((True, False), (True, True), (False, False)):
        firsts, laters = [], []
        for _ in range(args.cycles):
            live = LiveEnhancer(client, process=process, idle=idle, progress=False,
                                n2i_options={"max_seconds": 5.0}, min_training_s=5.0)
            token = RE.subscribe(live)
            firsts.append(scan(RE, txm, 91)[1])  # the first scan after subscribing
            laters.extend(scan(RE, txm, 91)[1] for _ in range(2))  # while it is analysed
            RE.unsubscribe(token)
            live.wait(timeout=1200)
            live.close()
        name = ("in-process thread" if not process else
                "analysis process, SCHED_IDLE (idle=True)" if idle
                else "analysis process (default)")
        later = statistics.median(laters)
        met = max(firsts) / t0 <= 1.05 and later / t0 <= 1.05
        rows.append(
            f"| {name} | {', '.join(f'{t:.2f}' for t in firsts)} s "
            f"(x{statistics.median(firsts) / t0:.2f}) | {later:.2f} s "
            f"(x{later / t0:.2f}) | {'met' if met else 'NOT met'} |")
        print(rows[-1], flush=True)
    close(client)
    return "\n".join([
        "## RunEngine overhead of the live engine (`benchmarks/live_engine.py --parts overhead`)",
        "",
        f"91 projections of 48x64, simulated TXM with no exposure wait, TiledWriter "
        "subscribed; `LiveEnhancer(client, min_training_s=5, "
        "n2i_options={'max_seconds': 5})` "
        f"(method auto: hybrid) created just before its first scan, {args.cycles} times (a "
        f"new analysis process each time), then two more scans while the previous runs are "
        f"analysed. Without LiveEnhancer: median of {args.reps} scans "
        f"{t0:.2f} s ({', '.join(f'{t:.2f}' for t in base)} s).",
        "",
        "| mode | first scan after subscribing (each cycle) | later scans (median) | "
        "<= x1.05 |",
        "| --- | --- | --- | --- |",
        *rows,
    ])


# ------------------------------------------------------------------------ load
class Sampler(threading.Thread):
    """RSS of this process and of the analysis process every ``interval`` seconds."""

    def __init__(self, live: LiveEnhancer, interval: float = 0.5) -> None:
        super().__init__(daemon=True)
        self.live, self.interval = live, interval
        self.rows: list[tuple[float, float, float]] = []
        self._stop_event = threading.Event()

    def run(self) -> None:
        while not self._stop_event.wait(self.interval):
            self.rows.append((time.perf_counter(), rss_mib(), rss_mib(self.live.pid)))

    def stop(self) -> None:
        self._stop_event.set()
        self.join()


def load(args: argparse.Namespace, work: Path) -> str:
    size, n = args.load_size, args.load_projections
    txm = make_sim_txm(detector_shape=(size, size), seed=0, flux=2000.0,
                       data_dir=work / "frames_load", realistic_timing=True)
    client = connect(directory=work / "tiled_load", readable_storage=[work / "frames_load"])
    RE = RunEngine({}, call_returns_result=False)
    subscribe_writer(RE, client, batch_size=50)
    live = LiveEnhancer(client, progress=False, method="supervised")
    RE.subscribe(live)
    scan(RE, txm, 37)  # warm-up run: imports, first-use caches, the analysis process
    live.wait(timeout=1800)
    time.sleep(2)
    sampler = Sampler(live)
    rss0, analysis0 = rss_mib(), rss_mib(live.pid)
    sampler.start()
    uid, t_scan = scan(RE, txm, n)
    t_end = time.perf_counter()
    during = [r for r in sampler.rows if r[0] <= t_end]
    live.wait(timeout=3600)
    t_stored = time.perf_counter()
    time.sleep(2)
    sampler.stop()
    res = results(client, uid)
    md = res.metadata
    shape = res.node["enhanced"].shape
    peak_scan = max(r[1] for r in during)
    peak_all = max(r[1] for r in sampler.rows)
    peak_analysis = max(r[2] for r in sampler.rows)
    growth = peak_scan - rss0
    live.close()
    close(client)
    return "\n".join([
        "## Memory of the RunEngine's process during a long scan "
        "(`benchmarks/live_engine.py --parts load`)",
        "",
        f"`lowdose_tomo_plan` on the simulated TXM (realistic exposure timing), {n} projections "
        f"of {size}x{size}, short exposure 0.05 s, dose ratio 15, TiledWriter (batch_size=50) "
        "and `LiveEnhancer(client, method='supervised')` (the analysis in its own process, the "
        "default) subscribed; the embedded Tiled server runs in the RunEngine's process. RSS "
        "from `/proc/<pid>/statm` every 0.5 s, after a 37-projection warm-up run.",
        "",
        "| quantity | value | goal |",
        "| --- | ---: | --- |",
        f"| RunEngine process: RSS before the plan / peak during the scan | {rss0:.0f} / "
        f"{peak_scan:.0f} MiB (+{growth:.0f} MiB) | growth < 50 MB "
        f"{'met' if growth * 1.048576 < 50 else 'NOT met'} |",
        f"| RunEngine process: peak until the result is stored (the embedded server receives "
        f"the result) | {peak_all:.0f} MiB (+{peak_all - rss0:.0f} MiB) | |",
        f"| analysis process: RSS before / peak | {analysis0:.0f} / {peak_analysis:.0f} MiB | "
        "its own budget |",
        f"| scan wall time / result stored after the scan | {t_scan:.1f} s / "
        f"{t_stored - t_end:.1f} s | |",
        f"| enhanced frames readable when the stop document was handled / stored | "
        f"{md.get('frames', {}).get('enhanced_before_stop')} / {shape[0]} | |",
        "| frame latency after the first model (median / p90) | "
        + _latency(md) + " | |",
    ])


def _latency(md: dict[str, Any]) -> str:
    lat = md.get("frames", {}).get("latency_after_first_model_s")
    if not lat:
        return "no frame arrived after the first model"
    return f"{lat['median']:.2f} / {lat['p90']:.2f} s ({lat['frames']} frames)"


# ------------------------------------------------------------------------ exit
EXIT_SCRIPT = """
import sys, tempfile
from pathlib import Path
from bluesky import RunEngine
from lowdose_bluesky.callbacks import LiveEnhancer
from lowdose_bluesky.devices.sim import make_sim_txm
from lowdose_bluesky.plans import lowdose_tomo_plan
from lowdose_bluesky.storage import connect, subscribe_writer
work = Path(tempfile.mkdtemp())
client = connect(readable_storage=[work])
txm = make_sim_txm(detector_shape=(48, 64), seed=0, flux=2000.0, data_dir=work)
RE = RunEngine({}, call_returns_result=False)
subscribe_writer(RE, client)
live = LiveEnhancer(client, progress=False, training_budget=None, epochs=100,
                    train_options={"patience": None})
RE.subscribe(live)
(uid,) = RE(lowdose_tomo_plan(txm.detector, txm.rotation, sample_x=txm.sample_x,
                              shutter=txm.shutter, num_projections=91))
print("RUN", uid, flush=True)
"""


def exits(args: argparse.Namespace, work: Path) -> str:
    ok = named = 0
    codes: list[int] = []
    example = ""
    for _ in range(args.exit_tries):
        t = time.perf_counter()
        proc = subprocess.run([sys.executable, "-c", EXIT_SCRIPT], cwd=REPO, text=True,
                              capture_output=True, timeout=600)
        codes.append(proc.returncode)
        uid = next((line.split()[1] for line in proc.stdout.splitlines()
                    if line.startswith("RUN ")), None)
        said = [line for line in proc.stderr.splitlines() if "had not finished" in line]
        ok += proc.returncode == 0
        named += bool(uid and said and uid in said[0] and "lowdose-bluesky reprocess" in said[0])
        example = example or (said[0] if said else proc.stderr[-500:])
        print(f"exit {proc.returncode} in {time.perf_counter() - t:.1f} s; "
              f"{'named' if said else 'NOT named'}", flush=True)
    return "\n".join([
        "## A session that ends while its analysis runs "
        "(`benchmarks/live_engine.py --parts exit`)",
        "",
        "A script connects an embedded Tiled server, subscribes "
        "`LiveEnhancer(client, training_budget=None, epochs=100)`, runs 91 projections of "
        "48x64 and ends without `live.wait()`, while the analysis trains.",
        "",
        "| tries | exit status 0 | the unfinished run named, with the command to analyse it "
        "again | exit statuses seen |",
        "| ---: | ---: | ---: | --- |",
        f"| {args.exit_tries} | {ok} | {named} | {sorted(set(codes))} |",
        "",
        f"What the session prints (standard error): `{example.strip()}`",
    ])


# ------------------------------------------------------------------------ kill
def kill(args: argparse.Namespace, work: Path) -> str:
    txm = make_sim_txm(detector_shape=(64, 64), seed=0, flux=2000.0,
                       data_dir=work / "frames_kill", realistic_timing=True)
    client = connect(directory=work / "tiled_kill", readable_storage=[work / "frames_kill"])
    RE = RunEngine({}, call_returns_result=False)
    subscribe_writer(RE, client)
    lines = []
    for stage in ("training", "enhancement"):
        live = LiveEnhancer(client, progress=False, method="supervised",
                            training_budget=None if stage == "training" else 20.0,
                            epochs=500 if stage == "training" else 30)
        RE.subscribe(live)
        killed: dict[str, Any] = {}

        def killer(name: str, doc: dict[str, Any], live: LiveEnhancer = live,
                   stage: str = stage, killed: dict[str, Any] = killed) -> None:
            if name != "event" or killed:
                return
            run = live.last_run
            node = live.live_result(run) if run else None
            if node is None:
                return
            progress = client["results"][node].metadata.get("progress", {})
            ready = (progress.get("stage") == "training" if stage == "training"
                     else progress.get("enhanced_frames", 0) >= 5)
            if ready:
                killed.update(pid=live.pid, progress=dict(progress))
                os.kill(live.pid, signal.SIGKILL)

        token = RE.subscribe(killer)
        uid, t_scan = scan(RE, txm, 121, short=0.1)
        RE.unsubscribe(token)
        try:
            live.wait(timeout=120)
            said = "wait() returned (NOT expected)"
        except RuntimeError as exc:
            said = f"wait() raised: {exc}"
        res = results(client, uid)
        raw_frames = client["raw"][uid]["primary"]["det_image"].shape[0]
        new_pid = live.pid
        uid2, _ = scan(RE, txm, 37, short=0.1)
        live.wait(timeout=900)
        res2 = results(client, uid2)
        live.close()
        lines += [f"### killed mid-{stage}", "", "```",
                  f"analysis process pid {killed.get('pid')} killed with SIGKILL at progress "
                  f"{json.dumps(killed.get('progress'))}",
                  f"scan: exit_status {client['raw'][uid].metadata['stop']['exit_status']}, "
                  f"{raw_frames} of 121 primary frames stored, {t_scan:.1f} s",
                  said, f"stored result: status {res.status!r}, error {res.metadata['error']!r}",
                  f"new analysis process pid {new_pid}; next run: status {res2.status!r}",
                  "```", ""]
        print("\n".join(lines[-9:]), flush=True)
    close(client)
    return "\n".join([
        "## The analysis process killed (`benchmarks/live_engine.py --parts kill`)", "",
        "121 projections of 64x64, realistic exposure timing (0.1 s), `method='supervised'`; "
        "a RunEngine callback kills the analysis process once its live result shows training "
        "under way (stage 'training', no model yet) or at least 5 enhanced frames; then one "
        "more run.", "",
        *lines])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--parts", default="overhead,load,exit,kill")
    parser.add_argument("--reps", type=int, default=5, help="scans without LiveEnhancer")
    parser.add_argument("--cycles", type=int, default=3, help="fresh LiveEnhancers")
    parser.add_argument("--load-size", type=int, default=256)
    parser.add_argument("--load-projections", type=int, default=1801)
    parser.add_argument("--exit-tries", type=int, default=10)
    args = parser.parse_args()
    work = Path(tempfile.mkdtemp(prefix="lowdose_engine_"))
    parts = {"overhead": overhead, "load": load, "exit": exits, "kill": kill}
    for name in args.parts.split(","):
        t = time.perf_counter()
        body = parts[name](args, work)
        body += (f"\n\nPart run in {time.perf_counter() - t:.0f} s; load average at the end "
                 f"{os.getloadavg()[0]:.1f}. {machine_info()}")
        write_section(f"live_engine_{name}", body)
        print(body, flush=True)


if __name__ == "__main__":
    main()
