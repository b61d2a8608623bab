"""IOC-like responses for the TXM's ophyd-async devices in mock mode (tests and dry runs).

:func:`emulate_ioc_async` takes the devices of ``make_epics_txm_async(config,
mock=True)`` and installs callbacks on their mock signals so that they answer like the
IOCs would: a motor move updates the readback and toggles DMOV, a shutter command
changes the status PV, and an acquisition produces NumImages frames that the HDF5
plugin, while capturing, appends to a real HDF5 file (``FileTemplate`` % (``FilePath``,
``FileName``, ``FileNumber``), dataset ``/entry/data/data``, flushed per frame),
advancing ``NumCaptured_RBV`` and the array counters. The device classes are
untouched, so what runs on the emulation is what runs at the beamline, minus EPICS.
"""

from __future__ import annotations

import asyncio
import math
import re
from pathlib import Path
from typing import Any

import h5py
import numpy as np
from ophyd_async.core import (
    EnableDisable,
    callback_on_mock_put,
    get_mock_put,
    set_mock_value,
)
from ophyd_async.epics.adcore import (
    ADBaseColorMode,
    ADBaseDataType,
    ADImageMode,
    ADState,
)
from ophyd_async.epics.motor import Motor

from ..hdf5_frames import DATASET
from .async_detector import TXMDetectorAsync
from .async_shutter import TXMShutterAsync
from .async_txm import EpicsTXMAsync

__all__ = ["AsyncIOCEmulator", "emulate_ioc_async"]

#: ``printf`` conversions of an AreaDetector FileTemplate (``%%`` excluded).
_CONVERSION = re.compile(r"%(?!%)[-#0 +]*\d*(?:\.\d+)?[sdiuf]")


def _file_name(template: str, path: str, name: str, number: int) -> str:
    """Expand a FileTemplate as ADCore's ``sprintf(template, path, name, number)`` does."""
    args = (path, name, number)
    count = len(_CONVERSION.findall(template))
    if count > len(args):
        raise ValueError(f"FileTemplate {template!r} has {count} conversions, at most 3 "
                         "(path, name, number) are allowed")
    return template % args[:count]


def _require_mock(device: Any, signal: Any) -> None:
    try:
        get_mock_put(signal)
    except RuntimeError:
        raise ValueError(f"emulate_ioc_async needs devices built with "
                         f"make_epics_txm_async(..., mock=True); {device.name!r} is connected "
                         "to EPICS") from None


