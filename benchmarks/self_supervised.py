"""Which enhancement wins: classical filters, the paper's network, Noise2Inverse, hybrid.

Samples: the paper's spheres-in-cube and fine-structure phantoms (foam with 1-3-voxel
walls, axons with 1-2-voxel sheaths), and ``cells`` kept aside (never looked at while
choosing the default; run last). Projections are exact line integrals (the detector
never sees a voxel grid). Noise: Poisson counts with darks (offset + read noise) and
flats, long exposure fixed, short = long / ratio; frames flat-field corrected exactly as
the live analysis does. Scores against the true volume.

Methods (all on the same noisy data):
raw, median 3x3, TV (Chambolle, sigma estimated), BM3D through the Anscombe transform
with the noise level estimated from the data (optionally BM4D on the stack), the paper's
supervised projection network (reference pairs at 30 and 120 deg), Noise2Inverse alone
(blind: no long exposure) and the hybrid (supervised, then Noise2Inverse).

Run: ``python benchmarks/self_supervised.py`` (about 75 minutes on 2 CPU cores).
Results go to ``benchmarks/self_supervised.json`` as they come, and to RESULTS.md,
with figures under ``benchmarks/figures/``.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np
from scipy.ndimage import maximum_filter, minimum_filter

sys.path.insert(0, str(Path(__file__).parent))
from _results import machine_info, write_section

from lowdose_bluesky.baselines import AnscombeBM3D, AnscombeBM4D, MedianFilter, TVDenoiser
from lowdose_bluesky.metrics import fine_detail, psnr, ssim
from lowdose_bluesky.model import set_cpu_threads, train_enhancer
from lowdose_bluesky.phantoms import phantom_from_name
from lowdose_bluesky.recipes.tomography.methods import (
    DEFAULT_WITH_REFERENCES,
    noise2inverse_stage,
)
from lowdose_bluesky.recon import minus_log, normalize, reconstruct

HERE = Path(__file__).parent
JSON = HERE / "self_supervised.json"
FIGURES = HERE / "figures"
REFERENCE_ANGLES = (30.0, 120.0)
DARK_OFFSET, READ_NOISE = 100.0, 2.0
N_CAL = 10  # darks and flats per exposure
METHODS = ["raw", "median", "tv", "bm3d", "bm4d", "supervised", "noise2inverse", "hybrid"]
LABELS = {"raw": "raw", "median": "median 3x3", "tv": "TV", "bm3d": "BM3D (Anscombe, est.)",
          "bm4d": "BM4D (Anscombe, est.)", "supervised": "supervised (paper)",
          "noise2inverse": "Noise2Inverse (blind)", "hybrid": "hybrid", "long": "long exposure"}


# ---------------------------------------------------------------------- scores
def segmentation(volume: np.ndarray, truth: np.ndarray) -> float:
    """Balanced accuracy of a threshold segmentation into the phantom's phases.

    Phases are the distinct values of the truth; thresholds are their midpoints;
    only interior voxels (3x3x3 neighbourhood of one phase) are scored.
    """
    values = np.unique(np.round(truth, 3))
    cuts = (values[:-1] + values[1:]) / 2
    labels_true = np.digitize(np.round(truth, 3), cuts)
    labels = np.digitize(volume, cuts)
    interior = maximum_filter(labels_true, 3) == minimum_filter(labels_true, 3)
    recalls = [float(np.mean(labels[interior & (labels_true == k)] == k))
               for k in range(values.size) if np.any(interior & (labels_true == k))]
    return float(np.mean(recalls))


def score(volume: np.ndarray, truth: np.ndarray) -> dict[str, float]:
    rng = float(truth.max() - truth.min())
    return {"ssim": ssim(volume, truth, data_range=rng), "psnr": psnr(volume, truth,
                                                                      data_range=rng),
            "fine": fine_detail(volume, truth), "seg": segmentation(volume, truth)}


# ------------------------------------------------------------------ simulation
class Scan:
    """Exact projections of one sample and its counting model."""

    def __init__(self, sample: str, shape: tuple[int, int], n_proj: int, long_counts: float,
                 seed: int) -> None:
        self.phantom = phantom_from_name(sample, shape, seed=seed)
        self.truth = self.phantom.volume()
        self.angles = np.linspace(0.0, 180.0, n_proj)
        self.p = self.phantom.project(self.angles).astype(np.float64)
        self.p_ref = self.phantom.project(REFERENCE_ANGLES).astype(np.float64)
        self.mu = -np.log(0.1) / max(self.p.max(), 1e-9)  # thickest ray transmits 10 %
        self.long_counts = long_counts
        self.center = (shape[1] - 1) / 2

    def frames(self, counts: float, p: np.ndarray, rng: np.random.Generator
               ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Counts of the sample, flats and darks at ``counts`` open-beam counts per pixel."""
        shape = p.shape[1:]

        def dark(n: int) -> np.ndarray:
            return DARK_OFFSET + READ_NOISE * rng.standard_normal((n, *shape))

        sample = rng.poisson(counts * np.exp(-self.mu * p)) + dark(p.shape[0])
        flats = rng.poisson(counts, (N_CAL, *shape)) + dark(N_CAL)
        return sample.astype(np.float32), flats.astype(np.float32), dark(N_CAL).astype(
            np.float32)

    def recon(self, transmission: np.ndarray, counts: float) -> np.ndarray:
        li = minus_log(transmission, floor=min(0.5, 0.5 / counts)) / self.mu
        return reconstruct(li, self.angles, center=self.center)

    def line_integrals(self, transmission: np.ndarray, counts: float) -> np.ndarray:
        return minus_log(transmission, floor=min(0.5, 0.5 / counts)) / self.mu


