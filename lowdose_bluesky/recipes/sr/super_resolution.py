"""The super-resolution recipe: every frame of a ``super_resolution_plan`` run super-resolved live.

The network is a knife-edge calibration's (recipe ``knife_edge``) of the same camera at
the same binning: the one the plan or the recipe names, else the newest in Tiled. Each
frame is normalised by the run's darks and flats, super-resolved in batches as it
arrives and published to the live result's ``super_resolved`` array; a rotation is then
reconstructed from the super-resolved projections (and from the raw ones, to compare).
"""

from __future__ import annotations

import time
from typing import Any

import numpy as np

from ...engine import AnalysisOutput, FrameRef, RunContext, read_frames
from .frames import Normaliser

__all__ = ["SRAnalysis", "SRRecipe", "check_sr_start"]


def check_sr_start(start: dict[str, Any]) -> None:
    """Refuse a run that was not acquired for super-resolution, saying what is missing."""
    sr = start.get("sr")
    if not sr:
        raise ValueError(f"run {start.get('uid')} was not acquired by super_resolution_plan (no "
                         "'sr' section in its start document)")
    if "flat" not in (sr.get("streams") or ()):
        raise ValueError(f"run {start.get('uid')} has no flat frames: super-resolution works on "
                         "the transmission (frames over flats); take num_flats >= 1")


def load_calibration(client: Any, start: dict[str, Any], uid: str | None) -> Any:
    """The calibration result named by ``uid``, the plan, or the newest of the camera."""
    from ...storage import find_calibration, result_by_uid

    if client is None:
        raise ValueError("the super-resolution recipe needs a Tiled client to find the "
                         "camera's knife-edge calibration")
    sr = start["sr"]
    uid = uid or sr.get("calibration")
    if uid:
        cal = result_by_uid(client, uid)
        if "psf_sigma_px" not in cal.metadata:
            raise ValueError(f"result {uid} is not a knife-edge calibration (no psf_sigma_px)")
    else:
        cal = find_calibration(client, sr["detector"], binning=int(sr.get("binning") or 1))
    if cal.metadata.get("factor") is None:
        raise ValueError(f"calibration {cal.uid} holds no super-resolution network (it was "
                         "made with train=False)")
    return cal


class SRAnalysis:
    """Super-resolves a run's frames as they arrive; reconstructs a rotation at the end."""

    def __init__(self, start: dict[str, Any], context: RunContext, settings: dict[str, Any],
                 model: Any, calibration: dict[str, Any]) -> None:
        check_sr_start(start)
        self.start = start
        self.context = context
        self.settings = dict(settings)
        self.sr = start["sr"]
        self.image_key = self.sr["image_key"]
        self.rotation_key = self.sr.get("rotation_key")
        self.model = model
        self.calibration = calibration
        self.normaliser = Normaliser()
        self.pending: list[tuple[np.ndarray, float]] = []
        self.done: list[np.ndarray] = []
        self.raw: list[np.ndarray] = []
        self.angles: list[float] = []
        self.latency: list[float] = []
        self.sr_seconds = 0.0
        self.t0 = time.monotonic()

    def add_frame(self, stream: str, ref: FrameRef, data: dict[str, Any],
                  received: float) -> None:
        """A dark, a flat (kept in running means) or a frame (queued)."""
        frame = read_frames(self.context.source, [ref.for_key(self.image_key, data)])[0]
        if stream in ("dark", "flat"):
            self.normaliser.add(stream, frame)
        elif stream == "primary":
            if self.rotation_key:
                self.angles.append(float(data[self.rotation_key]))
            self.pending.append((np.asarray(frame, np.float32), received))
            if len(self.pending) >= self.settings["batch"]:
                self._process()

    def idle(self) -> None:
        """Super-resolve the frames waiting."""
        self._process()

    def abandon(self) -> None:
        """Drop the queued frames."""
        self.pending.clear()

    def _process(self) -> None:
        if not self.pending:
            return
        batch, self.pending = self.pending, []
        t = time.monotonic()
        transmission = self.normaliser.transmission(np.stack([f for f, _ in batch]))
        out = self.model.predict(transmission, dtype=self.settings["dtype"])
        self.sr_seconds += time.monotonic() - t
        start = len(self.done)
        self.done.extend(out)
        self.raw.extend(transmission)
        self.context.publish("super_resolved", start, out.astype(np.float32))
        now = time.monotonic()
        self.latency.extend(now - received for _, received in batch)
        self.context.progress(frames_super_resolved=len(self.done),
                              of=int(self.sr.get("num_frames") or 0))

    def _reconstruct(self, frames: np.ndarray) -> np.ndarray:
        from ...recon import minus_log, reconstruct

        return reconstruct(minus_log(frames), np.asarray(self.angles)).astype(np.float32)

    def finish(self, stop: dict[str, Any]) -> AnalysisOutput:
        """Super-resolve what is left; reconstruct a rotation; store the frames."""
        self._process()
        n = len(self.done)
        complete = stop.get("exit_status") == "success" and n == int(
            self.sr.get("num_frames") or 0)
        arrays: dict[str, np.ndarray] = {}
        metadata: dict[str, Any] = {
            "status": "complete" if complete else "incomplete",
            "frames": n,
            "factor": int(self.model.factor),
            "calibration": self.calibration,
            "timings": {
                "analysis_s": time.monotonic() - self.t0,
                "super_resolution_s": self.sr_seconds,
                "frames_per_s": n / self.sr_seconds if self.sr_seconds else None,
                "published_after_frame_max_s": max(self.latency, default=None),
            },
        }
        if n:
            arrays["super_resolved"] = np.stack(self.done).astype(np.float32)
        if n >= 2 and self.rotation_key and self.settings["reconstruct"]:
            t = time.monotonic()
            arrays["reconstruction"] = self._reconstruct(arrays["super_resolved"])
            arrays["reconstruction_raw"] = self._reconstruct(np.stack(self.raw))
            metadata["timings"]["reconstruction_s"] = time.monotonic() - t
        return AnalysisOutput(metadata, arrays)


