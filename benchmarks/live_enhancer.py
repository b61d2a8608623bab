"""Live analysis during a scan: RunEngine overhead, frame and result latency, quality.

361 projections of 256x256 against the simulated TXM with realistic exposure timing,
reference pairs at 30 and 120 deg, 15x dose ratio (Poisson counts), TiledWriter and
LiveEnhancer subscribed (the analysis in its own process unless ``--in-process``).
Reports the plan's wall time with and without the callback (the callback created just
before its first scan), how soon each frame's enhanced version is readable in Tiled
after its event once the first model exists, how long after the last frame the result
is stored, and the SSIM/PSNR of the raw and enhanced reconstructions against the
phantom. Writes the section ``live_enhancer_<method>`` of RESULTS.md.

Usage: ``python benchmarks/live_enhancer.py [--size 256] [--projections 361]
[--short 0.5] [--method supervised]``
"""

from __future__ import annotations

import argparse
import os
import tempfile
import time
from pathlib import Path

from _results import machine_info, write_section
from bluesky import RunEngine

from lowdose_bluesky.callbacks import LiveEnhancer
from lowdose_bluesky.devices.sim import make_sim_txm
from lowdose_bluesky.metrics import fine_detail, psnr, ssim
from lowdose_bluesky.plans import lowdose_tomo_plan
from lowdose_bluesky.storage import close, connect, results, subscribe_writer


def run_scan(txm, client, args, live: LiveEnhancer | None) -> tuple[str, float, float]:
    """Run the plan; return (uid, plan wall time, time of the last primary event)."""
    RE = RunEngine({}, call_returns_result=False)
    subscribe_writer(RE, client)
    last: dict[str, float] = {}
    names: dict[str, str] = {}

    def clock(name, doc):
        if name == "descriptor":
            names[doc["uid"]] = doc["name"]
        elif name == "event" and names[doc["descriptor"]] == "primary":
            last["t"] = time.perf_counter()

    RE.subscribe(clock)
    if live is not None:
        RE.subscribe(live)
    t0 = time.perf_counter()
    (uid,) = RE(lowdose_tomo_plan(
        txm.detector, txm.rotation, sample_x=txm.sample_x, shutter=txm.shutter,
        reference_angles=(30.0, 120.0), short_exposure=args.short,
        long_exposure=args.short * args.dose_ratio, num_projections=args.projections))
    return uid, time.perf_counter() - t0, last["t"]


def _first(frames: dict) -> str:
    t = frames.get("first_model_after_start_s")
    return "none" if t is None else f"{t:.1f} s"


def _lat(lat: dict | None) -> str:
    if not lat:
        return "no frame arrived after the first model"
    return f"{lat['median']:.2f} / {lat['p90']:.2f} / {lat['max']:.2f} s ({lat['frames']} frames)"