def run_config(scan: Scan, ratio: float, args: argparse.Namespace, seed: int
               ) -> dict[str, Any]:
    """Every method at one dose ratio; returns scores, seconds and central slices."""
    rng = np.random.default_rng(seed)
    short = scan.long_counts / ratio
    counts, flats, darks = scan.frames(short, scan.p, rng)
    flat, dark = flats.mean(0), darks.mean(0)
    t_raw = normalize(counts, flat, dark)
    out: dict[str, Any] = {"ratio": ratio, "short_counts": short, "scores": {}, "seconds": {},
                           "notes": {}}
    vols: dict[str, np.ndarray] = {}

    def keep(name: str, volume: np.ndarray, seconds: float) -> None:
        vols[name] = volume
        out["scores"][name] = score(volume, scan.truth)
        out["seconds"][name] = seconds
        s = out["scores"][name]
        print(f"  {scan.phantom.name} x{ratio:g} {name:14s} SSIM {s['ssim']:.3f} PSNR "
              f"{s['psnr']:.2f} fine {s['fine']:.3f} seg {s['seg']:.3f} ({seconds:.0f} s)",
              flush=True)

    t = time.perf_counter()
    keep("raw", scan.recon(t_raw, short), time.perf_counter() - t)
    for name, filt in (("median", MedianFilter(3)), ("tv", TVDenoiser())):
        t = time.perf_counter()
        keep(name, scan.recon(filt(t_raw), short), time.perf_counter() - t)
    t = time.perf_counter()
    bm3d = AnscombeBM3D(workers=args.workers)
    den = bm3d(np.clip(counts - dark, 0, None))
    keep("bm3d", scan.recon(den / np.maximum(flat - dark, 1e-6), short), time.perf_counter() - t)
    out["notes"]["bm3d_sigma"] = float(np.median(bm3d.last_sigmas))
    if ratio in args.bm4d_ratios:
        t = time.perf_counter()
        den = AnscombeBM4D()(np.clip(counts - dark, 0, None))
        keep("bm4d", scan.recon(den / np.maximum(flat - dark, 1e-6), short),
             time.perf_counter() - t)
    # the paper's supervised projection network on the reference pairs
    ref_short, ref_flats, ref_darks = scan.frames(short, scan.p_ref, rng)
    ref_long, long_flats, long_darks = scan.frames(scan.long_counts, scan.p_ref, rng)
    low = normalize(ref_short, ref_flats.mean(0), ref_darks.mean(0))
    high = normalize(ref_long, long_flats.mean(0), long_darks.mean(0))
    t = time.perf_counter()
    enhancer = train_enhancer(low, high, arch="unet", epochs=10_000, patience=None,
                              max_seconds=args.sup_budget, progress=False, seed=seed)
    cfg = enhancer.config
    used = cfg["best_val_psnr"] is None or cfg["best_val_psnr"] > cfg["baseline_val_psnr"]
    t_enh = enhancer(t_raw) if used else t_raw
    sup_train = time.perf_counter() - t
    keep("supervised", scan.recon(t_enh, short), sup_train)
    out["notes"]["supervised_gate"] = {"used": bool(used), "val_psnr": cfg["best_val_psnr"],
                                       "raw_val_psnr": cfg["baseline_val_psnr"]}
    # blind Noise2Inverse and the hybrid
    options = {"max_seconds": args.n2i_budget, "seed": seed}
    for name, src, fallback in (("noise2inverse", t_raw, vols["raw"]),
                                ("hybrid", t_enh, vols["supervised"])):
        t = time.perf_counter()
        li = scan.line_integrals(src, short)
        volume, info, _ = noise2inverse_stage(li, scan.angles, scan.center, options=options,
                                              progress=False, fallback=fallback)
        extra = sup_train if name == "hybrid" else 0.0
        keep(name, volume, time.perf_counter() - t + extra)
        out["notes"][f"{name}_gate"] = info["gate"]
    mid = scan.truth.shape[0] // 2
    out["slices"] = {k: v[mid] for k, v in vols.items()}
    return out


