"""Calibration and imaging on a simulated lens-coupled TXM: knife edge, then live super-resolution.

:func:`run_sr_demo` builds a simulated TXM whose camera blurs (Gaussian PSF) and bins,
with a resolution chart as the sample; runs :func:`~lowdose_bluesky.plans.knife_edge_plan`
(the live engine fits the blur, measures the noise and trains the super-resolution
network: the calibration), then :func:`~lowdose_bluesky.plans.super_resolution_plan`
(each radiograph super-resolved as it arrives with that calibration's network, found in
Tiled by query), reads both results back and scores the chart: the contrast of every
line-pair group before and after, the smallest group resolved, and SSIM/PSNR against
the unblurred chart. Ctrl-C behaves as in the tomography demo.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
from bluesky import RunEngine

from .demo import DemoFailed, _AbortOnSigint, demo_dirs, run_and_wait
from .devices.sim import make_sim_txm
from .devices.sim.counting import transmission
from .plans import knife_edge_plan, super_resolution_plan
from .recipes.sr.frames import Normaliser
from .report import format_table
from .sr import binned_sigma, chart_contrasts, smallest_resolved
from .storage import close, connect, results, subscribe_writer

__all__ = ["SR_METHODS", "SRDemoResult", "chart_scores", "run_sr_demo", "sr_demo_table"]

#: Networks of the demo: trained on pairs with the measured noise (one network that
#: denoises and super-resolves) or on noise-free pairs.
SR_METHODS = ("joint", "sr-only")


@dataclass(frozen=True)
class SRDemoResult:
    """What :func:`run_sr_demo` did, with the numbers of the printed table."""

    calibration_uid: str
    calibration_run_uid: str
    run_uid: str
    result_uid: str
    data_dir: Path
    figure: Path
    method: str
    psf_sigma_px: float
    sigma_true_px: float
    calibration: dict[str, Any]
    scores: dict[str, dict[str, Any]]
    metadata: dict[str, Any]
    total_s: float


def chart_scores(image: np.ndarray, truth: np.ndarray, layout: dict[str, Any], *,
                 binning: int, factor: int) -> dict[str, Any]:
    """Line-pair contrasts, smallest resolved bar width, SSIM/PSNR against ``truth``.

    ``image`` is a chart image of ``binning``-binned frames up-sampled by ``factor``;
    when it is on ``truth``'s grid (``factor == binning``) SSIM and PSNR are computed.
    """
    from skimage.metrics import peak_signal_noise_ratio, structural_similarity

    contrasts = chart_contrasts(image, layout, binning=binning, factor=factor)
    out: dict[str, Any] = {
        "contrasts": contrasts,
        "smallest_resolved_px": smallest_resolved(contrasts),
        "smallest_resolved_vertical_px": smallest_resolved(contrasts, "vertical"),
        "smallest_resolved_horizontal_px": smallest_resolved(contrasts, "horizontal"),
    }
    if image.shape == truth.shape:
        out["ssim"] = float(structural_similarity(truth, image, data_range=1.0))
        out["psnr"] = float(peak_signal_noise_ratio(truth, np.clip(image, -1, 2),
                                                    data_range=1.0))
    return out


def _bicubic(frame: np.ndarray, factor: int) -> np.ndarray:
    from skimage.transform import resize

    h, w = frame.shape
    return resize(frame, (h * factor, w * factor), order=3, mode="edge",
                  anti_aliasing=False).astype(np.float32)


def run_sr_demo(data_dir: str | Path, *, method: str = "joint", size: int = 256,
                psf_sigma_px: float = 3.0, binning: int = 2, exposure: float = 2.0,
                training_budget: float | None = 60.0, epochs: int = 200, num_frames: int = 4,
                seed: int = 0, figure: str | Path | None = None,
                log: Callable[[str], None] | None = None) -> SRDemoResult:
    """Calibrate a blurring camera with a knife edge, then super-resolve a chart live.

    Parameters
    ----------
    data_dir
        Frames go to ``data_dir/frames`` (HDF5), the Tiled catalog to ``data_dir/tiled``.
    method
        ``"joint"`` (the network learns the measured noise too) or ``"sr-only"``.
    size
        Sensor width and height (the chart's grid), divisible by ``binning``.
    psf_sigma_px
        True PSF sigma of the simulated camera, in sensor pixels.
    binning
        Camera binning (the network up-samples by 2, back to the sensor's grid when 2).
    exposure
        Seconds per frame of both runs.
    training_budget, epochs
        Training of the network in the calibration.
    num_frames
        Radiographs of the chart super-resolved live.
    seed
        Seed of the noise and the training.
    figure
        PNG file; default ``data_dir/figures/demo-sr-<run uid[:8]>.png``.
    log
        Called with one line at each stage.

    Raises
    ------
    ValueError
        For an unknown method or a bad option, before anything is created.
    DemoInterrupted
        On Ctrl-C.
    DemoFailed
        If an analysis failed (the raw runs are stored).
    """
    if method not in SR_METHODS:
        raise ValueError(f"method must be one of {', '.join(map(repr, SR_METHODS))}, "
                         f"got {method!r}")
    if training_budget is not None and not training_budget > 0:
        raise ValueError(f"training_budget must be a positive number of seconds or None, got "
                         f"{training_budget!r}")
    from .callbacks import LiveEnhancer

    t_start = time.perf_counter()
    root, frames, catalog = demo_dirs(data_dir)
    RE = RunEngine({}, call_returns_result=False, context_managers=[
        lambda engine: _AbortOnSigint(engine, lambda: None)])
    txm = make_sim_txm("resolution_chart", detector_shape=(size, size),
                       psf_sigma_px=psf_sigma_px, binning=binning, seed=seed, data_dir=frames)
    say = log or (lambda line: None)
    client = connect(directory=catalog, readable_storage=[frames])
    live = None
    seen: dict[str, Any] = {}
    RE.subscribe(lambda name, doc: seen.update({name: doc}))

    def aborted() -> str:
        stop = seen.get("stop") or {}
        return (f"run {(seen.get('start') or {}).get('uid')} aborted (exit status "
                f"{stop.get('exit_status')!r})")

    try:
        subscribe_writer(RE, client)
        live = LiveEnhancer(client, process=False, progress=False, recipe_options={
            "knife_edge": {"max_seconds": training_budget, "epochs": epochs, "seed": seed,
                           "learn_noise": method == "joint"}})
        RE.subscribe(live)
        say(f"knife edge: the chart's slanted edge at 4 sub-pixel steps, into {root}")
        cal_run, cal_uid, _ = run_and_wait(
            RE, knife_edge_plan(txm.detector, txm.sample_x, shutter=txm.shutter,
                                exposure=exposure, num_darks=2,
                                md={"purpose": "lowdose-bluesky demo --modality sr"}),
            live, root=root, aborted=aborted,
            scanned=lambda s: say(f"edge frames taken in {s:.1f} s; fitting the blur and "
                                  "training the network (Ctrl-C stops)"))
        cal = results(client, cal_run)
        if cal.status != "complete":
            raise DemoFailed(f"calibration {cal_uid} of run {cal_run} has status "
                             f"{cal.status!r}: {cal.metadata.get('error')}")
        say(f"calibration {cal.uid}: sigma {cal.psf_sigma_px:.3f} camera px; imaging the "
            f"chart ({num_frames} radiographs, super-resolved live)")
        run_uid, result_uid, _ = run_and_wait(
            RE, super_resolution_plan(txm.detector, txm.rotation, sample_x=txm.sample_x,
                                      shutter=txm.shutter, exposure=exposure,
                                      num_frames=num_frames, num_darks=2, num_flats=4,
                                      md={"purpose": "lowdose-bluesky demo --modality sr"}),
            live, root=root, aborted=aborted, scanned=lambda s: None)
        live.close()
        live = None
        res = results(client, run_uid)
        if res.uid != result_uid or res.status != "complete":
            raise DemoFailed(f"result {result_uid} of run {run_uid}: newest stored result is "
                             f"{res.uid} with status {res.status!r}")
        sr = res.super_resolved
        factor = int(res.metadata["factor"])
        layout = txm.phantom_model.describe()["chart"]
        truth = transmission(txm.optics.line_integrals_at(0.0, 0.0), txm.optics.mu)
        raw = _raw_transmission(client, run_uid)
        scores = {
            "raw": chart_scores(raw, truth, layout, binning=binning, factor=1),
            "bicubic": chart_scores(_bicubic(raw, factor), truth, layout, binning=binning,
                                    factor=factor),
            "network": chart_scores(sr[0], truth, layout, binning=binning, factor=factor),
        }
        path = Path(figure) if figure is not None else (
            root / "figures" / f"demo-sr-{run_uid[:8]}.png")
        save_sr_figure(path, truth, _bicubic(raw, factor), sr[0], scores, cal.metadata)
    finally:
        if live is not None:
            live.close()
        close(client)
    return SRDemoResult(
        calibration_uid=cal.uid, calibration_run_uid=cal_run, run_uid=run_uid,
        result_uid=result_uid, data_dir=root,
        figure=path, method=method, psf_sigma_px=cal.psf_sigma_px,
        sigma_true_px=binned_sigma(psf_sigma_px, binning),
        calibration=cal.metadata, scores=scores, metadata=res.metadata,
        total_s=time.perf_counter() - t_start)


def _raw_transmission(client: Any, run_uid: str) -> np.ndarray:
    """The run's first radiograph, normalised by its darks and flats, read from Tiled."""
    from .storage import RAW

    run = client[RAW][run_uid]
    key = run.metadata["start"]["sr"]["image_key"]

    def frames(stream: str) -> np.ndarray:
        return np.asarray(run[stream][key].read(), np.float32)

    normaliser = Normaliser()
    for stream in ("dark", "flat"):
        for frame in frames(stream):
            normaliser.add(stream, frame)
    return normaliser.transmission(frames("primary")[0])


def save_sr_figure(path: Path, truth: np.ndarray, bicubic: np.ndarray, network: np.ndarray,
                   scores: dict[str, dict[str, Any]], calibration: dict[str, Any]) -> Path:
    """The chart: truth, bicubic up-sampling and the network, with the contrast curves."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    path.parent.mkdir(parents=True, exist_ok=True)
    fig, axes = plt.subplots(1, 4, figsize=(16, 4.2))
    for ax, (image, title) in zip(axes[:3], [
            (truth, "chart (unblurred transmission)"),
            (bicubic, f"camera, bicubic x2\nsmallest resolved "
                      f"{scores['bicubic']['smallest_resolved_px']} px"),
            (network, f"super-resolved x2\nsmallest resolved "
                      f"{scores['network']['smallest_resolved_px']} px")], strict=True):
        ax.imshow(image, cmap="gray", vmin=0.0, vmax=1.1)
        ax.set_title(title, fontsize=9)
        ax.axis("off")
    ax = axes[3]
    for name, style in (("raw", ":"), ("bicubic", "--"), ("network", "-")):
        rows = [c for c in scores[name]["contrasts"] if c["orientation"] == "vertical"]
        ax.plot([c["bar_width_px"] for c in rows], [c["contrast"] for c in rows], style,
                marker="o", label=name)
    ax.axhline(0.264, color="grey", lw=0.8)
    ax.set_xlabel("bar width (sensor px)")
    ax.set_ylabel("contrast (vertical bars)")
    ax.set_title(f"knife edge: sigma {calibration['psf_sigma_px']:.3f} camera px", fontsize=9)
    ax.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(path, dpi=90)
    plt.close(fig)
    return path


def sr_demo_table(demo: SRDemoResult) -> str:
    """The demo's numbers as a plain-text table."""
    md, cal = demo.metadata, demo.calibration
    timings = md.get("timings", {})
    training = cal.get("training") or {}
    s = demo.scores

    def quality(name: str) -> str:
        return f"{s[name]['ssim']:.3f} / {s[name]['psnr']:.1f} dB"

    rows = [
        ("PSF sigma, knife edge (camera px)",
         f"{demo.psf_sigma_px:.3f} +- {cal['psf_sigma_std_px']:.3f} (simulated "
         f"{demo.sigma_true_px:.3f}, {100 * (demo.psf_sigma_px / demo.sigma_true_px - 1):+.1f} %)"),
        ("noise at full transmission", f"{cal['noise']['relative']:.4f} "
                                       f"({cal['noise']['source']})"),
        ("smallest resolved bars, camera", f"{s['raw']['smallest_resolved_px']} sensor px"),
        ("smallest resolved bars, bicubic x2", f"{s['bicubic']['smallest_resolved_px']} "
                                               "sensor px"),
        ("smallest resolved bars, network x2", f"{s['network']['smallest_resolved_px']} "
                                               "sensor px"),
        ("SSIM / PSNR, bicubic x2", quality("bicubic")),
        ("SSIM / PSNR, network x2", quality("network")),
        ("network training", f"{training.get('seconds', 0):.1f} s, "
                             f"{training.get('epochs', '?')} epochs ({demo.method}); "
                             f"validation PSNR bicubic "
                             f"{training.get('validation_psnr_bicubic', float('nan')):.2f} "
                             f"-> {training.get('validation_psnr', float('nan')):.2f} dB"),
        ("super-resolution", f"{timings.get('frames_per_s') or 0:.1f} frames/s"),
        ("total", f"{demo.total_s:.1f} s"),
        ("calibration uid", demo.calibration_uid),
        ("run uid", demo.run_uid),
        ("figure", str(demo.figure)),
    ]
    return format_table(rows, ("quantity", "value"))
