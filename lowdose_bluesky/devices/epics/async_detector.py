"""The TXM camera as an ophyd-async ``StandardDetector``: AreaDetector driver + HDF5 plugin.

The driver is at ``<prefix>cam1:`` and the HDF5 plugin at ``<prefix>HDF1:``, as for the
ophyd twin :class:`~lowdose_bluesky.devices.epics.TXMDetector`. Exposures are set with
``prepare(TriggerInfo(livetime=..., number_of_events=...))`` (INTERNAL triggering only),
frames are written by the HDF5 plugin in Stream mode and announced with
StreamResource/StreamDatum documents (dataset ``/entry/data/data``), under the data key
``<name>_image``.
"""

from __future__ import annotations

import asyncio
import uuid
from dataclasses import dataclass
from datetime import datetime
from pathlib import PurePosixPath, PureWindowsPath
from typing import Any

from ophyd_async.core import (
    DetectorTriggerLogic,
    PathInfo,
    PathProvider,
    SignalDict,
    TriggerInfo,
    generate_directory_uri,
    normalize_path,
)
from ophyd_async.epics.adcore import (
    ADAcquireLogic,
    ADBaseIO,
    ADImageMode,
    ADWriterFactory,
    AreaDetector,
    trigger_info_from_num_images,
)

from .config import CameraConfig

__all__ = [
    "DRIVER_SUFFIX",
    "HDF_SUFFIX",
    "IMAGE_SUFFIX",
    "CameraPathProvider",
    "TXMDetectorAsync",
    "TXMTriggerLogic",
]

#: PV suffix of the AreaDetector driver, appended to the camera prefix.
DRIVER_SUFFIX = "cam1:"
#: PV suffix of the HDF5 plugin, appended to the camera prefix.
HDF_SUFFIX = "HDF1:"
#: Appended to the detector name to give the image data key (``det_image``).
IMAGE_SUFFIX = "_image"


class CameraPathProvider(PathProvider):
    """Where the HDF5 plugin writes, from a camera configuration.

    Each call expands the ``strftime`` codes of ``write_path_template`` (the directory
    as the IOC sees it) and ``read_path_template`` (the same directory as this computer
    sees it, given as the StreamResource URI) and picks a new file name (a UUID).
    StreamResource documents carry the whole URI, so ``root`` has no part here.

    Parameters
    ----------
    camera
        The camera section of the EPICS configuration.
    create_dir_depth
        ``CreateDirectory`` given to the plugin: with ``-3`` (the ophyd default) the
        IOC creates the last three directories of the path (``%Y/%m/%d``).
    """

    def __init__(self, camera: CameraConfig, *, create_dir_depth: int = -3) -> None:
        self.write_path_template = camera.write_path_template
        self.read_path_template = camera.read_path_template or camera.write_path_template
        self.path_semantics = camera.path_semantics
        self.create_dir_depth = int(create_dir_depth)

    def __call__(self, datakey_name: str | None = None) -> PathInfo:
        """Directory and file name for the next acquisition.

        Parameters
        ----------
        datakey_name
            Data key the file is for (unused: file names are unique).

        Returns
        -------
        PathInfo
        """
        now = datetime.now()
        flavour = PureWindowsPath if self.path_semantics == "windows" else PurePosixPath
        write = flavour(now.strftime(self.write_path_template))
        read = normalize_path(now.strftime(self.read_path_template))
        return PathInfo(directory_path=write, filename=str(uuid.uuid4()),
                        create_dir_depth=self.create_dir_depth,
                        directory_uri=generate_directory_uri(read))


