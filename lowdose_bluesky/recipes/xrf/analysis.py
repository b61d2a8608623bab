"""The analysis of one low-dose XRF map: spectra to element maps, line by line.

Each pixel's spectra (one per detector element) are read as they arrive; when a scan
line is complete its pixels are mapped (:class:`~lowdose_bluesky.xrf.LinearFit` of the
reference spectra built from the run's elements, incident energy and channel
calibration, or region-of-interest sums), normalised by the incident photons from the
I0 monitor, and the line is published to the live result at once. A detector element
that has counted nothing while the others counted is flagged as dead and left out (the
others are scaled up to the whole solid angle); the map goes on.
"""

from __future__ import annotations

import time
from typing import Any

import numpy as np

from ...engine import AnalysisOutput, FrameRef, RunContext, read_frames
from ...xrf import FIT, ROI, LinearFit, SpectralModel, roi_maps
from .noise2noise import detector_halves, noise2noise_maps

__all__ = ["DEAD_AFTER_COUNTS", "METHODS", "XRFAnalysis", "check_xrf_start"]

#: Enhancement methods: none (the fitted maps only), or Noise2Noise across the halves
#: of the detector elements (blind: needs no long dwell).
METHODS = ("none", "noise2noise")

#: Counts the other detector elements must have seen before a silent one is called dead.
DEAD_AFTER_COUNTS = 100


def check_xrf_start(start: dict[str, Any]) -> None:
    """Refuse a run that cannot be mapped, saying what is missing."""
    xrf = start.get("xrf")
    if not xrf:
        raise ValueError(f"run {start.get('uid')} was not acquired by lowdose_xrf_plan (no "
                         "'xrf' section in its start document)")
    missing = [k for k in ("elements", "energy_kev", "bins", "bin_kev") if not xrf.get(k)]
    if missing:
        raise ValueError(f"run {start.get('uid')}: the start document's xrf section lacks "
                         f"{missing}: element maps need the elements, the incident energy and "
                         "the detector's channel calibration (bins, bin_kev)")