class AsyncIOCEmulator:
    """The emulated IOCs of one mock TXM; see :func:`emulate_ioc_async`.

    Attributes
    ----------
    txm
        The devices answered.
    data_dir
        The only directory tree the emulated camera IOC writes into.
    frame_shape
        ``(H, W)`` of the emulated camera.
    files
        Paths of the HDF5 files written so far, in order.
    """

    def __init__(self, txm: EpicsTXMAsync, data_dir: Path, *, frame_shape: tuple[int, int],
                 counts_per_second: float, time_scale: float, max_velocity: float,
                 acceleration_time: float) -> None:
        self.txm = txm
        self.data_dir = data_dir
        self.frame_shape = frame_shape
        self.counts_per_second = float(counts_per_second)
        self.time_scale = float(time_scale)
        self.max_velocity = float(max_velocity)
        self.acceleration_time = float(acceleration_time)
        self.files: list[Path] = []
        self._file: h5py.File | None = None
        self._capturing = False
        self._captured = 0
        self._acquisition: asyncio.Task[None] | None = None

    # ------------------------------------------------------------------- frames
    def _inside_data_dir(self, directory: Path) -> bool:
        try:
            directory.resolve().relative_to(self.data_dir)
        except ValueError:
            return False
        return True

    async def _frame(self, exposure: float) -> np.ndarray:
        """A flat frame: ``counts_per_second * exposure`` with the shutter open, else 0."""
        shutter = self.txm.shutter
        beam = shutter is None or await shutter.state.get_value() == "open"
        counts = min(65535, round(self.counts_per_second * exposure)) if beam else 0
        return np.full(self.frame_shape, counts, dtype=np.uint16)

    # ------------------------------------------------------------------- motors
    def _motor(self, motor: Motor, *, units: str, max_velocity: float) -> None:
        _require_mock(motor, motor.user_setpoint)
        set_mock_value(motor.motor_egu, units)
        set_mock_value(motor.max_velocity, max_velocity)
        set_mock_value(motor.velocity, max_velocity / 3)
        set_mock_value(motor.acceleration_time, self.acceleration_time)
        set_mock_value(motor.precision, 3)
        set_mock_value(motor.user_readback, 0.0)
        set_mock_value(motor.user_setpoint, 0.0)
        set_mock_value(motor.motor_done_move, 1)

        async def move(value: float) -> None:
            # Called by the put: it completes when the motor has arrived (put-callback).
            set_mock_value(motor.motor_done_move, 0)
            if self.time_scale:
                start, velocity = await asyncio.gather(motor.user_readback.get_value(),
                                                       motor.velocity.get_value())
                if velocity > 0:
                    await asyncio.sleep(abs(value - start) / velocity * self.time_scale)
            set_mock_value(motor.user_readback, float(value))
            set_mock_value(motor.motor_done_move, 1)

        def stop(value: int) -> None:
            set_mock_value(motor.motor_done_move, 1)

        callback_on_mock_put(motor.user_setpoint, move)
        callback_on_mock_put(motor.motor_stop, stop)

    # ------------------------------------------------------------------ shutter
    def _shutter(self, shutter: TXMShutterAsync) -> None:
        _require_mock(shutter, shutter.open_command)
        set_mock_value(shutter.status, shutter.closed_value)
        for command, state in ((shutter.open_command, shutter.open_value),
                               (shutter.close_command, shutter.closed_value)):
            def act(value: int, _state: int = state) -> None:
                if value == shutter.command_value:
                    set_mock_value(shutter.status, _state)
            callback_on_mock_put(command, act)

    # ------------------------------------------------------------------- camera
    def _camera(self, det: TXMDetectorAsync) -> None:
        driver, hdf = det.driver, det.hdf
        _require_mock(det, driver.acquire)
        h, w = self.frame_shape
        for signal, value in (
                (driver.array_size_x, w), (driver.array_size_y, h), (driver.array_size_z, 0),
                (driver.data_type, ADBaseDataType.UINT16),
                (driver.color_mode, ADBaseColorMode.MONO),
                (driver.detector_state, ADState.IDLE), (driver.acquire_time, 1.0),
                (driver.acquire_period, 1.0), (driver.num_images, 1),
                (driver.image_mode, ADImageMode.MULTIPLE),
                (driver.manufacturer, "lowdose_bluesky"), (driver.model, "emulated camera"),
                (hdf.file_path_exists, False), (hdf.num_frames_chunks, 1)):
            set_mock_value(signal, value)
        if det.frame_shape is None:
            det.frame_shape = self.frame_shape

        async def file_path(value: str) -> None:
            directory = Path(value)
            allowed = directory.is_absolute() and self._inside_data_dir(directory)
            if allowed and await hdf.create_directory.get_value() != 0:
                directory.mkdir(parents=True, exist_ok=True)  # CreateDirectory
            set_mock_value(hdf.file_path_exists, allowed and directory.is_dir())

        async def capture(value: bool) -> None:
            if value and not self._capturing:
                self._capturing = True
                self._captured = 0
                set_mock_value(hdf.num_captured, 0)
                if not await hdf.lazy_open.get_value():
                    await self._open_file(det)
            elif not value:
                self._capturing = False
                self._close_file()

        def flush(value: bool) -> None:
            if value and self._file is not None:
                self._file.flush()

        def acquire(value: bool) -> None:
            running = self._acquisition is not None and not self._acquisition.done()
            if value and not running:
                loop = asyncio.get_running_loop()
                self._acquisition = loop.create_task(self._acquire(det))
            elif not value and running:
                assert self._acquisition is not None
                self._acquisition.cancel()

        callback_on_mock_put(hdf.file_path, file_path)
        callback_on_mock_put(hdf.capture, capture)
        callback_on_mock_put(hdf.flush_now, flush)
        callback_on_mock_put(driver.acquire, acquire)

    async def _acquire(self, det: TXMDetectorAsync) -> None:
        """Take the frames of one Acquire=1, then drop Acquire back to 0."""
        driver = det.driver
        mode, num, exposure, period = await asyncio.gather(
            driver.image_mode.get_value(), driver.num_images.get_value(),
            driver.acquire_time.get_value(), driver.acquire_period.get_value())
        total = (1 if mode == ADImageMode.SINGLE
                 else math.inf if mode == ADImageMode.CONTINUOUS else max(int(num), 1))
        # Continuous mode runs until Acquire=0: never faster than 1 kHz there.
        pause = max(exposure, period) * self.time_scale
        if math.isinf(total):
            pause = max(pause, 1e-3)
        set_mock_value(driver.detector_state, ADState.ACQUIRE)
        taken = 0
        try:
            while taken < total:
                await asyncio.sleep(pause)
                frame = await self._frame(exposure)
                counter = await driver.array_counter.get_value()
                set_mock_value(driver.array_counter, counter + 1)
                await self._store(det, frame)
                taken += 1
        finally:
            set_mock_value(driver.acquire, False)
            set_mock_value(driver.detector_state, ADState.IDLE)

    # --------------------------------------------------------------- HDF5 plugin
    async def _open_file(self, det: TXMDetectorAsync) -> None:
        hdf = det.hdf
        self._close_file()
        directory, name, number, template, increment = await asyncio.gather(
            hdf.file_path.get_value(), hdf.file_name.get_value(), hdf.file_number.get_value(),
            hdf.file_template.get_value(), hdf.auto_increment.get_value())
        if not directory.endswith(("/", "\\")):  # the IOC appends the delimiter
            directory += "/"
        path = Path(_file_name(template, directory, name, number))
        if not self._inside_data_dir(path.parent):
            raise PermissionError(f"the emulated IOC writes under {self.data_dir} only, "
                                  f"not to {path}")
        f = h5py.File(path, "w", libver="latest")
        f.create_dataset(DATASET, shape=(0, *self.frame_shape),
                         maxshape=(None, *self.frame_shape),
                         chunks=(1, *self.frame_shape), dtype=np.uint16)
        f.swmr_mode = True
        self._file = f
        self.files.append(path)
        set_mock_value(hdf.full_file_name, str(path))
        if increment:
            set_mock_value(hdf.file_number, number + 1)

    async def _store(self, det: TXMDetectorAsync, frame: np.ndarray) -> None:
        """What the HDF5 plugin does with one frame: append it to the file if capturing."""
        hdf = det.hdf
        if not self._capturing or await hdf.enable_callbacks.get_value() != EnableDisable.ENABLE:
            return
        if self._file is None:  # LazyOpen: the file is created with the first frame
            await self._open_file(det)
        assert self._file is not None
        dset = self._file[DATASET]
        n = dset.shape[0]
        dset.resize(n + 1, axis=0)
        dset[n] = frame
        dset.flush()
        self._captured = n + 1
        set_mock_value(hdf.num_captured, self._captured)
        set_mock_value(hdf.array_counter, await hdf.array_counter.get_value() + 1)
        limit = await hdf.num_capture.get_value()
        if limit and self._captured >= limit:  # Capture ends by itself after NumCapture
            self._capturing = False
            self._close_file()
            set_mock_value(hdf.capture, False)

    def _close_file(self) -> None:
        if self._file is not None:
            try:
                self._file.close()
            finally:
                self._file = None

    def close(self) -> None:
        """Close the HDF5 file being written, if any."""
        self._close_file()


