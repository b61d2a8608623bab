"""IOC-like responses for a TXM built on ophyd's fake signals (tests and dry runs).

:func:`emulate_ioc` takes the devices of ``make_epics_txm(config, fake=True)`` and
makes their fake PVs answer like the IOCs would: a motor move updates the readback
and toggles DMOV, a shutter command changes the status PV, an acquisition writes
one frame into the HDF5 file the plugin opened (``FileTemplate`` % (``FilePath``,
``FileName``, ``FileNumber``), dataset ``/entry/data/data``) and drops Acquire back
to 0. The device classes themselves are untouched, so what runs on the emulation is
what runs at the beamline, minus EPICS.
"""

from __future__ import annotations

import math
import threading
from collections.abc import Callable
from pathlib import Path
from typing import Any

import h5py
import numpy as np
from ophyd import Device
from ophyd.sim import FakeEpicsSignal
from ophyd.utils.epics_pvs import AlarmSeverity

from ..hdf5_frames import DATASET
from .txm import EpicsTXM

__all__ = ["FakeIOC", "emulate_ioc"]

#: Enumerations of the AreaDetector records that ophyd writes as strings.
_ENUMS: dict[str, tuple[str, ...]] = {
    "enable": ("Disable", "Enable"),
    "array_callbacks": ("Disable", "Enable"),
    "blocking_callbacks": ("No", "Yes"),
    "auto_increment": ("No", "Yes"),
    "auto_save": ("No", "Yes"),
    "file_write_mode": ("Single", "Capture", "Stream"),
    "image_mode": ("Single", "Multiple", "Continuous"),
    "trigger_mode": ("Internal", "External"),
    "data_type": ("Int8", "UInt8", "Int16", "UInt16", "Int32", "UInt32", "Int64", "UInt64",
                  "Float32", "Float64"),
}

FrameSource = Callable[[EpicsTXM], np.ndarray]


def _fake_signals(device: Device) -> list[FakeEpicsSignal]:
    return [w.item for w in device.walk_signals(include_lazy=True)
            if isinstance(w.item, FakeEpicsSignal)]


def _prepare_signals(device: Device) -> None:
    """Give string-valued fake PVs the enumerations of the real records."""
    for signal in _fake_signals(device):
        if not signal.as_string or signal.enum_strs is not None:
            continue
        attr = signal.attr_name
        if attr in _ENUMS:
            signal.sim_set_enum_strs(_ENUMS[attr])
            value = signal.get(as_string=False)
            if isinstance(value, str) and value not in _ENUMS[attr]:
                # fake string PVs start as "0": an enum record holds an index
                signal.sim_put(int(value) if value.isdigit() else 0)
        else:  # free text (paths, names): compare what was written, not str(value)
            signal.as_string = False


