"""XRF maps live: a 64x64 scan analysed by the XRF recipe while it runs, timed.

A 64x64 map of the default field of cells, 4 detector elements, at a short dwell
(flown row by row, simulated clock) in a RunEngine with the TiledWriter and the live
engine subscribed: how long after its last pixel each line's maps were published, how
long after the last pixel the enhanced result was stored, and SSIM/PSNR of the stored
maps against the true ones. One run per method asked for (reference rows are taken
for the supervised method only). The quality of every method over dwell ratios and
samples is in ``benchmarks/xrf_maps.py``.

Usage: ``python benchmarks/xrf_live.py [--methods noise2noise supervised hybrid noise2self]``
"""

from __future__ import annotations

import argparse
import tempfile
import time

from _results import machine_info, write_section
from bluesky import RunEngine
from skimage.metrics import structural_similarity

from lowdose_bluesky import results
from lowdose_bluesky.callbacks import LiveEnhancer
from lowdose_bluesky.devices.sim.xrf import make_sim_xrf
from lowdose_bluesky.plans import lowdose_xrf_plan
from lowdose_bluesky.recipes.xrf.analysis import METHODS, NEEDS_REFERENCES
from lowdose_bluesky.storage import close, connect, subscribe_writer


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--dwell", type=float, default=0.01)
    parser.add_argument("--seed", type=int, default=3)
    parser.add_argument("--max-seconds", type=float, default=20.0)
    parser.add_argument("--in-process", action="store_true",
                        help="LiveEnhancer(process=False): the analysis on a thread")
    parser.add_argument("--methods", nargs="+", choices=METHODS,
                        default=["noise2noise", "supervised", "hybrid", "noise2self"])
    args = parser.parse_args()
    root = tempfile.mkdtemp(prefix="lowdose_xrf_")
    client = connect(directory=f"{root}/tiled", readable_storage=[root])
    table = []
    for method in args.methods:
        RE = RunEngine({}, call_returns_result=False)
        subscribe_writer(RE, client)
        sim = make_sim_xrf(seed=args.seed, data_dir=f"{root}/frames-{method}")
        live = LiveEnhancer(client, process=not args.in_process, progress=False,
                            recipe_options={
                                "xrf": {"method": method, "max_seconds": args.max_seconds}})
        t_ready = time.perf_counter()
        if not live.wait_ready(300):
            raise RuntimeError("the analysis did not start within 300 s")
        startup_s = time.perf_counter() - t_ready
        RE.subscribe(live)
        rows = (16, 48) if method in NEEDS_REFERENCES else ()
        t0 = time.perf_counter()
        (uid,) = RE(lowdose_xrf_plan(**sim.devices, dwell=args.dwell,
                                     long_dwell=20 * args.dwell, reference_rows=rows,
                                     fly=True))
        scan_s = time.perf_counter() - t0
        live.wait()
        after = time.perf_counter() - t0 - scan_s
        res = results(client, uid)
        enhanced = res.maps_raw if method == "none" else res.maps
        scores = []
        for element in ("Fe", "Cu", "Zn"):
            k = sim.elements.index(element)
            truth = sim.truth[element]
            rng = float(truth.max() - truth.min())
            scores.append(f"{structural_similarity(res.maps_raw[k], truth, data_range=rng):.3f}"
                          f" -> {structural_similarity(enhanced[k], truth, data_range=rng):.3f}")
        timings = res.metadata["timings"]
        table.append(f"| {method} | {startup_s:.1f} | {scan_s:.1f} | "
                     f"{timings['line_latency_median_s']:.2f} / "
                     f"{timings['line_latency_max_s']:.2f} | "
                     f"{timings.get('training_s', 0):.1f} | {after:.1f} | "
                     + " | ".join(scores) + " |")
        live.close()
    lines = [
        "## XRF maps live: line latency and time to the result (`benchmarks/xrf_live.py`)",
        "",
        f"`python benchmarks/xrf_live.py --dwell {args.dwell} --seed {args.seed} "
        f"--max-seconds {args.max_seconds:g}{' --in-process' if args.in_process else ''}`: "
        f"64x64 fly map of the default cells (seed {args.seed}), {args.dwell * 1000:g} ms "
        "dwell, 4 detector elements, in a RunEngine with the TiledWriter and the live engine "
        f"({'in-process' if args.in_process else 'its own process'}) subscribed; maps "
        "by the linear fit, enhanced after the last pixel (at most "
        f"{args.max_seconds:g} s of training). The runs of the methods that need references "
        f"({', '.join(NEEDS_REFERENCES)}) also take rows 16 and 48 at a 20x longer dwell. "
        "Each scan starts once the analysis has started (`LiveEnhancer.wait_ready()`, "
        "as a session does once): the start-up column.",
        "",
        "| method | analysis start-up (s) | scan (s) | line published after its last pixel, "
        "median / slowest (s) | training (s) | result stored after the scan (s) | "
        "SSIM Fe raw -> enhanced | Cu | Zn |",
        "| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |",
        *table,
        "",
        machine_info(),
    ]
    write_section("xrf_live", "\n".join(lines))
    print("\n".join(lines))
    close(client)


if __name__ == "__main__":
    main()