def emulate_ioc_async(txm: EpicsTXMAsync, data_dir: str | Path, *,
                      frame_shape: tuple[int, int] | None = None,
                      counts_per_second: float = 1000.0, time_scale: float = 0.0,
                      max_velocity: float = 90.0, acceleration_time: float = 0.1
                      ) -> AsyncIOCEmulator:
    """Make the mock devices of ``txm`` answer like their IOCs.

    Parameters
    ----------
    txm
        Built with ``make_epics_txm_async(config, mock=True)``.
    data_dir
        Directory the emulated camera IOC may write into (it must exist): a FilePath
        outside it reads back ``FilePathExists_RBV = 0``, so ``prepare`` fails as with
        an IOC that cannot see the directory. Build ``txm`` with
        ``path_provider=data_dir`` (or a configuration whose paths lie in it).
    frame_shape
        ``(H, W)`` of the emulated camera (default ``detector.frame_shape``, else
        ``(64, 64)``); also set as ``detector.frame_shape`` if that was ``None``.
    counts_per_second
        Counts per pixel per second of the frames (0 with the shutter closed).
    time_scale
        Fraction of real time the emulation takes: 0 answers at once, 1 takes
        AcquirePeriod per frame and distance/velocity per move.
    max_velocity
        Maximum velocity of the rotation stage (deg/s); the other stages get a tenth.
        Velocities start at a third of the maximum.
    acceleration_time
        Acceleration time of the stages (s): the run-up of fly scans.

    Returns
    -------
    AsyncIOCEmulator
        Lists the HDF5 files written (``files``); ``close()`` closes the open one.

    Raises
    ------
    ValueError
        If ``txm`` holds devices connected to EPICS (not mock), or ``frame_shape`` is not
        two positive sizes.
    FileNotFoundError
        If ``data_dir`` is not a directory.
    """
    directory = Path(data_dir).expanduser().resolve()
    if not directory.is_dir():
        raise FileNotFoundError(f"data_dir {str(data_dir)!r} is not a directory")
    shape = frame_shape or txm.detector.frame_shape or (64, 64)
    h, w = (int(s) for s in shape)
    if h < 1 or w < 1:
        raise ValueError(f"frame_shape must be two positive sizes, got {shape!r}")
    ioc = AsyncIOCEmulator(txm, directory, frame_shape=(h, w),
                           counts_per_second=counts_per_second, time_scale=time_scale,
                           max_velocity=max_velocity, acceleration_time=acceleration_time)
    ioc._camera(txm.detector)
    ioc._motor(txm.rotation, units="deg", max_velocity=max_velocity)
    if txm.sample_x is not None:
        ioc._motor(txm.sample_x, units="mm", max_velocity=max_velocity / 10)
    if txm.shutter is not None:
        ioc._shutter(txm.shutter)
    return ioc