def _versions(md: dict) -> str:
    versions = md.get("model", {}).get("versions") or []
    return "; ".join(f"v{v['version']} at {v['at_s']:.0f} s: "
                     f"{v['val_psnr'] or float('nan'):.2f} dB, "
                     f"{v['frames_first']} / {v['frames_again']}" for v in versions) or "none"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--size", type=int, default=256)
    parser.add_argument("--projections", type=int, default=361)
    parser.add_argument("--short", type=float, default=0.05, help="short exposure (s)")
    parser.add_argument("--dose-ratio", type=float, default=15.0)
    parser.add_argument("--flux", type=float, default=2000.0, help="counts/pixel/s")
    parser.add_argument("--epochs", type=int, default=30)
    parser.add_argument("--training-budget", default="scan",
                        help="'scan' (default), seconds, or 'none'")
    parser.add_argument("--min-training-s", type=float, default=60.0,
                        help="least training seconds under --training-budget scan")
    parser.add_argument("--method", default="auto", help="LiveEnhancer method (default auto)")
    parser.add_argument("--n2i-seconds", type=float, default=40.0,
                        help="Noise2Inverse training seconds after the scan")
    parser.add_argument("--in-process", action="store_true",
                        help="LiveEnhancer(process=False): the analysis on a thread")
    args = parser.parse_args()
    budget = {"scan": "scan", "none": None}.get(args.training_budget)
    if budget is None and args.training_budget != "none":
        budget = float(args.training_budget)
    load_before = os.getloadavg()[0]
    work = Path(tempfile.mkdtemp(prefix="lowdose_live_"))
    txm = make_sim_txm(detector_shape=(args.size, args.size), seed=0, flux=args.flux,
                       data_dir=work / "frames", realistic_timing=True)
    client = connect(directory=work / "tiled", readable_storage=[work / "frames"])

    _, t_without, _ = run_scan(txm, client, args, None)
    live = LiveEnhancer(client, process=not args.in_process, method=args.method,
                        epochs=args.epochs,
                        training_budget=budget, min_training_s=args.min_training_s,
                        n2i_options={"max_seconds": args.n2i_seconds}, progress=False)
    uid, t_with, t_last = run_scan(txm, client, args, live)
    live.wait(timeout=3600)
    t_stored = time.perf_counter()
    res = results(client, uid)
    md = res.metadata
    truth = txm.phantom
    mu = txm.optics.mu
    rec, rec_raw = res.reconstruction / mu, res.reconstruction_raw / mu
    rng = float(truth.max() - truth.min())
    q = {name: (ssim(v, truth, data_range=rng), psnr(v, truth, data_range=rng),
                fine_detail(v, truth))
         for name, v in (("raw", rec_raw), ("enhanced", rec))}
    close(client)
    live.close()

    ratio = t_with / t_without
    latency = t_stored - t_last
    gain = q["enhanced"][0] - q["raw"][0]
    tm = md["timings"]
    frames = md.get("frames", {})
    lat = frames.get("latency_after_first_model_s")
    lines = [
        f"## Live analysis during the scan, method {md.get('method')}, "
        f"{'in-process thread' if args.in_process else 'analysis process'} "
        "(`benchmarks/live_enhancer.py`)",
        "",
        f"`python benchmarks/live_enhancer.py --size {args.size} --projections "
        f"{args.projections} --short {args.short} --dose-ratio {args.dose_ratio} --flux "
        f"{args.flux} --epochs {args.epochs} --training-budget {args.training_budget} "
        f"--min-training-s {args.min_training_s:g} --method {args.method} --n2i-seconds "
        f"{args.n2i_seconds:g}{' --in-process' if args.in_process else ''}`: "
        "simulated TXM with realistic exposure "
        f"timing, {args.projections} projections of {args.size}x{args.size}, reference pairs "
        f"at 30 and 120 deg, long = {args.dose_ratio:g} x short exposure (Poisson counts, "
        f"{args.flux * args.short:.0f} open-beam counts per pixel at the short exposure), "
        f"TiledWriter + LiveEnhancer subscribed; method run: `{md.get('method')}`; gates: "
        + ", ".join(f"{k} {'used' if g.get('use_model') else 'not used'}"
                    for k, g in (md.get("gates") or {}).items()) + ".",
        "",
        "| quantity | value | goal |",
        "| --- | ---: | --- |",
        f"| plan wall time without / with LiveEnhancer (its first scan) | {t_without:.1f} s / "
        f"{t_with:.1f} s (x{ratio:.2f}) | <= x1.05 {'met' if ratio <= 1.05 else 'NOT met'} |",
        f"| first model after the start document | {_first(frames)} | |",
        f"| enhanced frame readable in Tiled after its event, once the first model exists "
        f"(median / p90 / max) | {_lat(lat)} | median <= 2 s "
        f"{'met' if lat and lat['median'] <= 2 else 'NOT met'} |",
        f"| frames readable when the stop document was handled | "
        f"{frames.get('enhanced_before_stop', 0)} of "
        f"{args.projections} | |",
        f"| model versions (validation PSNR, frames enhanced first / again) | "
        f"{_versions(md)} | |",
        f"| result stored after the last frame | {latency:.1f} s | <= 20 s "
        f"{'met' if latency <= 20 else 'NOT met'} |",
        f"| training / enhancement / after the scan: enhancement, reconstruction | "
        f"{tm.get('training_s', 0):.1f} s / {tm.get('enhancement_s', 0):.1f} s / "
        f"{tm.get('final_enhancement_s', 0):.1f} s, {tm.get('reconstruction_s', 0):.1f} s | |",
        f"| Noise2Inverse split reconstructions / training / inference | "
        f"{tm.get('noise2inverse_split_reconstruction_s', 0):.1f} s / "
        f"{tm.get('noise2inverse_training_s', 0):.1f} s / "
        f"{tm.get('noise2inverse_inference_s', 0):.1f} s | |",
        f"| SSIM to phantom, raw reconstruction | {q['raw'][0]:.3f} | |",
        f"| SSIM to phantom, enhanced reconstruction | {q['enhanced'][0]:.3f} "
        f"(+{gain:.3f}) | >= raw + 0.2 {'met' if gain >= 0.2 else 'NOT met'} |",
        f"| PSNR to phantom, raw / enhanced | {q['raw'][1]:.2f} / {q['enhanced'][1]:.2f} dB | |",
        f"| fine detail (band-pass correlation), raw / enhanced | {q['raw'][2]:.3f} / "
        f"{q['enhanced'][2]:.3f} | enhanced >= raw "
        f"{'met' if q['enhanced'][2] >= q['raw'][2] else 'NOT met'} |",
        "",
        f"Training epochs run: {len(md['model'].get('history', []))} (stopped: "
        f"{md['model'].get('config', {}).get('stopped')}, training budget "
        f"{args.training_budget!r}). SSIM/PSNR with "
        f"data_range = {rng:g} (phantom values), reconstructions divided by mu. "
        f"Load average before the run: {load_before:.1f}. "
        f"{machine_info()}",
    ]
    mode = "in_process" if args.in_process else "process"
    write_section(f"live_enhancer_{md.get('method')}_{mode}", "\n".join(lines))
    print("\n".join(lines))


if __name__ == "__main__":
    main()