@dataclass
class TXMTriggerLogic(DetectorTriggerLogic):
    """INTERNAL triggering of a generic AreaDetector driver.

    ``prepare`` writes ImageMode (Multiple, or Continuous for ``num == 0``), NumImages,
    AcquireTime and AcquirePeriod (exposure plus the larger of the requested deadtime
    and ``readout_time``, as ``exposure_time`` does on the ophyd twin).

    Attributes
    ----------
    driver
        The AreaDetector driver.
    readout_time
        Seconds the camera needs between frames; reported as the trigger deadtime.
    """

    driver: ADBaseIO
    readout_time: float = 0.0

    def get_deadtime(self, config_values: SignalDict) -> float:
        """The configured readout time, in seconds."""
        return self.readout_time

    async def prepare_internal(self, num: int, livetime: float, deadtime: float) -> None:
        """Set up ``num`` internally timed exposures of ``livetime`` seconds each.

        Parameters
        ----------
        num
            Number of exposures (0: until stopped).
        livetime
            Exposure in seconds (0: keep the current one).
        deadtime
            Seconds between exposures (0: the readout time).
        """
        mode = ADImageMode.CONTINUOUS if num == 0 else ADImageMode.MULTIPLE
        coros = [self.driver.image_mode.set(mode), self.driver.num_images.set(num)]
        if livetime:
            coros.append(self.driver.acquire_time.set(livetime))
            coros.append(self.driver.acquire_period.set(
                livetime + max(deadtime, self.readout_time)))
        await asyncio.gather(*coros)

    async def default_trigger_info(self) -> TriggerInfo:
        """One event of NumImages frames, as the driver is set now."""
        return await trigger_info_from_num_images(self.driver)


class TXMDetectorAsync(AreaDetector[ADBaseIO]):
    """The TXM camera: a generic AreaDetector driver with an HDF5 file writer.

    Parameters
    ----------
    prefix
        IOC prefix, e.g. ``"32idcSP1:"``.
    path_provider
        Where the HDF5 plugin writes (see :class:`CameraPathProvider`).
    driver_suffix, hdf_suffix
        PV suffixes of the driver and the HDF5 plugin.
    readout_time
        Seconds between frames the camera needs (the trigger deadtime).
    frame_shape
        ``(H, W)`` of the frames if known in advance (``None`` otherwise).
    name
        Device name; the image data key is ``<name>_image``.

    Attributes
    ----------
    driver
        The driver (``ADBaseIO``): ``acquire_time``, ``acquire_period``, ``num_images``...
    hdf
        The HDF5 plugin (``NDFileHDF5IO``).
    frame_shape
        ``(H, W)`` or ``None``.
    """

    def __init__(self, prefix: str, path_provider: PathProvider, *,
                 driver_suffix: str = DRIVER_SUFFIX, hdf_suffix: str = HDF_SUFFIX,
                 readout_time: float = 0.0, frame_shape: tuple[int, int] | None = None,
                 name: str = "") -> None:
        driver = ADBaseIO(prefix + driver_suffix)
        self.path_provider = path_provider
        super().__init__(
            driver, prefix,
            ADWriterFactory.hdf(path_provider, writer_suffix=hdf_suffix, writer_name="hdf",
                                datakey_suffix=IMAGE_SUFFIX),
            acquire_logic=ADAcquireLogic(driver),
            trigger_logic=TXMTriggerLogic(driver, float(readout_time)),
            name=name)
        self.prefix = prefix
        self.hdf_prefix = prefix + hdf_suffix
        self.readout_time = float(readout_time)
        self.frame_shape = (None if frame_shape is None
                            else (int(frame_shape[0]), int(frame_shape[1])))

    @property
    def image_key(self) -> str:
        """Data key of the frames, ``<name>_image``."""
        return self.name + IMAGE_SUFFIX

    def start_metadata(self) -> dict[str, Any]:
        """EPICS facts for the run's start document."""
        epics: dict[str, Any] = {"detector_prefix": self.prefix, "hdf5_plugin": self.hdf_prefix}
        template = getattr(self.path_provider, "write_path_template", None)
        if template is not None:
            epics["write_path_template"] = template
        return {"epics": epics}
