"""The sequencer of the simulated fluorescence detector: timed dwells written to a file."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

from ophyd_async.core import SignalR

from ....xrf import XRFCounting
from ..async_devices import SimClock
from ..async_devices.sequencer import ClockedAcquisition
from .spectrum_file import XRFSpectrumFile

__all__ = ["XRFAcquisition"]


class XRFAcquisition(ClockedAcquisition[XRFSpectrumFile]):
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

    detector_kind = "simulated XRF detector"

    def __init__(self, *, counting: XRFCounting, x: Any, y: Any, shutter: Any,
                 clock: SimClock, pixel_size_um: float, dwell_time: SignalR[float],
                 set_written: Callable[[int], None], blur_samples: int = 3) -> None:
        super().__init__(clock=clock, live_time=dwell_time, set_written=set_written,
                         blur_samples=blur_samples)
        if not pixel_size_um > 0:
            raise ValueError(f"pixel_size_um must be > 0, got {pixel_size_um!r}")
        self.counting = counting
        self.x = x
        self.y = y
        self.shutter = shutter
        self.pixel_size_um = float(pixel_size_um)

    def new_file(self, path: Path) -> XRFSpectrumFile:
        """A file for spectra of the detector's elements and channels."""
        model = self.counting.model
        return XRFSpectrumFile(path, self.counting.detector_elements, model.bins,
                               model.bin_kev)

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
    async def acquire(self, file: XRFSpectrumFile, index: int, start: float,
                      duration: float) -> None:
        """Draw the pixel counted over ``[start, start + duration]`` and write it."""
        counting = self.counting
        pixels = self.dwell_pixels(start, duration)
        x, y = self.position_at(start + duration / 2)
        beam = self.beam_open()
        file.write(counting.draw_spectra(pixels, duration, beam_open=beam),
                   i0=counting.draw_i0(duration, beam_open=beam),
                   transmission=counting.draw_transmission(pixels, duration, beam_open=beam),
                   x=x, y=y)
