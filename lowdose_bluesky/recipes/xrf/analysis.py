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
from ...model.checkpoint import write_checkpoint
from ...xrf import FIT, ROI, LinearFit, SpectralModel, roi_maps
from .hybrid import NOISE2NOISE_SHARE, hybrid_maps
from .noise2noise import half_maps, noise2noise_maps
from .noise2self import SpectralBinning, noise2self_maps
from .supervised import supervised_maps

__all__ = ["DEAD_AFTER_COUNTS", "METHODS", "XRFAnalysis", "check_xrf_start"]

#: Enhancement methods: none (the fitted maps only), Noise2Noise across the halves of
#: the detector elements (blind), supervised by the long-dwell reference rows, the
#: hybrid (Noise2Noise, then fine-tuned on the reference rows), or Noise2Self of the
#: spectral cube (blind).
METHODS = ("none", "noise2noise", "supervised", "hybrid", "noise2self")
#: Methods that need long-dwell reference rows.
NEEDS_REFERENCES = ("supervised", "hybrid")

#: Counts the other detector elements must have seen before a silent one is called dead.
DEAD_AFTER_COUNTS = 100


def check_xrf_start(start: dict[str, Any], method: str = "none",
                    pansharpen: bool = False) -> None:
    """Refuse a run that cannot be mapped or enhanced by ``method``, saying what is missing."""
    xrf = start.get("xrf")
    if not xrf:
        raise ValueError(f"run {start.get('uid')} was not acquired by lowdose_xrf_plan (no "
                         "'xrf' section in its start document)")
    missing = [k for k in ("elements", "energy_kev", "bins", "bin_kev") if not xrf.get(k)]
    if missing:
        raise ValueError(f"run {start.get('uid')}: the start document's xrf section lacks "
                         f"{missing}: element maps need the elements, the incident energy and "
                         "the detector's channel calibration (bins, bin_kev)")
    if method in NEEDS_REFERENCES and not xrf.get("reference_rows"):
        raise ValueError(f"run {start.get('uid')} is a blind map (no long-dwell reference "
                         f"rows): the {method} method needs them; use method='noise2noise' "
                         "or 'noise2self', or take reference_rows")
    if method == "noise2self" and pansharpen and not xrf.get("transmission_key"):
        raise ValueError(f"run {start.get('uid')} recorded no transmission image "
                         "(transmission_key): pansharpening needs one")


