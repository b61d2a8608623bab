"""The whole low-dose XRF job on a simulated microprobe: map, live element maps, enhancement.

:func:`run_xrf_demo` builds the simulated scanning fluorescence microprobe
(:func:`~lowdose_bluesky.devices.sim.xrf.make_sim_xrf`, a field of cells), maps it with
:func:`~lowdose_bluesky.plans.lowdose_xrf_plan` in a :class:`bluesky.RunEngine` with the
``TiledWriter`` and a :class:`~lowdose_bluesky.callbacks.LiveEnhancer` subscribed (the
XRF recipe fits each scan line's spectra as soon as the line is complete, then enhances
the element maps once the map is over), waits for the result, reads it back from the
persistent embedded Tiled catalog, scores the raw and the enhanced maps against the
sample's true maps (SSIM, PSNR) and draws a figure: one row per element (Fe, Cu, Zn and
a major element), columns truth / raw short dwell / enhanced.

By default the long-dwell reference rows are taken first (a quarter and three quarters
down the map, as the plan does on its default 64 x 64 map); ``blind=True`` takes none,
for a method that learns from the short-dwell map alone.

Ctrl-C during the map aborts the run at the next pixel or line (its stop document is
written, so what was acquired stays readable); during the analysis, the demo waits a
little for the result and stops. Either way
:class:`~lowdose_bluesky.demo.DemoInterrupted` is raised.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
from bluesky import RunEngine
from tqdm.auto import tqdm

from .demo import DemoFailed, _AbortOnSigint, demo_dirs, run_and_wait
from .devices.sim.xrf import make_sim_xrf
from .plans import lowdose_xrf_plan
from .report import format_table
from .storage import close, connect, results, subscribe_writer

__all__ = ["FIGURE_ELEMENTS", "ElementQuality", "XRFDemoResult", "quality_table",
           "run_xrf_demo", "xrf_demo_table"]

#: Trace elements drawn in the figure, after one major element (:data:`MAJOR_ELEMENTS`).
FIGURE_ELEMENTS = ("Fe", "Cu", "Zn")
#: The first of these that was mapped is the figure's major element.
MAJOR_ELEMENTS = ("P", "K", "S", "Ca")


@dataclass(frozen=True)
class ElementQuality:
    """One element's maps against its true map (``None``: no enhanced map)."""

    element: str
    ssim_raw: float
    ssim_enhanced: float | None
    psnr_raw: float
    psnr_enhanced: float | None


@dataclass(frozen=True)
class XRFDemoResult:
    """What :func:`run_xrf_demo` did: the uids, the figure, the numbers of the tables.

    Attributes
    ----------
    run_uid, result_uid
        Uids of the raw run and of its analysis result in Tiled.
    data_dir
        Frames in ``data_dir/frames``, the Tiled catalog in ``data_dir/tiled``.
    figure
        The PNG file written.
    shape
        ``(H, W)`` of the map, pixels.
    dwell, long_dwell
        Seconds per pixel of the map and of the reference rows.
    reference_rows
        Rows mapped at ``long_dwell`` first (empty for a blind map).
    fly
        Whether the rows were flown (else stepped pixel by pixel).
    method
        Enhancement method of the result.
    elements
        Mapped elements, the first axis of the stored maps.
    quality
        Per element, SSIM and PSNR of the raw and enhanced maps against the truth.
    maps_shape
        Shape of the stored raw maps ``(elements, H, W)``.
    scan_s, latency_s, training_s, total_s
        Seconds: the map, from the last pixel to the stored result, training, all.
    line_latency_max_s
        The slowest scan line was mapped this long after its last pixel.
    detector_elements
        Elements of the fluorescence detector.
    """

    run_uid: str
    result_uid: str
    data_dir: Path
    figure: Path
    shape: tuple[int, int]
    dwell: float
    long_dwell: float
    reference_rows: tuple[int, ...]
    fly: bool
    method: str
    elements: tuple[str, ...]
    quality: tuple[ElementQuality, ...]
    maps_shape: tuple[int, ...]
    scan_s: float
    latency_s: float
    training_s: float | None
    total_s: float
    line_latency_max_s: float | None = None
    detector_elements: int = 4

    @property
    def blind(self) -> bool:
        """No reference rows were taken."""
        return not self.reference_rows

    @property
    def dwell_ratio(self) -> float:
        """Long / short dwell."""
        return self.long_dwell / self.dwell

    @property
    def table(self) -> str:
        """The quality table: element, SSIM and PSNR of the raw and enhanced maps."""
        return quality_table(self.quality)


