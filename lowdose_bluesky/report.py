"""What one low-dose run and its analysis look like: data read back from Tiled, a figure.

:func:`collect_report` reads a raw run (``client["raw"][uid]``) and its newest result
(:func:`lowdose_bluesky.storage.results`) back from Tiled: one short-exposure
projection, its enhanced version and the long-exposure reference frame at the same angle
(flat- and dark-field corrected with the run's own flats and darks at the matching
exposure), the central reconstructed slices, the training history and, for a simulated
run, the phantom rebuilt from the start document and the PSNR/SSIM of both
reconstructions against it. :func:`save_report_figure` draws all of it with the
non-GUI Agg canvas; :func:`summary_lines` turns it into text.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from .metrics import fine_detail, psnr, ssim
from .recon import normalize
from .storage import RAW, LowDoseResult, results

__all__ = [
    "Quality",
    "RunReport",
    "collect_report",
    "format_table",
    "save_report_figure",
    "summary_lines",
]


@dataclass(frozen=True)
class Quality:
    """PSNR (dB), SSIM and fine detail (:func:`~lowdose_bluesky.metrics.fine_detail`) of one
    reconstruction against the phantom."""

    psnr: float
    ssim: float
    fine: float = float("nan")


@dataclass
class RunReport:
    """One raw run and its newest result, as read back from Tiled.

    Images are float32. Projections are transmissions (flat/dark corrected); slices are
    in phantom units (reconstruction divided by the simulation's ``mu``) when the run
    is simulated, else in attenuation per pixel.
    """

    run_uid: str
    start: dict[str, Any]
    stop: dict[str, Any]
    shapes: dict[str, tuple[int, ...]]
    result: LowDoseResult | None = None
    result_error: str | None = None
    projection_index: int | None = None
    projection_angle: float | None = None
    reference_angle: float | None = None
    raw_projection: np.ndarray | None = None
    enhanced_projection: np.ndarray | None = None
    long_reference: np.ndarray | None = None
    slice_index: int | None = None
    raw_slice: np.ndarray | None = None
    enhanced_slice: np.ndarray | None = None
    phantom_slice: np.ndarray | None = None
    slice_units: str = "attenuation per pixel"
    quality: dict[str, Quality] = field(default_factory=dict)
    data_range: float | None = None

    @property
    def result_metadata(self) -> dict[str, Any]:
        """The result's metadata (empty without a result)."""
        return {} if self.result is None else self.result.metadata

    @property
    def history(self) -> list[dict[str, Any]]:
        """Training history, one record per epoch (empty without a trained model)."""
        return list(self.result_metadata.get("model", {}).get("history") or [])


def _image_key(start: dict[str, Any]) -> str:
    try:
        return start["lowdose"]["image_key"]
    except (KeyError, TypeError):
        raise ValueError(f"run {start.get('uid')!r} was not acquired by lowdose_tomo_plan "
                         "(no 'lowdose' section in its start document)") from None


def primary_angles(run: Any, lowdose: dict[str, Any]) -> np.ndarray:
    """Angles (deg) of a stored run's primary frames.

    A stepped rotation has the stage readback in every event; a flown one has the
    angle the detector read back with each frame (``lowdose["angle_key"]``) or, when
    it records none, the trigger schedule of the start document.
    """
    primary = run["primary"]
    for key in (lowdose["rotation_key"], lowdose.get("angle_key")):
        if key and key in primary:
            return np.asarray(primary[key].read(), dtype=float).reshape(-1)
    fly = lowdose.get("fly") or {}
    if "angles" in fly:
        return np.asarray(fly["angles"], dtype=float)
    raise ValueError(f"the primary stream has no {lowdose['rotation_key']!r} column and the "
                     "start document no fly-scan schedule")


def _frame(node: Any, index: int) -> np.ndarray:
    """One 2-D frame of an image column (StreamResource keys may carry a length-1 axis)."""
    frame = np.asarray(node[index], dtype=np.float32)
    return frame.reshape(frame.shape[-2:])


def _by_exposure(stream: Any, image_key: str, exposure_key: str, exposure: float
                 ) -> np.ndarray:
    """The frames of ``stream`` taken at ``exposure`` seconds, ``(K, H, W)`` float32."""
    exposures = np.asarray(stream[exposure_key].read(), dtype=float)
    where = np.flatnonzero(np.isclose(exposures, exposure))
    if where.size == 0:
        raise ValueError(f"no frame at exposure {exposure} s in this stream (exposures "
                         f"present: {sorted(set(exposures.tolist()))})")
    frames = np.asarray(stream[image_key].read(), dtype=np.float32)
    return frames.reshape(frames.shape[0], *frames.shape[-2:])[where]


def rebuild_phantom(start: dict[str, Any]) -> np.ndarray | None:
    """The ground-truth volume of a simulated run, rebuilt from its start document.

    Returns ``None`` for a run without simulation metadata or whose phantom cannot be
    rebuilt identically (its description differs from the rebuilt one's).
    """
    from .phantoms import phantom_from_name

    desc = (start.get("simulation") or {}).get("phantom")
    if not desc:
        return None
    try:
        h, w = int(desc["shape"][0]), int(desc["shape"][1])
        phantom = phantom_from_name(desc["name"], (h, w), seed=desc.get("seed"))
    except (KeyError, TypeError, ValueError):
        return None
    if phantom.describe() != desc:
        return None
    return phantom.volume()


def collect_report(client: Any, run_uid: str, *, phantom: np.ndarray | None = None
                   ) -> RunReport:
    """Read a raw run and its newest result back from Tiled.

    Parameters
    ----------
    client
        Root Tiled client (:func:`lowdose_bluesky.storage.connect`).
    run_uid
        Uid of the raw run.
    phantom
        Ground-truth volume ``(H, W, W)``; default: rebuilt from the start document
        of a simulated run (none for a real one).

    Returns
    -------
    RunReport

    Raises
    ------
    ValueError
        If there is no such raw run, or it was not acquired by ``lowdose_tomo_plan``.
    """
    if RAW not in client:
        raise ValueError(f"no raw runs in this Tiled catalog (no {RAW!r} container); "
                         f"cannot show run {run_uid!r}")
    try:
        # a path lookup: the run catalog's own lookup would try a partial-uid search
        # (unsupported by this server) for an unknown uid
        run = client[f"{RAW}/{run_uid}"]
    except KeyError:
        raise ValueError(f"no raw run with uid {run_uid!r} in this Tiled catalog") from None
    start = dict(run.metadata["start"])
    stop = dict(run.metadata.get("stop") or {})
    key = _image_key(start)
    shapes = {name: tuple(run[name][key].shape) for name in start["lowdose"]["streams"]
              if name in run}
    report = RunReport(run_uid=run_uid, start=start, stop=stop, shapes=shapes)
    try:
        report.result = results(client, run_uid)
    except KeyError as exc:
        report.result_error = str(exc.args[0]) if exc.args else str(exc)
    _add_projections(report, run)
    _add_slices(report, phantom)
    return report


def _add_projections(report: RunReport, run: Any) -> None:
    """Fill the projection panels: primary frame nearest a reference angle, its reference."""
    start = report.start
    lowdose = start["lowdose"]
    key, rot, exp = lowdose["image_key"], lowdose["rotation_key"], lowdose["exposure_key"]
    if not all(s in report.shapes for s in ("dark", "flat", "reference", "primary")):
        return
    if report.shapes["primary"][0] == 0 or report.shapes["reference"][0] == 0:
        return
    short, long = float(start["short_exposure"]), float(start["long_exposure"])
    reference = run["reference"]
    ref_angles = np.asarray(reference[rot].read(), dtype=float)
    ref_exposures = np.asarray(reference[exp].read(), dtype=float)
    long_at = np.flatnonzero(np.isclose(ref_exposures, long))
    if long_at.size == 0:
        return
    angles = primary_angles(run, lowdose)
    # the reference angle with the nearest primary projection
    gaps = [float(np.min(np.abs(angles - ref_angles[i]))) for i in long_at]
    pick = int(long_at[int(np.argmin(gaps))])
    index = int(np.argmin(np.abs(angles - ref_angles[pick])))
    darks, flats = run["dark"], run["flat"]
    dark_short = _by_exposure(darks, key, exp, short)
    flat_short = _by_exposure(flats, key, exp, short)
    dark_long = _by_exposure(darks, key, exp, long)
    flat_long = _by_exposure(flats, key, exp, long)
    frame = _frame(run["primary"][key], index)
    report.raw_projection = normalize(frame, flat_short, dark_short)
    long_frame = _frame(reference[key], pick)
    report.long_reference = normalize(long_frame, flat_long, dark_long)
    report.projection_index, report.projection_angle = index, float(angles[index])
    report.reference_angle = float(ref_angles[pick])
    res = report.result
    if res is not None and "enhanced" in res.node:
        node = res.node["enhanced"]
        if index < node.shape[0]:
            report.enhanced_projection = np.asarray(node[index], dtype=np.float32)


def _add_slices(report: RunReport, phantom: np.ndarray | None) -> None:
    """Fill the slice panels and, with a phantom, the quality numbers."""
    res = report.result
    if res is None or "reconstruction" not in res.node or "reconstruction_raw" not in res.node:
        return
    mu = (report.start.get("simulation") or {}).get("mu")
    scale = 1.0 / float(mu) if mu else 1.0
    if mu:
        report.slice_units = "phantom units"
    rec = np.asarray(res.node["reconstruction"].read(), dtype=np.float32) * scale
    rec_raw = np.asarray(res.node["reconstruction_raw"].read(), dtype=np.float32) * scale
    mid = rec.shape[0] // 2
    report.slice_index = mid
    report.raw_slice, report.enhanced_slice = rec_raw[mid], rec[mid]
    if phantom is None and mu:
        phantom = rebuild_phantom(report.start)
    if phantom is None or phantom.shape != rec.shape:
        return
    truth = np.asarray(phantom, dtype=np.float32)
    report.phantom_slice = truth[mid]
    rng = float(truth.max() - truth.min())
    if not rng > 0:
        return
    report.data_range = rng
    for name, volume in (("raw", rec_raw), ("enhanced", rec)):
        report.quality[name] = Quality(psnr=float(psnr(volume, truth, data_range=rng)),
                                       ssim=float(ssim(volume, truth, data_range=rng)),
                                       fine=fine_detail(volume, truth))


# --------------------------------------------------------------------------- text
def format_table(rows: list[tuple[str, str]], header: tuple[str, str] | None = None) -> str:
    """Two aligned columns (label, value) as plain text.

    Parameters
    ----------
    rows
        ``(label, value)`` pairs.
    header
        Optional column titles, underlined.

    Returns
    -------
    str
    """
    all_rows = ([header] if header else []) + list(rows)
    width = max(len(label) for label, _ in all_rows)
    lines = []
    for i, (label, value) in enumerate(all_rows):
        lines.append(f"{label:<{width}}  {value}".rstrip())
        if header and i == 0:
            lines.append(f"{'-' * width}  {'-' * max(5, len(value))}")
    return "\n".join(lines)


def _seconds(value: Any) -> str:
    return "-" if value is None else f"{float(value):.1f} s"


def _blind(start: dict[str, Any]) -> bool:
    """Whether the run was acquired blind (``reference_angles=()``, no long exposure)."""
    return bool((start.get("lowdose") or {}).get("blind"))


def summary_lines(report: RunReport) -> list[tuple[str, str]]:
    """``(label, value)`` rows describing the raw run and its result."""
    s = report.start
    args = s.get("plan_args", {})
    if _blind(s):
        exposures = (f"short {s.get('short_exposure')} s only (blind run: long "
                     f"{s.get('long_exposure')} s nominal, none acquired)")
    else:
        exposures = (f"short {s.get('short_exposure')} s, long {s.get('long_exposure')} s "
                     f"at {s.get('reference_angles')} deg")
    rows: list[tuple[str, str]] = [
        ("raw run", report.run_uid),
        ("plan", f"{s.get('plan_name')} (scan_id {s.get('scan_id')}, exit status "
                 f"{report.stop.get('exit_status', 'unknown (no stop document)')})"),
        ("plan args", ", ".join(f"{k}={v}" for k, v in args.items())),
        ("exposures", exposures),
        ("dose ratio", f"{s.get('dose_ratio'):g}" if s.get("dose_ratio") else "-"),
        ("detector shape", str(tuple(s.get("detector_shape", ())))),
    ]
    for name, shape in report.shapes.items():
        rows.append((f"stream {name}", str(shape)))
    sim = s.get("simulation")
    if sim:
        ph = sim.get("phantom", {})
        rows.append(("simulation", f"phantom {ph.get('name')} {tuple(ph.get('shape', ()))}, "
                                   f"seed {sim.get('seed')}, flux {sim.get('flux')} counts/s, "
                                   f"mu {sim.get('mu'):.4g}"))
    if report.result is None:
        rows.append(("result", f"none ({report.result_error})"))
        return rows
    md = report.result_metadata
    model = md.get("model", {})
    config = model.get("config") or {}
    history = model.get("history") or []
    timings = md.get("timings", {})
    settings = md.get("settings", {})
    rows += [
        ("result", report.result.uid),
        ("status", str(md.get("status"))),
        ("error", str(md.get("error") or "-")),
        ("method", str(md.get("method", "supervised"))
                   + "".join(f", {stage} {'used' if g.get('use_model') else 'NOT used (gate)'}"
                             for stage, g in (md.get("gates") or {}).items())),
        ("Noise2Inverse", "-" if "noise2inverse" not in md else
         f"{_seconds(timings.get('noise2inverse_training_s'))} training, "
         f"{md['noise2inverse'].get('config', {}).get('splits', '-')} splits"),
        ("model", f"{model.get('arch')} on {config.get('device', settings.get('device', '-'))}"
                  + (f", pretrained {model['pretrained']}" if model.get("pretrained") else "")),
        ("epochs", f"{len(history)} run of {config.get('epochs', settings.get('epochs', '-'))} "
                   f"(best {config.get('best_epoch', '-')}, stopped: "
                   f"{config.get('stopped', '-')})"),
        ("training / enhancement", f"{_seconds(timings.get('training_s'))} / "
                                   f"{_seconds(timings.get('enhancement_s'))}"),
        ("reconstruction", _seconds(timings.get("reconstruction_s"))),
        ("result ready after the last frame",
         _seconds(timings.get("result_after_last_frame_s"))),
        ("rotation centre", "-" if md.get("center") is None else f"{md['center']:.2f} px"),
    ]
    for name, q in report.quality.items():
        rows.append((f"{name} reconstruction vs phantom",
                     f"PSNR {q.psnr:.2f} dB, SSIM {q.ssim:.3f}   fine detail {q.fine:.3f}"))
    return rows


# ------------------------------------------------------------------------- figure
def draw_report(fig: Any, report: RunReport) -> None:
    """Draw ``report`` into the matplotlib figure ``fig`` (cleared first).

    Top row: the short-exposure projection raw and enhanced, the long-exposure reference
    at the same angle (one grey scale for all three) and their line profiles along the
    marked row. Bottom row: the central reconstructed slice raw and enhanced, the
    phantom's, and the training curve.

    Parameters
    ----------
    fig
        A :class:`matplotlib.figure.Figure`.
    """
    fig.clear()
    axes = fig.subplots(2, 4)
    s = report.start
    short, long = s.get("short_exposure"), s.get("long_exposure")
    row, low, high = None, 0.0, 1.0
    if report.long_reference is not None:
        row = report.long_reference.shape[0] // 2
        low, high = np.percentile(report.long_reference, (0.5, 99.5))
    at = "" if report.projection_angle is None else f" at {report.projection_angle:.1f} deg"
    panels = (
        (axes[0, 0], report.raw_projection, f"raw, short exposure ({short:g} s){at}"),
        (axes[0, 1], report.enhanced_projection, f"enhanced{at}"),
        (axes[0, 2], report.long_reference, f"long exposure ({long:g} s) at "
         f"{report.reference_angle or 0:.1f} deg"),
    )
    for ax, image, title in panels:
        ax.set_axis_off()
        ax.set_title(title, fontsize=10)
        if image is None:
            ax.text(0.5, 0.5, _missing(report), ha="center", va="center", wrap=True,
                    transform=ax.transAxes)
            continue
        ax.imshow(image, cmap="gray", vmin=low, vmax=high)
        ax.axhline(row, color="C3", lw=0.8, ls="--")
    prof = axes[0, 3]
    if row is not None:
        for image, label, style in ((report.raw_projection, "raw", "C0"),
                                    (report.enhanced_projection, "enhanced", "C1"),
                                    (report.long_reference, "long exposure", "k")):
            if image is not None:
                prof.plot(image[row], color=style, lw=1.0 if label == "raw" else 1.4,
                          label=label)
        prof.legend(fontsize=8)
    prof.set_title(f"transmission along row {row}", fontsize=10)
    prof.set_xlabel("column (px)")

    slices = (
        (axes[1, 0], report.raw_slice, "raw reconstruction", report.quality.get("raw")),
        (axes[1, 1], report.enhanced_slice, "enhanced reconstruction",
         report.quality.get("enhanced")),
        (axes[1, 2], report.phantom_slice, "phantom (ground truth)", None),
    )
    vmin, vmax = None, None
    if report.phantom_slice is not None:
        vmin, vmax = float(report.phantom_slice.min()), float(report.phantom_slice.max())
    elif report.enhanced_slice is not None:
        vmin, vmax = (float(v) for v in np.percentile(report.enhanced_slice, (0.5, 99.5)))
    for ax, image, title, q in slices:
        ax.set_axis_off()
        label = title if report.slice_index is None else f"{title}, slice {report.slice_index}"
        if q is not None:
            label += f"\nPSNR {q.psnr:.2f} dB, SSIM {q.ssim:.3f}"
        ax.set_title(label, fontsize=10)
        if image is None:
            text = ("no ground truth for this run" if title.startswith("phantom")
                    and report.raw_slice is not None else _missing(report))
            ax.text(0.5, 0.5, text, ha="center", va="center", wrap=True, transform=ax.transAxes)
            continue
        ax.imshow(image, cmap="gray", vmin=vmin, vmax=vmax)
    _draw_history(axes[1, 3], report.history)
    dose = s.get("dose_ratio")
    status = ("no result" if report.result is None
              else f"result {report.result.metadata.get('status')}")
    blind = " (nominal), blind" if _blind(s) else ""
    fig.suptitle(f"run {report.run_uid[:8]}: {s.get('num_points')} projections of "
                 f"{'x'.join(str(v) for v in s.get('detector_shape', []))}, dose ratio "
                 f"{dose:g}{blind}, {status}; slices in {report.slice_units}")


def _missing(report: RunReport) -> str:
    if report.result is None:
        return f"no result\n({report.result_error})"
    md = report.result.metadata
    return f"not available\n(result {md.get('status')}: {md.get('error') or 'no array'})"


def _draw_history(ax: Any, history: list[dict[str, Any]]) -> None:
    ax.set_title("training", fontsize=10)
    ax.set_xlabel("epoch")
    if not history:
        ax.text(0.5, 0.5, "no training record", ha="center", va="center",
                transform=ax.transAxes)
        return
    epoch = np.array([h["epoch"] for h in history], dtype=float)
    loss = np.array([h["train_loss"] for h in history], dtype=float)
    from matplotlib.ticker import MaxNLocator

    ax.xaxis.set_major_locator(MaxNLocator(integer=True))
    ax.plot(epoch, loss, "o-", color="C0", ms=3)
    ax.set_ylabel("train loss", color="C0")
    val = np.array([np.nan if h.get("val_psnr") is None else h["val_psnr"] for h in history],
                   dtype=float)
    if np.isfinite(val).any():
        twin = ax.twinx()
        twin.plot(epoch, val, "s-", color="C1", ms=3)
        twin.set_ylabel("validation PSNR (dB)", color="C1")


def save_report_figure(report: RunReport, path: str | os.PathLike[str]) -> Path:
    """Write the figure of ``report`` to a PNG file (atomically).

    Parameters
    ----------
    report
        From :func:`collect_report`.
    path
        Destination PNG file; parent directories are created.

    Returns
    -------
    pathlib.Path
        The written file.
    """
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    path = Path(path)
    fig = Figure(figsize=(17, 8.5), layout="constrained")
    FigureCanvasAgg(fig)
    draw_report(fig, report)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.tmp")
    fig.savefig(tmp, format="png", dpi=80)
    os.replace(tmp, path)
    return path
