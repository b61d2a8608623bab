"""The HDF5 file of the simulated fluorescence detector, laid out as an Xspress3 writes it."""

from __future__ import annotations

from pathlib import PurePath

import numpy as np

from ...hdf5_frames import DATASET
from ..async_devices.swmr_file import SWMRFile

__all__ = [
    "ATTRIBUTE_CHUNK",
    "I0_DATASET",
    "TRANSMISSION_DATASET",
    "X_DATASET",
    "Y_DATASET",
    "XRFSpectrumFile",
]

_ATTRIBUTES = "/entry/instrument/NDAttributes"
#: Incident-flux monitor counts per pixel.
I0_DATASET = f"{_ATTRIBUTES}/I0"
#: Transmission detector counts per pixel.
TRANSMISSION_DATASET = f"{_ATTRIBUTES}/transmission"
#: Stage positions (µm) at mid-dwell of each pixel.
X_DATASET = f"{_ATTRIBUTES}/x"
Y_DATASET = f"{_ATTRIBUTES}/y"
#: Chunk length of the per-pixel attribute datasets, as AreaDetector writes them.
ATTRIBUTE_CHUNK = 1024
_SCALARS = (I0_DATASET, TRANSMISSION_DATASET, X_DATASET, Y_DATASET)


class XRFSpectrumFile(SWMRFile):
    """A new SWMR HDF5 file: spectra of every detector element, and per-pixel scalars.

    ``/entry/data/data`` ``uint32 (N, detector_elements, bins)`` (chunks ``(1,
    detector_elements, bins)``, attributes ``energy_offset_kev`` and
    ``energy_bin_kev``), and ``float64 (N,)`` datasets under
    ``/entry/instrument/NDAttributes``: ``I0``, ``transmission`` (counts), ``x``,
    ``y`` (µm). All flushed after every pixel so that readers in other processes
    follow the scan.

    Parameters
    ----------
    path
        File to create (its directory is created if missing).
    detector_elements
        Spectra per pixel.
    bins
        Channels per spectrum.
    bin_kev
        Channel width, keV (recorded as an attribute).
    """

    item = "pixel"

    def __init__(self, path: str | PurePath, detector_elements: int, bins: int,
                 bin_kev: float) -> None:
        self.spectrum_shape = (int(detector_elements), int(bins))
        super().__init__(path)
        self._data = self.growing_dataset(DATASET, self.spectrum_shape, 1, np.uint32)
        self._data.attrs["energy_offset_kev"] = 0.0
        self._data.attrs["energy_bin_kev"] = float(bin_kev)
        self._scalars = {name: self.growing_dataset(name, (), ATTRIBUTE_CHUNK, np.float64)
                         for name in _SCALARS}
        self.start_swmr()

    @property
    def num_pixels(self) -> int:
        """Pixels written so far."""
        return self.num_written

    def write(self, spectra: np.ndarray, *, i0: float, transmission: float, x: float,
              y: float) -> int:
        """Append one pixel; return its index.

        Raises
        ------
        ValueError
            If the spectra have the wrong shape.
        OSError
            If the file is closed or cannot be written (the cause is chained).
        """
        if spectra.shape != self.spectrum_shape:
            raise ValueError(f"spectra shape {spectra.shape} does not match "
                             f"{self.spectrum_shape} (detector elements, bins)")
        values = {I0_DATASET: i0, TRANSMISSION_DATASET: transmission, X_DATASET: x,
                  Y_DATASET: y}
        return self.append([(self._data, spectra),
                            *((dataset, values[name]) for name, dataset in self._scalars.items())])
