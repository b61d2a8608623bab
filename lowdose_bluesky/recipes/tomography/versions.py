"""Versions of a run's projection network while it trains in the background.

The training thread offers a model each time its validation PSNR improves; the first
one that beats the raw frames on the validation band becomes version 1 at once (the
first usable model), a later one becomes the next version only when it gains at least
``min_gain_db`` over the version in use and ``refresh_s`` seconds have passed since that
version. Frames are enhanced by the version in use when they arrive; frames of an older
version are enhanced again in the background, and at the end only if the final model
differs (gains ``min_gain_db``) from the last version. Version 0 is the identity (the
gate kept the raw frames).
"""

from __future__ import annotations

import threading
import time
from typing import Any

__all__ = ["ModelVersions", "passes_gate", "val_psnr"]


def val_psnr(model: Any) -> float | None:
    """Best validation PSNR of a trained model (None when not measured)."""
    return model.config.get("best_val_psnr")


def passes_gate(model: Any) -> bool:
    """Whether the model beats the raw frames on its validation band (unmeasured: yes)."""
    value, raw = model.config.get("best_val_psnr"), model.config.get("baseline_val_psnr")
    return value is None or raw is None or value > raw


class ModelVersions:
    """The model versions of one run (thread-safe offers, adoption on the worker).

    Parameters
    ----------
    min_gain_db
        Least validation-PSNR gain for a new version.
    refresh_s
        Least seconds between two versions during training.
    """

    def __init__(self, min_gain_db: float, refresh_s: float) -> None:
        self.min_gain_db = float(min_gain_db)
        self.refresh_s = float(refresh_s)
        self._lock = threading.Lock()
        self._candidate: Any = None
        self._t0 = time.monotonic()
        self._last = -float("inf")
        self.current: Any = None
        self.version = 0
        self.records: list[dict[str, Any]] = []
        self.first_model_at: float | None = None  # time.monotonic()

    def _better(self, model: Any) -> bool:
        if not passes_gate(model):
            return False
        if self.current is None:
            return True
        new, old = val_psnr(model), val_psnr(self.current)
        return new is not None and old is not None and new >= old + self.min_gain_db

    def offer(self, model: Any) -> None:
        """A model from the training thread: keep it as the next candidate if it qualifies."""
        with self._lock:
            now = time.monotonic()
            if self.current is not None and now - self._last < self.refresh_s:
                return
            if self._better(model) and (self._candidate is None
                                        or (val_psnr(model) or 0) >= (val_psnr(self._candidate)
                                                                      or 0)):
                self._candidate = model
                self._last = now

    def adopt(self) -> bool:
        """Make the waiting candidate the version in use; whether one was waiting."""
        with self._lock:
            model, self._candidate = self._candidate, None
        if model is None:
            return False
        self._use(model, "during training")
        return True

    def final(self, model: Any) -> bool:
        """The model training ended with: use it if it differs enough; whether it does."""
        with self._lock:
            waiting, self._candidate = self._candidate, None
        if waiting is not None and self._better(waiting):
            self._use(waiting, "during training")
        if model is None or not self._better(model):
            return False
        self._use(model, "end of training")
        return True

    def force(self, model: Any, how: str) -> None:
        """Use ``model`` whatever its validation (a pretrained model used as is)."""
        self._use(model, how)

    def _use(self, model: Any, how: str) -> None:
        now = time.monotonic()
        self.current = model
        self.version += 1
        if self.first_model_at is None:
            self.first_model_at = now
        history = model.history
        self.records.append({
            "version": self.version, "val_psnr": val_psnr(model),
            "raw_val_psnr": model.config.get("baseline_val_psnr"),
            "epoch": history[-1]["epoch"] if history else None,
            "at_s": now - self._t0, "when": how, "frames_first": 0, "frames_again": 0})

    def count(self, version: int, again: bool, n: int) -> None:
        """Record that version ``version`` enhanced ``n`` frames (``again``: re-enhanced)."""
        if version >= 1:
            self.records[version - 1]["frames_again" if again else "frames_first"] += n
