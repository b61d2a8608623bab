"""The knife-edge recipe: a camera calibration (blur, noise, network) from a knife-edge run.

The edge frames are normalised by the run's darks and flats, their stage positions
turned into sub-pixel offsets, and the slanted-edge analysis of
:func:`lowdose_bluesky.sr.knife_edge_sigma` (ISO 12233 edge spread function, line
spread function, Gaussian fit) gives the blur. The noise is measured in the open
background where the sample says where it is, else from the flats. A super-resolution
network is then trained for that blur and noise, and the calibration (with the network
as its checkpoint) is stored as the run's result: ``results(client, uid).psf_sigma_px``.
"""

from __future__ import annotations

import math
import time
from typing import Any

import numpy as np

from ...chart_phantoms import chart_layout
from ...engine import AnalysisOutput, FrameRef, RunContext, read_frames
from ...sr import MIN_NOISE_PIXELS, background_noise, knife_edge_sigma, sensor_sigma
from .frames import Normaliser

__all__ = ["KnifeEdgeAnalysis", "KnifeEdgeRecipe", "check_knife_edge_start", "sample_regions"]


def check_knife_edge_start(start: dict[str, Any]) -> None:
    """Refuse a run that is not a knife-edge calibration, saying what is missing."""
    ke = start.get("knife_edge")
    if not ke:
        raise ValueError(f"run {start.get('uid')} was not acquired by knife_edge_plan (no "
                         "'knife_edge' section in its start document)")
    missing = [k for k in ("image_key", "stage_key", "pixel_size") if not ke.get(k)]
    if missing:
        raise ValueError(f"run {start.get('uid')}: the knife_edge section lacks {missing}")


def sample_regions(start: dict[str, Any]) -> dict[str, tuple[int, int, int, int] | None]:
    """Edge and background regions in camera pixels where the run's sample says them.

    The plan's ``edge_roi`` first; else the layout a simulated resolution chart records
    (``simulation.phantom``, in sensor pixels, scaled by the binning); else None.
    """
    ke = start.get("knife_edge") or {}
    phantom = (start.get("simulation") or {}).get("phantom") or {}
    layout = (chart_layout(phantom).scaled(int(ke.get("binning") or 1))
              if phantom.get("chart") else None)
    edge = ke.get("edge_roi")
    if edge is not None:
        edge = tuple(int(v) for v in edge)
    elif layout is not None:
        edge = tuple(layout.edge_roi)
    return {"edge": edge,
            "background": None if layout is None else tuple(layout.background)}


def flat_noise(flats: list[np.ndarray], dark: np.ndarray | float) -> float:
    """Relative noise of one frame at full transmission, from two flats' difference."""
    a, b = (np.asarray(f, np.float64) - dark for f in flats[:2])
    return float(np.std(a - b) / math.sqrt(2) / max(float(np.mean((a + b) / 2)), 1e-12))


