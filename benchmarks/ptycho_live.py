"""Live ptychography: how far the stitched phase image in Tiled lags the scan, timed.

Two runs in one RunEngine with the TiledWriter and the live engine (its own process)
subscribed, on the simulated ophyd-async setup:

1. the default scan shape on a larger object: a dense training strip, then the rest of
   the field at zero overlap. The model (the recipe's default, the linear retrieval)
   is fitted once the strip is in, so sparse patterns that arrive before it wait;
2. a sparse-only scan at overlap 0.5 on the real clock (each exposure takes its time)
   with ``pretrained=`` the first run's model: every pattern is inferred as it arrives.

For every sparse pattern: the seconds from its event document to the write of the
stitched image that holds it into Tiled (the recipe publishes at most every 0.5 s),
separately for patterns that arrived with a model ready and for those that waited for
one; the analysis's own inference rate; and the phase SSIM of the stored image
against the true object.

Usage: ``python benchmarks/ptycho_live.py [--exposure 0.05]``
"""

from __future__ import annotations

import argparse
import tempfile
import time

import numpy as np
from _results import machine_info, write_section
from bluesky import RunEngine

from lowdose_bluesky import results
from lowdose_bluesky.callbacks import LiveEnhancer
from lowdose_bluesky.devices.sim.ptycho import make_sim_ptycho
from lowdose_bluesky.plans import lowdose_ptycho_plan
from lowdose_bluesky.ptycho import phase_scores
from lowdose_bluesky.ptycho import test_object as etched_object
from lowdose_bluesky.storage import close, connect, subscribe_writer

OBJECT = 320  # pixels of 0.05 um: a 16 um object, 64 x 64 patterns
FIELD = (0.0, 0.0, 12.8, 12.8)


def run(RE: RunEngine, live: LiveEnhancer, client, sim, **plan) -> tuple[str, float, dict]:
    """One scan: its uid, the scan's seconds and the stored result."""
    t0 = time.perf_counter()
    (uid,) = RE(lowdose_ptycho_plan(**sim.devices, field=FIELD, **plan))
    scan_s = time.perf_counter() - t0
    result_uid = live.wait(timeout=600)
    return result_uid, scan_s, results(client, uid)


def row(name: str, scan_s: float, res, truth: np.ndarray) -> str:
    md = res.metadata
    t = md["timings"]

    def s(value: float | None) -> str:
        return "-" if value is None else f"{value:.2f}"

    scores = phase_scores(res.phase, truth)
    return (f"| {name} | {md['patterns']['train']} / {md['patterns']['sparse']} | "
            f"{scan_s:.1f} | {t['patterns_with_model_ready']} | "
            f"{s(t['in_tiled_after_pattern_median_s'])} / "
            f"{s(t['in_tiled_after_pattern_max_s'])} | "
            f"{s(t['in_tiled_after_waiting_for_the_model_max_s'])} | "
            f"{md.get('model', {}).get('seconds', 0):.1f} | "
            f"{t['patterns_per_s'] or 0:.0f} | {scores['ssim']:.3f} |")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--exposure", type=float, default=0.05,
                        help="seconds per pattern of the real-clock sparse run")
    args = parser.parse_args()
    root = tempfile.mkdtemp(prefix="lowdose_ptycho_live_")
    client = connect(directory=f"{root}/tiled", readable_storage=[root])
    obj = etched_object((OBJECT, OBJECT), seed=11)
    truth = np.angle(obj)
    live = LiveEnhancer(client, process=True, progress=False)
    if not live.wait_ready(300):
        raise RuntimeError("the analysis did not start within 300 s")
    RE = RunEngine({}, call_returns_result=False)
    subscribe_writer(RE, client)
    RE.subscribe(live)
    sim = make_sim_ptycho(obj, seed=1, data_dir=f"{root}/frames-dense")
    trained, scan1, res1 = run(RE, live, client, sim, train_field=(0.0, 0.0, 3.2, 12.8))
    sim2 = make_sim_ptycho(obj, seed=2, data_dir=f"{root}/frames-sparse",
                           realistic_timing=True)
    _, scan2, res2 = run(RE, live, client, sim2, train_field=None, sparse_step=0.6,
                         exposure=args.exposure, pretrained=trained)
    live.close()
    table = [row("1: dense strip, then zero overlap", scan1, res1, truth),
             row("2: sparse only, pretrained, real clock", scan2, res2, truth)]
    close(client)
    lines = [
        "## Live ptychography: the stitched image in Tiled behind the scan "
        "(`benchmarks/ptycho_live.py`)",
        "",
        f"`python benchmarks/ptycho_live.py --exposure {args.exposure:g}`: a {OBJECT}x{OBJECT} "
        "etched object (seed 11), 64x64 patterns, 1e5 photons per pattern at the plan's "
        f"10 ms; field {FIELD[2]:g} x {FIELD[3]:g} um. RunEngine with the TiledWriter and the "
        "live engine (its own process). Run 1: dense strip (x 0-3.2 um, step 0.2 um), "
        "then the rest at zero overlap (step 1.2 um), simulated clock; the linear retrieval "
        "is fitted once the strip is in. Run 2: sparse only (step 0.6 um, overlap 0.5), "
        f"{args.exposure * 1000:g} ms exposures on the real clock, pretrained= run 1's "
        "model. Lag: from a pattern's event document to the end of the Tiled write of the "
        "stitched image that holds it (published at most every 0.5 s). Phase SSIM of the "
        "stored image against the true object where stitched.",
        "",
        "| run | patterns dense / sparse | scan (s) | patterns with a model ready | "
        "in Tiled after the pattern, median / slowest (s) | slowest of those that waited "
        "for the model (s) | model fit (s) | inference (patterns/s) | phase SSIM |",
        "| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |",
        *table,
        "",
        machine_info(),
    ]
    write_section("ptycho_live", "\n".join(lines))
    print("\n".join(lines))


if __name__ == "__main__":
    main()
