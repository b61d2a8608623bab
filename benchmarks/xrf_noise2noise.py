"""XRF element maps, raw fit against Noise2Noise across detector-element halves.

A blind (no reference rows) 64x64 fly map of the default field of cells at a short
dwell, analysed live by the XRF recipe; SSIM and PSNR of each element's map against
the true map, raw (fitted) and enhanced; the time from the last pixel to the stored
result. The full XRF benchmark (dwell ratios, median and BM3D baselines, the supervised
and spectral Noise2Self methods) is still to come.

Usage: ``python benchmarks/xrf_noise2noise.py [--dwell 0.01] [--seed 3]``
"""

from __future__ import annotations

import argparse
import tempfile
import time

from _results import machine_info, write_section
from bluesky import RunEngine
from skimage.metrics import peak_signal_noise_ratio, structural_similarity

from lowdose_bluesky import results
from lowdose_bluesky.callbacks import LiveEnhancer
from lowdose_bluesky.devices.sim.xrf import make_sim_xrf
from lowdose_bluesky.plans import lowdose_xrf_plan
from lowdose_bluesky.storage import close, connect, subscribe_writer


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--dwell", type=float, default=0.01)
    parser.add_argument("--seed", type=int, default=3)
    parser.add_argument("--max-seconds", type=float, default=30.0)
    args = parser.parse_args()
    root = tempfile.mkdtemp(prefix="lowdose_xrf_")
    client = connect(directory=f"{root}/tiled", readable_storage=[root])
    RE = RunEngine({}, call_returns_result=False)
    subscribe_writer(RE, client)
    sim = make_sim_xrf(seed=args.seed, data_dir=f"{root}/frames")
    live = LiveEnhancer(client, process=False, progress=False, recipe_options={
        "xrf": {"epochs": 30, "max_seconds": args.max_seconds}})
    RE.subscribe(live)
    t0 = time.perf_counter()
    (uid,) = RE(lowdose_xrf_plan(**sim.devices, dwell=args.dwell, long_dwell=20 * args.dwell,
                                 reference_rows=(), fly=True))
    scan_s = time.perf_counter() - t0
    live.wait()
    after = time.perf_counter() - t0 - scan_s
    res = results(client, uid)
    rows = []
    for k, element in enumerate(sim.elements):
        truth = sim.truth[element]
        rng = float(truth.max() - truth.min())
        scores = [(structural_similarity(m[k], truth, data_range=rng),
                   peak_signal_noise_ratio(truth, m[k], data_range=rng))
                  for m in (res.maps_raw, res.maps)]
        rows.append(f"| {element} | {scores[0][0]:.3f} | {scores[1][0]:.3f} | "
                    f"{scores[0][1]:.1f} | {scores[1][1]:.1f} |")
    timings = res.metadata["timings"]
    lines = [
        "## XRF maps: Noise2Noise across detector elements (`benchmarks/xrf_noise2noise.py`)",
        "",
        f"`python benchmarks/xrf_noise2noise.py --dwell {args.dwell} --seed {args.seed} "
        f"--max-seconds {args.max_seconds}`: blind 64x64 fly map of the default cells "
        f"(seed {args.seed}), {args.dwell * 1000:g} ms dwell, 4 detector elements; maps by "
        "the linear fit of reference spectra, normalised by I0; enhanced by Noise2Noise "
        "across the two halves of the detector elements (30 epochs, at most "
        f"{args.max_seconds:g} s of training, after the last pixel).",
        "",
        "| element | SSIM raw | SSIM Noise2Noise | PSNR raw (dB) | PSNR Noise2Noise (dB) |",
        "| --- | ---: | ---: | ---: | ---: |",
        *rows,
        "",
        f"Scan {scan_s:.1f} s; result stored {after:.1f} s after the scan ended (training "
        f"{timings.get('training_s', 0):.1f} s); slowest line mapped "
        f"{timings['line_latency_max_s']:.2f} s after its last pixel. {machine_info()}",
    ]
    write_section("xrf_noise2noise", "\n".join(lines))
    print("\n".join(lines))
    live.close()
    close(client)


if __name__ == "__main__":
    main()
