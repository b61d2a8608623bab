"""Super-resolution of a lens-coupled TXM camera, calibrated by a knife edge.

1. Calibration: the simulated camera blurs with a Gaussian PSF (sigma in sensor pixels)
   and bins; ``knife_edge_plan`` images the resolution chart's slanted edge at 4
   sub-pixel steps and the slanted-edge fit (ISO 12233 ESF -> LSF -> Gaussian) gives the
   sigma in camera pixels, compared with the simulated one (``binned_sigma``).
2. Resolution: the chart imaged by the same camera (sigma 3 sensor px, binning 2),
   normalised by flats and darks, then (a) bicubic x2, (b) Richardson-Lucy deconvolution
   with the measured PSF (scikit-image) then bicubic x2, (c) the network trained for the
   measured blur and noise ("joint"), (d) the network trained noise-free ("sr-only"),
   (e) BM3D (noise estimated from the frame) then the sr-only network. The contrast of
   every line-pair group and the smallest group resolved (contrast >= 26.4 %, and every
   coarser group too).
3. Held-out samples (never used in training or tuning): projections of the foam and
   cells phantoms through the same camera, and scikit-image's grass texture through the
   same degradation model; SSIM / PSNR against the unblurred transmission.
4. No invented detail: a flat field and pure noise through each method; the output's
   standard deviation against the input's noise.
5. Speed: frames per second of 256 x 256 -> 512 x 512.

Training images (``lowdose_bluesky.sr.training_images``): scikit-image's bundled photos
and rendered edge/line/blob mosaics; grass and gravel are excluded (held out).

Usage: ``python benchmarks/sr.py [--train-seconds 120] [--quick]``
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path
from typing import Any

import h5py
import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt
import numpy as np
from _results import machine_info, write_section
from bluesky import RunEngine
from skimage.metrics import peak_signal_noise_ratio, structural_similarity
from skimage.restoration import richardson_lucy
from skimage.transform import resize

from lowdose_bluesky.baselines import BM3DDenoiser
from lowdose_bluesky.demo_sr import chart_scores
from lowdose_bluesky.devices.sim import make_sim_txm
from lowdose_bluesky.devices.sim.counting import transmission
from lowdose_bluesky.plans import knife_edge_plan, super_resolution_plan
from lowdose_bluesky.recipes.sr.frames import Normaliser
from lowdose_bluesky.recipes.sr.knife_edge import sample_regions
from lowdose_bluesky.recipes.sr.training import train_for_camera
from lowdose_bluesky.sr import (
    background_noise,
    binned_sigma,
    degrade,
    heldout_texture,
    knife_edge_sigma,
)

FIGURES = Path(__file__).with_name("figures")
SIZE, SIGMA, BINNING, EXPOSURE = 256, 3.0, 2, 2.0


def acquire(txm: Any, plan: Any) -> tuple[dict[str, Any], dict[str, list], dict[str, list]]:
    """Run ``plan``; the start document, frames and readings per stream (from the HDF5)."""
    RE = RunEngine({}, call_returns_result=False)
    docs: list[tuple[str, dict]] = []
    RE.subscribe(lambda name, doc: docs.append((name, doc)))
    RE(plan)
    start = next(d for n, d in docs if n == "start")
    resources = {d["uid"]: d for n, d in docs if n == "resource"}
    datums = {d["datum_id"]: d for n, d in docs if n == "datum"}
    streams = {d["uid"]: d["name"] for n, d in docs if n == "descriptor"}
    key = f"{txm.detector.name}_image"
    frames: dict[str, list] = {}
    data: dict[str, list] = {}
    for name, doc in docs:
        if name != "event":
            continue
        datum = datums[doc["data"][key]]
        res = resources[datum["resource"]]
        path = Path(res["root"]) / res["resource_path"]
        with h5py.File(path, "r") as f:
            frame = f["entry/data/data"][datum["datum_kwargs"]["point_number"]]
        stream = streams[doc["descriptor"]]
        frames.setdefault(stream, []).append(frame.astype(np.float32))
        data.setdefault(stream, []).append(doc["data"])
    return start, frames, data


def normalised(frames: dict[str, list]) -> np.ndarray:
    """Primary frames over the flats (darks subtracted where taken)."""
    normaliser = Normaliser()
    for stream in ("dark", "flat"):
        for frame in frames.get(stream, []):
            normaliser.add(stream, frame)
    return normaliser.transmission(np.stack(frames["primary"]))


def calibrate(sigma: float, binning: int, seed: int) -> dict[str, Any]:
    """One knife-edge run on the chart; the fitted sigma and the noise."""
    txm = make_sim_txm("resolution_chart", detector_shape=(SIZE, SIZE), psf_sigma_px=sigma,
                       binning=binning, seed=seed)
    start, frames, data = acquire(txm, knife_edge_plan(
        txm.detector, txm.sample_x, shutter=txm.shutter, exposure=EXPOSURE, num_darks=2))
    t = normalised(frames)
    x = np.array([d["sample_x"] for d in data["primary"]])
    offsets = (x - x[0]) / start["knife_edge"]["pixel_size"]
    regions = sample_regions(start)
    fit = knife_edge_sigma(t, roi=regions["edge"], offsets_px=offsets)
    noise = background_noise(t, regions["background"])
    truth = binned_sigma(sigma, binning)
    return {"sigma": sigma, "binning": binning, "truth": truth, "fit": fit.sigma_px,
            "std": fit.sigma_std_px, "error": fit.sigma_px / truth - 1,
            "noise": noise.relative_std, "fit_obj": fit}


def image_sample(phantom: str, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """One radiograph of a phantom through the camera, and its unblurred transmission."""
    txm = make_sim_txm(phantom, detector_shape=(SIZE, SIZE), psf_sigma_px=SIGMA,
                       binning=BINNING, seed=seed)
    _, frames, _ = acquire(txm, super_resolution_plan(
        txm.detector, txm.rotation, sample_x=txm.sample_x, shutter=txm.shutter,
        exposure=EXPOSURE, num_frames=1, num_darks=2, num_flats=4))
    truth = transmission(txm.optics.line_integrals_at(0.0, 0.0), txm.optics.mu)
    return normalised(frames)[0], truth


def texture_sample(noise: float, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """The held-out grass texture through the degradation model with photon noise."""
    truth = heldout_texture("grass", (SIZE, SIZE), seed=seed)
    low = degrade(truth, factor=BINNING, sigma_px=binned_sigma(SIGMA, BINNING))
    rng = np.random.default_rng(seed)
    return (low + noise * np.sqrt(np.clip(low, 1e-3, None)) * rng.standard_normal(
        low.shape)).astype(np.float32), truth.astype(np.float32)


def bicubic(frame: np.ndarray, factor: int = 2) -> np.ndarray:
    h, w = frame.shape
    return resize(frame, (factor * h, factor * w), order=3, mode="edge",
                  anti_aliasing=False).astype(np.float32)


def gaussian_psf(sigma: float) -> np.ndarray:
    r = int(np.ceil(4 * sigma))
    x = np.arange(-r, r + 1)
    g = np.exp(-x**2 / (2 * sigma**2))
    psf = np.outer(g, g)
    return psf / psf.sum()


def methods(sigma_fit: float, nets: dict[str, Any], rl_iter: int) -> dict[str, Any]:
    psf = gaussian_psf(sigma_fit)
    bm3d = BM3DDenoiser()
    return {
        "bicubic": lambda f: bicubic(f),
        f"Richardson-Lucy ({rl_iter} it.)": lambda f: bicubic(
            richardson_lucy(np.clip(f, 1e-3, None), psf, num_iter=rl_iter, clip=False)),
        "network, joint": lambda f: nets["joint"].predict(f),
        "network, sr-only": lambda f: nets["sr-only"].predict(f),
        "BM3D then sr-only": lambda f: nets["sr-only"].predict(bm3d(f)),
    }


def quality(image: np.ndarray, truth: np.ndarray) -> tuple[float, float]:
    return (float(structural_similarity(truth, image, data_range=1.0)),
            float(peak_signal_noise_ratio(truth, np.clip(image, -1, 2), data_range=1.0)))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--train-seconds", type=float, default=120.0)
    parser.add_argument("--quick", action="store_true")
    args = parser.parse_args()
    seconds = 10.0 if args.quick else args.train_seconds
    lines = [f"`python benchmarks/sr.py --train-seconds {seconds:g}`", "", machine_info(), ""]

    # 1. calibration accuracy
    cases = [(1.5, 1), (2.0, 1), (3.0, 1), (2.0, 2), (3.0, 2), (4.0, 2)]
    if args.quick:
        cases = cases[:2]
    lines += ["### Knife-edge calibration (resolution chart, 4 sub-pixel steps x 2 frames, "
              f"{EXPOSURE:g} s)", "",
              "| simulated sigma (sensor px) | binning | truth (camera px) | fitted +- std "
              "(camera px) | error | noise (relative) |", "| ---: | ---: | ---: | ---: | "
              "---: | ---: |"]
    calib = {}
    for sigma, binning in cases:
        c = calibrate(sigma, binning, seed=11)
        calib[(sigma, binning)] = c
        lines.append(f"| {sigma:g} | {binning} | {c['truth']:.3f} | {c['fit']:.3f} +- "
                     f"{c['std']:.3f} | {100 * c['error']:+.1f} % | {c['noise']:.4f} |")
        print(lines[-1], flush=True)
    cal = calib.get((SIGMA, BINNING)) or calibrate(SIGMA, BINNING, seed=11)

    # 2. networks for the measured camera
    nets, records = {}, {}
    for name, noise in (("joint", cal["noise"]), ("sr-only", 0.0)):
        t = time.perf_counter()
        nets[name], records[name] = train_for_camera(cal["fit"], noise, factor=2,
                                                     max_seconds=seconds, epochs=10_000,
                                                     seed=0)
        print(f"trained {name} in {time.perf_counter() - t:.0f} s: {records[name]}",
              flush=True)

    # 3. the chart
    chart_txm = make_sim_txm("resolution_chart", detector_shape=(SIZE, SIZE),
                             psf_sigma_px=SIGMA, binning=BINNING, seed=21)
    layout = chart_txm.phantom_model.describe()["chart"]
    chart, chart_truth = image_sample("resolution_chart", seed=21)
    rl_iter = 30
    ms = methods(cal["fit"], nets, rl_iter)
    scores = {"camera": chart_scores(chart, chart_truth, layout, binning=BINNING, factor=1)}
    outputs = {}
    for name, fn in ms.items():
        outputs[name] = fn(chart)
        scores[name] = chart_scores(outputs[name], chart_truth, layout, binning=BINNING,
                                    factor=2)
    widths = sorted({c["bar_width_px"] for c in scores["camera"]["contrasts"]})
    lines += ["", f"### Resolution chart (sigma {SIGMA:g} sensor px, binning {BINNING}, "
              f"fitted {cal['fit']:.3f} camera px; noise {cal['noise']:.3f})", "",
              "Contrast of the vertical / horizontal bar groups (1 = full modulation); "
              "resolved: >= 0.264 (Rayleigh) with every coarser group. A contrast well above 1 "
              "or below 0 is amplified noise or ringing, not resolution: read the smallest "
              "resolved group together with those and the chart SSIM.", "",
              "| method | " + " | ".join(f"{w:g} px" for w in widths)
              + " | smallest resolved (sensor px) | chart SSIM / PSNR |",
              "| --- | " + " | ".join("---:" for _ in widths) + " | ---: | ---: |"]
    for name, s in scores.items():
        cells = []
        for w in widths:
            v = [c["contrast"] for c in s["contrasts"] if c["bar_width_px"] == w
                 and c["orientation"] == "vertical"]
            h = [c["contrast"] for c in s["contrasts"] if c["bar_width_px"] == w
                 and c["orientation"] == "horizontal"]
            cells.append(f"{v[0]:.2f} / {h[0]:.2f}" if v and h else "-")
        q = (f"{s['ssim']:.3f} / {s['psnr']:.1f} dB" if "ssim" in s else "-")
        lines.append(f"| {name} | " + " | ".join(cells)
                     + f" | {s['smallest_resolved_px']} | {q} |")
    print("\n".join(lines[-len(scores) - 2:]), flush=True)

    # 4. held-out samples
    samples = {"foam (phantom)": image_sample("foam", seed=31),
               "cells (phantom)": image_sample("cells", seed=32),
               "grass (texture)": texture_sample(cal["noise"], seed=33)}
    lines += ["", "### Held-out samples: SSIM / PSNR against the unblurred transmission", "",
              "| method | " + " | ".join(samples) + " |",
              "| --- | " + " | ".join("---:" for _ in samples) + " |"]
    for name, fn in ms.items():
        cells = []
        for frame, truth in samples.values():
            ssim, psnr = quality(fn(frame), truth)
            cells.append(f"{ssim:.3f} / {psnr:.1f} dB")
        lines.append(f"| {name} | " + " | ".join(cells) + " |")
        print(lines[-1], flush=True)

    # 5. no invented detail
    rng = np.random.default_rng(5)
    n_in = cal["noise"]
    flat = (1.0 + n_in * rng.standard_normal((SIZE // 2, SIZE // 2))).astype(np.float32)
    noise_img = (0.6 + 0.1 * rng.standard_normal((SIZE // 2, SIZE // 2))).astype(np.float32)
    lines += ["", "### No invented detail: output standard deviation / input standard "
              "deviation", "", "| method | flat field (noise "
              f"{n_in:.3f}) | pure noise (0.6 +- 0.1) |", "| --- | ---: | ---: |"]
    for name, fn in ms.items():
        lines.append(f"| {name} | {np.std(fn(flat)) / np.std(flat):.2f} | "
                     f"{np.std(fn(noise_img)) / np.std(noise_img):.2f} |")

    # 6. speed
    frames = np.random.default_rng(0).uniform(0.3, 1.0, (16, 256, 256)).astype(np.float32)
    lines += ["", "### Speed: 256 x 256 -> 512 x 512", "", "| precision | frames/s |",
              "| --- | ---: |"]
    net = nets["joint"]
    for dtype in ("auto", "float32"):
        net.predict(frames[:4], dtype=dtype)
        best = 0.0
        for _ in range(3):
            t = time.perf_counter()
            net.predict(frames, dtype=dtype)
            best = max(best, len(frames) / (time.perf_counter() - t))
        lines.append(f"| {dtype} ({net.inference_dtype(dtype)}) | {best:.1f} |")
    lines += ["", "Training: " + "; ".join(
        f"{k}: {r['epochs']} epochs in {r['seconds']:.0f} s, validation PSNR bicubic "
        f"{r['validation_psnr_bicubic']:.2f} -> network {r['validation_psnr']:.2f} dB"
        for k, r in records.items())]

    # figure
    FIGURES.mkdir(exist_ok=True)
    fig, axes = plt.subplots(2, 4, figsize=(16, 8.4))
    panels = [("truth", chart_truth), ("bicubic", outputs["bicubic"]),
              (f"Richardson-Lucy ({rl_iter} it.)", outputs[f"Richardson-Lucy ({rl_iter} it.)"]),
              ("network, joint", outputs["network, joint"])]
    for ax, (title, img) in zip(axes[0], panels, strict=True):
        ax.imshow(img[96:, 96:], cmap="gray", vmin=0.0, vmax=1.1)
        ax.set_title(title, fontsize=9)
        ax.axis("off")
    fit = cal["fit_obj"]
    axes[1, 0].plot(fit.esf_x, fit.esf)
    axes[1, 0].set_title("edge spread function", fontsize=9)
    axes[1, 1].plot(fit.lsf_x, fit.lsf)
    axes[1, 1].set_title(f"line spread function: sigma {fit.sigma_px:.3f} px", fontsize=9)
    for name, s in scores.items():
        rows = [c for c in s["contrasts"] if c["orientation"] == "vertical"]
        axes[1, 2].plot([c["bar_width_px"] for c in rows], [c["contrast"] for c in rows],
                        marker="o", label=name)
    axes[1, 2].axhline(0.264, color="grey", lw=0.8)
    axes[1, 2].set_xlabel("bar width (sensor px)")
    axes[1, 2].legend(fontsize=7)
    frame, truth = samples["foam (phantom)"]
    axes[1, 3].imshow(nets["joint"].predict(frame)[64:192, 64:192], cmap="gray")
    axes[1, 3].set_title("foam (held out), network", fontsize=9)
    axes[1, 3].axis("off")
    fig.tight_layout()
    fig.savefig(FIGURES / "sr.png", dpi=80)
    plt.close(fig)
    lines += ["", "![super-resolution](figures/sr.png)"]
    body = "## Super-resolution (benchmarks/sr.py)\n\n" + "\n".join(lines)
    if not args.quick:
        write_section("sr", body)
    print(body)


if __name__ == "__main__":
    main()
