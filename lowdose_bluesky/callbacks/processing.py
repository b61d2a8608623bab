"""The analysis of one run, done off the RunEngine thread by :class:`LiveEnhancer`.

Bad runs fail with a ``ValueError`` that says what was received and what is allowed
(:class:`LiveEnhancer` stores it as a result with status ``"failed"``; the raw run is
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
- flats minus darks is <= 0 at more than :data:`MAX_DEAD_FRACTION` of the pixels at an
  exposure, or the dark, flat or reference stream is missing;
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
from dataclasses import dataclass, field
from typing import Any

import numpy as np
from tqdm.auto import tqdm

from .. import __version__
from ..jsonutil import json_safe
from ..recon import find_center, minus_log, normalize, reconstruct
from ..recon._checks import MAX_SATURATED_FRACTION, detector_maximum
from .frame_source import FrameRef, FrameSource
from .methods import N2I_STAGE, SUPERVISED_STAGE, noise2inverse_stage, resolve_method

__all__ = ["MAX_DEAD_FRACTION", "MIN_MEAN_TRANSMISSION", "AnalysisSettings", "RunProcessor"]

log = logging.getLogger(__name__)

#: Smallest mean transmission of a reference or primary frame (else no beam reached it).
MIN_MEAN_TRANSMISSION = 0.01
#: Largest fraction of pixels with flats minus darks <= 0 (dead pixels) at one exposure.
MAX_DEAD_FRACTION = 1e-3
#: How to acquire a missing calibration stream.
_HOW_TO_ACQUIRE = {
    "dark": "pass shutter=<the shutter> and num_darks >= 1",
    "flat": "pass sample_x=<the sample stage> and num_flats >= 1",
}


@dataclass
class AnalysisSettings:
    """What :class:`LiveEnhancer` does with a run (see its docstring)."""

    arch: str = "unet"
    epochs: int = 30
    device: str = "auto"
    reconstruct: bool = True
    pretrained: Any = None
    skip_training: bool = False
    fine_tune_epochs: int = 5
    batch_size: int = 8
    seed: int = 0
    progress: bool = True
    threads: int | None = None
    training_budget: str | float | None = "scan"
    min_training_s: float = 60.0
    figure: Any = None
    train_options: dict[str, Any] = field(default_factory=dict)
    method: str = "auto"
    n2i_options: dict[str, Any] = field(default_factory=dict)
    n2i_filter: str = "parzen"


class _Mean:
    """Running mean of frames (no stack of copies is kept)."""

    def __init__(self) -> None:
        self.total: np.ndarray | None = None
        self.count = 0

    def add(self, frame: np.ndarray) -> None:
        f = frame.astype(np.float64)
        self.total = f if self.total is None else self.total + f
        self.count += 1

    @property
    def value(self) -> np.ndarray:
        assert self.total is not None
        return (self.total / self.count).astype(np.float32)


class RunProcessor:
    """Collects one run's frames, trains, enhances and reconstructs.

    Every method runs on the analysis worker thread.
    """

    def __init__(self, start: dict[str, Any], settings: AnalysisSettings,
                 source: FrameSource, load_pretrained: Any,
                 scan_ended: threading.Event | None = None) -> None:
        self.start = start
        self.scan_ended = scan_ended if scan_ended is not None else threading.Event()
        self.settings = settings
        self.source = source
        self._load_pretrained = load_pretrained
        lowdose = start.get("lowdose")
        if not lowdose:
            raise ValueError(f"run {start['uid']} was not acquired by lowdose_tomo_plan "
                             "(no 'lowdose' section in its start document)")
        self.image_key = lowdose["image_key"]
        self.rotation_key = lowdose["rotation_key"]
        self.exposure_key = lowdose["exposure_key"]
        self.short = float(start["short_exposure"])
        self.long = float(start["long_exposure"])
        self.expected_refs = 2 * len(start["reference_angles"])
        self.expected_projections = int(lowdose["angles"]["num"])
        self.method = resolve_method(settings.method, bool(start["reference_angles"]),
                                     what=f"run {start['uid']}")
        if self.method in N2I_STAGE:
            from ..n2i_config import Noise2InverseConfig, check_split

            self._n2i_config = Noise2InverseConfig(**settings.n2i_options)
            check_split(self.expected_projections, self._n2i_config.splits)
            if not settings.reconstruct:
                raise ValueError(
                    f"method={self.method!r} denoises the reconstruction, but reconstruct=False "
                    "was given: use reconstruct=True, or method='supervised' to enhance the "
                    "projections only")
        self.gates: dict[str, Any] = {}
        self.darks: dict[float, _Mean] = {}
        self.flats: dict[float, _Mean] = {}
        self.frame_shape: tuple[int, ...] | None = None
        self._first_frame = ""
        self._corrections: dict[float, tuple[np.ndarray, np.ndarray]] = {}
        self.warnings: list[str] = []
        self._saturated: list[tuple[int, float]] = []  # primary (index, fraction)
        self._saturation_max: float | None = None
        self.refs: list[tuple[float, float, np.ndarray]] = []
        self.angles: list[float] = []
        self.raw: np.ndarray | None = None  # (N, H, W) transmission
        self.enhanced: np.ndarray | None = None
        self.pending: list[int] = []
        self.enhancer: Any = None
        self.training_error: BaseException | None = None
        self.timings: dict[str, float] = {}
        self.t0 = time.perf_counter()
        self.last_frame_time: float | None = None
        self._bar: tqdm | None = None
        self._show("reset", start["uid"])

    def _show(self, method: str, *args: Any) -> None:
        """Update the live figure, if any; a figure error never stops the analysis."""
        if self.settings.figure is None:
            return
        try:
            getattr(self.settings.figure, method)(*args)
        except Exception as exc:
            log.warning("live figure update %r failed: %s", method, exc)

    # ----------------------------------------------------------------- frames
    def add_frame(self, stream: str, ref: FrameRef, data: dict[str, Any],
                  received: float | None = None) -> None:
        """Read one announced frame and file it by stream.

        ``received`` is when its event document reached the callback
        (``time.perf_counter()``; default: now), the start of the result latency.
        """
        arrived = time.perf_counter() if received is None else received
        frame = np.asarray(self.source.read(ref))
        exposure = float(data[self.exposure_key])
        angle = float(data[self.rotation_key])
        what = f"{stream} frame {ref['index']} (exposure {exposure} s"
        what += f", angle {angle} deg)" if stream in ("reference", "primary") else ")"
        self._check_frame(what, stream, int(ref["index"]), frame, exposure)
        if stream == "dark":
            self.darks.setdefault(exposure, _Mean()).add(frame)
            self._corrections.clear()
        elif stream == "flat":
            self.flats.setdefault(exposure, _Mean()).add(frame)
            self._corrections.clear()
        elif stream == "reference":
            self._check_beam(what, frame, exposure)
            self.refs.append((angle, exposure, frame.astype(np.float32)))
            if len(self.refs) == self.expected_refs:
                self.train()
        elif stream == "primary":
            self._check_beam(what, frame, exposure)
            self._add_projection(ref["index"], frame, angle)
        self.last_frame_time = arrived

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
        from ..model.networks import ARCHS, PATCH_ARCHS

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
        if exposure not in self.darks or exposure not in self.flats:
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

    def _add_projection(self, index: int, frame: np.ndarray, angle: float) -> None:
        projection_net = self.method in SUPERVISED_STAGE
        if projection_net and self.enhancer is None and self.training_error is None:
            self.train()  # the reference stream ended early: train on what is there
        if self.raw is None:
            n = max(self.expected_projections, index + 1)
            # np.zeros, not zeros_like (which writes every page): a stack becomes resident
            # as the frames are written into it
            self.raw = np.zeros((n, *frame.shape), np.float32)
            if projection_net:
                self.enhanced = np.zeros((n, *frame.shape), np.float32)
        if index >= self.raw.shape[0]:
            grow = index + 1 - self.raw.shape[0]
            pad = np.zeros((grow, *frame.shape), np.float32)
            self.raw = np.concatenate([self.raw, pad])
            if self.enhanced is not None:
                self.enhanced = np.concatenate([self.enhanced, pad])
        self.raw[index] = self._transmission(frame, self.short)
        while len(self.angles) <= index:
            self.angles.append(np.nan)
        self.angles[index] = angle
        self.pending.append(index)

    def _correction(self, exposure: float) -> tuple[np.ndarray, np.ndarray]:
        """Mean flat and dark at ``exposure``, checked once."""
        cached = self._corrections.get(exposure)
        if cached is not None:
            return cached
        missing = [name for name, table in (("dark", self.darks), ("flat", self.flats))
                   if exposure not in table]
        if missing:
            raise ValueError(
                f"run {self.start['uid']} has no {' and no '.join(missing)} frames at "
                f"exposure {exposure} s (darks at {sorted(self.darks)} s, flats at "
                f"{sorted(self.flats)} s): flat-field correction needs dark and flat frames at "
                "both exposures; to acquire them "
                + " and ".join(_HOW_TO_ACQUIRE[m] for m in missing) + " to lowdose_tomo_plan")
        flat, dark = self.flats[exposure].value, self.darks[exposure].value
        dead = flat - dark <= 0
        n_dead, allowed = int(dead.sum()), int(MAX_DEAD_FRACTION * dead.size)
        if n_dead > allowed:
            raise ValueError(
                f"run {self.start['uid']}: flats minus darks at exposure {exposure} s is <= 0 at "
                f"{n_dead} of {dead.size} pixels ({n_dead / dead.size:.1%}; mean flat "
                f"{flat.mean():.4g}, mean dark {dark.mean():.4g} counts); allowed: at most "
                f"{allowed} such dead pixels ({MAX_DEAD_FRACTION:.1%}): was the beam off or the "
                "shutter closed during the flats, or are darks and flats swapped?")
        if n_dead:
            self._warn(f"flats minus darks at exposure {exposure} s is <= 0 at {n_dead} of "
                       f"{dead.size} pixels (dead pixels): their transmission is set to 1")
        self._corrections[exposure] = (flat, dark)
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
    def train(self) -> None:
        """Train (or fine-tune, or load) the enhancer on the reference pairs."""
        from ..model import Enhancer, set_cpu_threads, train_enhancer

        t = time.perf_counter()
        try:
            if self.settings.threads is not None:
                set_cpu_threads(self.settings.threads)
            s = self.settings
            pretrained = self._load_pretrained(s.pretrained) if s.pretrained is not None else None
            if isinstance(pretrained, bytes):
                pretrained = Enhancer.from_bytes(pretrained, device=s.device)
            if pretrained is not None and s.skip_training:
                self.enhancer = pretrained  # no reference pairs needed
                return
            low, high = self._pairs()
            options = {"device": s.device, "seed": s.seed, "progress": s.progress,
                       **self._budget(t), **s.train_options}
            if s.figure is not None:
                options.setdefault("on_epoch", lambda record: self._show("add_epoch", record))
            self._show("stage", f"training on {len(low)} reference pairs")
            if pretrained is not None:
                log.info("fine-tuning pretrained %s model on %d pairs", pretrained.arch, len(low))
                self.enhancer = pretrained.fine_tune(low, high, epochs=s.fine_tune_epochs,
                                                     **options)
            else:
                log.info("training %s model on %d reference pairs of %s", s.arch, len(low),
                         low.shape[1:])
                self.enhancer = train_enhancer(low, high, arch=s.arch, epochs=s.epochs,
                                               **options)
            self._gate_projection_model()
        except Exception as exc:
            self.training_error = exc
            log.error("training failed for run %s: %s", self.start["uid"], exc)
        finally:
            self.timings["training_s"] = time.perf_counter() - t

    def _gate_projection_model(self) -> None:
        """Keep the projection network only if it beats the raw frames on held-out data.

        The validation band of the reference pairs is never trained on; a network whose
        best validation PSNR there is not above the raw short frames' is replaced by
        the identity (the raw frames are reconstructed), and the result says so.
        """
        config = self.enhancer.config
        model, identity = config.get("best_val_psnr"), config.get("baseline_val_psnr")
        use = model is None or identity is None or model > identity
        self.gates["projection"] = {"use_model": bool(use), "val_psnr": model,
                                    "raw_val_psnr": identity,
                                    "measured_on": "validation band of the reference pairs"}
        if not use:
            log.warning("run %s: the projection network (validation PSNR %.2f dB) does not "
                        "beat the raw frames (%.2f dB): the raw frames are used",
                        self.start["uid"], model, identity)

    @property
    def enhancer_used(self) -> bool:
        """Whether the projection gate kept the network (no gate measured: it is used)."""
        return bool(self.gates.get("projection", {}).get("use_model", True))

    def _budget(self, started: float) -> dict[str, Any]:
        """``train_enhancer`` options that bound training by the settings' budget."""
        budget = self.settings.training_budget
        if budget is None:
            return {}
        if budget != "scan":
            return {"max_seconds": float(budget)}
        floor = self.settings.min_training_s

        def scan_over() -> bool:
            return self.scan_ended.is_set() and time.perf_counter() - started >= floor

        return {"stop_requested": scan_over}

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
    def enhance_pending(self, limit: int | None = None) -> int:
        """Enhance up to ``limit`` queued projections in batches; return how many."""
        if self.method not in SUPERVISED_STAGE:
            self.pending.clear()  # no projection network: nothing to enhance frame by frame
            return 0
        if self.enhancer is None or not self.pending:
            return 0
        take = self.pending[: limit or len(self.pending)]
        if self._bar is None and self.settings.progress:
            self._bar = tqdm(total=self.expected_projections, desc="enhancing", unit="frame")
        t = time.perf_counter()
        bs = self.settings.batch_size
        for i in range(0, len(take), bs):
            idx = take[i: i + bs]
            self.enhanced[idx] = (self.enhancer(self.raw[idx]) if self.enhancer_used
                                  else self.raw[idx])
            if self._bar is not None:
                self._bar.update(len(idx))
        last = take[-1]
        self._show("set_projection", last, self.raw[last], self.enhanced[last])
        del self.pending[: len(take)]
        self.timings["enhancement_s"] = self.timings.get("enhancement_s", 0.0) + (
            time.perf_counter() - t)
        return len(take)

    # ------------------------------------------------------------------ finish
    def finish(self, stop: dict[str, Any]) -> tuple[dict[str, Any], dict[str, np.ndarray],
                                                    bytes | None]:
        """Reconstruct and assemble the result (metadata, arrays, checkpoint)."""
        n = len([a for a in self.angles if np.isfinite(a)])
        md: dict[str, Any] = {
            "status": "complete", "error": None, "version": __version__,
            "raw_exit_status": stop.get("exit_status"),
            "num_projections": n, "expected_projections": self.expected_projections,
            "dose_ratio": self.long / self.short,
            "method": self.method,
            "blind": not self.start["reference_angles"],
            "model": {"arch": (None if self.method not in SUPERVISED_STAGE
                               else self.settings.arch if self.enhancer is None
                               else self.enhancer.arch),
                      "pretrained": None if self.settings.pretrained is None
                      else str(self.settings.pretrained)},
        }
        if self.enhancer is not None:
            md["model"].update(config=json_safe(self.enhancer.config),
                               history=json_safe(self.enhancer.history))
        if stop.get("exit_status") != "success" or n < self.expected_projections:
            md.update(status="incomplete", error=(
                f"scan ended with exit_status={stop.get('exit_status')!r} after {n} of "
                f"{self.expected_projections} projections; no reconstruction made"))
            self._show("stage", "scan incomplete: no reconstruction")
            return self._finalise(md), {}, None
        if self.training_error is not None:
            raise self.training_error
        self.enhance_pending()
        arrays: dict[str, np.ndarray] = {}
        if self.enhanced is not None:
            arrays["enhanced"] = self.enhanced[:n]
        if self.settings.reconstruct:
            self._reconstruct(n, md, arrays)
        md["gates"] = json_safe(self.gates)
        checkpoint = self.enhancer.to_bytes() if self.enhancer is not None else None
        return self._finalise(md), arrays, checkpoint

    def _reconstruct(self, n: int, md: dict[str, Any], arrays: dict[str, np.ndarray]) -> None:
        """Raw and final reconstructions (Noise2Inverse last, where the method has it)."""
        t = time.perf_counter()
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
        self.timings["reconstruction_s"] = time.perf_counter() - t
        if self.method in N2I_STAGE:
            s = self.settings
            self._show("stage", "Noise2Inverse: training on the split reconstructions")
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