class _PixelProgress:
    """A Bluesky callback: a tqdm bar over the pixels of the map, and the run's clock.

    Pixels are counted from the StreamDatum documents of the spectra (``data_key``),
    which the ophyd-async detector emits stepped and flown alike.
    """

    def __init__(self, data_key: str, total: int, enabled: bool,
                 on_start: Callable[[str], None] | None = None, desc: str = "map",
                 unit: str = "pixel") -> None:
        self.data_key = data_key
        self.desc, self.unit = desc, unit
        self.total = total
        self.enabled = enabled
        self.on_start = on_start
        self.bar: tqdm | None = None
        self.run_uid: str | None = None
        self.exit_status: str | None = None
        self.pixels = 0
        self.last_pixel: float | None = None
        self._resources: set[str] = set()

    def __call__(self, name: str, doc: dict[str, Any]) -> None:
        if name == "start":
            self.run_uid = doc["uid"]
            if self.on_start is not None:
                self.on_start(doc["uid"])
            if self.enabled:
                self.bar = tqdm(total=self.total, desc=self.desc, unit=self.unit)
        elif name == "stream_resource" and doc.get("data_key") == self.data_key:
            self._resources.add(doc["uid"])
        elif name == "stream_datum" and doc.get("stream_resource") in self._resources:
            n = doc["seq_nums"]["stop"] - doc["seq_nums"]["start"]
            self.pixels += n
            self.last_pixel = time.perf_counter()
            if self.bar is not None:
                self.bar.update(n)
        elif name == "stop":
            self.exit_status = doc.get("exit_status")
            self.close()

    def close(self) -> None:
        if self.bar is not None:
            self.bar.close()
            self.bar = None


def _is_int(value: object) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def _check(size: int, dwell: float, dwell_ratio: float, epochs: int,
           training_budget: float | None, blind: bool, fly: bool) -> None:
    if not _is_int(size) or size < 16:
        raise ValueError(f"size must be an integer >= 16 pixels (the network trains on "
                         f"16 x 16 patches), got {size!r}")
    if isinstance(dwell, bool) or not isinstance(dwell, int | float) or not (
            0 < dwell < math.inf):
        raise ValueError(f"dwell must be a positive number of seconds, got {dwell!r}")
    if isinstance(dwell_ratio, bool) or not isinstance(dwell_ratio, int | float) or not (
            1 < dwell_ratio < math.inf):
        raise ValueError(f"dwell_ratio must be a number > 1 (long / short dwell), got "
                         f"{dwell_ratio!r}")
    if not _is_int(epochs) or epochs < 1:
        raise ValueError(f"epochs must be a positive integer, got {epochs!r}")
    if training_budget is not None and not training_budget > 0:
        raise ValueError(f"training_budget must be a positive number of seconds or None, got "
                         f"{training_budget!r}")
    for name, value in (("blind", blind), ("fly", fly)):
        if not isinstance(value, bool):
            raise ValueError(f"{name} must be True or False, got {value!r}")


def _check_method(method: str) -> None:
    from .recipes.xrf.analysis import METHODS

    if method not in METHODS:
        raise ValueError(f"method must be one of {', '.join(map(repr, METHODS))} (the XRF "
                         f"recipe's methods), got {method!r}")


def default_reference_rows(height: int) -> tuple[int, int]:
    """Rows a quarter and three quarters down a map of ``height`` rows."""
    return height // 4, (3 * height) // 4


