"""The synthetic experiment of Yang et al. (Sci. Rep. 8:2575, 2018), scaled to a small CPU.

Spheres-in-cube phantom (0 / 0.3 / 1.0), 361 exact projections over 0..180 deg.

1. Gaussian series: noise of sigma = level x max(clean projection) added to the line
   integrals; the CNNs (``unet`` and ``yang2018``) are trained on the noisy -> clean pairs
   at 0 and 45 deg only, then enhance all projections. Reconstructions (Parzen FBP) of
   raw, median, TV, BM3D and enhanced projections are scored (PSNR, SSIM) against the
   reconstruction of the clean projections.
2. Poisson dose series: long exposure ``I0`` counts at the flat, short exposures at
   ``I0 / f``; the winning network is trained on (short, long) transmission pairs at
   0 and 45 deg; the largest ``f`` at which the enhanced short scan reaches the SSIM of
   the long scan minus 0.02 is reported.
3. Timings: training, enhancement frames/s and reconstruction time at 256 (and 512).

Writes the section ``paper_synthetic`` of ``benchmarks/RESULTS.md`` (or ``--output``)
and PNG figures under ``benchmarks/figures/`` (or ``--figures-dir``).

Usage
-----
``python benchmarks/paper_synthetic.py``                      full run, S=128 (~45 min, 2 cores)
``python benchmarks/paper_synthetic.py --quick``              smoke run (S=48, ~1-2 min)
``python benchmarks/paper_synthetic.py --size 96 --output /tmp/R.md --figures-dir /tmp/fig``
"""

from __future__ import annotations

import argparse
import math
import os
import sys
import time
from concurrent.futures import ProcessPoolExecutor
from multiprocessing import get_context
from pathlib import Path
from typing import Any

import _results
import numpy as np
from _results import machine_info
from matplotlib.figure import Figure
from scipy import ndimage

from lowdose_bluesky.baselines import BM3DDenoiser, MedianFilter, TVDenoiser
from lowdose_bluesky.metrics import psnr, ssim
from lowdose_bluesky.model import Enhancer, train_enhancer
from lowdose_bluesky.phantoms import Phantom, spheres_in_cube
from lowdose_bluesky.recon import available_backends, minus_log, reconstruct

SECTION = "paper_synthetic"
BENCH_DIR = Path(__file__).resolve().parent
ARCHS = ("yang2018", "unet")
BASELINES = ("median", "tv", "bm3d")
METHODS = ("raw", *BASELINES, *ARCHS)
TRAIN_ANGLES = (0.0, 45.0)
PHASE_THRESHOLDS = (0.15, 0.65)  # midpoints between the phases 0, 0.3 and 1.0
SEPARABLE_ACCURACY = 0.95  # worst-phase accuracy that counts as "separable by a threshold"
DOSE_SSIM_MARGIN = 0.02

#: Training of each network (``train_enhancer`` keyword arguments): a fixed budget of
#: epochs (early stopping on the validation band) so that results do not depend on the
#: load of the machine; all ~16k patch positions of the two 128-wide pairs.
NET_CONFIG: dict[str, dict[str, Any]] = {
    arch: {"epochs": 20, "batch_size": 128, "max_patches": 16384, "patience": 5, "lr": 1e-3,
           "loss": "inverse_psnr"}
    for arch in ("yang2018", "unet")
}
#: Overrides of ``NET_CONFIG`` in ``--quick`` mode.
QUICK_TRAIN = {"epochs": 1, "max_patches": 256, "batch_size": 64}


# ----------------------------------------------------------------------------- helpers
def log(message: str) -> None:
    """Print a progress line with a wall-clock stamp to stderr.

    Parameters
    ----------
    message
        Text to print.
    """
    print(f"[{time.strftime('%H:%M:%S')}] {message}", file=sys.stderr, flush=True)


def angle_index(angles: np.ndarray, angle: float) -> int:
    """Index of the projection angle closest to ``angle``.

    Parameters
    ----------
    angles
        Projection angles in degrees.
    angle
        Wanted angle in degrees.

    Returns
    -------
    int
    """
    return int(np.argmin(np.abs(angles - angle)))


def recon(projections: np.ndarray, angles: np.ndarray, backend: str) -> np.ndarray:
    """Parzen FBP with the rotation axis at the detector centre ``(S - 1) / 2``.

    Parameters
    ----------
    projections
        ``(N, Z, X)`` line integrals.
    angles
        ``(N,)`` angles in degrees.
    backend
        Reconstruction backend name.

    Returns
    -------
    numpy.ndarray
        ``(Z, X, X)`` float32 slices.
    """
    center = (projections.shape[2] - 1) / 2
    return reconstruct(projections, angles, center=center, backend=backend, filter="parzen")


