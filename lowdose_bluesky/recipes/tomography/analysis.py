"""The tomography analysis of one run: train, enhance frames as they arrive, reconstruct.

Bad runs fail with a ``ValueError`` that says what was received and what is allowed
(the engine stores it as a result with status ``"failed"``; the raw run is
never touched). A run fails when:

- a frame is not 2-D or its shape differs from the run's first frame (all streams must
  share one shape), or a float frame holds NaN/inf;
- a flat, reference or primary frame is zero everywhere (darks may be: a detector
  without offset gives that), or a reference or primary frame has less than
  :data:`MIN_MEAN_TRANSMISSION` of the open-beam counts above the dark level (beam lost,
  shutter closed);
- a dark, flat or reference frame of integer counts has more than
  :data:`~lowdose_bluesky.recon._checks.MAX_SATURATED_FRACTION` of its pixels at the
  type's maximum (65535 for ``uint16``): saturated flats give a wrong flat field and
  saturated long exposures wrong training targets;
- flats minus darks is <= 0 at more than
  :data:`~lowdose_bluesky.engine.MAX_DEAD_FRACTION` of the pixels at an exposure,
  or the dark, flat or reference stream is missing;
- the frames are smaller than the patch of a patch network trained from scratch, or
  narrower than the Noise2Inverse network needs;
- the method needs reference pairs and the run has none (``reference_angles=()``), or
  the run has too few projections for the Noise2Inverse split (both checked at the
  start document, before anything is trained).

Saturated primary frames are not an error: the short exposures of the rotation rarely
saturate, a few saturated pixels only clip their line integrals, and failing would throw
away a whole scan's analysis. They are logged and listed in the result's ``warnings``
metadata, as are the few dead pixels (flats minus darks <= 0) tolerated.
"""

from __future__ import annotations

import logging
import threading
import time
from typing import Any

import numpy as np
from tqdm.auto import tqdm

from ... import __version__
from ...engine import AnalysisOutput, FlatField, FrameRef, RunContext
from ...engine.calibration import MAX_DEAD_FRACTION
from ...jsonutil import json_safe
from ...recon import find_center, minus_log, normalize, reconstruct
from ...recon._checks import MAX_SATURATED_FRACTION, detector_maximum
from .methods import N2I_STAGE, SUPERVISED_STAGE, noise2inverse_stage, resolve_method
from .settings import AnalysisSettings
from .versions import ModelVersions, passes_gate, val_psnr

__all__ = ["MIN_MEAN_TRANSMISSION", "TomographyAnalysis", "check_start"]

log = logging.getLogger(__name__)

#: Smallest mean transmission of a reference or primary frame (else no beam reached it).
MIN_MEAN_TRANSMISSION = 0.01
#: How to acquire a missing calibration stream.
_HOW_TO_ACQUIRE = {
    "dark": "pass shutter=<the shutter> and num_darks >= 1",
    "flat": "pass sample_x=<the sample stage> and num_flats >= 1",
}
#: Least seconds between two writes of enhanced frames to the live result: each write is
#: a request the Tiled server serves (in the RunEngine's process when it is embedded).
PUBLISH_S = 1.0
#: Seconds ``finish`` waits for the training thread after asking it to stop.
_TRAINING_JOIN_S = 600.0


def check_start(start: dict[str, Any], settings: AnalysisSettings) -> str:
    """Refuse a run the settings cannot analyse; return the method it will run.

    Raises
    ------
    ValueError
        No ``lowdose`` section; a method that needs reference pairs on a blind run; too
        few projections for the Noise2Inverse split; ``reconstruct=False`` with a
        method that denoises the reconstruction.
    """
    lowdose = start.get("lowdose")
    if not lowdose:
        raise ValueError(f"run {start['uid']} was not acquired by lowdose_tomo_plan or "
                         "lowdose_tomo_flyscan (no 'lowdose' section in its start document)")
    method = resolve_method(settings.method, bool(start["reference_angles"]),
                            what=f"run {start['uid']}")
    if method in N2I_STAGE:
        from ...n2i_config import Noise2InverseConfig, check_split

        check_split(int(lowdose["angles"]["num"]),
                    Noise2InverseConfig(**settings.n2i_options).splits)
        if not settings.reconstruct:
            raise ValueError(
                f"method={method!r} denoises the reconstruction, but reconstruct=False "
                "was given: use reconstruct=True, or method='supervised' to enhance the "
                "projections only")
    return method


