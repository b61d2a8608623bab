"""The whole ptychography job on a simulated setup: scan, live learned model, stitched phase.

:func:`run_ptycho_demo` builds a simulated ptychography setup, runs
:func:`~lowdose_bluesky.plans.lowdose_ptycho_plan` (a dense training strip, then the rest of
the field at zero overlap) in a :class:`bluesky.RunEngine` with the ``TiledWriter`` and a
:class:`~lowdose_bluesky.callbacks.LiveEnhancer` subscribed, waits for the result, reads it
back from Tiled and scores the phase images against the true object: pty-chi on the dense
field, the learned model on the sparse field. Ctrl-C behaves as in the tomography demo.
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
from .demo_xrf import _PixelProgress
from .devices.sim.ptycho import make_sim_ptycho
from .plans import lowdose_ptycho_plan
from .ptycho import phase_scores, remove_phase_offset
from .report import format_table
from .storage import RAW, close, connect, results, subscribe_writer

__all__ = ["PTYCHO_METHODS", "PtychoDemoResult", "ptycho_demo_table", "run_ptycho_demo"]

#: Learned models of the demo: the linear retrieval (the recipe's default), PtychoNN
#: (amplitude and phase) or its phase-only variant.
PTYCHO_METHODS = ("linear", "ptychonn", "phase-only")


@dataclass(frozen=True)
class PtychoDemoResult:
    """What :func:`run_ptycho_demo` did, with the numbers of the printed table."""

    run_uid: str
    result_uid: str
    data_dir: Path
    figure: Path
    method: str
    photons: float
    patterns: dict[str, int]
    overlap: dict[str, float | None]
    iterative: dict[str, float]
    network: dict[str, float]
    metadata: dict[str, Any]
    scan_s: float
    total_s: float


def run_ptycho_demo(data_dir: str | Path, *, method: str = "linear", epochs: int = 200,
                    training_budget: float | None = 60.0, seed: int = 0,
                    progress: bool = True, figure: str | Path | None = None,
                    log: Callable[[str], None] | None = None) -> PtychoDemoResult:
    """Scan a simulated object, train a model on the dense strip, stitch the sparse field.

    Parameters
    ----------
    data_dir
        Patterns go to ``data_dir/frames`` (HDF5), the Tiled catalog to ``data_dir/tiled``.
    method
        ``"linear"`` (the learned linear retrieval), ``"ptychonn"`` (amplitude and
        phase) or ``"phase-only"``.
    epochs, training_budget
        Training of the network: at most ``epochs``, stopped after ``training_budget``
        seconds (``None``: epochs only).
    seed
        Seed of the object, the counting noise and the training.
    progress
        A tqdm bar over the patterns.
    figure
        PNG file; default ``data_dir/figures/demo-ptycho-<run uid[:8]>.png``.
    log
        Called with one line at each stage.

    Raises
    ------
    ValueError
        For an unknown method or a bad option, before anything is created.
    DemoInterrupted
        On Ctrl-C.
    DemoFailed
        If the analysis failed (the raw run is stored).
    """
    if method not in PTYCHO_METHODS:
        raise ValueError(f"method must be one of {', '.join(map(repr, PTYCHO_METHODS))}, "
                         f"got {method!r}")
    if isinstance(epochs, bool) or not isinstance(epochs, int) or epochs < 1:
        raise ValueError(f"epochs must be a positive integer, got {epochs!r}")
    if training_budget is not None and not training_budget > 0:
        raise ValueError(f"training_budget must be a positive number of seconds or None, got "
                         f"{training_budget!r}")
    from .callbacks import LiveEnhancer

    t_start = time.perf_counter()
    root, frames, catalog = demo_dirs(data_dir)
    RE = RunEngine({}, call_returns_result=False, context_managers=[
        lambda engine: _AbortOnSigint(engine, lambda: None)])
    sim = make_sim_ptycho(seed=seed, data_dir=frames)
    say = log or (lambda line: None)
    plan = lowdose_ptycho_plan(**sim.devices, md={"purpose": "lowdose-bluesky demo "
                                                             "--modality ptycho"})
    clock = _PixelProgress(sim.detector.name, 0, progress, desc="patterns", unit="pattern",
                           on_start=lambda uid: say(
        f"run {uid}: a dense strip, then the rest of the field at zero overlap, into {root} "
        "(Ctrl-C stops)"))
    client = connect(directory=catalog, readable_storage=[frames])
    live = None
    try:
        subscribe_writer(RE, client)
        live = LiveEnhancer(client, process=False, progress=False, recipe_options={
            "ptycho": {"epochs": epochs, "max_seconds": training_budget, "seed": seed,
                       "phase_only": method == "phase-only",
                       "model": "linear" if method == "linear" else "ptychonn"}})
        RE.subscribe(clock)
        RE.subscribe(live)

        def aborted() -> str:
            clock.close()
            return (f"scan aborted after {clock.pixels} patterns; run {clock.run_uid} "
                    f"(exit status {clock.exit_status!r})")

        run_uid, result_uid, scan_s = run_and_wait(
            RE, plan, live, root=root, aborted=aborted,
            scanned=lambda seconds: say(f"scan done in {seconds:.1f} s; waiting for the "
                                        "iterative labels and the learned model (Ctrl-C stops)"))
        live.close()
        live = None
        say("reading the phase images back from Tiled, drawing the figure")
        res = results(client, run_uid)
        if res.uid != result_uid or res.status != "complete":
            raise DemoFailed(f"result {result_uid} of run {run_uid}: newest stored result is "
                             f"{res.uid} with status {res.status!r}, not a complete one")
        truth = np.angle(sim.obj)
        iterative, network = res.phase_iterative, res.phase
        scores_i = phase_scores(iterative, truth)
        scores_n = phase_scores(network, truth)
        md = res.metadata
        photons = float(client[RAW][run_uid].metadata["start"]["ptycho"]["photons_per_pattern"])
        path = Path(figure) if figure is not None else (
            root / "figures" / f"demo-ptycho-{run_uid[:8]}.png")
        save_ptycho_figure(path, truth, iterative, network, scores_i, scores_n, md)
    finally:
        clock.close()
        close(client)
    return PtychoDemoResult(
        run_uid=run_uid, result_uid=result_uid, data_dir=root, figure=path, method=method,
        photons=photons, patterns=dict(md["patterns"]),
        overlap=dict(md["overlap"]), iterative=scores_i, network=scores_n, metadata=md,
        scan_s=scan_s, total_s=time.perf_counter() - t_start)


def save_ptycho_figure(path: Path, truth: np.ndarray, iterative: np.ndarray,
                       network: np.ndarray, scores_i: dict[str, float],
                       scores_n: dict[str, float], md: dict[str, Any]) -> Path:
    """Truth, pty-chi on the dense field and the learned model on the sparse field."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    path.parent.mkdir(parents=True, exist_ok=True)
    fig, axes = plt.subplots(1, 3, figsize=(12, 4.2))
    lo, hi = float(np.min(truth)) - 0.2, float(np.max(truth)) + 0.2
    overlap = md.get("overlap", {})
    model = md.get("model") or {}
    label = ("linear retrieval" if model.get("model") == "linear" else
             "PtychoNN phase-only" if model.get("phase_only") else "PtychoNN")
    # as scored: each estimate with its global phase offset removed
    iterative, network = (remove_phase_offset(image, truth) for image in (iterative, network))
    panels = [
        (truth, "true phase"),
        (iterative, f"pty-chi, dense field (overlap {overlap.get('train') or 0:.2f})\n"
                    f"SSIM {scores_i['ssim']:.3f}"),
        (network, f"{label}, sparse field (overlap {overlap.get('sparse') or 0:.2f})\n"
                  f"SSIM {scores_n['ssim']:.3f}"),
    ]
    for ax, (image, title) in zip(axes, panels, strict=True):
        ax.imshow(image, cmap="gray", vmin=lo, vmax=hi)
        ax.set_title(title, fontsize=9)
        ax.axis("off")
    fig.tight_layout()
    fig.savefig(path, dpi=90, bbox_inches="tight")
    plt.close(fig)
    return path