def score(rec: np.ndarray, gt: np.ndarray, data_range: float,
          slab: slice) -> dict[str, float]:
    """PSNR and SSIM of a reconstruction against the ground-truth reconstruction.

    Parameters
    ----------
    rec, gt
        ``(Z, Y, X)`` reconstructions.
    data_range
        Range of the ground-truth reconstruction (explicit, shared by all methods).
    slab
        Slices that cross the cube (for the object-only SSIM).

    Returns
    -------
    dict
        ``psnr`` (whole volume), ``ssim`` (mean 2-D SSIM over all slices, as in the
        paper) and ``ssim_slab`` (mean over the slices that cross the cube).
    """
    per_slice = ssim(rec, gt, data_range=data_range, per_slice=True)
    return {"psnr": float(psnr(rec, gt, data_range=data_range)),
            "ssim": float(np.mean(per_slice)), "ssim_slab": float(np.mean(per_slice[slab]))}


def phase_labels(volume: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Phase labels (0, 1, 2) of the true volume and the mask of interior voxels.

    Parameters
    ----------
    volume
        ``(Z, Y, X)`` voxelised phantom (values 0, 0.3, 1.0).

    Returns
    -------
    labels, interior : numpy.ndarray
        Labels and a mask of voxels whose 3x3x3 neighbourhood has a single phase and
        that lie inside the reconstruction circle.
    """
    labels = np.digitize(volume, PHASE_THRESHOLDS).astype(np.int8)
    uniform = ndimage.minimum_filter(labels, 3) == ndimage.maximum_filter(labels, 3)
    side = volume.shape[-1]
    yy, xx = np.mgrid[:side, :side] - (side - 1) / 2
    circle = np.hypot(yy, xx) <= side / 2 - 2
    return labels, uniform & circle[np.newaxis]


def phase_accuracy(rec: np.ndarray, labels: np.ndarray, interior: np.ndarray) -> float:
    """Worst-phase accuracy of a two-threshold segmentation of a reconstruction.

    Parameters
    ----------
    rec
        Reconstruction.
    labels, interior
        From :func:`phase_labels`.

    Returns
    -------
    float
        The smallest, over the three phases, fraction of interior voxels of that phase
        that the thresholds :data:`PHASE_THRESHOLDS` put in the right phase.
    """
    found = np.digitize(rec, PHASE_THRESHOLDS)
    per_phase = [found[interior & (labels == k)] == k for k in range(3)]
    return float(min((np.mean(hits) for hits in per_phase if hits.size), default=np.nan))


def bm3d_frames(frames: np.ndarray, sigma: float, pool: ProcessPoolExecutor | None,
                workers: int) -> np.ndarray:
    """BM3D of every frame with a known noise sigma, in a process pool.

    Parameters
    ----------
    frames
        ``(N, H, W)`` noisy frames.
    sigma
        Noise standard deviation (known in this synthetic case).
    pool
        Process pool (``None``: in this process).
    workers
        Number of processes of ``pool`` (sets the number of chunks).

    Returns
    -------
    numpy.ndarray
        Denoised float32 frames.
    """
    denoiser = BM3DDenoiser(sigma=sigma)
    if pool is None:
        return denoiser(frames)
    chunks = np.array_split(frames, 4 * workers)
    return np.concatenate(list(pool.map(denoiser, chunks)))


def train(arch: str, low: np.ndarray, high: np.ndarray, *, quick: bool,
          seed: int) -> tuple[Enhancer, float]:
    """Train ``arch`` on the pairs with :data:`NET_CONFIG`.

    Parameters
    ----------
    arch
        ``"unet"`` or ``"yang2018"``.
    low, high
        ``(K, H, W)`` training pairs.
    quick
        Apply the tiny :data:`QUICK_TRAIN` budget.
    seed
        Training seed.

    Returns
    -------
    enhancer : Enhancer
        The trained network (with its ``history``).
    seconds : float
        Wall-clock training time.
    """
    cfg = dict(NET_CONFIG[arch])
    if quick:
        cfg.update(QUICK_TRAIN)
    t0 = time.perf_counter()
    enhancer = train_enhancer(low, high, arch=arch, seed=seed, progress=False, device="cpu",
                              **cfg)
    return enhancer, time.perf_counter() - t0


def plateau_seconds(history: list[dict[str, Any]], tolerance_db: float = 0.5) -> float:
    """Training seconds until the validation PSNR first comes within ``tolerance_db``.

    Parameters
    ----------
    history
        Per-epoch records with ``seconds`` and ``val_psnr``.
    tolerance_db
        Distance to the best validation PSNR of the whole run.

    Returns
    -------
    float
        Cumulative epoch seconds up to and including that epoch.
    """
    best = max(h["val_psnr"] for h in history)
    elapsed = 0.0
    for h in history:
        elapsed += h["seconds"]
        if h["val_psnr"] >= best - tolerance_db:
            break
    return elapsed


def fmt(value: float, digits: int = 2) -> str:
    """Format a number for a table (``-`` for NaN)."""
    return "-" if value is None or not np.isfinite(value) else f"{value:.{digits}f}"


# ----------------------------------------------------------------------------- experiments
def gaussian_series(phantom: Phantom, clean: np.ndarray, angles: np.ndarray,
                    gt: np.ndarray, args: argparse.Namespace) -> dict[str, Any]:
    """Run the Gaussian noise series.

    Parameters
    ----------
    phantom
        The phantom (for the phase labels).
    clean
        ``(N, Z, X)`` exact projections.
    angles
        Angles in degrees.
    gt
        Ground-truth reconstruction (of ``clean``).
    args
        Parsed options.

    Returns
    -------
    dict
        ``scores[level][method]``, ``phase[level][method]``, training seconds and
        epochs per ``(level, arch)``, BM3D seconds per frame, central slices and
        the volumes needed for the figures.
    """
    labels, interior = phase_labels(phantom.volume())
    idx = [angle_index(angles, a) for a in TRAIN_ANGLES]
    out: dict[str, Any] = {"scores": {}, "phase": {}, "train": {}, "slices": {}, "volumes": {},
                           "bm3d_s_per_frame": [], "gt_phase": phase_accuracy(gt, labels,
                                                                               interior)}
    pool = None
    if args.bm3d_workers > 1:
        pool = ProcessPoolExecutor(args.bm3d_workers, mp_context=get_context("spawn"))
    try:
        for level in args.levels:
            _gaussian_level(level, clean, angles, gt, args, pool, idx, labels, interior, out)
    finally:
        if pool is not None:
            pool.shutdown()
    return out


def _gaussian_level(level: float, clean: np.ndarray, angles: np.ndarray, gt: np.ndarray,
                    args: argparse.Namespace, pool: ProcessPoolExecutor | None,
                    idx: list[int], labels: np.ndarray, interior: np.ndarray,
                    out: dict[str, Any]) -> None:
    """Run one noise level of :func:`gaussian_series`, storing the results into ``out``.

    Parameters
    ----------
    level
        Noise level in percent of the maximum of the clean projections.
    clean, angles, gt, args
        As for :func:`gaussian_series`.
    pool
        BM3D process pool (``None``: BM3D in this process).
    idx
        Indices of the training projections.
    labels, interior
        From :func:`phase_labels`.
    out
        Result dictionary of :func:`gaussian_series`.
    """
    data_range = float(gt.max() - gt.min())
    mid = gt.shape[0] // 2
    rng = np.random.default_rng([args.seed, round(level * 1000)])
    sigma = level / 100 * float(clean.max())
    noisy = (clean + rng.normal(0.0, sigma, clean.shape)).astype(np.float32)
    frames: dict[str, np.ndarray] = {"raw": noisy}
    frames["median"] = MedianFilter(3)(noisy)
    frames["tv"] = TVDenoiser()(noisy)
    t0 = time.perf_counter()
    frames["bm3d"] = bm3d_frames(noisy, sigma, pool, args.bm3d_workers)
    out["bm3d_s_per_frame"].append((time.perf_counter() - t0) / len(noisy))
    log(f"{level}%: baselines done (BM3D {out['bm3d_s_per_frame'][-1]:.2f} s/frame wall)")
    for arch in ARCHS:
        enhancer, seconds = train(arch, noisy[idx], clean[idx], quick=args.quick,
                                  seed=args.seed)
        frames[arch] = enhancer(noisy)
        out["train"][(level, arch)] = {"seconds": seconds, "epochs": len(enhancer.history)}
        log(f"{level}%: {arch} trained in {seconds:.0f} s ({len(enhancer.history)} epochs)")
    out["scores"][level], out["phase"][level] = {}, {}
    for method in METHODS:
        rec = recon(frames[method], angles, args.backend)
        out["scores"][level][method] = score(rec, gt, data_range, args.slab)
        out["phase"][level][method] = phase_accuracy(rec, labels, interior)
        out["slices"][(level, method)] = rec[mid]
        if level in args.hist_levels and method in ("raw", *ARCHS):
            out["volumes"][(level, method)] = rec
    log(f"{level}%: " + ", ".join(f"{m} {s['psnr']:.2f}/{s['ssim']:.3f}"
                                    for m, s in out["scores"][level].items()))


def dose_series(clean: np.ndarray, angles: np.ndarray, gt: np.ndarray, archs: list[str],
                args: argparse.Namespace) -> dict[str, Any]:
    """Run the Poisson dose series.

    Parameters
    ----------
    clean
        ``(N, Z, X)`` exact projections (line integrals of the phantom).
    angles
        Angles in degrees.
    gt
        Ground-truth reconstruction (of ``clean``).
    archs
        Networks to train.
    args
        Parsed options.

    Returns
    -------
    dict
        ``mu``, ``long`` scores, ``rows[factor]`` with the raw-short and enhanced scores,
        and ``best_factor[arch]``.
    """
    data_range = float(gt.max() - gt.min())
    mu = math.log(10.0) / float(clean.max())  # thickest ray transmits 10 %
    transmission = np.exp(-mu * clean)
    rng = np.random.default_rng([args.seed, 7])
    idx = [angle_index(angles, a) for a in TRAIN_ANGLES]

    def to_rec(tx: np.ndarray, counts: float) -> np.ndarray:
        return recon(minus_log(tx, floor=0.5 / counts) / mu, angles, args.backend)

    long = (rng.poisson(args.i0 * transmission) / args.i0).astype(np.float32)
    out: dict[str, Any] = {"mu": mu, "rows": {}, "train": {},
                           "long": score(to_rec(long, args.i0), gt, data_range, args.slab)}
    for factor in args.doses:
        counts = args.i0 / factor
        short = (rng.poisson(counts * transmission) / counts).astype(np.float32)
        row = {"raw": score(to_rec(short, counts), gt, data_range, args.slab)}
        for arch in archs:
            enhancer, seconds = train(arch, short[idx], long[idx], quick=args.quick,
                                      seed=args.seed)
            row[arch] = score(to_rec(enhancer(short), counts), gt, data_range, args.slab)
            out["train"][(factor, arch)] = seconds
        out["rows"][factor] = row
        log(f"dose /{factor}: " + ", ".join(f"{m} {s['ssim']:.3f}" for m, s in row.items())
            + f" (long {out['long']['ssim']:.3f})")
    threshold = out["long"]["ssim"] - DOSE_SSIM_MARGIN
    out["best_factor"] = {
        arch: max((f for f in args.doses if out["rows"][f][arch]["ssim"] >= threshold),
                  default=None) for arch in archs}
    return out


def timings(args: argparse.Namespace) -> dict[str, Any]:
    """Training, enhancement and reconstruction timings at ``--timing-size``.

    Parameters
    ----------
    args
        Parsed options.

    Returns
    -------
    dict
        ``train[arch]`` (total seconds, seconds to the plateau, epochs),
        ``fps[(arch, side)]`` and ``recon[backend]`` (seconds per slice, seconds for
        all slices and whether that was measured or extrapolated).
    """
    side = args.timing_size
    phantom = spheres_in_cube(side, seed=args.seed)
    angles = np.linspace(0.0, 180.0, args.projections)
    rng = np.random.default_rng([args.seed, 256])
    pairs = phantom.project(TRAIN_ANGLES)
    sigma = 0.3 * float(pairs.max())
    noisy_pairs = (pairs + rng.normal(0.0, sigma, pairs.shape)).astype(np.float32)
    out: dict[str, Any] = {"side": side, "train": {}, "fps": {}, "recon": {}}
    enhancers = {}
    for arch in ARCHS:
        enhancer, seconds = train(arch, noisy_pairs, pairs, quick=args.quick, seed=args.seed)
        enhancers[arch] = enhancer
        out["train"][arch] = {"seconds": seconds, "plateau": plateau_seconds(enhancer.history),
                              "epochs": len(enhancer.history),
                              "best_epoch": enhancer.config.get("best_epoch")}
        log(f"timing: {arch} trained at {side} in {seconds:.0f} s")
    for frame_side, n_frames in ((side, 48), (2 * side, 12)):
        frames = spheres_in_cube(frame_side, seed=args.seed).project(
            np.linspace(0.0, 180.0, n_frames))
        frames = (frames + rng.normal(0.0, 0.3 * float(frames.max()), frames.shape)).astype(
            np.float32)
        for arch, enhancer in enhancers.items():
            enhancer(frames[:2])  # warm-up
            t0 = time.perf_counter()
            enhancer(frames)
            out["fps"][(arch, frame_side)] = n_frames / (time.perf_counter() - t0)
    clean = phantom.project(angles)
    for backend in available_backends():
        recon(clean[:, :2], angles, backend)  # warm-up (JIT compilation)
        n_slices = min(side, 32)
        t0 = time.perf_counter()
        recon(clean[:, :n_slices], angles, backend)
        per_slice = (time.perf_counter() - t0) / n_slices
        entry = {"per_slice": per_slice, "total": per_slice * side, "measured": False}
        if per_slice * side <= 60.0:
            t0 = time.perf_counter()
            recon(clean, angles, backend)
            entry.update(total=time.perf_counter() - t0, measured=True)
            entry["per_slice"] = entry["total"] / side
        out["recon"][backend] = entry
        log(f"timing: {backend} {entry['per_slice'] * 1000:.1f} ms/slice")
    return out


# ----------------------------------------------------------------------------- figures
def histogram_figure(gauss: dict[str, Any], gt: np.ndarray, winner: str, levels: list[float],
                     path: Path) -> None:
    """Histograms of reconstructed values, raw vs enhanced, one panel per noise level.

    Parameters
    ----------
    gauss
        Output of :func:`gaussian_series`.
    gt
        Ground-truth reconstruction.
    winner
        Network whose reconstructions are shown.
    levels
        Noise levels (percent) to show.
    path
        PNG file to write.
    """
    fig = Figure(figsize=(4.2 * len(levels), 3.4), layout="constrained")
    axes = np.atleast_1d(fig.subplots(1, len(levels), sharey=True))
    bins = np.linspace(-0.4, 1.4, 181)
    for ax, level in zip(axes, levels, strict=True):
        ax.hist(gauss["volumes"][(level, "raw")].ravel(), bins, color="0.7", label="raw")
        ax.hist(gauss["volumes"][(level, winner)].ravel(), bins, histtype="step", lw=1.5,
                color="tab:blue", label=f"enhanced ({winner})")
        ax.hist(gt.ravel(), bins, histtype="step", color="k", lw=0.8,
                label="ground-truth recon.")
        for t in PHASE_THRESHOLDS:
            ax.axvline(t, color="tab:red", ls="--", lw=0.8)
        ax.set_yscale("log")
        ax.set_title(f"{level:g} % Gaussian noise")
        ax.set_xlabel("reconstructed value")
    axes[0].set_ylabel("voxels")
    axes[0].legend(fontsize=7, loc="upper right")
    fig.savefig(path, dpi=110)


def slice_figure(gauss: dict[str, Any], gt: np.ndarray, level: float, winner: str,
                 baseline: str, path: Path) -> None:
    """Central slice: ground truth, raw, enhanced and the best baseline.

    Parameters
    ----------
    gauss
        Output of :func:`gaussian_series`.
    gt
        Ground-truth reconstruction.
    level
        Noise level (percent).
    winner, baseline
        Network and classical method to show.
    path
        PNG file to write.
    """
    panels = [("ground truth (clean projections)", gt[gt.shape[0] // 2]),
              ("raw", gauss["slices"][(level, "raw")]),
              (f"enhanced ({winner})", gauss["slices"][(level, winner)]),
              (f"best baseline ({baseline})", gauss["slices"][(level, baseline)])]
    fig = Figure(figsize=(13, 3.6), layout="constrained")
    axes = fig.subplots(1, 4)
    for ax, (title, image) in zip(axes, panels, strict=True):
        shown = ax.imshow(image, cmap="gray", vmin=-0.1, vmax=1.1)
        if title != panels[0][0]:
            s = gauss["scores"][level][title.split("(")[-1].rstrip(")")]
            title += f"\nPSNR {s['psnr']:.1f} dB, SSIM {s['ssim']:.3f}"
        ax.set_title(title, fontsize=9)
        ax.set_axis_off()
    fig.colorbar(shown, ax=axes, shrink=0.8)
    fig.suptitle(f"central slice, {level:g} % Gaussian noise")
    fig.savefig(path, dpi=110)


# ----------------------------------------------------------------------------- report
def render(args: argparse.Namespace, argv: list[str], info: dict[str, Any]) -> str:
    """Markdown body of the RESULTS.md section.

    Parameters
    ----------
    args
        Parsed options.
    argv
        Command-line arguments as given.
    info
        Everything measured (see :func:`main`).

    Returns
    -------
    str
    """
    gauss, dose, tim = info["gauss"], info["dose"], info["timings"]
    winner, baseline = info["winner"], info["best_baseline"]
    top = max(args.levels)
    names = {"raw": "raw", "median": "median 3x3", "tv": "TV (Chambolle)",
             "bm3d": "BM3D (known sigma)", "yang2018": "yang2018 CNN", "unet": "U-Net CNN"}
    cmd = " ".join(["python benchmarks/paper_synthetic.py", *argv]).strip()
    lines = [
        "## Paper synthetic experiment (`benchmarks/paper_synthetic.py`)",
        "",
        f"Command: `{cmd}` (total {info['wall'] / 60:.1f} min; load average "
        f"{info['load'][0]:.1f} at start, {info['load'][1]:.1f} at end: the 2 cores were shared "
        "with other jobs, so timings are upper bounds).",
        "",
        f"Setup (Yang et al. 2018, scaled): `spheres_in_cube({args.size}, seed={args.seed})` "
        f"({info['n_spheres']} spheres, cube 0.3, spheres 1.0), {args.projections} exact "
        f"projections over 0..180 deg (linspace inclusive); training pairs at "
        f"{TRAIN_ANGLES[0]:g} and {TRAIN_ANGLES[1]:g} deg only; all projections enhanced "
        f"and reconstructed with `{args.backend}` FBP, Parzen filter, centre (S-1)/2. "
        "Scores against the reconstruction of the clean projections (ground truth, as in "
        f"the paper), `data_range` = its range = {info['data_range']:.4f}. PSNR over the whole "
        f"volume; SSIM = mean 2-D SSIM (7x7) over all {args.size} slices (as in the paper), "
        f"and SSIM over the {args.slab.stop - args.slab.start} slices that cross the cube "
        "(`SSIM obj`, no empty slices). Seeds fixed (phantom, noise, training).",
        "",
        "Networks (`train_enhancer`, CPU, 2 pairs, seed fixed), both archs: "
        f"`{NET_CONFIG[ARCHS[0]]}`"
        + (f" **overridden by --quick: `{QUICK_TRAIN}`**" if args.quick else "")
        + ". Baselines on the projections: median 3x3, TV (`TVDenoiser()`, weight = "
        "estimated sigma), BM3D with the **known** noise sigma (synthetic case; the "
        f"estimated sigma is slower and no better), {args.bm3d_workers} processes, "
        f"{np.mean(gauss['bm3d_s_per_frame']):.2f} s/frame wall.",
        "",
        "### Gaussian noise series (sigma = level x max of the clean projection)",
        "",
        "PSNR (dB) / SSIM / SSIM obj of the reconstructions; best non-raw value per row "
        "in bold.",
        "",
        "| noise | " + " | ".join(names[m] for m in METHODS) + " |",
        "| --- |" + " ---: |" * len(METHODS),
    ]
    for level in args.levels:
        s = gauss["scores"][level]
        best = {k: max(s[m][k] for m in METHODS[1:]) for k in ("psnr", "ssim", "ssim_slab")}
        cells = []
        for m in METHODS:
            parts = []
            for k, d in (("psnr", 2), ("ssim", 3), ("ssim_slab", 3)):
                text = fmt(s[m][k], d)
                parts.append(f"**{text}**" if m != "raw" and s[m][k] == best[k] else text)
            cells.append(" / ".join(parts))
        lines.append(f"| {level:g} % | " + " | ".join(cells) + " |")
    lines += [
        "",
        "Training seconds per level: " + "; ".join(
            f"{level:g} %: " + ", ".join(
                f"{a} {gauss['train'][(level, a)]['seconds']:.0f} s "
                f"({gauss['train'][(level, a)]['epochs']} ep)" for a in ARCHS)
            for level in args.levels) + ".",
        "",
        "Phase separability: worst-phase accuracy of a segmentation with the thresholds "
        f"{PHASE_THRESHOLDS} (midpoints of 0 / 0.3 / 1.0) on interior voxels (3x3x3 "
        "neighbourhood of one phase, inside the reconstruction circle); ground-truth "
        f"reconstruction: {gauss['gt_phase']:.3f}. Counted as separable at >= "
        f"{SEPARABLE_ACCURACY}.",
        "",
        "| noise | " + " | ".join(names[m] for m in METHODS) + " |",
        "| --- |" + " ---: |" * len(METHODS),
    ]
    for level in args.levels:
        lines.append(f"| {level:g} % | " + " | ".join(
            fmt(gauss["phase"][level][m], 3) for m in METHODS) + " |")
    hist_rel = os.path.relpath(info["figures"][0], args.output.parent)
    slice_rel = os.path.relpath(info["figures"][1], args.output.parent)
    lines += [
        "",
        f"![histograms]({hist_rel}) ![slices]({slice_rel})",
        "",
        f"Figures: [histograms of reconstructed values]({hist_rel}) (raw vs {winner}, "
        f"{', '.join(f'{v:g} %' for v in args.hist_levels)}), "
        f"[central slice at {top:g} %]({slice_rel}) (ground truth / raw / {winner} / "
        f"{baseline}).",
        "",
        f"### Poisson dose series ({'/'.join(dose['archs'])})",
        "",
        f"Long exposure I0 = {args.i0:g} counts/pixel at the flat, mu = {dose['mu']:.4f} per "
        "unit line integral (thickest ray transmits 10 %); short exposure I0/f; counts ~ "
        "Poisson(I exp(-mu p)); training on (short, long) flat-fielded transmission "
        "(counts / I) at 0 and 45 deg; reconstruction of -log (floor 0.5 count) / mu. "
        f"Long-exposure reconstruction: PSNR {dose['long']['psnr']:.2f} dB, SSIM "
        f"{dose['long']['ssim']:.3f}, SSIM obj {dose['long']['ssim_slab']:.3f}. "
        f"Criterion: enhanced SSIM >= long SSIM - {DOSE_SSIM_MARGIN}.",
        "",
        "| dose factor f | counts at flat | raw short | "
        + " | ".join(f"enhanced ({a})" for a in dose["archs"]) + " | criterion met |",
        "| ---: | ---: | ---: |" + " ---: |" * len(dose["archs"]) + " --- |",
    ]
    threshold = dose["long"]["ssim"] - DOSE_SSIM_MARGIN
    for f in args.doses:
        row = dose["rows"][f]
        cells = [f"{row[m]['psnr']:.2f} / {row[m]['ssim']:.3f} / {row[m]['ssim_slab']:.3f}"
                 for m in ("raw", *dose["archs"])]
        met = ", ".join(a for a in dose["archs"] if row[a]["ssim"] >= threshold) or "no"
        lines.append(f"| {f:g} | {args.i0 / f:g} | " + " | ".join(cells) + f" | {met} |")
    lines += ["", "Cells: PSNR (dB) / SSIM / SSIM obj. Largest dose factor meeting the "
              "criterion: " + ", ".join(f"{a}: {fmt(v, 0) if v else 'none'}"
                                        for a, v in dose["best_factor"].items()) + "."]
    side = tim["side"]
    lines += [
        "",
        f"### Timings (S = {side}, same training configuration, 30 % noise pairs)",
        "",
        "| arch | training total (s) | to plateau (s) | epochs (best) | "
        f"enhance {side}^2 (frames/s) | enhance {2 * side}^2 (frames/s) |",
        "| --- | ---: | ---: | ---: | ---: | ---: |",
    ]
    for arch in ARCHS:
        t = tim["train"][arch]
        lines.append(f"| {arch} | {t['seconds']:.0f} | {t['plateau']:.0f} | {t['epochs']} "
                     f"({t['best_epoch']}) | {tim['fps'][(arch, side)]:.1f} | "
                     f"{tim['fps'][(arch, 2 * side)]:.1f} |")
    lines += [
        "",
        "To plateau: summed epoch seconds until the validation PSNR first comes within "
        "0.5 dB of its best.",
        "",
        f"| recon backend | ms/slice ({side}^2, {args.projections} angles) | "
        f"{side} slices (s) |",
        "| --- | ---: | ---: |",
    ]
    for backend, r in tim["recon"].items():
        how = "measured" if r["measured"] else "extrapolated from 32 slices"
        lines.append(f"| {backend} | {r['per_slice'] * 1000:.1f} | {r['total']:.1f} ({how}) |")
    lines += ["", "### Goals", "", "| goal | paper | measured | met |", "| --- | --- | --- | --- |"]
    for goal, paper, measured, met in info["goals"]:
        lines.append(f"| {goal} | {paper} | {measured} | {'met' if met else '**not met**'} |")
    lines += ["", machine_info()]
    return "\n".join(lines)


def goals(args: argparse.Namespace, info: dict[str, Any]) -> list[tuple[str, str, str, bool]]:
    """Evaluate the benchmark goals.

    Parameters
    ----------
    args
        Parsed options.
    info
        Everything measured.

    Returns
    -------
    list of tuple
        ``(goal, paper value, measured, met)``.
    """
    gauss, dose, tim, winner = info["gauss"], info["dose"], info["timings"], info["winner"]
    top = max(args.levels)
    s = gauss["scores"][top][winner]
    beats = {
        arch: all(gauss["scores"][lv][arch][k] > gauss["scores"][lv][b][k]
                  for lv in args.levels for b in BASELINES for k in ("psnr", "ssim"))
        for arch in ARCHS}
    losses = [f"{a} vs {b} at {lv:g} % ({k})" for a in ARCHS for lv in args.levels
              for b in BASELINES for k in ("psnr", "ssim")
              if gauss["scores"][lv][a][k] <= gauss["scores"][lv][b][k]]
    factor = max((v for v in dose["best_factor"].values() if v), default=None)
    side = tim["side"]
    fastest = min(r["total"] for r in tim["recon"].values())
    return [
        (f"SSIM >= 0.85 at {top:g} % ({winner})", "0.71", f"{s['ssim']:.3f}", s["ssim"] >= 0.85),
        (f"PSNR >= 20 dB at {top:g} % ({winner})", "16.61 dB", f"{s['psnr']:.2f} dB",
         s["psnr"] >= 20),
        ("better than median, TV and BM3D at every level, PSNR and SSIM", "median, TV",
         ", ".join(f"{a}: {'yes' if v else 'no'}" for a, v in beats.items())
         + (f" (losses: {len(losses)}, e.g. {'; '.join(losses[:4])})" if losses else ""),
         any(beats.values())),
        ("dose factor >= 20 (SSIM within 0.02 of long)", "10",
         "none" if factor is None else f"{factor:g}", factor is not None and factor >= 20),
        (f"training <= 3 min ({side}-wide pairs)", "~2 h (GPU)", ", ".join(
            f"{a} {t['seconds']:.0f} s" for a, t in tim["train"].items()),
         all(t["seconds"] <= 180 for t in tim["train"].values())),
        (f"enhancement >= 20 frames/s at {side}^2", "-", ", ".join(
            f"{a} {tim['fps'][(a, side)]:.1f}" for a in ARCHS),
         all(tim["fps"][(a, side)] >= 20 for a in ARCHS)),
        (f"{side} slices of {side}^2 from {args.projections} angles <= 10 s", "-",
         f"{fastest:.1f} s (fastest backend)", fastest <= 10),
    ]


# ----------------------------------------------------------------------------- main
def parse_args(argv: list[str] | None) -> argparse.Namespace:
    """Parse the command line.

    Parameters
    ----------
    argv
        Arguments (``None``: ``sys.argv[1:]``).

    Returns
    -------
    argparse.Namespace
    """
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--size", type=int, default=None, help="phantom width S (default 128)")
    parser.add_argument("--quick", action="store_true",
                        help="smoke run: S=48, 61 angles, 2 levels, 2 doses, tiny training")
    parser.add_argument("--projections", type=int, default=None, help="default 361")
    parser.add_argument("--levels", type=float, nargs="+", default=None,
                        help="Gaussian noise levels in percent (default 5 10 15 20 25 30)")
    parser.add_argument("--doses", type=float, nargs="+", default=None,
                        help="dose reduction factors (default 5 10 20 40)")
    parser.add_argument("--i0", type=float, default=2000.0, help="long-exposure flat counts")
    parser.add_argument("--dose-archs", choices=("winner", "both"), default="winner",
                        help="networks trained in the dose series")
    parser.add_argument("--timing-size", type=int, default=None, help="default 256")
    parser.add_argument("--backend", default="numba", help="reconstruction backend")
    parser.add_argument("--bm3d-workers", type=int, default=2)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--output", type=Path, default=_results.RESULTS,
                        help="RESULTS.md file to update (default benchmarks/RESULTS.md)")
    parser.add_argument("--figures-dir", type=Path, default=BENCH_DIR / "figures")
    args = parser.parse_args(argv)
    quick = args.quick
    args.size = args.size or (48 if quick else 128)
    args.projections = args.projections or (61 if quick else 361)
    args.levels = args.levels or ([10.0, 30.0] if quick else [5.0, 10.0, 15.0, 20.0, 25.0, 30.0])
    args.doses = args.doses or ([10.0, 40.0] if quick else [5.0, 10.0, 20.0, 40.0])
    args.timing_size = args.timing_size or (64 if quick else 256)
    args.hist_levels = [v for v in (10.0, 20.0, 30.0) if v in args.levels] or [max(args.levels)]
    args.output = args.output.resolve()
    return args


def main(argv: list[str] | None = None) -> dict[str, Any]:
    """Run the benchmark, write the figures and the RESULTS.md section.

    Parameters
    ----------
    argv
        Command-line arguments (``None``: ``sys.argv[1:]``).

    Returns
    -------
    dict
        Everything measured, with the rendered markdown under ``"markdown"``.
    """
    raw_argv = list(sys.argv[1:] if argv is None else argv)
    args = parse_args(raw_argv)
    start, load0 = time.perf_counter(), os.getloadavg()[0]
    phantom = spheres_in_cube(args.size, seed=args.seed)
    cube = phantom.params["cube_side"]
    c = (args.size - 1) / 2
    args.slab = slice(math.ceil(c - cube / 2), math.floor(c + cube / 2) + 1)
    angles = np.linspace(0.0, 180.0, args.projections)
    clean = phantom.project(angles)
    gt = recon(clean, angles, args.backend)
    log(f"S={args.size}: {args.projections} projections, ground truth reconstructed")

    gauss = gaussian_series(phantom, clean, angles, gt, args)
    mean_ssim = {a: np.mean([gauss["scores"][lv][a]["ssim"] for lv in args.levels])
                 for a in ARCHS}
    winner = max(ARCHS, key=lambda a: mean_ssim[a])
    top = max(args.levels)
    baseline = max(BASELINES, key=lambda b: gauss["scores"][top][b]["ssim"])
    archs = list(ARCHS) if args.dose_archs == "both" else [winner]
    dose = dose_series(clean, angles, gt, archs, args)
    dose["archs"] = archs
    tim = timings(args)

    args.figures_dir.mkdir(parents=True, exist_ok=True)
    figures = (args.figures_dir / "paper_synthetic_histograms.png",
               args.figures_dir / "paper_synthetic_slices.png")
    histogram_figure(gauss, gt, winner, args.hist_levels, figures[0])
    slice_figure(gauss, gt, top, winner, baseline, figures[1])

    info: dict[str, Any] = {
        "gauss": gauss, "dose": dose, "timings": tim, "winner": winner,
        "best_baseline": baseline, "figures": figures, "n_spheres": phantom.params["n_spheres"],
        "data_range": float(gt.max() - gt.min()),
    }
    info["goals"] = goals(args, info)
    info["wall"] = time.perf_counter() - start
    info["load"] = (load0, os.getloadavg()[0])
    markdown = render(args, raw_argv, info)
    _results.write_section(SECTION, markdown, args.output)
    info["markdown"] = markdown
    print(markdown)
    return info


if __name__ == "__main__":
    main()