def run_xrf_demo(data_dir: str | Path, *, size: int = 64, dwell: float = 0.01,
                 dwell_ratio: float = 20.0, method: str = "noise2noise", epochs: int = 30,
                 training_budget: float | None = 20.0, seed: int = 0, blind: bool = False,
                 fly: bool = True, progress: bool = True, figure: str | Path | None = None,
                 log: Callable[[str], None] | None = None) -> XRFDemoResult:
    """Map a simulated field of cells at a short dwell, enhance the maps, score them.

    Parameters
    ----------
    data_dir
        Spectra go to ``data_dir/frames`` (HDF5), the Tiled catalog to
        ``data_dir/tiled`` (kept, as by the tomography demo).
    size
        Map width and height in pixels (>= 16).
    dwell
        Seconds per pixel of the map.
    dwell_ratio
        Long / short dwell (> 1): the reference rows take ``dwell * dwell_ratio`` per
        pixel.
    method
        Enhancement method of the XRF recipe, one of
        :data:`lowdose_bluesky.recipes.xrf.analysis.METHODS`.
    epochs
        Training epochs of the enhancement network.
    training_budget
        Training stops after this many seconds at the latest (``None``: ``epochs``
        only).
    seed
        Seed of the sample, the counting noise and the training.
    blind
        Take no long-dwell reference rows (``reference_rows=()``).
    fly
        Fly each row (the stage moves at constant speed while the detector times its
        dwells); else step pixel by pixel.
    progress
        A tqdm bar over the pixels.
    figure
        PNG file of the figure; default ``data_dir/figures/demo-xrf-<run uid[:8]>.png``.
    log
        Called with one line at each stage (map started, map done, reading back).

    Returns
    -------
    XRFDemoResult

    Raises
    ------
    ValueError
        For an option out of range or an unknown method, before anything is created.
    DemoInterrupted
        On Ctrl-C (after aborting the run and closing the Tiled server).
    DemoFailed
        If the analysis failed or stored no complete result (the raw run is stored).
    """
    _check(size, dwell, dwell_ratio, epochs, training_budget, blind, fly)
    _check_method(method)
    from .callbacks import LiveEnhancer

    t_start = time.perf_counter()
    root, frames, catalog = demo_dirs(data_dir)
    interrupted = []
    RE = RunEngine({}, call_returns_result=False, context_managers=[
        lambda engine: _AbortOnSigint(engine, lambda: interrupted.append(True))])
    sim = make_sim_xrf(seed=seed, data_dir=frames, shape=(size, size))
    h, w = sim.shape
    rows: tuple[int, ...] = () if blind else default_reference_rows(h)
    long_dwell = dwell * dwell_ratio
    say = log or (lambda line: None)
    kind = ("blind: no reference rows" if blind else
            f"reference rows {', '.join(map(str, rows))} at {long_dwell:g} s first")
    clock = _PixelProgress(sim.detector.name, h * w + len(rows) * w, progress,
                           on_start=lambda uid: say(
        f"run {uid}: mapping {h}x{w} pixels at {dwell:g} s per pixel ({kind}; "
        f"{'flown' if fly else 'stepped'}) into {root} (Ctrl-C stops)"))
    client = connect(directory=catalog, readable_storage=[frames])
    live = None
    try:
        subscribe_writer(RE, client)
        live = LiveEnhancer(client, process=False, progress=False, recipe_options={
            "xrf": {"method": method, "epochs": epochs, "max_seconds": training_budget,
                    "seed": seed}})
        RE.subscribe(clock)
        RE.subscribe(live)
        plan = lowdose_xrf_plan(**sim.devices, step_x=sim.pixel_size_um,
                                step_y=sim.pixel_size_um, num_x=w, num_y=h, dwell=dwell,
                                long_dwell=long_dwell, reference_rows=rows, fly=fly,
                                md={"purpose": "lowdose-bluesky demo --modality xrf"})

        def aborted() -> str:
            clock.close()
            return (f"map aborted after {clock.pixels} of {clock.total} pixels; run "
                    f"{clock.run_uid} (exit status {clock.exit_status!r})")

        t0 = time.perf_counter()
        run_uid, result_uid, scan_s = run_and_wait(
            RE, plan, live, root=root, aborted=aborted,
            scanned=lambda seconds: say(f"map done in {seconds:.1f} s; waiting for the "
                                        f"analysis ({method}; Ctrl-C stops)"))
        latency = time.perf_counter() - (clock.last_pixel or t0)
        live.close()
        live = None
        say("reading the maps back from Tiled, drawing the figure")
        res = results(client, run_uid)
        if res.uid != result_uid or res.status != "complete":
            raise DemoFailed(f"result {result_uid} of run {run_uid}: newest stored result is "
                             f"{res.uid} with status {res.status!r}, not a complete one")
        md = res.metadata
        elements = tuple(md["elements"])
        raw = np.asarray(res.maps_raw)
        enhanced = np.asarray(res.maps) if "maps" in res.node else None
        if raw.shape != (len(elements), h, w):
            raise DemoFailed(f"result {result_uid}: raw maps of shape {raw.shape}, expected "
                             f"{(len(elements), h, w)}")
        truth = np.stack([sim.truth[e] for e in elements])
        quality = score_maps(elements, truth, raw, enhanced)
        path = (Path(figure).expanduser() if figure is not None
                else root / "figures" / f"demo-xrf-{run_uid[:8]}.png")
        used = str(md.get("method", method))
        written = save_xrf_figure(path, elements, truth, raw, enhanced, quality, method=used,
                                  title=_figure_title(h, w, dwell, long_dwell, rows, used,
                                                      run_uid))
    finally:
        clock.close()
        if live is not None:
            live.close()
        close(client)
    timings = md.get("timings") or {}
    return XRFDemoResult(
        run_uid=run_uid, result_uid=result_uid, data_dir=root, figure=written, shape=(h, w),
        dwell=float(dwell), long_dwell=float(long_dwell), reference_rows=rows, fly=fly,
        method=used, elements=elements, quality=quality,
        maps_shape=tuple(raw.shape), scan_s=scan_s, latency_s=latency,
        training_s=timings.get("training_s"), total_s=time.perf_counter() - t_start,
        line_latency_max_s=timings.get("line_latency_max_s"),
        detector_elements=int(sim.detector.counting.detector_elements))


