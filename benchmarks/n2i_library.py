"""Noise2Inverse: auto-denoise's implementation against this package's, at equal wall time.

Same sub-reconstructions (K = 2 interleaved halves, numba FBP, Parzen), same samples and
counting noise as ``benchmarks/self_supervised.py``. auto-denoise (``autoden`` 3.0.0,
MIT): ``N2N`` with the ``"X:1"`` strategy (Noise2Inverse), its U-Net, trained on whole
slices for as many epochs as fit the time budget (measured with one epoch first). This
package: :func:`lowdose_bluesky.recipes.tomography.methods.noise2inverse_stage` (2.5-D U-Net on
crops, cosine schedule, held-out gate) with the same budget.

Run: ``python benchmarks/n2i_library.py`` (about 8 minutes on 2 CPU cores).
"""

from __future__ import annotations

import argparse
import contextlib
import io
import os
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).parent))
from _results import machine_info, write_section
from self_supervised import Scan, score

from lowdose_bluesky.model import set_cpu_threads
from lowdose_bluesky.recipes.tomography.methods import noise2inverse_stage
from lowdose_bluesky.recon import normalize, split_reconstructions


def autoden_n2i(subs: np.ndarray, budget: float, seed: int) -> tuple[np.ndarray, int, float]:
    """auto-denoise Noise2Inverse on ``(K, Z, Y, X)``; returns (volume, epochs, seconds)."""
    import autoden as ad
    import torch

    torch.manual_seed(seed)
    quiet = io.StringIO()
    t = time.perf_counter()
    with contextlib.redirect_stdout(quiet), contextlib.redirect_stderr(quiet):
        model = ad.N2N(model=ad.NetworkParamsUNet(n_levels=2, n_features=16), device="cpu",
                       verbose=False)
        inp, tgt, mask = model.prepare_data(subs, strategy="X:1")
        t1 = time.perf_counter()
        model.train(inp, tgt, mask, epochs=1)
        per_epoch = time.perf_counter() - t1
        epochs = max(1, int((budget - (time.perf_counter() - t)) / per_epoch))
        model.train(inp, tgt, mask, epochs=epochs)
        out = model.infer(inp)
    return np.asarray(out, dtype=np.float32), epochs + 1, time.perf_counter() - t


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--size", type=int, nargs=2, default=[48, 128])
    ap.add_argument("--projections", type=int, default=181)
    ap.add_argument("--samples", nargs="+", default=["spheres_in_cube", "foam"])
    ap.add_argument("--ratio", type=float, default=15.0)
    ap.add_argument("--budget", type=float, default=40.0)
    args = ap.parse_args()
    set_cpu_threads(os.cpu_count() or 1)
    rows = []
    for k, sample in enumerate(args.samples):
        scan = Scan(sample, tuple(args.size), args.projections, 1500.0, seed=k)
        rng = np.random.default_rng(1000 + k)
        short = 1500.0 / args.ratio
        counts, flats, darks = scan.frames(short, scan.p, rng)
        li = scan.line_integrals(normalize(counts, flats.mean(0), darks.mean(0)), short)
        subs = split_reconstructions(li, scan.angles, 2, center=scan.center)
        raw = score(subs.mean(0), scan.truth)
        vol, epochs, secs = autoden_n2i(subs, args.budget, seed=k)
        lib = score(vol, scan.truth)
        t = time.perf_counter()
        own, info, _ = noise2inverse_stage(li, scan.angles, scan.center, progress=False,
                                           options={"max_seconds": args.budget, "seed": k})
        own_s = time.perf_counter() - t
        mine = score(own, scan.truth)
        rows.append((sample, raw, lib, epochs, secs, mine, info["gate"]["steps"], own_s))
        print(sample, raw["ssim"], lib["ssim"], mine["ssim"], flush=True)
    lines = ["## Noise2Inverse: auto-denoise against this package (`benchmarks/n2i_library.py`)",
             "", f"`python benchmarks/n2i_library.py` at ratio {args.ratio:g}, frames "
             f"{args.size[0]}x{args.size[1]}, {args.projections} projections, budget "
             f"{args.budget:g} s each (same sub-reconstructions). Cells: SSIM / PSNR dB / fine "
             "detail against the true volume.", "",
             "| sample | raw (mean of halves) | auto-denoise N2N X:1, U-Net | this package | "
             "auto-denoise epochs, s | this package steps, s |",
             "| --- | ---: | ---: | ---: | ---: | ---: |"]

    def cell(s: dict[str, float]) -> str:
        return f"{s['ssim']:.3f} / {s['psnr']:.2f} / {s['fine']:.3f}"

    for sample, raw, lib, epochs, secs, mine, steps, own_s in rows:
        lines.append(f"| {sample} | {cell(raw)} | {cell(lib)} | {cell(mine)} | {epochs}, "
                     f"{secs:.0f} | {steps}, {own_s:.0f} |")
    lines += ["", machine_info()]
    write_section("n2i_library", "\n".join(lines))
    print("\n".join(lines))


if __name__ == "__main__":
    main()