class SRRecipe:
    """Frames to super-resolved frames (and a rotation to its reconstruction).

    Parameters
    ----------
    calibration
        Uid of the knife-edge calibration result to use; default: the one the plan
        names, else the newest complete calibration of the run's camera and binning.
    batch
        Frames super-resolved together as soon as that many wait (fewer when the
        engine is idle).
    dtype
        Inference precision: ``"auto"`` (bfloat16 where the CPU computes it natively,
        else float32), ``"bfloat16"`` or ``"float32"``.
    reconstruct
        Reconstruct a rotation from the super-resolved frames.
    device
        Torch device of inference.
    """

    name = "super_resolution"

    def __init__(self, calibration: str | None = None, batch: int = 4, dtype: str = "auto",
                 reconstruct: bool = True, device: str = "auto") -> None:
        if isinstance(batch, bool) or not isinstance(batch, int) or batch < 1:
            raise ValueError(f"batch must be a positive integer, got {batch!r}")
        if dtype not in ("auto", "bfloat16", "float32"):
            raise ValueError(f"dtype must be 'auto', 'bfloat16' or 'float32', got {dtype!r}")
        self.settings = {"calibration": calibration, "batch": batch, "dtype": dtype,
                         "reconstruct": bool(reconstruct), "device": device}

    def check(self, start: dict[str, Any]) -> None:
        """Refuse a run not acquired for super-resolution."""
        check_sr_start(start)

    def open(self, start: dict[str, Any], context: RunContext) -> SRAnalysis:
        """Find the calibration, load its network, begin the analysis."""
        from ...model.vdsr import SRModel

        cal = load_calibration(context.client, start, self.settings["calibration"])
        model = SRModel.from_bytes(cal.checkpoint, device=self.settings["device"])
        md = cal.metadata
        summary = {"uid": cal.uid, "psf_sigma_px": md.get("psf_sigma_px"),
                   "psf_sigma_std_px": md.get("psf_sigma_std_px"), "noise": md.get("noise"),
                   "parent_uid": md.get("parent_uid"), "detector": md.get("detector"),
                   "binning": md.get("binning")}
        return SRAnalysis(start, context, self.settings, model, summary)

    def settings_metadata(self) -> dict[str, Any]:
        """The settings, JSON-safe."""
        return dict(self.settings)