# ------------------------------------------------------------------------ scores
def _scores(truth: np.ndarray, estimate: np.ndarray) -> tuple[float, float]:
    """SSIM and PSNR (dB) of ``estimate`` against ``truth``, both over the truth's range."""
    from skimage.metrics import peak_signal_noise_ratio, structural_similarity

    rng = float(truth.max() - truth.min()) or 1.0
    truth = truth.astype(np.float64)
    estimate = estimate.astype(np.float64)
    ssim = float(structural_similarity(truth, estimate, data_range=rng))
    mse = float(np.mean((truth - estimate) ** 2))
    psnr = math.inf if mse == 0 else float(
        peak_signal_noise_ratio(truth, estimate, data_range=rng))
    return ssim, psnr


def score_maps(elements: Sequence[str], truth: np.ndarray, raw: np.ndarray,
               enhanced: np.ndarray | None) -> tuple[ElementQuality, ...]:
    """SSIM and PSNR of each element's raw and enhanced maps against its true map.

    Parameters
    ----------
    elements
        Element symbols, the first axis of the arrays.
    truth, raw
        ``(elements, H, W)`` true and raw (fitted) maps.
    enhanced
        ``(elements, H, W)`` enhanced maps, or ``None``.

    Returns
    -------
    tuple of ElementQuality
        One per element, in order; ``data_range`` of each score is the true map's.
    """
    out = []
    for k, element in enumerate(elements):
        ssim_raw, psnr_raw = _scores(truth[k], raw[k])
        ssim_enh = psnr_enh = None
        if enhanced is not None:
            ssim_enh, psnr_enh = _scores(truth[k], enhanced[k])
        out.append(ElementQuality(element, ssim_raw, ssim_enh, psnr_raw, psnr_enh))
    return tuple(out)


def quality_table(quality: Sequence[ElementQuality]) -> str:
    """Element, SSIM raw / enhanced, PSNR raw / enhanced (dB), aligned in columns."""
    header = ("element", "SSIM raw", "SSIM enhanced", "PSNR raw (dB)", "PSNR enhanced (dB)")

    def num(value: float | None, digits: int) -> str:
        return "-" if value is None else f"{value:.{digits}f}"

    rows = [(q.element, num(q.ssim_raw, 3), num(q.ssim_enhanced, 3), num(q.psnr_raw, 2),
             num(q.psnr_enhanced, 2)) for q in quality]
    widths = [max(len(r[i]) for r in (header, *rows)) for i in range(len(header))]

    def line(cells: Sequence[str]) -> str:
        return "  ".join([cells[0].ljust(widths[0]),
                          *(c.rjust(n) for c, n in zip(cells[1:], widths[1:], strict=True))])

    return "\n".join([line(header), line(["-" * n for n in widths]), *map(line, rows)])


def xrf_demo_table(demo: XRFDemoResult) -> str:
    """The printed summary: acquisition, beam time, method, timings, uids, where things went."""
    h, w = demo.shape
    if demo.blind:
        acquisition = "blind (short dwell only: no reference rows)"
    else:
        acquisition = (f"reference rows {', '.join(map(str, demo.reference_rows))} at the long "
                       "dwell, then the map")
    acquisition += ", rows flown" if demo.fly else ", stepped pixel by pixel"
    map_s = h * w * demo.dwell
    reference_s = len(demo.reference_rows) * w * demo.long_dwell
    beam = f"{map_s + reference_s:.1f} s ({map_s:.1f} s map"
    beam += f" + {reference_s:.1f} s reference rows)" if reference_s else ")"
    training = "-" if demo.training_s is None else f"{demo.training_s:.1f} s"
    slowest = ("-" if demo.line_latency_max_s is None
               else f"{demo.line_latency_max_s:.2f} s after its last pixel")
    rows = [
        ("dwell (long / short)", f"{demo.dwell_ratio:g} ({demo.long_dwell:g} s / "
                                 f"{demo.dwell:g} s per pixel)"),
        ("acquisition", acquisition),
        ("beam on the sample", beam),
        ("method", demo.method),
        ("map", f"{demo.scan_s:.1f} s ({h}x{w} pixels, {len(demo.elements)} elements, "
                f"{demo.detector_elements} detector elements)"),
        ("slowest line mapped", slowest),
        ("training", training),
        ("result stored after last pixel", f"{demo.latency_s:.1f} s"),
        ("total", f"{demo.total_s:.1f} s"),
        ("run uid", demo.run_uid),
        ("result uid", demo.result_uid),
        ("maps", f"{demo.maps_shape} (elements, H, W): {', '.join(demo.elements)}"),
        ("figure", str(demo.figure)),
        ("data", str(demo.data_dir)),
    ]
    return format_table(rows, header=("quantity", "value"))