def long_reference(scan: Scan, seed: int) -> dict[str, Any]:
    rng = np.random.default_rng(seed)
    counts, flats, darks = scan.frames(scan.long_counts, scan.p, rng)
    vol = scan.recon(normalize(counts, flats.mean(0), darks.mean(0)), scan.long_counts)
    return {"scores": score(vol, scan.truth), "slice": vol[vol.shape[0] // 2]}


def paper_gaussian(args: argparse.Namespace) -> dict[str, Any]:
    """The paper's table at 30 % Gaussian noise (spheres in cube), scored as the paper does:
    against the reconstruction of the clean projections."""
    ph = phantom_from_name("spheres_in_cube", tuple(args.size), seed=0)
    angles = np.linspace(0.0, 180.0, args.projections)
    p = ph.project(angles).astype(np.float64)
    center = (args.size[1] - 1) / 2
    clean = reconstruct(p, angles, center=center)
    rng = np.random.default_rng(1)
    sigma = 0.30 * p.max()
    noisy = p + sigma * rng.standard_normal(p.shape)
    rngv = float(clean.max() - clean.min())
    rows: dict[str, Any] = {}

    def put(name: str, vol: np.ndarray) -> None:
        rows[name] = {"ssim": ssim(vol, clean, data_range=rngv),
                      "psnr": psnr(vol, clean, data_range=rngv)}
        print(f"  gaussian 30% {name:14s} SSIM {rows[name]['ssim']:.3f}", flush=True)

    put("raw", reconstruct(noisy, angles, center=center))
    ref = ph.project((0.0, 45.0)).astype(np.float64)
    ref_noisy = ref + sigma * rng.standard_normal(ref.shape)
    enhancer = train_enhancer(ref_noisy, ref, arch="unet", epochs=10_000, patience=None,
                              max_seconds=args.sup_budget, progress=False)
    enh = enhancer(noisy.astype(np.float32))
    put("supervised", reconstruct(enh, angles, center=center))
    for name, src in (("noise2inverse", noisy), ("hybrid", enh)):
        vol, _, _ = noise2inverse_stage(src.astype(np.float32), angles, center,
                                        options={"max_seconds": args.n2i_budget},
                                        progress=False)
        put(name, vol)
    return rows


def timing(args: argparse.Namespace) -> dict[str, Any]:
    """Noise2Inverse at 256x256 frames, 361 projections (spheres in cube, ratio 15)."""
    scan = Scan("spheres_in_cube", (256, 256), 361, args.long_counts, seed=0)
    rng = np.random.default_rng(0)
    short = args.long_counts / 15
    counts, flats, darks = scan.frames(short, scan.p, rng)
    t_raw = normalize(counts, flats.mean(0), darks.mean(0))
    li = scan.line_integrals(t_raw, short)
    raw = reconstruct(li, scan.angles, center=scan.center)
    t = time.perf_counter()
    vol, info, _ = noise2inverse_stage(li, scan.angles, scan.center,
                                       options={"max_seconds": args.n2i_budget},
                                       progress=False, fallback=raw)
    total = time.perf_counter() - t
    tm = info["timings"]
    slices = scan.truth.shape[0] * info["config"]["splits"]
    return {"total_s": total, **tm, "slices_per_s": slices / max(tm["inference_s"], 1e-9),
            "frames_equiv_per_s": 361 / max(tm["inference_s"], 1e-9),
            "raw": score(raw, scan.truth), "noise2inverse": score(vol, scan.truth),
            "gate": info["gate"]}


# --------------------------------------------------------------------- report
def figure(results: dict[str, Any], path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    samples = [s for s in results["samples"] if "15" in results["samples"][s]["configs"]]
    if not samples:
        return
    names = ["truth", "long", "raw", "tv", "bm3d", "supervised", "noise2inverse", "hybrid"]
    fig, axes = plt.subplots(len(samples), len(names), figsize=(2.2 * len(names),
                                                               2.4 * len(samples)))
    axes = np.atleast_2d(axes)
    for row, sample in enumerate(samples):
        res = results["samples"][sample]
        slices = {**res["configs"]["15"]["slices"], "truth": np.asarray(res["truth_slice"]),
                  "long": np.asarray(res["long"]["slice"])}
        vmax = float(np.max(slices["truth"]))
        for col, name in enumerate(names):
            ax = axes[row, col]
            ax.imshow(np.asarray(slices[name]), cmap="gray", vmin=0, vmax=vmax)
            ax.set_xticks([])
            ax.set_yticks([])
            if row == 0:
                ax.set_title(LABELS.get(name, name), fontsize=8)
            if col == 0:
                ax.set_ylabel(sample, fontsize=9)
    fig.suptitle("central slice, dose ratio 15", fontsize=10)
    fig.tight_layout()
    fig.savefig(path, dpi=90)
    plt.close(fig)


def report(results: dict[str, Any]) -> str:
    a = results["args"]
    lines = [
        "## Learned enhancement against the best classical filter "
        "(`benchmarks/self_supervised.py`)",
        "",
        f"`{results['command']}` (total {results.get('total_min', float('nan')):.0f} min; load "
        f"average {results.get('load_start', float('nan')):.1f} at start, "
        f"{results.get('load_end', float('nan')):.1f} at end). "
        f"Frames {a['size'][0]}x{a['size'][1]}, {a['projections']} projections over 0..180 deg, "
        f"long exposure {a['long_counts']:g} open-beam counts per pixel, short = long / ratio; "
        f"Poisson counts plus darks (offset {DARK_OFFSET:g}, read noise {READ_NOISE:g}), "
        f"{N_CAL} darks and flats per exposure; thickest ray transmits 10 %. Reconstruction: "
        "numba FBP, Parzen, known centre. Scores against the **true volume**: SSIM (mean 2-D "
        "over all slices, data range of the truth), PSNR, fine detail (correlation of "
        "band-passed volumes, DoG 0.7/2 voxels), seg (balanced accuracy of a threshold "
        "segmentation into the phantom's phases, interior voxels). Training budgets: "
        f"supervised {a['sup_budget']:g} s, Noise2Inverse {a['n2i_budget']:g} s (per stage). "
        "BM3D: Anscombe, sigma estimated per frame from the data, exact unbiased inverse; "
        f"BM4D (same, on the whole stack) only at ratios {a['bm4d_ratios']}. "
        f"`{results['holdout']}` was kept aside: not run until the default was chosen.",
        "",
    ]
    methods = [m for m in METHODS if any(m in c["scores"] for s in results["samples"].values()
                                         for c in s["configs"].values())]
    for sample, res in results["samples"].items():
        tag = " (held out)" if sample == results["holdout"] else ""
        long = res["long"]["scores"]
        lines += [f"### {sample}{tag}", "",
                  f"Long exposure: SSIM {long['ssim']:.3f}, PSNR {long['psnr']:.2f} dB, fine "
                  f"{long['fine']:.3f}, seg {long['seg']:.3f}.", "",
                  "| ratio | " + " | ".join(LABELS[m] for m in methods) + " |",
                  "| ---: | " + " | ".join("---:" for _ in methods) + " |"]
        for key, cfg in res["configs"].items():
            best = max(cfg["scores"][m]["ssim"] for m in methods if m in cfg["scores"])
            cells = []
            for m in methods:
                s = cfg["scores"].get(m)
                if s is None:
                    cells.append("-")
                    continue
                text = f"{s['ssim']:.3f} / {s['psnr']:.1f} / {s['fine']:.3f} / {s['seg']:.2f}"
                cells.append(f"**{text}**" if s["ssim"] == best else text)
            lines.append(f"| {key} | " + " | ".join(cells) + " |")
        secs = {m: np.mean([c["seconds"][m] for c in res["configs"].values()
                            if m in c["seconds"]]) for m in methods}
        steps = ", ".join(
            f"x{key}: {c['notes']['noise2inverse_gate']['steps']}/"
            f"{c['notes']['hybrid_gate']['steps']}"
            + ("" if c["notes"]["noise2inverse_gate"]["use_model"] else " (blind gated off)")
            for key, c in res["configs"].items())
        lines += ["", "Cells: SSIM / PSNR dB / fine detail / seg. Mean seconds per method: "
                  + ", ".join(f"{LABELS[m]} {v:.0f}" for m, v in secs.items())
                  + f". Noise2Inverse optimisation steps in the budget (blind/hybrid): {steps} "
                  "(fewer steps = the machine was busier).", ""]
    if results.get("reruns"):
        lines += ["Run again with the same data and seeds because the machine was busy during "
                  "their first run: " + ", ".join(results["reruns"]) + ".", ""]
    lines += goals(results)
    if "gaussian" in results:
        g = results["gaussian"]
        lines += ["### The paper's table at 30 % Gaussian noise", "",
                  "spheres in cube, same geometry, Gaussian noise of 30 % of the largest line "
                  "integral; scored against the reconstruction of the clean projections (as "
                  "the paper); supervised pairs at 0 and 45 deg.", "",
                  "| method | SSIM | PSNR (dB) |", "| --- | ---: | ---: |"]
        lines += [f"| {LABELS[k]} | {v['ssim']:.3f} | {v['psnr']:.2f} |" for k, v in g.items()]
        lines.append("")
    if "timing" in results:
        t = results["timing"]
        lines += ["### Speed at 256x256, 361 projections (Noise2Inverse, default settings)", "",
                  "| split reconstructions | training | inference | slices/s | SSIM raw -> "
                  "Noise2Inverse |", "| ---: | ---: | ---: | ---: | --- |",
                  f"| {t['split_reconstruction_s']:.1f} s | {t['training_s']:.1f} s | "
                  f"{t['inference_s']:.1f} s | {t['slices_per_s']:.0f} | "
                  f"{t['raw']['ssim']:.3f} -> {t['noise2inverse']['ssim']:.3f} |", ""]
    lines += ["![slices](figures/self_supervised_slices.png)", "", machine_info()]
    return "\n".join(lines)


def goals(results: dict[str, Any]) -> list[str]:
    default = DEFAULT_WITH_REFERENCES
    rows, dose = [], {}
    for sample, res in results["samples"].items():
        long_ssim = res["long"]["scores"]["ssim"]
        ok_ratios = []
        for cfg in res["configs"].values():
            s = cfg["scores"]
            r = cfg["ratio"]
            if s[default]["ssim"] >= long_ssim - 0.02:
                ok_ratios.append(r)
            if r >= 10:
                rows.append((sample, r, s[default]["ssim"] - s["bm3d"]["ssim"],
                             s[default]["fine"] - s["bm3d"]["fine"]))
        dose[sample] = max(ok_ratios) if ok_ratios else None
    ssim_ok = [x for x in rows if x[2] >= 0.02]
    fine_ok = [x for x in rows if x[3] >= 0]
    worst = min(rows, key=lambda x: x[2]) if rows else None
    worst_f = min(rows, key=lambda x: x[3]) if rows else None
    at15 = {s: (r["configs"]["15"]["scores"][default]["ssim"] - r["long"]["scores"]["ssim"])
            for s, r in results["samples"].items() if "15" in r["configs"]}
    gains = []
    for sample, res in results["samples"].items():
        for cfg in res["configs"].values():
            s = cfg["scores"]
            hybrid_gain = s["hybrid"]["ssim"] - s["raw"]["ssim"]
            if hybrid_gain > 0:
                gains.append((sample, cfg["ratio"], (s["noise2inverse"]["ssim"]
                                                     - s["raw"]["ssim"]) / hybrid_gain))
    lines = [f"### Goals (default: `{default}`)", "", "| goal | measured | met |",
             "| --- | --- | --- |"]
    if worst:
        lines.append(
            f"| SSIM >= BM3D + 0.02 at every sample and ratio >= 10 | {len(ssim_ok)}/{len(rows)}"
            f" configurations; worst {worst[2]:+.3f} ({worst[0]} x{worst[1]:g}) | "
            f"{'met' if len(ssim_ok) == len(rows) else '**not met**'} |")
        lines.append(
            f"| fine detail >= BM3D at every sample and ratio >= 10 | {len(fine_ok)}/{len(rows)};"
            f" worst {worst_f[3]:+.3f} ({worst_f[0]} x{worst_f[1]:g}) | "
            f"{'met' if len(fine_ok) == len(rows) else '**not met**'} |")
    if at15:
        lines.append("| within 0.02 SSIM of long exposure at ratio 15 | " + ", ".join(
            f"{s} {d:+.3f}" for s, d in at15.items()) + " | "
            + ("met" if all(d >= -0.02 for d in at15.values()) else "**not met**") + " |")
    n20 = sum(1 for v in dose.values() if v is not None and v >= 20)
    lines.append("| dose factor >= 20 on at least two samples | " + ", ".join(
        f"{s} {v if v is None else f'{v:g}'}" for s, v in dose.items()) + " | "
        + ("met" if n20 >= 2 else "**not met**") + " |")
    if gains:
        low = min(gains, key=lambda x: x[2])
        lines.append(f"| blind keeps >= 90 % of the hybrid's SSIM gain | worst {low[2]:.0%} "
                     f"({low[0]} x{low[1]:g}) | "
                     f"{'met' if low[2] >= 0.9 else '**not met**'} |")
    if "gaussian" in results:
        g = results["gaussian"][default]["ssim"]
        lines.append(f"| paper's table at 30 %: SSIM >= 0.90 | {g:.3f} | "
                     f"{'met' if g >= 0.9 else '**not met**'} |")
    if "timing" in results:
        t = results["timing"]
        lines.append("| training <= 90 s at 256x256x361 | Noise2Inverse "
                     f"{t['training_s']:.0f} s (+ "
                     f"{t['split_reconstruction_s']:.0f} s split reconstructions) after the "
                     "scan; the hybrid's supervised stage trains during the scan (at least 60 s,"
                     " see `live_enhancer`) | "
                     f"{'met' if t['training_s'] <= 90 else '**not met**'} for Noise2Inverse; "
                     "**not met** for the hybrid's total |")
        lines.append(f"| enhancement >= 50 frames/s at 256x256 | Noise2Inverse inference "
                     f"{t['slices_per_s']:.0f} slices/s of 256x256 "
                     f"({t['frames_equiv_per_s']:.0f} projections/s equivalent); the projection "
                     "network 75.6 frames/s (`paper_synthetic`) | "
                     f"{'met' if t['frames_equiv_per_s'] >= 50 else '**not met**'} |")
    lines.append("")
    return lines


def _jsonable(obj: Any) -> Any:
    if isinstance(obj, dict):
        return {str(k): _jsonable(v) for k, v in obj.items()}
    if isinstance(obj, list | tuple):
        return [_jsonable(v) for v in obj]
    if isinstance(obj, np.ndarray):
        return obj.astype(float).round(4).tolist()
    if isinstance(obj, np.floating | np.integer):
        return obj.item()
    return obj


def _strip(results: dict[str, Any]) -> dict[str, Any]:
    """Keep central slices only at ratio 15 (the figure's), to keep the JSON small."""
    for res in results["samples"].values():
        for key, cfg in res["configs"].items():
            if key != "15":
                cfg.pop("slices", None)
    return results


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--size", type=int, nargs=2, default=[48, 128], metavar=("H", "W"))
    ap.add_argument("--projections", type=int, default=181)
    ap.add_argument("--ratios", type=float, nargs="+", default=[5, 10, 15, 20, 40])
    ap.add_argument("--samples", nargs="+", default=["spheres_in_cube", "foam", "axons"])
    ap.add_argument("--holdout", default="cells")
    ap.add_argument("--long-counts", type=float, default=1500.0)
    ap.add_argument("--n2i-budget", type=float, default=40.0)
    ap.add_argument("--sup-budget", type=float, default=40.0)
    ap.add_argument("--workers", type=int, default=2)
    ap.add_argument("--bm4d-ratios", type=float, nargs="*", default=[15.0],
                    help="ratios at which BM4D on the whole stack also runs (slow)")
    ap.add_argument("--skip", nargs="*", default=[], choices=["gaussian", "timing"])
    ap.add_argument("--report-only", action="store_true")
    ap.add_argument("--rerun", nargs="*", default=[], metavar="SAMPLE:RATIO",
                    help="run these configurations again (same data and seeds) and replace "
                    "them in the JSON, e.g. after the machine was busy during one")
    args = ap.parse_args()
    if args.report_only or args.rerun:
        results = _strip(json.loads(JSON.read_text()))
        order = [*results["args"]["samples"], results["args"]["holdout"]]
        for item in args.rerun:
            sample, ratio = item.split(":")
            k, j = order.index(sample), results["args"]["ratios"].index(float(ratio))
            run_args = argparse.Namespace(**{**results["args"], "workers": args.workers})
            scan = Scan(sample, tuple(run_args.size), run_args.projections,
                        run_args.long_counts, seed=k)
            cfg = run_config(scan, float(ratio), run_args, seed=10 * k + j)
            results["samples"][sample]["configs"][f"{float(ratio):g}"] = _jsonable(cfg)
            results.setdefault("reruns", []).append(item)
        JSON.write_text(json.dumps(_strip(results)))
    else:
        set_cpu_threads(os.cpu_count() or 1)
        started = time.perf_counter()
        results: dict[str, Any] = {
            "command": "python benchmarks/self_supervised.py " + " ".join(sys.argv[1:]),
            "args": vars(args), "holdout": args.holdout, "samples": {},
            "load_start": os.getloadavg()[0]}
        for k, sample in enumerate([*args.samples, args.holdout]):
            scan = Scan(sample, tuple(args.size), args.projections, args.long_counts, seed=k)
            res = {"long": long_reference(scan, 100 + k), "configs": {},
                   "truth_slice": scan.truth[scan.truth.shape[0] // 2]}
            results["samples"][sample] = res
            for j, ratio in enumerate(args.ratios):
                res["configs"][f"{ratio:g}"] = run_config(scan, ratio, args, seed=10 * k + j)
                JSON.write_text(json.dumps(_strip(_jsonable(results))))
        if "gaussian" not in args.skip:
            results["gaussian"] = paper_gaussian(args)
        if "timing" not in args.skip:
            results["timing"] = timing(args)
        results["total_min"] = (time.perf_counter() - started) / 60
        results["load_end"] = os.getloadavg()[0]
        results = _strip(_jsonable(results))
        JSON.write_text(json.dumps(results))
    FIGURES.mkdir(exist_ok=True)
    figure(results, FIGURES / "self_supervised_slices.png")
    text = report(results)
    write_section("self_supervised", text)
    print(text)


if __name__ == "__main__":
    main()
