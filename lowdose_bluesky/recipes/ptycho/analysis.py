"""The analysis of one low-dose ptychography scan: PtychoNN trained live, patterns stitched.

The dense scan's patterns are collected; once the last one is in, a thread
reconstructs the dense field iteratively (pty-chi) and trains PtychoNN on its patterns
with the reconstruction's patches under each position as labels, while the sparse scan
goes on. Each sparse pattern is inferred as soon as a model exists (those that came
earlier wait for it) and stitched into the object image with its recorded position,
weighted by the probe intensity; the stitched phase is published to the live result as
it grows.
"""

from __future__ import annotations

import threading
import time
from pathlib import Path
from typing import Any

import h5py
import numpy as np

from ...engine import AnalysisOutput, FrameRef, RunContext, read_frames
from ...ptycho import Stitcher, object_windows
from .labels import object_grid, referred_reconstruction
from .linear import clear_field_counts, fit_linear
from .refine import refine

__all__ = ["PUBLISH_EVERY_S", "PtychoAnalysis", "check_ptycho_start"]

#: Least seconds between two publications of the live stitched image.
PUBLISH_EVERY_S = 0.5
#: Fraction of the probe's peak intensity below which the summed illumination leaves a
#: pixel NaN (no pattern reached it): the disc it bounds holds about 87 % of the probe's
#: intensity, about the probe's 90 % diameter.
COVERAGE_THRESHOLD = 0.05


def check_ptycho_start(start: dict[str, Any], pretrained: Any = None) -> None:
    """Refuse a run that cannot be analysed, saying what is missing."""
    ptycho = start.get("ptycho")
    if not ptycho:
        raise ValueError(f"run {start.get('uid')} was not acquired by lowdose_ptycho_plan (no "
                         "'ptycho' section in its start document)")
    missing = [k for k in ("pattern_key", "x_key", "y_key", "pixel_size_um", "probe_file")
               if not ptycho.get(k)]
    if missing:
        raise ValueError(f"run {start.get('uid')}: the start document's ptycho section lacks "
                         f"{missing}: stitching needs the data keys, the object pixel size "
                         "and the probe")
    if not Path(ptycho["probe_file"]).is_file():
        raise ValueError(f"run {start.get('uid')}: probe file {ptycho['probe_file']!r} not "
                         "found")
    if not ptycho.get("train_positions") and pretrained is None and \
            not ptycho.get("pretrained"):
        raise ValueError(f"run {start.get('uid')} has no training field and no pretrained "
                         "model: give the recipe pretrained= (a result uid or checkpoint)")


def read_probe(path: str | Path) -> np.ndarray:
    """The complex probe in HDF5 file ``path`` (dataset ``probe``)."""
    with h5py.File(path, "r") as f:
        return np.asarray(f["probe"][()], dtype=np.complex128)