# ------------------------------------------------------------------------ figure
def figure_elements(elements: Sequence[str]) -> list[str]:
    """The figure's rows: Fe, Cu, Zn (those mapped) and the first major element mapped."""
    chosen = [e for e in FIGURE_ELEMENTS if e in elements]
    major = next((e for e in MAJOR_ELEMENTS if e in elements), None)
    if major is None:
        major = next((e for e in elements if e not in chosen), None)
    return chosen + ([major] if major is not None else [])


def _figure_title(h: int, w: int, dwell: float, long_dwell: float, rows: Sequence[int],
                  method: str, run_uid: str) -> str:
    refs = (f"reference rows {', '.join(map(str, rows))} at {long_dwell * 1000:g} ms"
            if rows else "blind")
    enhanced = "not enhanced" if method == "none" else f"enhanced by {method}"
    return (f"Low-dose XRF map of simulated cells, {h}x{w} pixels at {dwell * 1000:g} ms "
            f"({refs}); {enhanced}; run {run_uid[:8]}")


def save_xrf_figure(path: str | Path, elements: Sequence[str], truth: np.ndarray,
                    raw: np.ndarray, enhanced: np.ndarray | None,
                    quality: Sequence[ElementQuality], *, method: str = "enhanced",
                    title: str = "") -> Path:
    """Draw truth / raw / enhanced maps, one row per element of :func:`figure_elements`.

    Each row shares one colour scale, the true map's range (a noisy map saturates
    beyond it); each map's title gives its SSIM and PSNR against the truth.

    Parameters
    ----------
    path
        Destination PNG file; parent directories are created.
    elements
        Element symbols, the first axis of the arrays.
    truth, raw
        ``(elements, H, W)`` true and raw maps, µg/cm².
    enhanced
        ``(elements, H, W)`` enhanced maps, or ``None`` (the column then says so).
    quality
        Scores of :func:`score_maps`, in the order of ``elements``.
    method
        The enhancement method, named above its column.
    title
        Figure title.

    Returns
    -------
    pathlib.Path
        The written file.
    """
    import os

    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    path = Path(path)
    shown = figure_elements(elements)
    index = {e: k for k, e in enumerate(elements)}
    scores = {q.element: q for q in quality}
    fig = Figure(figsize=(10.5, 2.9 * len(shown) + 0.6), layout="constrained")
    FigureCanvasAgg(fig)
    axes = fig.subplots(len(shown), 3, squeeze=False)
    for r, element in enumerate(shown):
        k, q = index[element], scores[element]
        vmin, vmax = float(truth[k].min()), float(truth[k].max())
        if vmax <= vmin:
            vmax = vmin + 1.0
        panels = [(truth[k], f"{element}: true map"),
                  (raw[k], f"{element}: raw, short dwell\nSSIM {q.ssim_raw:.3f}, "
                           f"PSNR {q.psnr_raw:.1f} dB"),
                  (None if enhanced is None else enhanced[k],
                   f"{element}: {method}\nSSIM {q.ssim_enhanced:.3f}, "
                   f"PSNR {q.psnr_enhanced:.1f} dB" if enhanced is not None
                   else f"{element}: not enhanced\n(method {method})")]
        image = None
        for c, (data, label) in enumerate(panels):
            ax = axes[r, c]
            ax.set_title(label, fontsize=10)
            ax.set_xticks([])
            ax.set_yticks([])
            if data is None:
                ax.set_axis_off()
                continue
            image = ax.imshow(data, cmap="magma", vmin=vmin, vmax=vmax,
                              interpolation="nearest")
        fig.colorbar(image, ax=list(axes[r]), label=f"{element} (µg/cm²)", shrink=0.9)
    if title:
        fig.suptitle(title, fontsize=11)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.tmp")
    fig.savefig(tmp, format="png", dpi=80)
    os.replace(tmp, path)
    return path
