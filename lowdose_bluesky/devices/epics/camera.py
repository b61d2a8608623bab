"""An AreaDetector camera writing one HDF5 file per stage, with an ``exposure_time`` signal.

The detector triggers one frame per ``trigger()`` (``SingleTrigger``), the HDF5 plugin
streams the frames of one stage into one file (``FileStoreHDF5IterativeWrite``), and
every frame is announced by ``AD_HDF5`` Resource and Datum documents, like the
simulated camera of :mod:`lowdose_bluesky.devices.sim`. The image data key
``<name>_image`` is described as external with the 2-D frame shape ``[H, W]``.
"""

from __future__ import annotations

import math
import numbers
import time
from typing import Any

import numpy as np
from ophyd import Component as Cpt
from ophyd import DerivedSignal, Device, Kind
from ophyd.areadetector import ADComponent as ADCpt
from ophyd.areadetector import DetectorBase, SingleTrigger
from ophyd.areadetector.cam import AreaDetectorCam
from ophyd.areadetector.filestore_mixins import FileStoreHDF5IterativeWrite
from ophyd.areadetector.plugins import HDF5Plugin_V22
from ophyd.device import Staged
from ophyd.status import StatusBase

__all__ = ["ExposureTimeSignal", "TXMDetector", "TXMHDF5Plugin"]


class TXMHDF5Plugin(HDF5Plugin_V22, FileStoreHDF5IterativeWrite):
    """HDF5 plugin in Stream mode: one file per stage, one Datum per frame.

    ADCore >= 2.2 records (``CreateDirectory``): staging asks the IOC to create the
    dated directories of ``write_path_template``.

    The Resource document carries ``frame_per_point`` only when a trigger yields more
    than one frame: with one frame per event the datum is the 2-D frame itself, exactly
    as for the simulated camera (spec ``AD_HDF5``, dataset ``/entry/data/data``).
    """

    def read_configuration(self) -> dict[str, dict[str, Any]]:
        """The plugin's own configuration only.

        ``PluginBase`` adds that of the plugin feeding it (``NDArrayPort``), which fails
        when that plugin is not part of this device.
        """
        return Device.read_configuration(self)

    def describe_configuration(self) -> dict[str, dict[str, Any]]:
        """Describe :meth:`read_configuration`."""
        return Device.describe_configuration(self)

    def _generate_resource(self, resource_kwargs: dict[str, Any]) -> None:
        if resource_kwargs.get("frame_per_point") == 1:
            resource_kwargs = {k: v for k, v in resource_kwargs.items() if k != "frame_per_point"}
        super()._generate_resource(resource_kwargs)


class ExposureTimeSignal(DerivedSignal):
    """Exposure time in seconds, read from ``cam.acquire_time``.

    Setting it writes AcquireTime and AcquirePeriod (exposure plus the parent's
    ``readout_time``); the status completes when both readbacks agree with the request
    within ``rtol`` (cameras round exposures to their clock), and fails after
    ``timeout`` seconds.

    Parameters
    ----------
    derived_from
        The AcquireTime signal, or its dotted name in the parent.
    period
        Dotted name (in the parent) of the AcquirePeriod signal.
    rtol
        Relative tolerance of the readbacks.
    timeout
        Default seconds for a ``set`` to complete.
    **kwargs
        Passed on to :class:`ophyd.DerivedSignal`.
    """

    def __init__(self, derived_from: Any = "cam.acquire_time", *,
                 period: str = "cam.acquire_period", rtol: float = 1e-3,
                 timeout: float = 10.0, **kwargs: Any) -> None:
        super().__init__(derived_from, **kwargs)
        self._period_name = period
        self.rtol = float(rtol)
        self.default_timeout = float(timeout)

    @property
    def period_signal(self) -> Any:
        """The AcquirePeriod signal."""
        return getattr(self.parent, self._period_name)

    def _targets(self, value: Any) -> tuple[float, float]:
        if isinstance(value, bool | np.bool_) or not isinstance(value, numbers.Real):
            raise ValueError(f"{self.name}: exposure time must be a number of seconds, "
                             f"got {value!r}")
        t = float(value)
        if not math.isfinite(t) or t <= 0:
            raise ValueError(f"{self.name}: exposure time must be a finite number > 0 s, "
                             f"got {value!r}")
        readout = float(getattr(self.parent, "readout_time", 0.0))
        return t, t + readout

    def put(self, value: Any, **kwargs: Any) -> None:
        """Write AcquireTime and AcquirePeriod without waiting."""
        exposure, period = self._targets(value)
        self.period_signal.put(period, **kwargs)
        self._derived_from.put(exposure, **kwargs)

    def set(self, value: Any, *, timeout: float | None = None,
            settle_time: float | None = None, **kwargs: Any) -> StatusBase:
        """Write AcquireTime and AcquirePeriod; done when both readbacks agree.

        Raises
        ------
        ValueError
            If ``value`` is not a finite number of seconds > 0 (before anything is written).
        """
        exposure, period = self._targets(value)
        timeout = self.default_timeout if timeout is None else timeout
        statuses = []
        for signal, target in ((self.period_signal, period), (self._derived_from, exposure)):
            signal.rtolerance = self.rtol
            statuses.append(signal.set(target, timeout=timeout, settle_time=settle_time))
        return statuses[0] & statuses[1]