class FakeIOC:
    """The emulated IOCs of one fake TXM; see :func:`emulate_ioc`.

    Attributes
    ----------
    txm
        The devices answered.
    frame_shape
        ``(H, W)`` of the emulated camera.
    files
        Paths of the HDF5 files written so far, in order.
    """

    def __init__(self, txm: EpicsTXM, *, frame_shape: tuple[int, int],
                 frame_source: FrameSource | None, counts_per_second: float,
                 delay: float) -> None:
        self.txm = txm
        self.frame_shape = (int(frame_shape[0]), int(frame_shape[1]))
        self.frame_source = frame_source
        self.counts_per_second = float(counts_per_second)
        self.delay = float(delay)
        self.files: list[Path] = []
        self._file: h5py.File | None = None
        self._lock = threading.Lock()

    # ------------------------------------------------------------------ helpers
    def _later(self, action: Callable[[], None]) -> None:
        """Run ``action`` from another thread, as a CA monitor update would arrive."""
        timer = threading.Timer(self.delay, action)
        timer.daemon = True
        timer.start()

    def default_frame(self) -> np.ndarray:
        """A flat frame: ``counts_per_second * exposure`` with the shutter open, else 0."""
        shutter = self.txm.shutter
        beam = shutter is None or shutter.state == "open"
        exposure = float(self.txm.detector.cam.acquire_time.get())
        counts = min(65535, round(self.counts_per_second * exposure)) if beam else 0
        return np.full(self.frame_shape, counts, dtype=np.uint16)

    # ------------------------------------------------------------------- motors
    def _motor(self, motor: Any) -> None:
        _prepare_signals(motor)
        motor.user_setpoint.sim_set_limits((-math.inf, math.inf))
        motor.user_readback.sim_put(0.0)
        motor.user_setpoint.sim_put(0.0)
        motor.motor_done_move.sim_put(1)
        # The fake readback has no alarm fields; the motor record reports none.
        motor.user_readback.alarm_severity = AlarmSeverity.NO_ALARM
        motor.user_readback.alarm_status = 0

        def move(value: Any, *args: Any, **kwargs: Any) -> None:
            motor.user_setpoint.sim_put(value)
            motor.motor_done_move.sim_put(0)

            def arrive() -> None:
                motor.user_readback.sim_put(float(value))
                motor.motor_done_move.sim_put(1)
            self._later(arrive)

        motor.user_setpoint.sim_set_putter(move)

    # ------------------------------------------------------------------ shutter
    def _shutter(self, shutter: Any) -> None:
        _prepare_signals(shutter)
        shutter.status.sim_put(shutter.closed_value)
        for command, state in ((shutter.open_signal, shutter.open_value),
                               (shutter.close_signal, shutter.closed_value)):
            def act(value: Any, *args: Any, _cmd: Any = command, _state: Any = state,
                    **kwargs: Any) -> None:
                _cmd.sim_put(value)
                if value == shutter.command_value:
                    self._later(lambda: shutter.status.sim_put(_state))
            command.sim_set_putter(act)

    # ------------------------------------------------------------------- camera
    def _camera(self, det: Any) -> None:
        _prepare_signals(det)
        h, w = self.frame_shape
        cam, hdf = det.cam, det.hdf1
        cam.array_size.array_size_y.sim_put(h)
        cam.array_size.array_size_x.sim_put(w)
        cam.data_type.sim_put("UInt16")
        cam.data_type_disabled.sim_put(0)
        cam.acquire_time.sim_put(1.0)
        cam.acquire_period.sim_put(1.0)
        hdf.plugin_type.sim_put("NDFileHDF5")
        hdf.array_size.height.sim_put(h)  # primed: the plugin has seen a frame
        hdf.array_size.width.sim_put(w)
        hdf.file_number.sim_put(0)
        hdf.file_path_exists.sim_put(0)

        def file_path(value: Any, *args: Any, **kwargs: Any) -> None:
            hdf.file_path.sim_put(value)
            hdf.file_path_exists.sim_put(int(Path(str(value)).is_dir()))

        def capture(value: Any, *args: Any, **kwargs: Any) -> None:
            if int(value) == 1:
                self._open_file(hdf)
            else:
                self._close_file()
            hdf.capture.sim_put(int(value))

        def acquire(value: Any, *args: Any, **kwargs: Any) -> None:
            cam.acquire.sim_put(value)
            if int(value) != 1:
                return
            frame = self.frame_source(self.txm) if self.frame_source else self.default_frame()
            self._write(hdf, cam, frame)
            self._later(lambda: cam.acquire.sim_put(0))

        hdf.file_path.sim_set_putter(file_path)
        hdf.capture.sim_set_putter(capture)
        cam.acquire.sim_set_putter(acquire)

    def _open_file(self, hdf: Any) -> None:
        with self._lock:
            self._close_file_locked()
            directory = str(hdf.file_path.get())
            create = getattr(hdf, "create_directory", None)
            if create is not None and int(create.get() or 0) < 0:  # CreateDirectory
                Path(directory).mkdir(parents=True, exist_ok=True)
                hdf.file_path_exists.sim_put(1)
            if not directory.endswith(("/", "\\")):  # the IOC appends the delimiter
                directory += "/"
            name = str(hdf.file_template.get()) % (directory,
                                                   str(hdf.file_name.get()),
                                                   int(hdf.file_number.get()))
            path = Path(name)
            f = h5py.File(path, "w", libver="latest")
            f.create_dataset(DATASET, shape=(0, *self.frame_shape),
                             maxshape=(None, *self.frame_shape),
                             chunks=(1, *self.frame_shape), dtype=np.uint16)
            f.swmr_mode = True
            self._file = f
            self.files.append(path)
            hdf.full_file_name.sim_put(name)
            hdf.num_captured.sim_put(0)
            if str(hdf.auto_increment.get()) in ("1", "Yes"):
                hdf.file_number.sim_put(int(hdf.file_number.get()) + 1)

    def _write(self, hdf: Any, cam: Any, frame: np.ndarray) -> None:
        frame = np.asarray(frame)
        if frame.shape != self.frame_shape:
            raise ValueError(f"frame source returned shape {frame.shape}, the emulated camera "
                             f"has {self.frame_shape}")
        with self._lock:
            cam.array_counter.sim_put(int(cam.array_counter.get() or 0) + 1)
            if self._file is None or int(hdf.capture.get() or 0) != 1:
                return
            dset = self._file[DATASET]
            n = dset.shape[0]
            dset.resize(n + 1, axis=0)
            dset[n] = frame
            dset.flush()
            hdf.num_captured.sim_put(n + 1)
            hdf.array_counter.sim_put(int(hdf.array_counter.get() or 0) + 1)

    def _close_file_locked(self) -> None:
        if self._file is not None:
            try:
                self._file.close()
            finally:
                self._file = None

    def _close_file(self) -> None:
        with self._lock:
            self._close_file_locked()

    def close(self) -> None:
        """Close the HDF5 file being written, if any."""
        self._close_file()