class KnifeEdgeAnalysis:
    """Collects a knife-edge run; on its stop document fits the blur and trains the network."""

    def __init__(self, start: dict[str, Any], context: RunContext,
                 settings: dict[str, Any]) -> None:
        check_knife_edge_start(start)
        self.start = start
        self.context = context
        self.settings = dict(settings)
        self.ke = start["knife_edge"]
        self.image_key = self.ke["image_key"]
        self.stage_key = self.ke["stage_key"]
        self.pixel_size = float(self.ke["pixel_size"])
        self.normaliser = Normaliser()
        self.flat_frames: list[np.ndarray] = []
        self.frames: list[np.ndarray] = []
        self.positions: list[float] = []
        self.t0 = time.monotonic()

    def add_frame(self, stream: str, ref: FrameRef, data: dict[str, Any],
                  received: float) -> None:
        """A dark, a flat or an edge frame."""
        frame = read_frames(self.context.source, [ref.for_key(self.image_key, data)])[0]
        if stream in ("dark", "flat"):
            self.normaliser.add(stream, frame)
            if stream == "flat" and len(self.flat_frames) < 2:
                self.flat_frames.append(np.asarray(frame, np.float32))
        elif stream == "primary":
            self.frames.append(np.asarray(frame, np.float32))
            self.positions.append(float(data[self.stage_key]))
            self.context.progress(edge_frames=len(self.frames))

    def idle(self) -> None:
        """Nothing to do until the run ends."""

    def abandon(self) -> None:
        """Drop the frames."""
        self.frames.clear()

    def measure(self) -> tuple[Any, dict[str, Any]]:
        """The knife-edge fit and the noise of the frames collected so far."""
        if not self.frames:
            raise ValueError(f"run {self.start.get('uid')} has no edge frames (primary stream)")
        frames = np.stack(self.frames)
        if self.normaliser.ready:
            frames = self.normaliser.transmission(frames)
        offsets = (np.asarray(self.positions) - self.positions[0]) / self.pixel_size
        regions = sample_regions(self.start)
        fit = knife_edge_sigma(frames, roi=regions["edge"], offsets_px=offsets)
        noise: dict[str, Any]
        bg = regions["background"]
        if bg is not None and (bg[1] - bg[0]) * (bg[3] - bg[2]) >= MIN_NOISE_PIXELS:
            est = background_noise(frames, regions["background"])
            noise = {"relative": float(est.relative_std), "source": "background region",
                     "region": list(regions["background"])}
        elif len(self.flat_frames) >= 2:  # no open region of the sample big enough
            dark = self.normaliser.darks.value if self.normaliser.darks.count else 0.0
            noise = {"relative": flat_noise(self.flat_frames, dark),
                     "source": "difference of two flats"}
        else:
            raise ValueError(f"run {self.start.get('uid')}: no background region and fewer "
                             "than 2 flats: the noise cannot be measured (take num_flats >= 2)")
        return fit, noise

    def finish(self, stop: dict[str, Any]) -> AnalysisOutput:
        """Fit the blur, measure the noise, train the network; store the calibration."""
        t = time.monotonic()
        fit, noise = self.measure()
        binning = int(self.ke.get("binning") or 1)
        fit_s = time.monotonic() - t
        self.context.progress(stage="training the super-resolution network",
                              psf_sigma_px=fit.sigma_px)
        s = self.settings
        checkpoint, training = None, None
        if s["train"]:
            from .training import train_for_camera

            model, training = train_for_camera(
                fit.sigma_px, noise["relative"] if s["learn_noise"] else 0.0,
                factor=s["factor"], max_seconds=s["max_seconds"], epochs=s["epochs"],
                seed=s["seed"], device=s["device"])
            checkpoint = model.to_bytes()
        complete = stop.get("exit_status") == "success"
        metadata: dict[str, Any] = {
            "status": "complete" if complete else "incomplete",
            "kind": "knife_edge_calibration",
            "detector": self.ke.get("detector"),
            "binning": binning,
            "psf_sigma_px": float(fit.sigma_px),
            "psf_sigma_std_px": float(fit.sigma_std_px),
            "psf_sigma_sensor_px": sensor_sigma(float(fit.sigma_px), binning, clip=True),
            "edge_angle_deg": float(fit.angle_deg),
            "noise": noise,
            "standard": self.ke.get("standard"),
            "edge_frames": len(self.frames),
            "factor": s["factor"] if s["train"] else None,
            "training": training,
            "timings": {"fit_s": fit_s, "analysis_s": time.monotonic() - self.t0},
        }
        arrays = {"esf": np.stack([fit.esf_x, fit.esf]).astype(np.float32),
                  "lsf": np.stack([fit.lsf_x, fit.lsf]).astype(np.float32)}
        return AnalysisOutput(metadata, arrays, checkpoint)


class KnifeEdgeRecipe:
    """Knife-edge runs to camera calibrations (blur, noise, super-resolution network).

    Parameters
    ----------
    train
        Train the super-resolution network for the measured camera (default); without
        it the calibration holds only the blur and the noise.
    factor
        Up-sampling factor of the network: 2 or 4.
    learn_noise
        Train on pairs with the measured noise (one network that denoises and
        super-resolves); without it, noise-free pairs.
    epochs, max_seconds, seed, device
        Training of the network.
    """

    name = "knife_edge"

    def __init__(self, train: bool = True, factor: int = 2, learn_noise: bool = True,
                 epochs: int = 200, max_seconds: float | None = 60.0, seed: int = 0,
                 device: str = "auto") -> None:
        if factor not in (2, 4) or isinstance(factor, bool):
            raise ValueError(f"factor must be 2 or 4, got {factor!r}")
        if isinstance(epochs, bool) or not isinstance(epochs, int) or epochs < 1:
            raise ValueError(f"epochs must be a positive integer, got {epochs!r}")
        if max_seconds is not None and not max_seconds > 0:
            raise ValueError(f"max_seconds must be > 0 or None, got {max_seconds!r}")
        self.settings = {"train": bool(train), "factor": int(factor),
                         "learn_noise": bool(learn_noise), "epochs": epochs,
                         "max_seconds": max_seconds, "seed": int(seed), "device": device}

    def check(self, start: dict[str, Any]) -> None:
        """Refuse a run that is not a knife-edge calibration."""
        check_knife_edge_start(start)

    def open(self, start: dict[str, Any], context: RunContext) -> KnifeEdgeAnalysis:
        """Begin the analysis of one calibration run."""
        return KnifeEdgeAnalysis(start, context, self.settings)

    def settings_metadata(self) -> dict[str, Any]:
        """The settings, JSON-safe."""
        return dict(self.settings)