def ptycho_demo_table(demo: PtychoDemoResult) -> str:
    """The demo's numbers as a plain-text table."""
    md = demo.metadata
    timings = md.get("timings", {})
    model = md.get("model", {})
    rows = [
        ("patterns", f"{demo.patterns['train']} dense (overlap {demo.overlap['train']:.2f}), "
                     f"{demo.patterns['sparse']} sparse (overlap {demo.overlap['sparse']:.2f})"),
        ("photons per pattern", f"{demo.photons:.3g}"),
        ("phase SSIM / PSNR, pty-chi dense field",
         f"{demo.iterative['ssim']:.3f} / {demo.iterative['psnr']:.1f} dB"),
        (f"phase SSIM / PSNR, {demo.method} sparse field",
         f"{demo.network['ssim']:.3f} / {demo.network['psnr']:.1f} dB"),
        ("iterative reconstruction", f"{md.get('iterative', {}).get('seconds', 0):.1f} s "
                                     "(pty-chi LSQML)"),
        ("model training", f"{model.get('seconds', 0):.1f} s, "
                           + (f"{model.get('pairs')} pairs (ridge fit)" if "pairs" in model
                              else f"{model.get('epochs', '?')} epochs")),
        ("inference", f"{timings.get('patterns_per_s') or 0:.0f} patterns/s"),
        ("scan", f"{demo.scan_s:.1f} s"),
        ("total", f"{demo.total_s:.1f} s"),
        ("run uid", demo.run_uid),
        ("result uid", demo.result_uid),
        ("figure", str(demo.figure)),
        ("data", str(demo.data_dir)),
    ]
    return format_table(rows, ("quantity", "value"))
