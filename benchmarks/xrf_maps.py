"""XRF element maps at low dose: every method against the true maps, two kinds of sample.

For each sample and each dwell ratio r (long dwell / short dwell; the long dwell is the
full dose) a 64 x 64 map of seven elements is drawn from the counting model of the
simulated microprobe (4 detector elements, 10 keV, 1e9 photons/s): the same physics
the simulated devices record, drawn at once so that many maps fit in one run. Each map
is analysed by the functions the live XRF recipe runs:

* raw: the linear fit of reference spectra, normalised by I0 (clipped at 0);
* median: 3 x 3 median filter of the raw maps;
* BM3D: through the Anscombe transform, the noise model from the counting statistics
  of the fit (``lowdose_bluesky.xrf.baselines.bm3d_anscombe_maps``);
* Noise2Noise across the detector elements (blind), supervised by two long-dwell
  reference rows, the hybrid (Noise2Noise fine-tuned on those rows), Noise2Self of the
  spectral cube (blind) and the same pansharpened with the transmission image; each
  with the live recipe's training budget;
* long dwell: the raw fit of a map at the full dose (the quality to reach).

SSIM and PSNR of every element against the true map (data range of the true map);
the dose factor at equal SSIM to the long-dwell map for the trace elements (Fe, Cu,
Zn), interpolated in log(r) between the measured ratios; training seconds; a figure of
the Fe and Zn maps per method at r = 20.

The field of cells (seed 3) is the sample the methods were developed on; the tissue
section (seed 11) is held out: it was first analysed by this benchmark.

Usage: ``python benchmarks/xrf_maps.py [--ratios 5 10 20 40] [--seconds 20]``
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path
from typing import Any

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt
import numpy as np
from _results import machine_info, write_section
from skimage.metrics import peak_signal_noise_ratio, structural_similarity

from lowdose_bluesky.recipes.xrf.hybrid import hybrid_maps
from lowdose_bluesky.recipes.xrf.noise2noise import half_maps, noise2noise_maps
from lowdose_bluesky.recipes.xrf.noise2self import SpectralBinning, noise2self_maps
from lowdose_bluesky.recipes.xrf.supervised import supervised_maps
from lowdose_bluesky.xrf import LinearFit, SpectralModel, cell_field, tissue_section
from lowdose_bluesky.xrf.baselines import bm3d_anscombe_maps, median_maps
from lowdose_bluesky.xrf.counting import XRFCounting

ELEMENTS = ("P", "S", "K", "Ca", "Fe", "Cu", "Zn")
TRACE = ("Fe", "Cu", "Zn")
REFERENCE_ROWS = (16, 48)
METHODS = ("raw", "median", "BM3D", "Noise2Noise", "supervised", "hybrid", "Noise2Self",
           "Noise2Self+pan")
LEARNED = ("Noise2Noise", "supervised", "hybrid", "Noise2Self", "Noise2Self+pan")
SAMPLES = {"cells": (cell_field, 3, "field of cells (developed on)"),
           "tissue": (tissue_section, 11, "tissue section (held out)")}
FIGURES = Path(__file__).parent / "figures"


def _scores(maps: np.ndarray, truth: dict[str, np.ndarray]) -> dict[str, tuple[float, float]]:
    out = {}
    for k, element in enumerate(ELEMENTS):
        t = truth[element]
        rng = float(t.max() - t.min())
        out[element] = (structural_similarity(maps[k], t, data_range=rng),
                        peak_signal_noise_ratio(t, maps[k], data_range=rng))
    return out


def _analyse(draw: dict[str, np.ndarray], long_maps: np.ndarray, fit: LinearFit,
             cube_fit: LinearFit, binning: SpectralBinning, efficiency: float,
             seconds: float) -> tuple[dict[str, np.ndarray], dict[str, float]]:
    """Every method's maps of one short-dwell draw, and each learned method's seconds."""
    photons = draw["i0"] / efficiency
    spectra = draw["spectra"].astype(np.float64)
    summed = spectra.sum(axis=2)
    shares = fit.maps(spectra.transpose(2, 0, 1, 3), photons[None], clip=False)
    shares = shares.transpose(1, 0, 2, 3)  # (detector elements, elements, H, W)
    live = list(range(shares.shape[0]))
    raw = fit.maps(summed, photons)
    out = {"raw": raw, "median": median_maps(raw)}
    times: dict[str, float] = {}
    t = time.perf_counter()
    out["BM3D"] = bm3d_anscombe_maps(summed, photons, fit)
    times["BM3D"] = time.perf_counter() - t
    t = time.perf_counter()
    out["Noise2Noise"], *_ = noise2noise_maps(shares, live, epochs=30, seed=0,
                                              max_seconds=seconds)
    times["Noise2Noise"] = time.perf_counter() - t
    t = time.perf_counter()
    rows = list(REFERENCE_ROWS)
    out["supervised"], _ = supervised_maps(half_maps(shares, live), long_maps[:, rows], rows,
                                           max_seconds=seconds)
    times["supervised"] = time.perf_counter() - t
    t = time.perf_counter()
    out["hybrid"], *_ = hybrid_maps(shares, live, long_maps[:, rows], rows,
                                    max_seconds=seconds)
    times["hybrid"] = time.perf_counter() - t
    cube = binning.apply(summed)
    for name, contrast in (("Noise2Self", None),
                           ("Noise2Self+pan", draw["transmission"] / photons)):
        t = time.perf_counter()
        out[name], _ = noise2self_maps(cube, lambda c: cube_fit.maps(c, photons),
                                       contrast=contrast, max_seconds=seconds)
        times[name] = time.perf_counter() - t
    return out, times


def _dose_factor(ratios: list[float], ssims: list[float], target: float,
                 extra_dose: float = 0.0) -> str:
    """Dose reduction at which SSIM falls to ``target`` (log-interpolated between ratios).

    ``extra_dose``: dose of the references as a fraction of the full dose (added to
    ``1 / r``).
    """
    def factor(r: float) -> float:
        return 1.0 / (1.0 / r + extra_dose)

    if ssims[0] < target:
        return f"< {factor(ratios[0]):.3g}"
    for i in range(len(ratios) - 1):
        (r0, s0), (r1, s1) = (ratios[i], ssims[i]), (ratios[i + 1], ssims[i + 1])
        if s1 < target:
            frac = (s0 - target) / (s0 - s1)
            return f"{factor(float(np.exp(np.log(r0) + frac * np.log(r1 / r0)))):.3g}"
    return f">= {factor(ratios[-1]):.3g}"


def _figure(sample: str, ratio: float, truth: dict[str, np.ndarray], long_maps: np.ndarray,
            maps: dict[str, np.ndarray], scores: dict[str, Any]) -> Path:
    columns = [("truth", None), ("long dwell", long_maps), *((m, maps[m]) for m in METHODS)]
    fig, axes = plt.subplots(2, len(columns), figsize=(2.0 * len(columns), 4.6))
    for row, element in enumerate(("Fe", "Zn")):
        k = ELEMENTS.index(element)
        vmax = float(np.percentile(truth[element], 99.7))
        for col, (name, m) in enumerate(columns):
            ax = axes[row, col]
            image = truth[element] if m is None else m[k]
            ax.imshow(image, cmap="magma", vmin=0, vmax=vmax)
            ax.set_xticks([])
            ax.set_yticks([])
            title = name if m is None else (
                f"{name}\nSSIM {scores[name][element][0]:.3f}")
            ax.set_title(title, fontsize=8)
        axes[row, 0].set_ylabel(element)
    fig.suptitle(f"{SAMPLES[sample][2]}: Fe and Zn maps at dwell ratio {ratio:g}",
                 fontsize=10)
    fig.tight_layout()
    FIGURES.mkdir(exist_ok=True)
    path = FIGURES / f"xrf_maps_{sample}.png"
    fig.savefig(path, dpi=90)
    plt.close(fig)
    return path


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--ratios", type=float, nargs="+", default=[5, 10, 20, 40])
    parser.add_argument("--long-dwell", type=float, default=0.2)
    parser.add_argument("--seconds", type=float, default=20.0)
    parser.add_argument("--samples", nargs="+", default=list(SAMPLES), choices=list(SAMPLES))
    parser.add_argument("--figure-ratio", type=float, default=20.0)
    args = parser.parse_args()
    model = SpectralModel(ELEMENTS, 10.0, bins=1024, bin_kev=0.012)
    fit = LinearFit(model.reference, model.components, ELEMENTS)
    binning = SpectralBinning.for_spectra(model.bins, model.bin_kev, model.energy_kev)
    cube_fit = LinearFit(binning.apply(model.reference), model.components, ELEMENTS)
    lines = [
        "## XRF maps at low dose: every method, dwell ratios 5-40 (`benchmarks/xrf_maps.py`)",
        "",
        f"`python benchmarks/xrf_maps.py --ratios {' '.join(f'{r:g}' for r in args.ratios)} "
        f"--seconds {args.seconds:g}`: 64x64 maps of {', '.join(ELEMENTS)}, 4 detector "
        f"elements, 10 keV, 1e9 photons/s; full dose = {args.long_dwell * 1000:g} ms "
        f"per pixel, short dwell = full / ratio. Learned methods: at most {args.seconds:g} "
        f"s of training each (the live recipe's default). Supervised: long-dwell rows "
        f"{list(REFERENCE_ROWS)} (their dose, {len(REFERENCE_ROWS)}/64 of the full dose, "
        "is counted in its dose factor, and in the hybrid's). Bold: the best SSIM of the "
        "ratio. SSIM / PSNR against the true maps.",
        "",
    ]
    for sample in args.samples:
        make, seed, label = SAMPLES[sample]
        truth = make((64, 64), ELEMENTS, seed=seed)
        counting = XRFCounting(model, truth, seed=seed + 100)
        long_draw = counting.draw_map(args.long_dwell)
        long_photons = long_draw["i0"] / counting.i0_efficiency
        long_sum = long_draw["spectra"].sum(axis=2).astype(np.float64)
        long_maps = fit.maps(long_sum, long_photons)
        long_unclipped = fit.maps(long_sum, long_photons, clip=False)
        long_scores = _scores(long_maps, truth)
        table: dict[float, dict[str, dict[str, tuple[float, float]]]] = {}
        seconds: dict[float, dict[str, float]] = {}
        for ratio in args.ratios:
            draw = counting.draw_map(args.long_dwell / ratio)
            maps, seconds[ratio] = _analyse(draw, long_unclipped, fit, cube_fit, binning,
                                            counting.i0_efficiency, args.seconds)
            table[ratio] = {m: _scores(maps[m], truth) for m in METHODS}
            print(sample, ratio, {m: round(table[ratio][m]["Fe"][0], 3) for m in METHODS},
                  flush=True)
            if ratio == args.figure_ratio:
                figure = _figure(sample, ratio, truth, long_maps, maps,
                                 {**table[ratio], "long dwell": long_scores})
        lines += [f"### {label}", "",
                  "SSIM per element (long dwell: "
                  + ", ".join(f"{e} {long_scores[e][0]:.3f}" for e in ELEMENTS) + ")", "",
                  "| ratio | method | " + " | ".join(ELEMENTS) + " |",
                  "| ---: | --- | " + " | ".join("---:" for _ in ELEMENTS) + " |"]
        for ratio in args.ratios:
            for m in METHODS:
                best = {e: max(table[ratio][x][e][0] for x in METHODS) for e in ELEMENTS}
                cells = [(f"**{table[ratio][m][e][0]:.3f}**"
                          if table[ratio][m][e][0] == best[e] else
                          f"{table[ratio][m][e][0]:.3f}") for e in ELEMENTS]
                lines.append(f"| {ratio:g} | {m} | " + " | ".join(cells) + " |")
        lines += ["", "PSNR (dB) of the trace elements (long dwell: "
                  + ", ".join(f"{e} {long_scores[e][1]:.1f}" for e in TRACE) + ")", "",
                  "| ratio | " + " | ".join(f"{m}" for m in METHODS) + " |",
                  "| ---: | " + " | ".join("---" for _ in METHODS) + " |"]
        for ratio in args.ratios:
            lines.append(f"| {ratio:g} | " + " | ".join(
                "/".join(f"{table[ratio][m][e][1]:.1f}" for e in TRACE) for m in METHODS)
                + " |")
        lines += ["", "(each cell: Fe/Cu/Zn)", "",
                  "Dose factor at equal SSIM to the long-dwell map (full dose / dose "
                  "used, references included):", "",
                  "| method | " + " | ".join(TRACE) + " |", "| --- | ---: | ---: | ---: |"]
        for m in METHODS:
            extra = len(REFERENCE_ROWS) / 64 if m in ("supervised", "hybrid") else 0.0
            lines.append(f"| {m} | " + " | ".join(
                _dose_factor(list(args.ratios), [table[r][m][e][0] for r in args.ratios],
                             long_scores[e][0], extra) for e in TRACE) + " |")
        lines += ["", "Seconds per map (training and inference; BM3D: 7 maps): " + "; ".join(
            f"{m} " + "/".join(f"{seconds[r][m]:.0f}" for r in args.ratios)
            for m in ("BM3D", *LEARNED)) + " (at ratios "
            + "/".join(f"{r:g}" for r in args.ratios) + ").", "",
            f"![Fe and Zn maps, {label}](figures/{figure.name})", ""]
    lines.append(machine_info())
    write_section("xrf_maps", "\n".join(lines))
    print("\n".join(lines))


if __name__ == "__main__":
    main()