class TomographyAnalysis:
    """Collects one run's frames, trains in the background, enhances frames as they
    arrive, and reconstructs at the end.

    ``add_frame``, ``idle``, ``finish`` and ``abandon`` run on the engine's worker
    thread; training runs on a thread of its own and offers models to
    :class:`~lowdose_bluesky.recipes.tomography.versions.ModelVersions`.
    """

    def __init__(self, start: dict[str, Any], settings: AnalysisSettings,
                 context: RunContext, load_pretrained: Any = None) -> None:
        self.start = start
        self.context = context
        self.settings = settings
        self.source = context.source
        self._load_pretrained = load_pretrained
        self.method = check_start(start, settings)
        lowdose = start["lowdose"]
        self.image_key = lowdose["image_key"]
        self.rotation_key = lowdose["rotation_key"]
        self.exposure_key = lowdose["exposure_key"]
        # A fly scan's rotation has no events: the exposure and the trigger schedule's
        # angles are in the start document, the angle read back with each frame (if
        # the detector records one) under ``angle_key``.
        self.fly: dict[str, Any] | None = lowdose.get("fly")
        self.angle_key: str | None = lowdose.get("angle_key")
        self.short = float(start["short_exposure"])
        self.long = float(start["long_exposure"])
        self.expected_refs = 2 * len(start["reference_angles"])
        self.expected_projections = int(lowdose["angles"]["num"])
        if self.method in N2I_STAGE:
            from ...n2i_config import Noise2InverseConfig

            self._n2i_config = Noise2InverseConfig(**settings.n2i_options)
        self.gates: dict[str, Any] = {}
        self.flatfield = FlatField(f"run {start['uid']}", _HOW_TO_ACQUIRE, "lowdose_tomo_plan")
        self.frame_shape: tuple[int, ...] | None = None
        self._first_frame = ""
        self.warnings: list[str] = []
        self._saturated: list[tuple[int, float]] = []  # primary (index, fraction)
        self._saturation_max: float | None = None
        self.refs: list[tuple[float, float, np.ndarray]] = []
        self.angles: list[float] = []
        self.raw: np.ndarray | None = None  # (N, H, W) transmission
        self.enhanced: np.ndarray | None = None
        self.enhanced_by: np.ndarray | None = None  # model version per frame, -1: not yet
        self.received: np.ndarray | None = None  # time.monotonic() of each frame's event
        self.latency: np.ndarray | None = None  # seconds from event to readable in Tiled
        self.pending: list[int] = []
        self.versions = ModelVersions(settings.min_gain_db, settings.refresh_s)
        self.enhancer: Any = None
        self.training_error: BaseException | None = None
        self._trainer: threading.Thread | None = None
        self._trained: Any = None
        self._stop_training = threading.Event()
        self._published = 0  # enhanced frames readable in Tiled (a prefix)
        self._last_publish = -float("inf")
        self._republish: set[int] = set()
        self.timings: dict[str, float] = {}
        self.t0 = time.monotonic()
        self._bar: tqdm | None = None
        self._show("reset", start["uid"])

    def _show(self, method: str, *args: Any) -> None:
        self.context.show(method, *args)

    # ----------------------------------------------------------------- frames
    def add_frame(self, stream: str, ref: FrameRef, data: dict[str, Any],
                  received: float | None = None) -> None:
        """Read one announced frame and file it by stream."""
        arrived = time.monotonic() if received is None else received
        ref = ref.for_key(self.image_key, data) if hasattr(ref, "for_key") else ref
        frame = np.asarray(self.source.read(ref))
        exposure = self._exposure(stream, ref, data)
        angle = self._angle(stream, ref, data)
        what = f"{stream} frame {ref['index']} (exposure {exposure} s"
        what += f", angle {angle} deg)" if stream in ("reference", "primary") else ")"
        self._check_frame(what, stream, int(ref["index"]), frame, exposure)
        if stream in ("dark", "flat"):
            self.flatfield.add(stream, exposure, frame)
        elif stream == "reference":
            self._check_beam(what, frame, exposure)
            self.refs.append((angle, exposure, frame.astype(np.float32)))
            if len(self.refs) == self.expected_refs:
                self.start_training()
        elif stream == "primary":
            self._check_beam(what, frame, exposure)
            self._add_projection(int(ref["index"]), frame, angle, arrived)

    def _exposure(self, stream: str, ref: FrameRef, data: dict[str, Any]) -> float:
        if self.exposure_key in data:
            return float(data[self.exposure_key])
        if self.fly is not None and stream == "primary":
            return float(self.fly["exposure"])
        raise ValueError(f"{stream} frame {ref['index']} has no {self.exposure_key!r} reading "
                         f"(readings: {sorted(data)})")

    def _angle(self, stream: str, ref: FrameRef, data: dict[str, Any]) -> float:
        if self.rotation_key in data:
            return float(data[self.rotation_key])
        if self.fly is not None and stream == "primary":
            if self.angle_key:
                read = self.source.read(ref.for_key(self.angle_key, data))
                return float(np.asarray(read).ravel()[0])
            return float(self.fly["angles"][int(ref["index"])])
        if stream in ("dark", "flat"):
            return float("nan")
        raise ValueError(f"{stream} frame {ref['index']} has no {self.rotation_key!r} reading "
                         f"(readings: {sorted(data)})")

    # ------------------------------------------------------------ bad input
    def _check_frame(self, what: str, stream: str, index: int, frame: np.ndarray,
                     exposure: float) -> None:
        """Reject a frame of the wrong shape, with NaN/inf, blank or saturated."""
        if self.frame_shape is None:
            if frame.ndim != 2:
                raise ValueError(f"{what} has shape {frame.shape}; frames must be 2-D (H, W)")
            self.frame_shape, self._first_frame = frame.shape, what.split(" (")[0]
            self._check_patch(frame.shape)
        elif frame.shape != self.frame_shape:
            raise ValueError(
                f"{what} has shape {frame.shape} but the run's first frame "
                f"({self._first_frame}) has shape {self.frame_shape}: frames of every stream "
                "(dark, flat, reference, primary) must have the same shape; was the detector's "
                "ROI or binning changed during the run?")
        if frame.dtype.kind == "f" and not np.isfinite(frame).all():
            n_nan = int(np.isnan(frame).sum())
            n_inf = int(frame.size - np.isfinite(frame).sum()) - n_nan
            raise ValueError(f"{what} holds {n_nan} NaN and {n_inf} infinite values (of "
                             f"{frame.size}); only finite counts are allowed")
        if stream != "dark" and not frame.any():
            raise ValueError(f"{what} is zero everywhere: no beam reached the detector (was the "
                             f"beam off or the shutter stuck closed?); every {stream} frame must "
                             "hold counts")
        maximum = detector_maximum(frame.dtype)
        if maximum is None:
            return
        fraction = float(np.count_nonzero(frame >= maximum)) / frame.size
        if fraction <= MAX_SATURATED_FRACTION:
            return
        if stream == "primary":
            self._saturation_max = maximum
            self._saturated.append((index, fraction))
            if len(self._saturated) == 1:
                log.warning("run %s: %s has %.1f%% of its pixels at the detector maximum %g "
                            "(saturated); the analysis goes on, the result lists a warning",
                            self.start["uid"], what, 100 * fraction, maximum)
            return
        which = "long_exposure" if exposure == self.long else "short_exposure"
        raise ValueError(
            f"{what} has {fraction:.1%} of its pixels at the detector maximum {maximum:g} "
            f"(saturated); at most {MAX_SATURATED_FRACTION:.0%} are allowed in {stream} "
            f"frames: shorten {which} ({exposure} s) or lower the flux")

    def _check_patch(self, shape: tuple[int, ...]) -> None:
        """Reject frames smaller than the patch of a patch network trained from scratch."""
        s = self.settings
        if self.method in N2I_STAGE:
            smallest = self._n2i_config.min_slice_side
            if shape[1] < smallest:
                raise ValueError(
                    f"frames of {shape[0]}x{shape[1]} give slices of {shape[1]}x{shape[1]}, "
                    f"too small for the Noise2Inverse network of method={self.method!r} "
                    f"(depth {self._n2i_config.depth}): frames need at least {smallest} "
                    "columns")
        if s.pretrained is not None or self.method not in SUPERVISED_STAGE:
            return
        from ...model.networks import ARCHS, PATCH_ARCHS

        if s.arch not in PATCH_ARCHS:
            return
        patch = int(s.train_options.get("patch_size") or ARCHS[s.arch]["patch_size"])
        if min(shape) < patch:
            raise ValueError(
                f"frames of {shape[0]}x{shape[1]} are smaller than the {patch}x{patch} patch of "
                f"the {s.arch!r} network: LiveEnhancer(arch={s.arch!r}) needs frames of at "
                f"least {patch}x{patch}; use arch='unet' (any frame size) or a smaller "
                "train_options['patch_size'] (a multiple of 8, >= 16)")

    def _check_beam(self, what: str, frame: np.ndarray, exposure: float) -> None:
        """Reject a frame with (almost) no counts above the dark level."""
        if not self.flatfield.has(exposure):
            return  # the missing stream is reported when the frame is corrected
        flat, dark = self._correction(exposure)
        open_counts = float(np.mean(flat - dark, dtype=np.float64))
        counts = float(np.mean(frame, dtype=np.float64) - np.mean(dark, dtype=np.float64))
        if open_counts > 0 and counts < MIN_MEAN_TRANSMISSION * open_counts:
            raise ValueError(
                f"{what} has {counts / open_counts:.2%} of the open-beam counts above the dark "
                f"level (mean {counts:.3g} of {open_counts:.3g} counts): no beam reached the "
                "detector (beam lost or shutter closed?); reference and primary frames need a "
                f"mean transmission of at least {MIN_MEAN_TRANSMISSION:.0%}")

    def _warn(self, text: str) -> None:
        """Record a warning for the result metadata and log it."""
        if text not in self.warnings:
            self.warnings.append(text)
            log.warning("run %s: %s", self.start["uid"], text)

    def _all_warnings(self) -> list[str]:
        """The warnings of the run, with the saturated primary frames summarised."""
        out = list(self.warnings)
        if self._saturated:
            worst = max(self._saturated, key=lambda item: item[1])
            indices = [i for i, _ in self._saturated]
            shown = ", ".join(map(str, indices[:10])) + (", ..." if len(indices) > 10 else "")
            out.append(
                f"{len(indices)} primary frame(s) have more than {MAX_SATURATED_FRACTION:.0%} of "
                f"their pixels at the detector maximum {self._saturation_max:g} (frames "
                f"{shown}; worst: frame {worst[0]}, {worst[1]:.1%}): their line integrals are "
                "clipped there; shorten short_exposure or lower the flux")
        return out

    def _add_projection(self, index: int, frame: np.ndarray, angle: float,
                        received: float) -> None:
        projection_net = self.method in SUPERVISED_STAGE
        if projection_net and self._trainer is None and self.enhancer is None:
            self.start_training()  # the reference stream ended early: train on what is there
        if self.raw is None:
            n = max(self.expected_projections, index + 1)
            # np.zeros, not zeros_like (which writes every page): a stack becomes resident
            # as the frames are written into it
            self.raw = np.zeros((n, *frame.shape), np.float32)
            self.received = np.full(n, np.nan)
            if projection_net:
                self.enhanced = np.zeros((n, *frame.shape), np.float32)
                self.enhanced_by = np.full(n, -1, np.int16)
                self.latency = np.full(n, np.nan)
        if index >= self.raw.shape[0]:
            self._grow(index + 1)
        self.raw[index] = self._transmission(frame, self.short)
        self.received[index] = received
        while len(self.angles) <= index:
            self.angles.append(np.nan)
        self.angles[index] = angle
        if projection_net:
            self.pending.append(index)

    def _grow(self, n: int) -> None:
        """Make room for ``n`` projections (a scan with more frames than announced)."""
        grow = n - self.raw.shape[0]
        pad = np.zeros((grow, *self.raw.shape[1:]), np.float32)
        self.raw = np.concatenate([self.raw, pad])
        self.received = np.concatenate([self.received, np.full(grow, np.nan)])
        if self.enhanced is not None:
            self.enhanced = np.concatenate([self.enhanced, pad])
            self.enhanced_by = np.concatenate([self.enhanced_by, np.full(grow, -1, np.int16)])
            self.latency = np.concatenate([self.latency, np.full(grow, np.nan)])

    def _correction(self, exposure: float) -> tuple[np.ndarray, np.ndarray]:
        """Mean flat and dark at ``exposure``, checked once."""
        known = exposure in self.flatfield.dead
        flat, dark = self.flatfield.correction(exposure)
        n_dead = self.flatfield.dead[exposure]
        if n_dead and not known:
            self._warn(f"flats minus darks at exposure {exposure} s is <= 0 at {n_dead} of "
                       f"{flat.size} pixels (dead pixels): their transmission is set to 1")
        return flat, dark

    def _transmission_floor(self) -> float:
        """Half a count of the short exposure, as transmission: the floor before ``-log``.

        A pixel that received no photon (or less than the dark level) has no finite line
        integral; clipping it at half a count instead of a tiny constant keeps one such
        pixel from streaking the whole raw reconstruction.
        """
        flat, dark = self._correction(self.short)
        counts = float(np.median(flat - dark))
        return float(min(0.5, 0.5 / counts)) if counts > 0 else 1e-6

    def _transmission(self, frames: np.ndarray, exposure: float) -> np.ndarray:
        flat, dark = self._correction(exposure)
        return normalize(frames, flat, dark, max_bad_fraction=MAX_DEAD_FRACTION)

    # ---------------------------------------------------------------- training
    def start_training(self) -> None:
        """Start training (or fine-tuning, or loading) on a thread of its own.

        The reference pairs are corrected here, on the worker thread; a failure to
        build them fails training (the run fails at its end, as before).
        """
        if self._trainer is not None or self.method not in SUPERVISED_STAGE:
            return
        try:
            pairs = None if (self.settings.pretrained is not None
                             and self.settings.skip_training) else self._pairs()
        except Exception as exc:
            self.training_error = exc
            log.error("training failed for run %s: %s", self.start["uid"], exc)
            self._trainer = threading.current_thread()  # nothing to join
            return
        self._trainer = threading.Thread(target=self._train, args=(pairs,),
                                         name="lowdose-training", daemon=True)
        self._trainer.start()
        self.context.progress(force=True, stage="training", model_version=0,
                              enhanced_frames=0, expected_frames=self.expected_projections)

    def _train(self, pairs: tuple[np.ndarray, np.ndarray] | None) -> None:
        """The training thread: offers each improved model, keeps the final one."""
        from ...model import Enhancer, fine_tune, set_cpu_threads, train_enhancer

        t = time.monotonic()
        try:
            s = self.settings
            if s.threads is not None:
                set_cpu_threads(s.threads)
            pretrained = self._load_pretrained(s.pretrained) if s.pretrained is not None else None
            if isinstance(pretrained, bytes):
                pretrained = Enhancer.from_bytes(pretrained, device=s.device)
            if pretrained is not None and s.skip_training:
                self.versions.force(pretrained, "pretrained, used as is")
                self._trained = pretrained
                return
            low, high = pairs
            options = {"device": s.device, "seed": s.seed, "progress": s.progress,
                       "on_best": self.versions.offer, **self._budget(t), **s.train_options}
            options.setdefault("on_epoch", lambda record: self._show("add_epoch", record))
            self._show("stage", f"training on {len(low)} reference pairs")
            if pretrained is not None:
                log.info("fine-tuning pretrained %s model on %d pairs", pretrained.arch, len(low))
                self._trained = fine_tune(pretrained, low, high, epochs=s.fine_tune_epochs,
                                          **options)
            else:
                log.info("training %s model on %d reference pairs of %s", s.arch, len(low),
                         low.shape[1:])
                self._trained = train_enhancer(low, high, arch=s.arch, epochs=s.epochs,
                                               **options)
        except Exception as exc:
            self.training_error = exc
            log.error("training failed for run %s: %s", self.start["uid"], exc)
        finally:
            self.timings["training_s"] = time.monotonic() - t

    def _budget(self, started: float) -> dict[str, Any]:
        """``train_enhancer`` options that bound training by the settings' budget."""
        stop = self._stop_training.is_set
        budget = self.settings.training_budget
        if budget is None:
            return {"stop_requested": stop}
        if budget != "scan":
            return {"max_seconds": float(budget), "stop_requested": stop}
        floor = self.settings.min_training_s
        ended = self.context.scan_ended

        def scan_over() -> bool:
            return stop() or (ended.is_set() and time.monotonic() - started >= floor)

        return {"stop_requested": scan_over}

    def _gate_record(self) -> None:
        """The projection gate's verdict on the model in use (validation band)."""
        model = self.versions.current
        if self.settings.skip_training and model is not None:
            self.gates["projection"] = {"use_model": True,
                                        "measured_on": "not measured: pretrained model used "
                                                       "as is"}
            return
        if model is None and self._trained is None:
            return
        judged = model if model is not None else self._trained
        use = model is not None and passes_gate(model)
        self.gates["projection"] = {
            "use_model": bool(use), "val_psnr": val_psnr(judged),
            "raw_val_psnr": judged.config.get("baseline_val_psnr"),
            "measured_on": "validation band of the reference pairs"}
        if not use:
            log.warning("run %s: the projection network (validation PSNR %s dB) does not "
                        "beat the raw frames (%s dB): the raw frames are used",
                        self.start["uid"], val_psnr(judged),
                        judged.config.get("baseline_val_psnr"))

    @property
    def enhancer_used(self) -> bool:
        """Whether the projection gate kept the network (no gate measured: it is used)."""
        return bool(self.gates.get("projection", {}).get("use_model", True))

    def _pairs(self) -> tuple[np.ndarray, np.ndarray]:
        by_angle: dict[float, dict[float, np.ndarray]] = {}
        for angle, exposure, frame in self.refs:
            by_angle.setdefault(angle, {})[exposure] = frame
        pairs = [(p[self.short], p[self.long]) for p in by_angle.values()
                 if self.short in p and self.long in p]
        if not self.refs:
            raise ValueError(
                f"run {self.start['uid']} has no reference frames (no 'reference' stream; "
                f"{self.expected_refs} frames expected at {self.start['reference_angles']} "
                "deg): the enhancer is trained on the long/short pairs taken at the reference "
                "angles; acquire them with lowdose_tomo_plan(..., reference_angles=(30.0, "
                "120.0)) or use a trained model with LiveEnhancer(pretrained=..., "
                "skip_training=True)")
        if not pairs:
            seen = [(angle, exposure) for angle, exposure, _ in self.refs]
            raise ValueError(
                f"run {self.start['uid']} has no complete long/short reference pair: reference "
                f"frames (angle deg, exposure s) seen: {seen}; each reference angle needs one "
                f"frame at long_exposure={self.long} s and one at short_exposure={self.short} s")
        low = self._transmission(np.stack([p[0] for p in pairs]), self.short)
        high = self._transmission(np.stack([p[1] for p in pairs]), self.long)
        return low, high

    # ------------------------------------------------------------- enhancement
    def idle(self) -> None:
        """Adopt a newer model, enhance a batch of waiting (or outdated) frames, publish."""
        if self.enhanced is None:
            return
        if self.versions.adopt():
            self.enhancer = self.versions.current
            self._show("stage", f"model version {self.versions.version} in use")
        if self.enhancer is None:
            return
        if self.pending:
            self._enhance(self.pending[: self.settings.batch_size])
        else:
            stale = self._stale()
            if stale.size:
                self._enhance(stale[: self.settings.batch_size].tolist())
        if time.monotonic() - self._last_publish >= PUBLISH_S:
            self._publish()

    def _stale(self) -> np.ndarray:
        """Frames enhanced by an older model version than the one in use."""
        done = self.enhanced_by >= 0
        return np.flatnonzero(done & (self.enhanced_by != self.versions.version))

    def _enhance(self, indices: list[int]) -> None:
        """Enhance frames ``indices`` with the model in use (the raw frames if gated off)."""
        if not indices:
            return
        if self._bar is None and self.settings.progress:
            self._bar = tqdm(total=self.expected_projections, desc="enhancing", unit="frame")
        t = time.monotonic()
        idx = sorted(indices)
        first = [i for i in idx if self.enhanced_by[i] < 0]
        model = self.enhancer
        self.enhanced[idx] = model(self.raw[idx]) if model is not None else self.raw[idx]
        version = self.versions.version if model is not None else 0
        again = [i for i in idx if i not in first]
        self.enhanced_by[idx] = version
        self.versions.count(version, False, len(first))
        self.versions.count(version, True, len(again))
        self._republish.update(i for i in again if i < self._published)
        pending = set(idx)
        self.pending = [i for i in self.pending if i not in pending]
        if self._bar is not None and first:
            self._bar.update(len(first))
        last = idx[-1]
        self._show("set_projection", last, self.raw[last], self.enhanced[last])
        self.timings["enhancement_s"] = self.timings.get("enhancement_s", 0.0) + (
            time.monotonic() - t)

    def _publish(self) -> None:
        """Write newly enhanced frames (a growing prefix) and re-enhanced ones to Tiled."""
        self._last_publish = time.monotonic()
        done = self.enhanced_by >= 0
        end = self._published
        while end < done.size and done[end]:
            end += 1
        if end > self._published:
            self.context.publish("enhanced", self._published,
                                 self.enhanced[self._published:end])
            now = time.monotonic()
            new = slice(self._published, end)
            self.latency[new] = now - self.received[new]
            self._published = end
        if self._republish:
            for start, stop in _runs(sorted(self._republish)):
                self.context.publish("enhanced", start, self.enhanced[start:stop])
            self._republish.clear()
        self.context.progress(stage="scan", enhanced_frames=int(self._published),
                              expected_frames=self.expected_projections,
                              model_version=int(self.versions.version))

    # ------------------------------------------------------------------ finish
    def finish(self, stop: dict[str, Any]) -> AnalysisOutput:
        """Reconstruct and assemble the result (metadata, arrays, checkpoint)."""
        n = len([a for a in self.angles if np.isfinite(a)])
        md: dict[str, Any] = {
            "status": "complete", "error": None, "version": __version__,
            "raw_exit_status": stop.get("exit_status"),
            "num_projections": n, "expected_projections": self.expected_projections,
            "dose_ratio": self.long / self.short,
            "method": self.method,
            "blind": not self.start["reference_angles"],
            "model": {"arch": None if self.method not in SUPERVISED_STAGE else self.settings.arch,
                      "pretrained": None if self.settings.pretrained is None
                      else "<checkpoint bytes>" if isinstance(self.settings.pretrained, bytes)
                      else str(self.settings.pretrained)},
        }
        complete = stop.get("exit_status") == "success" and n >= self.expected_projections
        self._end_training(wait=complete)
        if self._trained is not None or self.versions.current is not None:
            md["model"].update(self._model_md())  # how training went, even if incomplete
        if not complete:
            md.update(status="incomplete", error=(
                f"scan ended with exit_status={stop.get('exit_status')!r} after {n} of "
                f"{self.expected_projections} projections; no reconstruction made"))
            self._show("stage", "scan incomplete: no reconstruction")
            return AnalysisOutput(self._finalise(md))
        if self.training_error is not None:
            raise self.training_error
        arrays: dict[str, np.ndarray] = {}
        if self.enhanced is not None:
            t = time.monotonic()
            readable = int(np.isfinite(self.latency[:n]).sum())  # when the stop was handled
            self._final_model()
            rest = sorted(set(self.pending) | set(self._stale().tolist()))
            for i in range(0, len(rest), self.settings.batch_size):
                self._enhance(rest[i: i + self.settings.batch_size])
            self._publish()
            self.timings["final_enhancement_s"] = time.monotonic() - t
            arrays["enhanced"] = self.enhanced[:n]
            arrays["enhanced_by"] = self.enhanced_by[:n]
            md["model"].update(self._model_md())
            md["frames"] = {**self._latency_md(n), "enhanced_before_stop": readable}
        if self.settings.reconstruct:
            self.context.progress(force=True, stage="reconstruction")
            self._reconstruct(n, md, arrays)
        md["gates"] = json_safe(self.gates)
        model = self.enhancer
        checkpoint = model.to_bytes() if model is not None and self.enhancer_used else None
        if checkpoint is None and self._trained is not None:
            checkpoint = self._trained.to_bytes()
        return AnalysisOutput(self._finalise(md), arrays, checkpoint)

    def _end_training(self, wait: bool) -> None:
        """Let training end (at once when the run is not going to be reconstructed)."""
        if not wait:
            self._stop_training.set()
        trainer = self._trainer
        if trainer is None and self.method in SUPERVISED_STAGE and wait:
            self.start_training()  # no primary frame arrived: train on the pairs anyway
            trainer = self._trainer
        if trainer is not None and trainer is not threading.current_thread():
            trainer.join(_TRAINING_JOIN_S)

    def _final_model(self) -> None:
        """Decide the model of the result: the final one where it differs enough."""
        if self.versions.final(self._trained):
            log.info("run %s: final model (version %d) differs from the last one in use; "
                     "frames of older versions are enhanced again", self.start["uid"],
                     self.versions.version)
        self.enhancer = self.versions.current
        self._gate_record()

    def _model_md(self) -> dict[str, Any]:
        judged = self.enhancer if self.enhancer is not None else self._trained
        md: dict[str, Any] = {"versions": json_safe(self.versions.records),
                              "version_used": self.versions.version if self.enhancer else 0}
        if judged is not None:
            trained = self._trained or judged  # how training went (stopped, budget, best)
            md.update(arch=judged.arch, config=json_safe(trained.config),
                      history=json_safe(trained.history))
        return md

    def _latency_md(self, n: int) -> dict[str, Any]:
        """How soon frames were readable in Tiled after their events."""
        first = self.versions.first_model_at
        md: dict[str, Any] = {
            "first_model_after_start_s": None if first is None else first - self.t0}
        if first is not None:
            after = self.received[:n] >= first
            lat = self.latency[:n][after & np.isfinite(self.latency[:n])]
            if lat.size:
                md.update(latency_after_first_model_s={
                    "median": float(np.median(lat)), "p90": float(np.percentile(lat, 90)),
                    "max": float(lat.max()), "frames": int(lat.size)})
        return md

    def _reconstruct(self, n: int, md: dict[str, Any], arrays: dict[str, np.ndarray]) -> None:
        """Raw and final reconstructions (Noise2Inverse last, where the method has it)."""
        t = time.monotonic()
        angles = np.asarray(self.angles[:n])
        floor = self._transmission_floor()
        li_raw = minus_log(self.raw[:n], floor=floor)
        li_src = li_raw if self.enhanced is None else minus_log(self.enhanced[:n], floor=floor)
        center = find_center(li_src, angles)
        arrays["reconstruction_raw"] = reconstruct(li_raw, angles, center=center)
        source = (arrays["reconstruction_raw"] if self.enhanced is None
                  else reconstruct(li_src, angles, center=center))
        md["center"] = float(center)
        md["transmission_floor"] = floor
        self.timings["reconstruction_s"] = time.monotonic() - t
        if self.method in N2I_STAGE:
            s = self.settings
            self._show("stage", "Noise2Inverse: training on the split reconstructions")
            self.context.progress(force=True, stage="noise2inverse")
            volume, info, model = noise2inverse_stage(
                li_src, angles, center, options={"seed": s.seed, **s.n2i_options},
                filter=s.n2i_filter, device=s.device, progress=s.progress, fallback=source,
                stop_requested=s.train_options.get("stop_requested"))
            self.gates["noise2inverse"] = info.pop("gate")
            md["noise2inverse"] = json_safe(info)
            for key, value in info["timings"].items():
                self.timings[f"noise2inverse_{key}"] = value
            arrays["checkpoint_noise2inverse"] = np.frombuffer(model, dtype=np.uint8)
            source = volume
        arrays["reconstruction"] = source
        mid = source.shape[0] // 2
        self._show("set_slices", arrays["reconstruction_raw"][mid], source[mid])

    def _finalise(self, md: dict[str, Any]) -> dict[str, Any]:
        if self._bar is not None:
            self._bar.close()
        md["warnings"] = self._all_warnings()
        md["timings"] = dict(self.timings)
        md["finished"] = time.time()
        return md

    def abandon(self) -> None:
        """Stop training; the run failed or the engine shuts down."""
        self._stop_training.set()
        if self._bar is not None:
            self._bar.close()


def _runs(indices: list[int]) -> list[tuple[int, int]]:
    """Sorted indices as ``(start, stop)`` runs of consecutive values."""
    out: list[tuple[int, int]] = []
    for i in indices:
        if out and out[-1][1] == i:
            out[-1] = (out[-1][0], i + 1)
        else:
            out.append((i, i + 1))
    return out