class XRFAnalysis:
    """Collects one map's spectra and publishes its element maps line by line."""

    def __init__(self, start: dict[str, Any], context: RunContext,
                 mapping: str = "fit", method: str = "noise2noise", epochs: int = 30,
                 max_seconds: float | None = 20.0, seed: int = 0, device: str = "auto",
                 train_options: dict[str, Any] | None = None) -> None:
        check_xrf_start(start)
        if mapping not in ("fit", "roi"):
            raise ValueError(f"mapping must be 'fit' or 'roi', got {mapping!r}")
        if method not in METHODS:
            raise ValueError(f"method must be one of {METHODS}, got {method!r}")
        self.start = start
        self.context = context
        self.method = method
        self.training = {"epochs": epochs, "max_seconds": max_seconds, "seed": seed,
                         "device": device, "train_options": dict(train_options or {})}
        xrf = start["xrf"]
        self.xrf = xrf
        self.elements = tuple(xrf["elements"])
        region = xrf["region"]
        self.shape = (int(region["num_y"]), int(region["num_x"]))
        self.reference_rows = [int(r) for r in xrf.get("reference_rows", [])]
        self.spectra_key, self.i0_key = xrf["spectra_key"], xrf.get("i0_key")
        self.per_photon = xrf.get("i0_counts_per_photon")
        model = SpectralModel(self.elements, float(xrf["energy_kev"]), bins=int(xrf["bins"]),
                              bin_kev=float(xrf["bin_kev"]))
        self.mapping = FIT if mapping == "fit" else ROI
        self.mapping_reason = (
            "reference spectra of the run's elements from xraylib at its incident energy and "
            "channel calibration: the fit separates overlapping lines and the background"
            if mapping == "fit" else
            "region-of-interest sums were asked for (mapping='roi'): background and "
            "overlapping lines under each window are counted in")
        self._fit = LinearFit(model.reference, model.components, self.elements)
        windows = [model.peak_window(e) for e in self.elements]
        self._roi = (windows, [model.element_spectrum(e)[w].sum()
                               for e, w in zip(self.elements, windows, strict=True)])
        n_el, (h, w) = len(self.elements), self.shape
        self.maps = np.full((n_el, h, w), np.nan, dtype=np.float32)
        # maps of each half of the detector elements (Noise2Noise); None once a half is gone
        self.halves: list[np.ndarray] | None = [np.zeros((n_el, h, w), np.float32)
                                                 for _ in range(2)]
        self.reference_maps = np.full((n_el, len(self.reference_rows), w), np.nan,
                                      dtype=np.float32)
        self._rows: dict[tuple[str, int], dict[int, tuple[FrameRef, FrameRef | None]]] = {}
        self._totals: np.ndarray | None = None  # counts per detector element so far
        self.dead: list[int] = []
        self.lines_done = 0
        self.line_latency: list[float] = []
        self.t0 = time.monotonic()

    # ------------------------------------------------------------------ frames
    def add_frame(self, stream: str, ref: FrameRef, data: dict[str, Any],
                  received: float) -> None:
        """One pixel: remembered until its line is complete, then the line is read at once."""
        if stream not in ("primary", "reference"):
            return
        w = self.shape[1]
        line, col = divmod(int(ref["index"]), w)
        pixels = self._rows.setdefault((stream, line), {})
        pixels[col] = (ref.for_key(self.spectra_key, data),
                       ref.for_key(self.i0_key, data) if self.i0_key else None)
        if len(pixels) == w:
            self._map_line(stream, line, self._read_line(self._rows.pop((stream, line))),
                           received)

    def _read_line(self, pixels: dict[int, tuple[FrameRef, FrameRef | None]]
                   ) -> tuple[np.ndarray, np.ndarray]:
        """A complete line's spectra ``(W, detector elements, bins)`` and I0 ``(W,)``."""
        cols = sorted(pixels)
        spectra = read_frames(self.context.source, [pixels[c][0] for c in cols])
        spectra = spectra.reshape(len(cols), -1, spectra.shape[-1]).astype(np.float64)
        if self.i0_key:
            i0 = read_frames(self.context.source, [pixels[c][1] for c in cols])
            i0 = i0.reshape(len(cols), -1)[:, 0].astype(np.float64)
        else:
            i0 = np.ones(len(cols))
        totals = spectra.sum(axis=(0, 2))
        self._totals = totals if self._totals is None else self._totals + totals
        return spectra, i0

    def _live_elements(self) -> np.ndarray:
        totals = self._totals
        dead = [k for k, t in enumerate(totals) if t == 0 and totals.sum() >= DEAD_AFTER_COUNTS]
        self.dead = sorted(set(self.dead) | set(dead))
        return np.array([k for k in range(totals.size) if k not in self.dead])

    def _map_line(self, stream: str, line: int, read: tuple[np.ndarray, np.ndarray],
                  received: float) -> None:
        spectra_all, i0 = read
        live = self._live_elements()
        n = spectra_all.shape[1]
        spectra = spectra_all[:, live].sum(axis=1) * (n / live.size)
        photons = i0 / self.per_photon if self.per_photon else i0
        maps = self._to_maps(spectra, photons)
        halves = detector_halves(n, self.dead)
        if halves is None:
            self.halves = None
        elif self.halves is not None and stream == "primary":
            for half, elements in zip(self.halves, halves, strict=True):
                part = spectra_all[:, elements].sum(axis=1)
                half[:, line, :] = self._to_maps(part * (n / len(elements)), photons)
        if stream == "primary":
            if line >= self.shape[0]:
                raise ValueError(f"primary pixel row {line} beyond the map's {self.shape[0]} "
                                 "rows")
            self.maps[:, line, :] = maps
            self.context.publish("maps_raw_lines", line, maps[None])
            self.lines_done += 1
            self.line_latency.append(time.monotonic() - received)
            self.context.progress(lines=self.lines_done, of=self.shape[0],
                                  dead_detector_elements=self.dead)
        else:
            self.reference_maps[:, line, :] = maps

    def _to_maps(self, spectra: np.ndarray, photons: np.ndarray) -> np.ndarray:
        if self.mapping == FIT:
            return self._fit.maps(spectra, photons)
        return roi_maps(spectra, *self._roi, photons)

    def idle(self) -> None:
        """Nothing to do between pixels: lines are mapped as they complete."""

    def abandon(self) -> None:
        """Drop the buffered pixels."""
        self._rows.clear()

    def finish(self, stop: dict[str, Any]) -> AnalysisOutput:
        """The map is over: store the element maps."""
        complete = stop.get("exit_status") == "success" and self.lines_done == self.shape[0]
        metadata = {
            "status": "complete" if complete else "incomplete",
            "elements": list(self.elements),
            "maps_method": self.mapping,
            "maps_method_reason": self.mapping_reason,
            "units": "ug/cm^2" if self.per_photon else "ug/cm^2 per photon per I0 count",
            "dead_detector_elements": self.dead,
            "lines": {"mapped": self.lines_done, "of": self.shape[0]},
            "dwell_ratio": self.xrf.get("dwell_ratio"),
            "timings": {"line_latency_max_s": max(self.line_latency, default=None),
                        "analysis_s": time.monotonic() - self.t0},
        }
        arrays = {"maps_raw": self.maps}
        checkpoint = None
        metadata["method"] = self.method
        if self.method == "noise2noise" and complete:
            if self.halves is None:
                raise ValueError("Noise2Noise needs two halves of live detector elements; "
                                 f"dead elements {self.dead} leave fewer: use method='none'")
            t = time.monotonic()
            t_opts = self.training
            arrays["maps"], enhancer = noise2noise_maps(
                *self.halves, epochs=t_opts["epochs"], seed=t_opts["seed"],
                max_seconds=t_opts["max_seconds"], device=t_opts["device"],
                train_options=t_opts["train_options"])
            checkpoint = enhancer.to_bytes()
            metadata["timings"]["training_s"] = time.monotonic() - t
            metadata["model"] = {"arch": enhancer.arch, "trained_on": "noise2noise across "
                                 "detector element halves"}
        if self.reference_rows:
            arrays["reference_maps_long"] = self.reference_maps
        return AnalysisOutput(metadata, arrays, checkpoint)