class TXMDetector(SingleTrigger, DetectorBase):
    """An AreaDetector camera (``<prefix>cam1:``) with an HDF5 plugin (``<prefix>HDF1:``).

    Staging sets one image per trigger and opens a new HDF5 file; each ``trigger()``
    acquires one frame into it. ``exposure_time`` (seconds) maps to ``cam.acquire_time``.
    ``describe()`` always holds the image key ``<name>_image`` (external, shape
    ``[H, W]`` from ``cam.array_size``), so a plan can inspect it before staging.

    Parameters
    ----------
    prefix
        IOC prefix, e.g. ``"32idcSP1:"``.
    name
        ophyd name; the image data key is ``<name>_image``.
    write_path_template
        Directory of the HDF5 files as the IOC sees it (``strftime`` codes allowed).
    read_path_template
        The same directory as this computer sees it (default: ``write_path_template``).
    root
        Non-semantic part of the read path (the Resource ``root``).
    path_semantics
        ``"posix"`` or ``"windows"``: how the IOC spells paths.
    readout_time
        Seconds added to the exposure time to give AcquirePeriod.
    **kwargs
        Passed on to :class:`ophyd.areadetector.DetectorBase`.

    Notes
    -----
    ophyd refuses to stage an HDF5 plugin that has never seen a frame
    (``UnprimedPlugin``): after an IOC restart, acquire one frame (for instance with
    ``detector.hdf1.warmup()``, which takes a 1 s exposure) before the first scan.
    """

    _default_read_attrs = ("hdf1", "exposure_time")
    _default_configuration_attrs = ("cam", "exposure_time")

    cam = ADCpt(AreaDetectorCam, "cam1:")
    hdf1 = ADCpt(TXMHDF5Plugin, "HDF1:", write_path_template="/", kind=Kind.normal)
    exposure_time = Cpt(ExposureTimeSignal, derived_from="cam.acquire_time",
                        kind=Kind.normal | Kind.config)

    def __init__(self, prefix: str = "", *, name: str, write_path_template: str,
                 read_path_template: str | None = None, root: str = "/",
                 path_semantics: str = "posix", readout_time: float = 0.0,
                 **kwargs: Any) -> None:
        super().__init__(prefix, name=name, **kwargs)
        self.readout_time = float(readout_time)
        plugin = self.hdf1
        plugin.reg_root = root
        plugin.path_semantics = path_semantics
        plugin.write_path_template = write_path_template
        plugin.read_path_template = read_path_template
        self.stage_sigs["cam.num_images"] = 1
        self.cam.configuration_attrs = ["acquire_time", "acquire_period", "num_images",
                                        "image_mode", "trigger_mode"]

    def trigger(self) -> StatusBase:
        """Acquire one frame; the status completes when Acquire returns to 0.

        Same as ``SingleTrigger.trigger`` except that it returns the status it created
        even when the acquisition has already ended (a very short exposure).

        Raises
        ------
        RuntimeError
            If the detector is not staged.
        """
        if self._staged != Staged.yes:
            raise RuntimeError(f"{self.name} is not staged: stage it so that frames have a "
                               "file to go to")
        status = self._status = self._status_type(self)
        self._acquisition_signal.put(1, wait=False)
        self.generate_datum(self._image_name, time.time(), {})
        return status

    @property
    def frame_shape(self) -> tuple[int, int]:
        """``(H, W)`` of the frames from ``cam.array_size`` (zeros until the driver sets it)."""
        size = self.cam.array_size
        return int(size.array_size_y.get() or 0), int(size.array_size_x.get() or 0)

    def make_data_key(self) -> dict[str, Any]:
        """Data key of the image: external, one 2-D frame ``[H, W]`` per event."""
        key: dict[str, Any] = {
            "shape": list(self.frame_shape),
            "source": f"PV:{self.prefix}",
            "dtype": "array",
            "external": "FILESTORE:",
        }
        try:
            dtype_numpy = self.dtype_numpy
        except (TypeError, ValueError, AttributeError):  # DataType not an numpy-like name
            dtype_numpy = None
        if dtype_numpy is not None:
            key["dtype_numpy"] = dtype_numpy
        return key

    def describe(self) -> dict[str, dict[str, Any]]:
        """Describe the readings, the image key included even before the first trigger."""
        description = super().describe()
        description[self._image_name] = self.make_data_key()
        return description

    def start_metadata(self) -> dict[str, Any]:
        """EPICS facts for the run's start document."""
        return {"epics": {"detector_prefix": self.prefix,
                          "hdf5_plugin": self.hdf1.prefix,
                          "write_path_template": self.hdf1.write_path_template}}
