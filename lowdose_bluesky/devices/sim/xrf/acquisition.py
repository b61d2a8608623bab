"""The sequencer of the simulated fluorescence detector: timed dwells written to a file."""

from __future__ import annotations

import itertools
import logging
from collections.abc import Callable
from pathlib import Path, PurePath
from typing import Any

from ophyd_async.core import SignalR

from ....xrf import XRFCounting
from ..async_devices import SimClock
from .spectrum_file import XRFSpectrumFile

__all__ = ["XRFAcquisition"]

log = logging.getLogger(__name__)


class XRFAcquisition:
    """Dwells ``num`` times on the clock and appends each pixel's counts to a file.

    Pixel ``i`` is counted over the clock times ``[t0 + i * period, t0 + i * period +
    dwell]``, ``t0`` being the time :meth:`run` starts and ``period`` the dwell plus
    the gap set by :meth:`configure`. Its expected counts average the sample over
    ``blur_samples`` positions of the stages (``position_at``) spread across the
    dwell (midpoints of equal slices), so a flying stage smears the pixel along its
    path; the positions recorded are those at mid-dwell. The shutter state is the one
    when the dwell ends.

    Parameters
    ----------
    counting
        Photon counting over the sample maps.
    x, y
        Stages with ``position_at(t)`` in µm (``None``: at 0); x moves along a
        row (map columns), y across rows.
    shutter
        Beam shutter with ``is_open`` (``None``: always open).
    clock
        Time of the simulation.
    pixel_size_um
        Stage travel between neighbouring pixels, µm; pixel ``(row, col)`` is at
        ``x = col × pixel_size_um``, ``y = row × pixel_size_um``.
    dwell_time
        Signal holding the dwell in seconds.
    set_written
        Setter of the signal counting the pixels in the current file.
    blur_samples
        Stage positions averaged per pixel.
    """

    def __init__(self, *, counting: XRFCounting, x: Any, y: Any, shutter: Any,
                 clock: SimClock, pixel_size_um: float, dwell_time: SignalR[float],
                 set_written: Callable[[int], None], blur_samples: int = 3) -> None:
        if int(blur_samples) < 1:
            raise ValueError(f"blur_samples must be >= 1, got {blur_samples!r}")
        if not pixel_size_um > 0:
            raise ValueError(f"pixel_size_um must be > 0, got {pixel_size_um!r}")
        self.counting = counting
        self.x = x
        self.y = y
        self.shutter = shutter
        self.clock = clock
        self.pixel_size_um = float(pixel_size_um)
        self.blur_samples = int(blur_samples)
        self._dwell_time = dwell_time
        self._set_written = set_written
        self._num = 1
        self._gap = 0.0
        self._file: XRFSpectrumFile | None = None

    # ------------------------------------------------------------ settings
    def configure(self, num: int, gap: float) -> None:
        """Count ``num`` pixels (0: until stopped), ``gap`` seconds between dwells."""
        self._num = int(num)
        self._gap = max(float(gap), 0.0)

    @property
    def num(self) -> int:
        """Pixels per acquisition (0: until stopped)."""
        return self._num

    @property
    def gap(self) -> float:
        """Seconds between the end of a dwell and the start of the next."""
        return self._gap

    # ---------------------------------------------------------------- file
    def open_file(self, path: str | PurePath) -> XRFSpectrumFile:
        """Close the current file, open a new one and count its pixels from 0."""
        self.close_file()
        model = self.counting.model
        self._file = XRFSpectrumFile(Path(path), self.counting.detector_elements, model.bins,
                                     model.bin_kev)
        self._set_written(0)
        return self._file

    def close_file(self) -> None:
        """Close the current file, if any."""
        if self._file is not None:
            self._file.close()
            self._file = None

    @property
    def current_file(self) -> Path | None:
        """Path of the file being written, if any."""
        return None if self._file is None else self._file.path

    # ------------------------------------------------------------ geometry
    def position_at(self, t: float) -> tuple[float, float]:
        """Stage positions ``(x, y)`` in µm at clock time ``t``."""
        x = 0.0 if self.x is None else float(self.x.position_at(t))
        y = 0.0 if self.y is None else float(self.y.position_at(t))
        return x, y

    def dwell_pixels(self, start: float, dwell: float) -> list[tuple[float, float]]:
        """The ``(row, col)`` positions, pixel units, averaged by a dwell from ``start``."""
        n = self.blur_samples
        out = []
        for k in range(n):
            x, y = self.position_at(start + dwell * (k + 0.5) / n)
            out.append((y / self.pixel_size_um, x / self.pixel_size_um))
        return out

    def beam_open(self) -> bool:
        """Whether the shutter lets the beam through."""
        return self.shutter is None or bool(self.shutter.is_open)

    # ----------------------------------------------------------------- run
    async def run(self) -> None:
        """Count and write the configured pixels, counting them as they are written."""
        if self._file is None:
            raise RuntimeError("no file is open: stage and prepare the detector first")
        file, counting = self._file, self.counting
        dwell = float(await self._dwell_time.get_value())
        period = dwell + self._gap
        t0 = self.clock.now()
        indices = range(self._num) if self._num > 0 else itertools.count()
        try:
            for i in indices:
                start = t0 + i * period
                await self.clock.sleep_until(start + dwell)
                pixels = self.dwell_pixels(start, dwell)
                x, y = self.position_at(start + dwell / 2)
                beam = self.beam_open()
                file.write(counting.draw_spectra(pixels, dwell, beam_open=beam),
                           i0=counting.draw_i0(dwell, beam_open=beam),
                           transmission=counting.draw_transmission(pixels, dwell,
                                                                   beam_open=beam),
                           x=x, y=y)
                self._set_written(file.num_pixels)
        except Exception:
            log.exception("simulated XRF detector: acquisition into %s failed", file.path)
            raise
