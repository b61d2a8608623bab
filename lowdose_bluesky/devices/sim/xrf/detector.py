"""The simulated multi-element fluorescence detector as an ophyd-async ``StandardDetector``."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from ophyd_async.core import PathProvider, soft_signal_rw

from ....xrf import SpectralModel, XRFCounting
from ..async_devices import SimClock
from ..async_devices.file_detector import SimFileDetector
from .acquisition import XRFAcquisition
from .logics import (
    I0_SUFFIX,
    TRANSMISSION_SUFFIX,
    X_SUFFIX,
    Y_SUFFIX,
    XRFAcquireLogic,
    XRFDataLogic,
    XRFTriggerLogic,
)

__all__ = ["SimXRFDetector"]


class SimXRFDetector(SimFileDetector):
    """Simulated XRF detector (Xspress3-like) with I0 and transmission channels.

    Step scans: ``prepare(TriggerInfo(livetime=dwell))`` then each ``trigger()``
    counts one pixel where the x and y stages are, with the shutter's state (all
    zeros with it closed). Fly scans: ``prepare(TriggerInfo(number_of_events=N,
    livetime=dwell))``, ``kickoff()``, ``complete()`` count ``N`` pixels back to
    back from the detector's kickoff while a stage flies, each averaged over the path
    it covers. Each ``stage()`` + ``prepare()`` opens a new SWMR HDF5 file
    (``data_dir/YYYY/MM/DD/<uuid>.h5``, see
    :class:`~lowdose_bluesky.devices.sim.xrf.XRFSpectrumFile`), announced by
    StreamResource/StreamDatum documents: data keys ``<name>`` (spectra
    ``(detector_elements, bins)``, the only hinted one), ``<name>-I0``,
    ``<name>-transmission``, ``<name>-x``, ``<name>-y``.

    Parameters
    ----------
    counting
        Photon counting over the sample (spectral model, flux, detector elements).
    x, y
        Scan stages with ``position_at(t)`` in µm (e.g.
        :class:`~lowdose_bluesky.devices.sim.async_devices.SimAxis`).
    shutter
        Beam shutter with ``is_open`` (``None``: beam always on).
    pixel_size_um
        Stage travel between neighbouring pixels of the maps, µm.
    clock
        Time of the simulation (default: the x stage's clock, else a virtual one).
    data_dir
        Root of the dated directories of the files (with ``path_provider`` None).
    path_provider
        Where each new file goes (default: :class:`DatedPathProvider` of ``data_dir``).
    readout_time
        Least seconds between dwells; the reported trigger dead time.
    blur_samples
        Stage positions averaged per pixel (matters for fly scans).
    dwell_time
        Initial dwell per pixel, seconds.
    sample_description
        What the sample is, for :meth:`start_metadata`.
    name
        Device name, the spectra's data key.
    """

    def __init__(self, *, counting: XRFCounting, x: Any, y: Any, shutter: Any = None,
                 pixel_size_um: float = 0.5, clock: SimClock | None = None,
                 data_dir: str | Path | None = None, path_provider: PathProvider | None = None,
                 readout_time: float = 0.0, blur_samples: int = 3, dwell_time: float = 0.01,
                 sample_description: dict[str, Any] | None = None, name: str = "xrf") -> None:
        path_provider, clock = self.resolve_file_args(
            data_dir=data_dir, path_provider=path_provider, readout_time=readout_time,
            clock=clock, stage=x)
        self.dwell_time = soft_signal_rw(float, float(dwell_time), units="s")
        set_written = self.make_file_signals(readout_time)
        self.clock = clock
        self.counting = counting
        self.sample_description = dict(sample_description or {"name": "user maps"})
        self.init_file_detector(
            XRFAcquisition(counting=counting, x=x, y=y, shutter=shutter, clock=clock,
                           pixel_size_um=pixel_size_um, dwell_time=self.dwell_time,
                           set_written=set_written, blur_samples=blur_samples),
            self.dwell_time, path_provider, trigger_logic=XRFTriggerLogic,
            acquire_logic=XRFAcquireLogic, data_logic=XRFDataLogic, name=name)

    # ------------------------------------------------------------- data keys
    @property
    def i0_data_key(self) -> str:
        """Data key of the incident-flux monitor counts."""
        return f"{self.name}{I0_SUFFIX}"

    @property
    def transmission_data_key(self) -> str:
        """Data key of the transmission detector counts."""
        return f"{self.name}{TRANSMISSION_SUFFIX}"

    @property
    def position_data_keys(self) -> tuple[str, str]:
        """Data keys of the x and y positions (µm) at mid-dwell."""
        return f"{self.name}{X_SUFFIX}", f"{self.name}{Y_SUFFIX}"

    # ------------------------------------------------------------ simulation
    @property
    def spectra(self) -> SpectralModel:
        """Reference spectra of the simulation."""
        return self.counting.model

    @property
    def elements(self) -> tuple[str, ...]:
        """Mapped elements."""
        return self.counting.model.elements

    @property
    def energy_kev(self) -> float:
        """Incident energy, keV."""
        return self.counting.model.energy_kev

    @property
    def detector_elements(self) -> int:
        """Spectra per pixel."""
        return self.counting.detector_elements

    @property
    def dead_elements(self) -> tuple[int, ...]:
        """Detector elements that count nothing."""
        return self.counting.dead_elements

    @property
    def bins(self) -> int:
        """Channels per spectrum."""
        return self.counting.model.bins

    @property
    def flux(self) -> float:
        """Incident photons per second."""
        return self.counting.flux

    @property
    def pixel_size_um(self) -> float:
        """Stage travel between neighbouring pixels, µm."""
        return self._acquisition.pixel_size_um

    def start_metadata(self) -> dict[str, Any]:
        """Simulation facts for the run's start document (JSON-serialisable)."""
        model = self.counting.model
        return {"simulation": {
            "kind": "xrf_microprobe",
            "elements": list(model.elements),
            "energy_kev": model.energy_kev,
            "bins": model.bins,
            "bin_kev": model.bin_kev,
            "pixel_size_um": self.pixel_size_um,
            "shape": list(self.counting.shape),
            "sample": self.sample_description,
            **self.counting.describe(),
        }}
