"""Acquisition throughput: 361 projections of 512x512 against the simulated TXM.

Runs ``lowdose_tomo_plan`` (no exposure wait) with the TiledWriter subscribed to an
embedded Tiled server and reports frames/s of the rotation and per-frame overhead
against the same run without Tiled and against frame synthesis alone.

Usage: ``python benchmarks/acquisition.py [--size 512 256] [--projections 361]``
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

import numpy as np
from _results import machine_info, write_section
from bluesky import RunEngine

from lowdose_bluesky.devices.sim import make_sim_txm
from lowdose_bluesky.plans import lowdose_tomo_plan
from lowdose_bluesky.storage import DEFAULT_BATCH_SIZE, RAW, close, connect, subscribe_writer


def primary_rate(RE: RunEngine, txm, n: int) -> tuple[float, str]:
    """Run the plan; return rotation frames/s (first to last primary event) and the uid."""
    times: list[float] = []
    stream: dict[str, str] = {}

    def clock(name, doc):
        if name == "descriptor":
            stream[doc["uid"]] = doc["name"]
        elif name == "event" and stream[doc["descriptor"]] == "primary":
            times.append(time.perf_counter())

    token = RE.subscribe(clock)
    (uid,) = RE(lowdose_tomo_plan(txm.detector, txm.rotation, sample_x=txm.sample_x,
                                  shutter=txm.shutter, num_projections=n, num_darks=5,
                                  num_flats=5))
    RE.unsubscribe(token)
    return (len(times) - 1) / (times[-1] - times[0]), uid


def synthesis_rate(txm, n: int) -> float:
    """Frames/s of frame synthesis + HDF5 write alone (no RunEngine)."""
    det = txm.detector
    txm.shutter.set("open")
    det.exposure_time.put(2.0)
    det.stage()
    t0 = time.perf_counter()
    for angle in np.linspace(0, 180, n):
        txm.rotation.set(float(angle))
        det.trigger()
    rate = n / (time.perf_counter() - t0)
    list(det.collect_asset_docs())
    det.unstage()
    return rate


def measure(size: int, projections: int, work: Path) -> list[tuple[str, float, float]]:
    """Rows ``(configuration, frames/s, synthesis frames/s)`` for one frame size."""
    txm = make_sim_txm(detector_shape=(size, size), seed=0, data_dir=work / f"frames{size}")
    synth = synthesis_rate(txm, projections)
    RE = RunEngine({}, call_returns_result=False)
    bare, _ = primary_rate(RE, txm, projections)
    rows = [(f"{size}x{size}: frame synthesis + HDF5 write, no RunEngine", synth, synth),
            (f"{size}x{size}: RunEngine + HDF5, no Tiled", bare, synth)]
    client = connect(directory=work / f"tiled{size}", readable_storage=[work / f"frames{size}"])
    for batch in (DEFAULT_BATCH_SIZE, 10000):
        RE = RunEngine({}, call_returns_result=False)
        subscribe_writer(RE, client, batch_size=batch)
        rate, uid = primary_rate(RE, txm, projections)
        back = client[RAW][uid]["primary"][f"{txm.detector.name}_image"].read()
        assert back.shape == (projections, size, size)
        label = "default" if batch == DEFAULT_BATCH_SIZE else "end-of-run"
        rows.append((f"{size}x{size}: RunEngine + HDF5 + TiledWriter (batch_size={batch}, "
                     f"{label})", rate, synth))
    close(client)
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--size", type=int, nargs="+", default=[512, 256])
    parser.add_argument("--projections", type=int, default=361)
    args = parser.parse_args()
    work = Path(tempfile.mkdtemp(prefix="lowdose_bench_"))
    rows = [row for size in args.size for row in measure(size, args.projections, work)]
    sizes = " ".join(str(s) for s in args.size)
    lines = [
        "## Acquisition throughput (`benchmarks/acquisition.py`)",
        "",
        f"`python benchmarks/acquisition.py --size {sizes} --projections {args.projections}`: "
        "`lowdose_tomo_plan` against the simulated TXM (no exposure wait, exact Poisson noise, "
        "analytic projections of the spheres-in-cube phantom), "
        f"{args.projections} primary projections of uint16 frames; rate measured between the "
        "first and last primary event; read-back of the primary stream from Tiled checked "
        "for shape.",
        "",
        "| configuration | frames/s | ms/frame | overhead vs synthesis (ms/frame) |",
        "| --- | ---: | ---: | ---: |",
    ]
    for label, rate, synth in rows:
        overhead = 1000 / rate - 1000 / synth
        lines.append(f"| {label} | {rate:.0f} | {1000 / rate:.1f} | {overhead:+.1f} |")
    lines += ["", f"Goal: >= 100 frames/s at 512x512 with the TiledWriter subscribed. "
              f"{machine_info()}"]
    write_section("acquisition", "\n".join(lines))
    print("\n".join(lines))


if __name__ == "__main__":
    main()