class PtychoAnalysis:
    """Collects a scan's patterns, trains PtychoNN on the dense field, stitches the rest.

    Parameters
    ----------
    start
        The run's start document.
    context
        What the engine lends the analysis.
    settings
        The recipe's settings (see :class:`~lowdose_bluesky.recipes.ptycho.PtychoRecipe`).
    load_pretrained
        ``load_pretrained(spec)`` returns a
        :class:`~lowdose_bluesky.model.ptychonn.PtychoNNModel`.
    """

    def __init__(self, start: dict[str, Any], context: RunContext, settings: dict[str, Any],
                 load_pretrained: Any) -> None:
        pretrained = settings.get("pretrained") or (start.get("ptycho") or {}).get("pretrained")
        check_ptycho_start(start, pretrained)
        self.start = start
        self.context = context
        self.settings = dict(settings)
        ptycho = start["ptycho"]
        self.ptycho = ptycho
        self.pattern_key = ptycho["pattern_key"]
        self.x_key, self.y_key = ptycho["x_key"], ptycho["y_key"]
        self.pixel_size = float(ptycho["pixel_size_um"])
        self.probe = read_probe(ptycho["probe_file"])
        self.pattern_shape = (int(self.probe.shape[0]), int(self.probe.shape[1]))
        if self.settings.get("model") == "linear":
            from ...model.linear_retrieval import MAX_PIXELS

            if self.pattern_shape[0] * self.pattern_shape[1] > MAX_PIXELS:
                raise ValueError(f"run {start.get('uid')}: patterns of {self.pattern_shape} "
                                 f"are too large for model='linear' (at most {MAX_PIXELS} "
                                 "pixels); use model='ptychonn'")
        simulation = start.get("simulation") or {}
        self.obj_shape = object_grid({**ptycho, "object_shape": simulation.get("object_shape")},
                                     self.pattern_shape)
        self.n_train = int(ptycho.get("train_positions") or 0)
        self.n_sparse = int(ptycho.get("sparse_positions") or 0)
        self.train_patterns: list[np.ndarray] = []
        self.train_corners: list[tuple[float, float]] = []
        self.sparse_corners: list[tuple[float, float]] = []
        self.sparse_patterns: list[np.ndarray] = []  # kept for the refinement only
        self._pending: list[tuple[np.ndarray, tuple[float, float], float]] = []
        self.stitcher = Stitcher(self.obj_shape, self.probe, threshold=COVERAGE_THRESHOLD)
        self.model: Any = None if pretrained is None else load_pretrained(pretrained)
        self.pretrained = pretrained
        self.iterative: dict[str, Any] | None = None
        self.training_record: dict[str, Any] | None = None
        self._thread: threading.Thread | None = None
        self._error: BaseException | None = None
        self._stop = threading.Event()
        self._last_publish = 0.0
        self._unpublished = False
        #: when each inferred pattern not yet in Tiled reached the RunEngine side
        self._waiting: list[float] = []
        #: seconds from each pattern's event to the stitched image holding it in Tiled,
        #: for patterns that arrived with a model ready, and for those that waited for one
        self.latency: list[float] = []
        self.latency_waited: list[float] = []
        # a pretrained model is ready at once unless a training field will fine-tune it
        self._model_ready: float | None = (time.monotonic() if self.model is not None
                                           and not self.n_train else None)
        self.inference_s = 0.0
        self.inferred = 0
        self.t0 = time.monotonic()

    # ------------------------------------------------------------------ frames
    def add_frame(self, stream: str, ref: FrameRef, data: dict[str, Any],
                  received: float) -> None:
        """One pattern: kept for training (dense scan) or queued for inference (sparse)."""
        if stream not in ("train", "primary"):
            return
        pattern = read_frames(self.context.source, [ref.for_key(self.pattern_key, data)])[0]
        corner = (float(data[self.y_key]) / self.pixel_size,
                  float(data[self.x_key]) / self.pixel_size)
        if stream == "train":
            self.train_patterns.append(np.asarray(pattern, np.float32))
            self.train_corners.append(corner)
            if len(self.train_patterns) == self.n_train and self._thread is None:
                self._start_training()
            return
        self.sparse_corners.append(corner)
        self._pending.append((np.asarray(pattern, np.float32), corner, received))
        if self.settings.get("refine_epochs"):
            self.sparse_patterns.append(self._pending[-1][0])
        self._infer_pending()

    def idle(self) -> None:
        """Infer the patterns waiting for a model; publish the image when due."""
        self._infer_pending()
        if self._unpublished and time.monotonic() - self._last_publish >= PUBLISH_EVERY_S:
            self._publish()

    def abandon(self) -> None:
        """Stop training, drop the queued patterns."""
        self._stop.set()
        self._pending.clear()

    # ---------------------------------------------------------------- training
    def _start_training(self) -> None:
        self.context.progress(stage="iterative reconstruction of the dense field",
                              train_patterns=len(self.train_patterns))
        self._thread = threading.Thread(target=self._train, name="ptychonn-training",
                                        daemon=True)
        self._thread.start()

    def _train(self) -> None:
        try:
            s = self.settings
            patterns = np.stack(self.train_patterns)
            corners = np.asarray(self.train_corners)
            t = time.monotonic()
            obj, lit = referred_reconstruction(
                patterns, corners, self.probe, self.obj_shape, algorithm=s["algorithm"],
                epochs=s["iterative_epochs"], seed=s["seed"],
                photons=self.ptycho.get("photons_per_pattern"))
            covered = lit >= COVERAGE_THRESHOLD * float(np.max(np.abs(self.probe) ** 2))
            self.iterative = {"obj": obj, "covered": covered,
                              "seconds": time.monotonic() - t, "algorithm": s["algorithm"],
                              "epochs": s["iterative_epochs"]}
            if self._stop.is_set():
                return
            labels = object_windows(obj, corners, self.pattern_shape)
            if s["model"] == "linear":
                self.context.progress(stage="fitting the linear retrieval")
                self.model, self.training_record = fit_linear(
                    patterns, labels, obj, covered, self.probe, self._photons(patterns, labels),
                    pairs=s["synthetic_pairs"], ridge=s["ridge"], seed=s["seed"])
                self._model_ready = time.monotonic()
                self.context.progress(stage="inferring the sparse scan")
                return
            self.context.progress(stage="training PtychoNN")
            # a transmission function: the reconstruction's amplitude above 1 is noise
            amplitude, phase = np.clip(np.abs(labels), 0.0, 1.0), np.angle(labels)
            from ...model.ptychonn import train_ptychonn

            if self.model is not None and hasattr(self.model, "fine_tune"):
                self.model.fine_tune(patterns, amplitude, phase,
                                     epochs=s["epochs"], max_seconds=s["max_seconds"])
                self.training_record = {"fine_tuned": True, "patterns": len(patterns)}
            else:
                model, record = train_ptychonn(
                    patterns, amplitude, phase, phase_only=s["phase_only"],
                    epochs=s["epochs"], max_seconds=s["max_seconds"], seed=s["seed"],
                    device=s["device"], stop_requested=self._stop.is_set)
                self.training_record = record
                self.model = model
            self._model_ready = time.monotonic()
            self.context.progress(stage="inferring the sparse scan")
        except BaseException as exc:  # re-raised by finish()
            self._error = exc

    def _photons(self, patterns: np.ndarray, labels: np.ndarray) -> float:
        """Counts of a clear pattern: the start document's, else estimated from the data."""
        photons = self.ptycho.get("photons_per_pattern")
        if photons:
            return float(photons)
        return clear_field_counts(patterns, labels, self.probe)

    # --------------------------------------------------------------- inference
    def _infer_pending(self) -> None:
        model = self.model
        fine_tuning = (self.pretrained is not None and self._thread is not None
                       and self._thread.is_alive())  # its weights are changing
        if model is None or not self._pending or fine_tuning:
            return
        batch, self._pending = self._pending, []
        t = time.monotonic()
        stack = np.stack([p for p, _, _ in batch])
        from ...model.linear_retrieval import LinearRetrievalModel

        if isinstance(model, LinearRetrievalModel):  # dose-aware: the run's dose if known
            amplitude, phase = model.predict(stack, photons=self.ptycho.get(
                "photons_per_pattern"))
        else:
            amplitude, phase = model.predict(stack)
        if amplitude is None:
            amplitude = np.ones_like(phase)
        self.stitcher.add(amplitude, phase, np.asarray([c for _, c, _ in batch]))
        self.inference_s += time.monotonic() - t
        self.inferred += len(batch)
        self._unpublished = True
        self._waiting.extend(received for _, _, received in batch)
        if time.monotonic() - self._last_publish >= PUBLISH_EVERY_S:
            self._publish()

    def _publish(self) -> None:
        _, phase = self.stitcher.image()
        self.context.publish("phase_live", 0, phase[None].astype(np.float32))
        self.context.progress(patterns_inferred=self.inferred, of=self.n_sparse)
        self._last_publish = done = time.monotonic()
        self._unpublished = False
        if self._model_ready is None:
            self._model_ready = done
        for received in self._waiting:
            (self.latency if received >= self._model_ready else self.latency_waited).append(
                done - received)
        self._waiting.clear()

    # ---------------------------------------------------------------- the end
    def finish(self, stop: dict[str, Any]) -> AnalysisOutput:
        """The scan is over: finish training, infer what is left, store the images."""
        if self._thread is not None:
            self._thread.join()
        if self._error is not None:
            raise RuntimeError(f"training failed: {type(self._error).__name__}: "
                               f"{self._error}") from self._error
        complete = (stop.get("exit_status") == "success"
                    and len(self.train_patterns) == self.n_train
                    and len(self.sparse_corners) == self.n_sparse)
        if self.model is None and self._pending:
            raise RuntimeError(f"no model to infer {len(self._pending)} sparse patterns: the "
                               f"dense scan ended after {len(self.train_patterns)} of "
                               f"{self.n_train} positions")
        self._infer_pending()
        if self.inferred:
            self._publish()
        amplitude, phase = self.stitcher.image()
        arrays: dict[str, np.ndarray] = {"phase": phase.astype(np.float32),
                                         "amplitude": amplitude.astype(np.float32)}
        metadata: dict[str, Any] = {
            "status": "complete" if complete else "incomplete",
            "object_shape": list(self.obj_shape),
            "pixel_size_um": self.pixel_size,
            "patterns": {"train": len(self.train_patterns), "sparse": self.inferred},
            "overlap": {"train": self.ptycho.get("train_overlap"),
                        "sparse": self.ptycho.get("sparse_overlap")},
            "pretrained": None if self.pretrained is None else str(self.pretrained),
            "timings": {
                "analysis_s": time.monotonic() - self.t0,
                "inference_s": self.inference_s,
                "patterns_per_s": (self.inferred / self.inference_s
                                   if self.inference_s else None),
                # from a pattern's event to the stitched image holding it in Tiled
                "in_tiled_after_pattern_max_s": max(self.latency, default=None),
                "in_tiled_after_pattern_median_s": (float(np.median(self.latency))
                                                    if self.latency else None),
                "patterns_with_model_ready": len(self.latency),
                "patterns_waited_for_model": len(self.latency_waited),
                "in_tiled_after_waiting_for_the_model_max_s": max(self.latency_waited,
                                                                 default=None),
            },
        }
        if self.settings.get("refine_epochs") and self.sparse_patterns:
            self._refine(phase, amplitude, arrays, metadata)
        if self.iterative is not None:
            obj, covered = self.iterative["obj"], self.iterative["covered"]
            arrays["phase_iterative"] = np.where(covered, np.angle(obj), np.nan).astype(
                np.float32)
            arrays["amplitude_iterative"] = np.where(covered, np.abs(obj), np.nan).astype(
                np.float32)
            metadata["iterative"] = {k: self.iterative[k] for k in
                                     ("algorithm", "epochs", "seconds")}
            metadata["iterative"]["library"] = "pty-chi"
        checkpoint = None
        if self.model is not None:
            metadata["model"] = {**(self.training_record or {}),
                                 "phase_only": bool(getattr(self.model, "phase_only", False))}
            checkpoint = self.model.to_bytes()
        return AnalysisOutput(metadata, arrays, checkpoint)

    def _refine(self, phase: np.ndarray, amplitude: np.ndarray, arrays: dict[str, np.ndarray],
                metadata: dict[str, Any]) -> None:
        """pty-chi on the sparse scan from the learned image: ``phase_refined``.

        A failure is recorded, not raised: the learned image is stored either way.
        """
        self.context.progress(stage="refining the sparse field with pty-chi")
        s = self.settings
        try:
            obj, record = refine(np.stack(self.sparse_patterns), np.asarray(self.sparse_corners),
                                 self.probe, phase, amplitude, epochs=s["refine_epochs"],
                                 algorithm=s["algorithm"], seed=s["seed"],
                                 photons=self.ptycho.get("photons_per_pattern"))
        except Exception as exc:
            metadata["refined"] = {"error": f"{type(exc).__name__}: {exc}"}
            return
        stitched = np.isfinite(phase)
        arrays["phase_refined"] = np.where(stitched, np.angle(obj), np.nan).astype(np.float32)
        metadata["refined"] = {**record, "library": "pty-chi", "start": "the learned image"}
