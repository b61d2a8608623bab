"""Low-dose ptychography: PtychoNN on sparse scans against iterative phase retrieval.

Two kinds of object, 256 x 256 pixels, 64 x 64 patterns, a focused probe 24 px across
(90 % of its intensity): the project's etched test object (the one the recipe was
developed on) and a held-out natural-texture object (scikit-image's bundled ``coins``
image as the thickness). For each object and photon count, the left third of the field
is scanned densely (step 6 px, overlap 0.75) and reconstructed with pty-chi (LSQML,
the known probe); PtychoNN is trained on those patterns with the reconstruction's
patches as labels (a time budget), and the learned linear retrieval is fitted on them
plus 16000 pairs simulated from the reconstruction (the recipe's default model); the
rest of the field is scanned at overlaps from 0.5 to 0, and its phase is reconstructed
(a) iteratively from the sparse patterns alone, (b) by PtychoNN and (c) by the linear
retrieval, pattern by pattern, stitched with the probe intensity as weights, and (d)
by pty-chi started from (c). A third
object (scikit-image's ``camera``) was held out until the linear retrieval's defaults
were fixed.
Phase SSIM / PSNR against the true object after removing the global phase offset, over
the pixels both reach. Also: inference patterns per second, and the wall time of the
iterative reconstruction against the network's for the same area.

Usage: ``python benchmarks/ptycho.py [--quick] [--train-seconds 120]``
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt
import numpy as np
from _results import machine_info, write_section
from skimage import data as skdata
from skimage.transform import resize

from lowdose_bluesky.model.ptychonn import train_ptychonn
from lowdose_bluesky.ptycho import (
    Stitcher,
    diffraction_patterns,
    focused_probe,
    object_windows,
    phase_scores,
    probe_diameter_px,
    remove_phase_offset,
)
from lowdose_bluesky.ptycho import test_object as etched_object
from lowdose_bluesky.recipes.ptycho.labels import illumination, referred_reconstruction
from lowdose_bluesky.recipes.ptycho.linear import fit_linear
from lowdose_bluesky.recipes.ptycho.refine import refine

REFINE_EPOCHS = 30

FIGURES = Path(__file__).with_name("figures")
N, WINDOW, DENSE_STEP = 256, 64, 6
COVERAGE = 0.05  # of the probe's peak intensity, as the recipe


def image_object(shape: tuple[int, int], name: str = "coins") -> np.ndarray:
    """A natural-texture phase object: a bundled scikit-image picture as the thickness."""
    image = getattr(skdata, name)().astype(float)
    image = resize(image[:, : image.shape[0]], shape, anti_aliasing=True)
    thickness = (image - image.min()) / (image.max() - image.min())
    return np.exp(-0.1 * 1.8 * thickness) * np.exp(1j * 1.8 * thickness)


def grid(x0: int, x1: int, y0: int, y1: int, step: int) -> np.ndarray:
    """``(N, 2)`` ``(y, x)`` corners of a raster from ``(y0, x0)`` to ``(y1, x1)``."""
    ys, xs = np.arange(y0, y1 + 1, step), np.arange(x0, x1 + 1, step)
    return np.array([(y, x) for y in ys for x in xs], float)


def covered(corners: np.ndarray, probe: np.ndarray) -> np.ndarray:
    """Pixels the probes reach (the recipe's coverage rule)."""
    lit = illumination(corners, probe, (N, N))
    return lit >= COVERAGE * float(np.max(np.abs(probe) ** 2))


def iterative(patterns: np.ndarray, corners: np.ndarray, probe: np.ndarray,
              epochs: int) -> tuple[np.ndarray, float]:
    """The reconstructed object (phase referred as the recipe does) and the seconds."""
    t = time.perf_counter()
    obj, _ = referred_reconstruction(patterns, corners, probe, (N, N), epochs=epochs)
    return obj, time.perf_counter() - t


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="a short smoke run")
    parser.add_argument("--train-seconds", type=float, default=120.0)
    parser.add_argument("--epochs", type=int, default=100, help="iterative epochs")
    args = parser.parse_args()
    photons_list = [1e4] if args.quick else [1e4, 1e6]
    overlaps = [0.5, 0.0] if args.quick else [0.5, 0.25, 0.0]
    train_seconds = 10.0 if args.quick else args.train_seconds
    epochs = 20 if args.quick else args.epochs
    probe = focused_probe((WINDOW, WINDOW), diameter_px=24.0)
    diameter = probe_diameter_px(probe)
    samples = {"etched (developed on)": etched_object((N, N), seed=7),
               "coins (held out)": image_object((N, N), "coins"),
               "camera (held out to the end)": image_object((N, N), "camera")}
    rows, speed_rows, area_rows = [], [], []
    last = N - WINDOW
    dense = grid(0, 64, 0, last, DENSE_STEP)
    figure_panels = {}
    throughput = linear_throughput = None
    for sample, obj in samples.items():
        truth = np.angle(obj)
        for photons in photons_list:
            rng = np.random.default_rng(0)
            patterns = diffraction_patterns(obj, probe, dense, photons, rng=rng)
            obj_d, dense_s = iterative(patterns, dense, probe, epochs)
            phase_d = np.angle(obj_d)
            mask_d = covered(dense, probe)
            scores_d = phase_scores(np.where(mask_d, phase_d, np.nan), truth)
            rows.append((sample, photons, 1 - DENSE_STEP / diameter, "iterative, dense field",
                         len(dense), scores_d, dense_s))
            # labels: the dense reconstruction under each position
            labels = object_windows(obj_d, dense, (WINDOW, WINDOW))
            t = time.perf_counter()
            model, record = train_ptychonn(patterns, np.clip(np.abs(labels), 0, 1),
                                           np.angle(labels), epochs=1000,
                                           max_seconds=train_seconds, seed=0)
            train_s = time.perf_counter() - t
            t = time.perf_counter()
            linear, linear_record = fit_linear(patterns, labels, obj_d, mask_d, probe, photons,
                                               pairs=16000, ridge=0.3, seed=0)
            linear_s = time.perf_counter() - t
            if linear_throughput is None:
                big = np.repeat(patterns, 20, axis=0)
                t = time.perf_counter()
                linear.predict(big)
                linear_throughput = len(big) / (time.perf_counter() - t)
            if throughput is None:
                batch = diffraction_patterns(obj, probe, grid(0, last, 0, last, 4)[:2048],
                                             photons, rng=rng)
                model.predict(batch[:256])
                t = time.perf_counter()
                model.predict(batch, batch_size=256)
                throughput = len(batch) / (time.perf_counter() - t)
            for overlap in overlaps:
                step = max(1, round(diameter * (1 - overlap)))
                sparse = grid(64 + step, last, 0, last, step)
                sp = diffraction_patterns(obj, probe, sparse, photons, rng=rng)
                obj_i, iter_s = iterative(sp, sparse, probe, epochs)
                phase_i = np.angle(obj_i)
                t = time.perf_counter()
                amplitude, phase_n = model.predict(sp)
                stitcher = Stitcher((N, N), probe, threshold=0.0)
                stitcher.add(np.ones_like(phase_n) if amplitude is None else amplitude,
                             phase_n, sparse)
                _, stitched = stitcher.image()
                net_s = time.perf_counter() - t
                t = time.perf_counter()
                _, phase_l = linear.predict(sp)
                stitcher = Stitcher((N, N), probe, threshold=0.0)
                stitcher.add(np.ones_like(phase_l), phase_l, sparse)
                _, stitched_l = stitcher.image()
                lin_s = time.perf_counter() - t
                obj_r, refine_record = refine(sp, sparse, probe, stitched_l, None,
                                              epochs=REFINE_EPOCHS)
                phase_r = np.angle(obj_r)
                mask = covered(sparse, probe)
                si = phase_scores(np.where(mask, phase_i, np.nan), truth)
                sn = phase_scores(np.where(mask, stitched, np.nan), truth)
                sl = phase_scores(np.where(mask, stitched_l, np.nan), truth)
                sr = phase_scores(np.where(mask, phase_r, np.nan), truth)
                rows.append((sample, photons, 1 - step / diameter, "iterative, sparse",
                             len(sparse), si, iter_s))
                rows.append((sample, photons, 1 - step / diameter, "PtychoNN, sparse",
                             len(sparse), sn, net_s))
                rows.append((sample, photons, 1 - step / diameter, "linear retrieval, sparse",
                             len(sparse), sl, lin_s))
                rows.append((sample, photons, 1 - step / diameter,
                             f"linear, then pty-chi {REFINE_EPOCHS} epochs, sparse",
                             len(sparse), sr, lin_s + refine_record["seconds"]))
                speed_rows.append((sample, photons, overlap, len(sparse), iter_s, net_s,
                                   lin_s))
                area_rows.append((sample, photons, step, sn["ssim"], sl["ssim"], sr["ssim"],
                                  si["ssim"], scores_d["ssim"]))
                if overlap == 0.0 and photons == photons_list[-1]:
                    # as scored: each estimate with its global phase offset removed
                    figure_panels[sample] = (truth, *(
                        remove_phase_offset(np.where(m, image, np.nan), truth)
                        for m, image in ((mask_d, phase_d), (mask, phase_i),
                                         (mask, stitched), (mask, stitched_l),
                                         (mask, phase_r))))
            rows.append((sample, photons, None, f"PtychoNN training ({record['epochs']} "
                         f"epochs, {train_s:.0f} s)", len(dense), None, train_s))
            rows.append((sample, photons, None, "linear retrieval fit "
                         f"({linear_record['pairs']} pairs)", len(dense), None, linear_s))
    FIGURES.mkdir(exist_ok=True)
    fig, axes = plt.subplots(len(figure_panels), 6, figsize=(19, 3.4 * len(figure_panels)))
    titles = ("true phase", "iterative, dense field", "iterative, sparse (overlap 0)",
              "PtychoNN, sparse (overlap 0)", "linear retrieval, sparse (overlap 0)",
              f"linear + pty-chi {REFINE_EPOCHS} ep. (overlap 0)")
    for r, (sample, panels) in enumerate(figure_panels.items()):
        for c, (panel, title) in enumerate(zip(panels, titles, strict=True)):
            ax = axes[r, c]
            ax.imshow(panel, cmap="gray", vmin=-0.3, vmax=2.1)  # true phase: 0 to 1.8
            ax.set_title(f"{sample}: {title}" if c == 0 else title, fontsize=9)
            ax.axis("off")
    fig.tight_layout()
    figure = FIGURES / "ptycho.png"
    fig.savefig(figure, dpi=110)

    def fmt(scores: dict | None, key: str, digits: int) -> str:
        return "" if scores is None else f"{scores[key]:.{digits}f}"

    lines = [
        "## Low-dose ptychography: learned retrieval (PtychoNN, linear) against iterative "
        "phase retrieval (`benchmarks/ptycho.py`)",
        "",
        f"`python benchmarks/ptycho.py{' --quick' if args.quick else ''} --train-seconds "
        f"{train_seconds:g} --epochs {epochs}`: {N}x{N} objects, {WINDOW}x{WINDOW} patterns, "
        f"focused probe {diameter:.1f} px across (90 % of its intensity); dense field: "
        f"positions x 0-64 px, step {DENSE_STEP} px ({len(dense)} patterns); sparse field: "
        "x from 64 px + step to 192 px. Iterative: pty-chi LSQML, known probe, "
        f"{epochs} epochs. PtychoNN trained on the dense field only (labels: its iterative "
        f"reconstruction), at most {train_seconds:g} s; the linear retrieval fitted on the "
        "same pairs plus 16000 simulated from the reconstruction (ridge 0.3); "
        f"'linear, then pty-chi': {REFINE_EPOCHS} LSQML epochs on the sparse patterns "
        "started from the linear image (the recipe's refine_epochs). The camera "
        "object was held out until the linear retrieval's settings were fixed. Phase SSIM / "
        "PSNR against the true "
        "object over the pixels the probes reach (probe intensity >= 5 % of its peak), "
        "global phase offset removed.",
        "",
        "| object | photons / pattern | overlap | method | patterns | phase SSIM | "
        "phase PSNR (dB) | seconds |",
        "| --- | ---: | ---: | --- | ---: | ---: | ---: | ---: |",
        *(f"| {s} | {p:.0e} | {'' if o is None else f'{o:.2f}'} | {m} | {n} | "
          f"{fmt(sc, 'ssim', 3)} | {fmt(sc, 'psnr', 1)} | {sec:.1f} |"
          for s, p, o, m, n, sc, sec in rows),
        "",
        f"Inference: PtychoNN {throughput:.0f} patterns/s of {WINDOW}x{WINDOW} (batches of "
        f"256, this CPU); linear retrieval {linear_throughput:.0f} patterns/s.",
        "",
        "| object | photons | overlap | patterns | iterative (s) | PtychoNN + stitching (s) | "
        "speed-up | linear + stitching (s) | speed-up |",
        "| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |",
        *(f"| {s} | {p:.0e} | {o:.2f} | {n} | {a:.2f} | {b:.3f} | {a / b:.0f}x | {c:.3f} | "
          f"{a / c:.0f}x |" for s, p, o, n, a, b, c in speed_rows),
        "",
        "Area per dose: patterns per area scale as 1 / step^2; the dense scan's step is "
        f"{DENSE_STEP} px.",
        "",
        "| object | photons | sparse step (px) | area per dose vs the dense scan | "
        "PtychoNN SSIM | linear SSIM | linear + pty-chi SSIM | iterative sparse SSIM | "
        "iterative dense SSIM |",
        "| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |",
        *(f"| {s} | {p:.0e} | {st} | {(st / DENSE_STEP) ** 2:.1f}x | {a:.3f} | {b:.3f} | "
          f"{c:.3f} | {d:.3f} | {e:.3f} |" for s, p, st, a, b, c, d, e in area_rows),
        "",
        f"![phase images]({figure.relative_to(Path(__file__).parent)})",
        "",
        machine_info(),
    ]
    write_section("ptycho", "\n".join(lines))
    print("\n".join(lines))


if __name__ == "__main__":
    main()