def emulate_ioc(txm: EpicsTXM, *, frame_shape: tuple[int, int] = (64, 64),
                frame_source: FrameSource | None = None, counts_per_second: float = 1000.0,
                delay: float = 0.0) -> FakeIOC:
    """Make the fake devices of ``txm`` answer like their IOCs.

    Parameters
    ----------
    txm
        Built with ``make_epics_txm(config, fake=True)``.
    frame_shape
        ``(H, W)`` of the emulated camera.
    frame_source
        ``frame_source(txm) -> (H, W) array`` for each acquired frame; default
        :meth:`FakeIOC.default_frame` (uniform counts, 0 with the shutter closed).
    counts_per_second
        Counts per pixel per second of the default frames.
    delay
        Seconds before a move, shutter command or acquisition reports completion.

    Returns
    -------
    FakeIOC
        Lists the HDF5 files written (``files``); ``close()`` closes the open one.

    Raises
    ------
    ValueError
        If ``txm`` holds real (not fake) devices: they would reach real PVs.
    """
    devices = [d for d in txm.devices.values() if d is not None]
    real = [d.name for d in devices if not _fake_signals(d)]
    if real:
        raise ValueError(f"emulate_ioc needs devices built with make_epics_txm(..., fake=True); "
                         f"{real} have no fake signals")
    h, w = (int(s) for s in frame_shape)
    if h < 1 or w < 1:
        raise ValueError(f"frame_shape must be two positive sizes, got {frame_shape!r}")
    ioc = FakeIOC(txm, frame_shape=(h, w), frame_source=frame_source,
                  counts_per_second=counts_per_second, delay=delay)
    ioc._camera(txm.detector)
    ioc._motor(txm.rotation)
    if txm.sample_x is not None:
        ioc._motor(txm.sample_x)
    if txm.shutter is not None:
        ioc._shutter(txm.shutter)
    return ioc