class XRFAnalysis:
    """Collects one map's spectra, publishes its element maps line by line, enhances them."""

    def __init__(self, start: dict[str, Any], context: RunContext,
                 mapping: str = "fit", method: str = "noise2noise", epochs: int = 30,
                 max_seconds: float | None = 20.0, seed: int = 0, device: str = "auto",
                 train_options: dict[str, Any] | None = None,
                 pansharpen: bool = False) -> None:
        if mapping not in ("fit", "roi"):
            raise ValueError(f"mapping must be 'fit' or 'roi', got {mapping!r}")
        if method not in METHODS:
            raise ValueError(f"method must be one of {METHODS}, got {method!r}")
        if method == "noise2self" and mapping != "fit":
            raise ValueError("the noise2self method fits the denoised spectra: it needs "
                             f"mapping='fit', got mapping={mapping!r}")
        check_xrf_start(start, method, pansharpen)
        self.start = start
        self.context = context
        self.method = method
        self.pansharpen = bool(pansharpen)
        self.training = {"epochs": epochs, "max_seconds": max_seconds, "seed": seed,
                         "device": device, "train_options": dict(train_options or {})}
        xrf = start["xrf"]
        self.xrf = xrf
        self.elements = tuple(xrf["elements"])
        region = xrf["region"]
        self.shape = (int(region["num_y"]), int(region["num_x"]))
        self.reference_rows = [int(r) for r in xrf.get("reference_rows", [])]
        self.spectra_key, self.i0_key = xrf["spectra_key"], xrf.get("i0_key")
        self.transmission_key = xrf.get("transmission_key")
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
        self.binning = SpectralBinning.for_spectra(model.bins, model.bin_kev, model.energy_kev)
        self._cube_fit = LinearFit(self.binning.apply(model.reference), model.components,
                                   self.elements)
        n_el, (h, w), n_ref = len(self.elements), self.shape, len(self.reference_rows)
        self.maps = np.full((n_el, h, w), np.nan, dtype=np.float32)
        self.unclipped = np.full((n_el, h, w), np.nan, dtype=np.float32)
        self.detector_maps: np.ndarray | None = None  # (detector elements, n_el, h, w)
        self.cube = (np.zeros((h, w, self.binning.channels), np.float32)
                     if method == "noise2self" else None)
        self.photons = np.ones((h, w))
        self.contrast = np.ones((h, w)) if self.pansharpen else None
        self.reference_maps = np.full((n_el, n_ref, w), np.nan, dtype=np.float32)
        self.reference_unclipped = np.full((n_el, n_ref, w), np.nan, dtype=np.float32)
        self._rows: dict[tuple[str, int], dict[int, dict[str, FrameRef]]] = {}
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
        keys = [self.spectra_key, self.i0_key]
        if self.contrast is not None and stream == "primary":
            keys.append(self.transmission_key)
        pixels = self._rows.setdefault((stream, line), {})
        pixels[col] = {key: ref.for_key(key, data) for key in keys if key}
        if len(pixels) == w:
            self._map_line(stream, line, self._read_line(self._rows.pop((stream, line))),
                           received)

    def _read_line(self, pixels: dict[int, dict[str, FrameRef]]) -> dict[str, np.ndarray]:
        """A complete line's spectra ``(W, detector elements, bins)``, I0, transmission."""
        cols = sorted(pixels)
        out = {}
        for key in pixels[cols[0]]:
            values = read_frames(self.context.source, [pixels[c][key] for c in cols])
            out[key] = values.reshape(len(cols), *values.shape[1:]).astype(np.float64)
        spectra = out[self.spectra_key]
        out[self.spectra_key] = spectra.reshape(len(cols), -1, spectra.shape[-1])
        for key in (self.i0_key, self.transmission_key):
            if key in out:
                out[key] = out[key].reshape(len(cols), -1)[:, 0]
        totals = out[self.spectra_key].sum(axis=(0, 2))
        self._totals = totals if self._totals is None else self._totals + totals
        return out

    def _live_elements(self) -> np.ndarray:
        totals = self._totals
        dead = [k for k, t in enumerate(totals) if t == 0 and totals.sum() >= DEAD_AFTER_COUNTS]
        self.dead = sorted(set(self.dead) | set(dead))
        return np.array([k for k in range(totals.size) if k not in self.dead])

    def _map_line(self, stream: str, line: int, read: dict[str, np.ndarray],
                  received: float) -> None:
        spectra_all = read[self.spectra_key]
        i0 = read[self.i0_key] if self.i0_key else np.ones(spectra_all.shape[0])
        live = self._live_elements()
        n = spectra_all.shape[1]
        photons = i0 / self.per_photon if self.per_photon else i0
        unclipped = self._to_maps(spectra_all[:, live].sum(axis=1) * (n / live.size), photons)
        maps = np.clip(unclipped, 0.0, None)
        if stream == "reference":
            self.reference_maps[:, line, :] = maps
            self.reference_unclipped[:, line, :] = unclipped
            return
        if line >= self.shape[0]:
            raise ValueError(f"primary pixel row {line} beyond the map's {self.shape[0]} rows")
        if self.detector_maps is None:
            self.detector_maps = np.zeros((n, *self.maps.shape), np.float32)
        # each detector element's own fit: a 1/n share of the density (Noise2Noise halves)
        per_element = self._to_maps(spectra_all.transpose(1, 0, 2), photons[None])
        self.detector_maps[:, :, line, :] = per_element.transpose(1, 0, 2)
        if self.cube is not None:
            self.cube[line] = self.binning.apply(spectra_all.sum(axis=1))
        self.photons[line] = photons
        if self.contrast is not None:
            self.contrast[line] = read[self.transmission_key] / np.maximum(photons, 1e-12)
        self.maps[:, line, :] = maps
        self.unclipped[:, line, :] = unclipped
        self.context.publish("maps_raw_lines", line, maps[None])
        self.lines_done += 1
        self.line_latency.append(time.monotonic() - received)
        self.context.progress(lines=self.lines_done, of=self.shape[0],
                              dead_detector_elements=self.dead)

    def _to_maps(self, spectra: np.ndarray, photons: np.ndarray) -> np.ndarray:
        """Unclipped maps (elements, ...) of spectra (..., bins)."""
        if self.mapping == FIT:
            return self._fit.maps(spectra, photons, clip=False)
        return roi_maps(spectra, *self._roi, photons)

    def idle(self) -> None:
        """Nothing to do between pixels: lines are mapped as they complete."""

    def abandon(self) -> None:
        """Drop the buffered pixels."""
        self._rows.clear()

    # ---------------------------------------------------------------- the end
    def _enhance(self) -> tuple[np.ndarray, bytes, dict[str, Any]]:
        """The enhanced maps, the model's checkpoint and its description."""
        opts = self.training
        n = self.detector_maps.shape[0]
        live = [k for k in range(n) if k not in self.dead]
        if self.method == "noise2noise":
            maps, enhancer, record = noise2noise_maps(
                self.detector_maps, live, epochs=opts["epochs"], seed=opts["seed"],
                max_seconds=opts["max_seconds"], device=opts["device"],
                train_options=opts["train_options"])
            return maps, enhancer.to_bytes(), {
                "arch": enhancer.arch, "trained_on": "noise2noise across detector element "
                "halves", **record}
        trained_on = (f"long-dwell reference rows {self.reference_rows} (dwell ratio "
                      f"{self.xrf.get('dwell_ratio')})")
        if self.method == "supervised":
            maps, enhancer = supervised_maps(
                half_maps(self.detector_maps, live), self.reference_unclipped,
                self.reference_rows, seed=opts["seed"], max_seconds=opts["max_seconds"],
                device=opts["device"], **opts["train_options"])
            return maps, enhancer.to_bytes(), {"arch": enhancer.arch, "trained_on": trained_on}
        if self.method == "hybrid":
            maps, enhancer, record = hybrid_maps(
                self.detector_maps, live, self.reference_unclipped, self.reference_rows,
                epochs=opts["epochs"], seed=opts["seed"], max_seconds=opts["max_seconds"],
                device=opts["device"], train_options=opts["train_options"])
            return maps, enhancer.to_bytes(), {
                "arch": enhancer.arch, "trained_on": "noise2noise across detector element "
                f"halves, then {trained_on}", "noise2noise_share": NOISE2NOISE_SHARE,
                **record}
        scale = n / len(live)
        maps, network = noise2self_maps(
            self.cube, lambda cube: self._cube_fit.maps(cube, self.photons) * scale,
            contrast=self.contrast, seed=opts["seed"], max_seconds=opts["max_seconds"],
            device=opts["device"], **opts["train_options"])
        description = {**network["description"], "trained_on": "noise2self of the "
                       "spectral cube", "binning": vars(self.binning)}
        return maps, write_checkpoint(network["state_dict"], description), description

    def _reference_check(self, maps: np.ndarray) -> dict[str, Any]:
        """Relative RMS difference of ``maps`` from the long-dwell rows, per element."""
        rows = self.reference_rows
        long = self.reference_maps
        out = {}
        for k, element in enumerate(self.elements):
            norm = float(np.sqrt(np.nanmean(long[k] ** 2))) or 1.0
            out[element] = float(np.sqrt(np.nanmean((maps[k][rows] - long[k]) ** 2)) / norm)
        return out

    def finish(self, stop: dict[str, Any]) -> AnalysisOutput:
        """The map is over: enhance it and store the element maps."""
        complete = stop.get("exit_status") == "success" and self.lines_done == self.shape[0]
        metadata: dict[str, Any] = {
            "status": "complete" if complete else "incomplete",
            "elements": list(self.elements),
            "maps_method": self.mapping,
            "maps_method_reason": self.mapping_reason,
            "units": "ug/cm^2" if self.per_photon else "ug/cm^2 per photon per I0 count",
            "dead_detector_elements": self.dead,
            "lines": {"mapped": self.lines_done, "of": self.shape[0]},
            "dwell_ratio": self.xrf.get("dwell_ratio"),
            "method": self.method,
            "timings": {"line_latency_max_s": max(self.line_latency, default=None),
                        "line_latency_median_s": (float(np.median(self.line_latency))
                                                  if self.line_latency else None),
                        "analysis_s": time.monotonic() - self.t0},
        }
        arrays = {"maps_raw": self.maps}
        checkpoint = None
        if self.method != "none" and complete:
            t = time.monotonic()
            arrays["maps"], checkpoint, metadata["model"] = self._enhance()
            metadata["timings"]["training_s"] = time.monotonic() - t
        if self.reference_rows:
            arrays["reference_maps_long"] = self.reference_maps
            if complete:
                metadata["reference_check"] = {
                    "what": "relative RMS difference from the long-dwell reference rows "
                            "(training data of the supervised method)",
                    "raw": self._reference_check(self.maps),
                    **({"enhanced": self._reference_check(arrays["maps"])}
                       if "maps" in arrays else {})}
        return AnalysisOutput(metadata, arrays, checkpoint)
