"""``LiveFigure``: what the live analysis is doing, as a matplotlib figure.

Three views, updated as the analysis of a run goes on: the training curve (train loss and
validation PSNR per epoch), the latest projection raw vs enhanced, and the central slice of
the raw and enhanced reconstructions.

The analysis runs on a worker thread and GUI toolkits must only be touched from their own
thread, so the figure is split in two: the worker only records a snapshot (under a lock);
drawing happens either

- in a PNG file rewritten from the worker with the non-GUI Agg canvas (``path=``; works
  headless, on a remote analysis node, or in Jupyter with ``IPython.display.Image``), or
- in a pyplot window refreshed by a GUI timer on the main thread (:meth:`LiveFigure.show`),
  the matplotlib way to animate from data produced elsewhere.
"""

from __future__ import annotations

import os
import threading
import time
from pathlib import Path
from typing import Any

import numpy as np
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure

__all__ = ["LiveFigure"]


class LiveFigure:
    """Training curve, one raw vs enhanced projection and a reconstructed slice.

    Pass it to :class:`~lowdose_bluesky.callbacks.LiveEnhancer` as ``figure=``.

    Parameters
    ----------
    path
        PNG file rewritten as the analysis goes on (``None``: no file; use :meth:`show`).
    min_interval
        Least seconds between two rewrites of ``path`` (the final state is always
        written).

    Examples
    --------
    >>> fig = LiveFigure("live.png")                        # doctest: +SKIP
    >>> RE.subscribe(LiveEnhancer(client, figure=fig))      # doctest: +SKIP
    >>> fig.show()   # in IPython with a GUI backend        # doctest: +SKIP
    """

    def __init__(self, path: str | os.PathLike[str] | None = None, *,
                 min_interval: float = 1.0) -> None:
        if isinstance(min_interval, bool) or not isinstance(min_interval, int | float) or not (
                min_interval >= 0):
            raise ValueError(f"min_interval must be a number >= 0, got {min_interval!r}")
        self.path = None if path is None else Path(path)
        self.min_interval = float(min_interval)
        self._lock = threading.Lock()
        self._state: dict[str, Any] = {}
        self._version = 0
        self._saved_at = -np.inf
        self.reset(None)

    # ------------------------------------------------------------ worker side
    def reset(self, run_uid: str | None) -> None:
        """Start the views of a new run."""
        with self._lock:
            self._state = {"run": run_uid, "epochs": [], "projection": None, "slices": None,
                           "stage": "waiting for reference frames"}
            self._version += 1
        self._maybe_save(force=True)

    def stage(self, text: str) -> None:
        """Show what the analysis is doing (figure title; rare, so always written)."""
        with self._lock:
            self._state["stage"] = text
            self._version += 1
        self._maybe_save(force=True)

    def add_epoch(self, record: dict[str, Any]) -> None:
        """Add one training epoch (``train_enhancer``'s ``on_epoch`` hook)."""
        with self._lock:
            self._state["epochs"].append(
                (int(record["epoch"]), float(record["train_loss"]),
                 np.nan if record.get("val_psnr") is None else float(record["val_psnr"])))
            self._state["stage"] = f"training: epoch {record['epoch']}"
            self._version += 1
        self._maybe_save()

    def set_projection(self, index: int, raw: np.ndarray, enhanced: np.ndarray) -> None:
        """Show projection ``index`` raw and enhanced (copies are kept)."""
        with self._lock:
            self._state["projection"] = (int(index), np.array(raw, np.float32),
                                         np.array(enhanced, np.float32))
            self._state["stage"] = f"enhancing: projection {index}"
            self._version += 1
        self._maybe_save()

    def set_slices(self, raw: np.ndarray, enhanced: np.ndarray) -> None:
        """Show a reconstructed slice, raw and enhanced; this is the final state of a run."""
        with self._lock:
            self._state["slices"] = (np.array(raw, np.float32), np.array(enhanced, np.float32))
            self._state["stage"] = "reconstructed"
            self._version += 1
        self._maybe_save(force=True)

    # --------------------------------------------------------------- drawing
    def snapshot(self) -> dict[str, Any]:
        """A consistent copy of what is shown (for drawing or inspection)."""
        with self._lock:
            return {**self._state, "epochs": list(self._state["epochs"]),
                    "version": self._version}

    def draw(self, fig: Figure) -> None:
        """Render the current state into ``fig`` (cleared first).

        Parameters
        ----------
        fig
            A matplotlib figure (from pyplot or :class:`matplotlib.figure.Figure`).
        """
        state = self.snapshot()
        fig.clear()
        axes = fig.subplots(1, 5)
        curve, p_raw, p_enh, s_raw, s_enh = axes
        if state["epochs"]:
            epoch, loss, val = (np.array(c) for c in zip(*state["epochs"], strict=True))
            curve.plot(epoch, loss, "o-", color="C0", label="train loss")
            curve.set_xlabel("epoch")
            curve.set_ylabel("train loss", color="C0")
            if np.isfinite(val).any():
                twin = curve.twinx()
                twin.plot(epoch, val, "s-", color="C1")
                twin.set_ylabel("validation PSNR (dB)", color="C1")
        curve.set_title("training")
        pairs = ((p_raw, p_enh, state["projection"], "projection"),
                 (s_raw, s_enh, state["slices"], "slice"))
        for ax_raw, ax_enh, item, what in pairs:
            images = None if item is None else item[-2:]
            label = "" if item is None or what == "slice" else f" {item[0]}"
            for ax, kind in ((ax_raw, "raw"), (ax_enh, "enhanced")):
                ax.set_title(f"{what}{label} {kind}")
                ax.set_axis_off()
            if images is not None:
                low, high = np.percentile(images[1], (0.5, 99.5))
                for ax, image in ((ax_raw, images[0]), (ax_enh, images[1])):
                    ax.imshow(image, cmap="gray", vmin=low, vmax=high)
        run = state["run"] or "-"
        fig.suptitle(f"run {run[:8]}: {state['stage']}")

    def save(self, path: str | os.PathLike[str]) -> Path:
        """Write the current state to a PNG file (atomically: readers never see half a file).

        Parameters
        ----------
        path
            Destination file.

        Returns
        -------
        pathlib.Path
        """
        path = Path(path)
        fig = Figure(figsize=(17, 3.6), layout="constrained")
        FigureCanvasAgg(fig)
        self.draw(fig)
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_name(f".{path.name}.tmp")
        fig.savefig(tmp, format="png", dpi=80)
        os.replace(tmp, path)
        return path

    def show(self, interval_ms: int = 500) -> Any:
        """Open a pyplot window refreshed by a GUI timer while the analysis runs.

        Call from the main (GUI) thread, e.g. in IPython with ``%matplotlib qt``.

        Parameters
        ----------
        interval_ms
            Refresh period.

        Returns
        -------
        matplotlib.figure.Figure
            The pyplot figure (keep a reference to keep its timer alive).
        """
        import matplotlib.pyplot as plt

        fig = plt.figure(figsize=(17, 3.6), layout="constrained")
        fig._lowdose_timer = timer = fig.canvas.new_timer(interval=interval_ms)
        timer.add_callback(self.refresh, fig)
        timer.start()
        self.refresh(fig, force=True)
        plt.show(block=False)
        return fig

    def refresh(self, fig: Figure, force: bool = False) -> bool:
        """Redraw ``fig`` if the state changed since its last drawing; return whether it did.

        Parameters
        ----------
        fig
            A figure previously drawn by this object (or a new one).
        force
            Redraw even if nothing changed.
        """
        with self._lock:
            version = self._version
        if not force and getattr(fig, "_lowdose_version", None) == version:
            return False
        self.draw(fig)
        fig._lowdose_version = version
        fig.canvas.draw_idle()
        return True

    def _maybe_save(self, force: bool = False) -> None:
        if self.path is None:
            return
        now = time.monotonic()
        if force or now - self._saved_at >= self.min_interval:
            self._saved_at = now
            self.save(self.path)
