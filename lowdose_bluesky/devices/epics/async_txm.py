"""Factory for the TXM's ophyd-async devices, the twin of :func:`make_epics_txm`.

The devices are configured by the same YAML file or ``LOWDOSE_PV_*`` variables as the
ophyd ones (:func:`~lowdose_bluesky.devices.epics.load_epics_config`)::

    from bluesky import RunEngine
    from lowdose_bluesky.devices.epics import make_epics_txm_async

    RE = RunEngine()                       # starts the event loop the devices connect in
    txm = make_epics_txm_async("pvs.yaml")  # or None: LOWDOSE_PV_* variables

``mock=True`` connects every signal in ophyd-async's mock mode (no EPICS at all);
:func:`~lowdose_bluesky.devices.epics.emulate_ioc_async` then makes the mock signals
answer like the IOCs.
"""

from __future__ import annotations

import contextlib
import importlib.util
import os
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ophyd_async.core import (
    PathProvider,
    SignalBackend,
    StaticPathProvider,
    UUIDFilenameProvider,
    init_devices,
)
from ophyd_async.epics.motor import Motor

from .async_detector import CameraPathProvider, TXMDetectorAsync
from .async_shutter import TXMShutterAsync
from .config import EpicsTXMConfig, load_epics_config

__all__ = ["EpicsTXMAsync", "make_epics_txm_async"]

PathProviderLike = PathProvider | str | os.PathLike[str] | None


@dataclass
class EpicsTXMAsync:
    """The microscope's ophyd-async devices, by the roles the plans give them.

    Attributes
    ----------
    detector
        The camera (image data key ``<name>_image``, exposures through
        ``prepare(TriggerInfo(livetime=...))``).
    rotation
        The rotation stage (degrees).
    sample_x
        The sample translation (``None`` if not configured).
    shutter
        The beam shutter (``None`` if not configured).
    config
        The validated configuration the devices were built from.
    mock
        Whether the signals are connected in mock mode.
    """

    detector: TXMDetectorAsync
    rotation: Motor
    sample_x: Motor | None
    shutter: TXMShutterAsync | None
    config: EpicsTXMConfig
    mock: bool = False

    @property
    def devices(self) -> dict[str, Any]:
        """The devices by role (``None`` for a stage or shutter not configured)."""
        return {"detector": self.detector, "rotation": self.rotation,
                "sample_x": self.sample_x, "shutter": self.shutter}


def _path_provider(source: PathProviderLike, config: EpicsTXMConfig) -> PathProvider:
    if source is None:
        return CameraPathProvider(config.camera)
    if isinstance(source, str | os.PathLike):
        directory = Path(source).expanduser().absolute()
        return StaticPathProvider(UUIDFilenameProvider(), directory)
    if callable(source):
        return source
    raise TypeError(f"path_provider must be None, a data directory or an ophyd-async "
                    f"PathProvider, got {type(source).__name__}")


def _has_ca_transport() -> bool:
    return importlib.util.find_spec("aioca") is not None


class _MockOnlyBackend(SignalBackend[Any]):
    """Stands in for the Channel Access backend when aioca is not installed.

    In mock mode ophyd-async only asks the backend built with a signal for its datatype
    and source, then replaces it by a mock backend; this class provides those two and
    refuses everything else, so mock devices can be built without an EPICS client.
    """

    def __init__(self, datatype: type | None, read_pv: str = "", write_pv: str = "",
                 options: Any = None) -> None:
        self.read_pv = read_pv
        self.write_pv = write_pv
        self.options = options
        super().__init__(datatype)

    def source(self, name: str, read: bool) -> str:
        return f"ca://{self.read_pv if read else self.write_pv}"

    def _unavailable(self, *args: Any, **kwargs: Any) -> Any:
        raise RuntimeError("no Channel Access client (aioca) is installed; only mock=True "
                           "devices can be built")

    connect = put = get_datakey = get_reading = get_value = get_setpoint = _unavailable
    set_callback = _unavailable


@contextlib.contextmanager
def _mock_transport(mock: bool) -> Iterator[None]:
    """Build mock devices without aioca by standing in for the CA signal backend."""
    if not mock or _has_ca_transport():
        yield
        return
    from ophyd_async.epics.core import _signal

    original = _signal.CaSignalBackend
    _signal.CaSignalBackend = _MockOnlyBackend  # type: ignore[assignment, misc]
    try:
        yield
    finally:
        _signal.CaSignalBackend = original  # type: ignore[misc]


def make_epics_txm_async(config: EpicsTXMConfig | Mapping[str, Any] | str
                         | os.PathLike[str] | None = None, *, mock: bool = False,
                         path_provider: PathProviderLike = None,
                         frame_shape: tuple[int, int] | None = None,
                         timeout: float = 10.0) -> EpicsTXMAsync:
    """Build and connect the TXM's ophyd-async devices from a configuration.

    The devices are created inside ``ophyd_async.core.init_devices``, which connects
    them in the bluesky event loop: create the ``RunEngine`` first.

    Parameters
    ----------
    config
        Anything :func:`~lowdose_bluesky.devices.epics.load_epics_config` accepts: an
        :class:`EpicsTXMConfig`, a mapping, a YAML path, or ``None`` for the environment.
    mock
        Connect in ophyd-async's mock mode (no EPICS); see
        :func:`~lowdose_bluesky.devices.epics.emulate_ioc_async`.
    path_provider
        Where the HDF5 plugin writes: ``None`` for the configuration's
        ``write_path_template``/``read_path_template`` (:class:`CameraPathProvider`),
        a data directory (seen alike by the IOC and this computer), or any ophyd-async
        ``PathProvider``.
    frame_shape
        ``(H, W)`` of the camera's frames if known (``detector.frame_shape``).
    timeout
        Seconds the devices may take to connect.

    Returns
    -------
    EpicsTXMAsync
        ``detector``, ``rotation``, ``sample_x`` and ``shutter`` (and ``devices`` by role).

    Raises
    ------
    EpicsConfigError
        If the configuration is invalid (a ``ValueError`` naming the bad keys).
    RuntimeError
        If real devices are asked for but aioca (the Channel Access client of
        ophyd-async) is not installed.
    ophyd_async.core.NotConnectedError
        If a PV does not connect, or no bluesky event loop runs (no ``RunEngine``).

    Notes
    -----
    The motors are plain ``ophyd_async.epics.motor.Motor`` devices: they compute their
    own move timeouts from velocity and acceleration, so the motors' ``settle_time``
    and ``timeout`` settings apply to the ophyd devices only.
    """
    cfg = load_epics_config(config)
    if not mock and not _has_ca_transport():
        raise RuntimeError("no Channel Access client for ophyd-async: install aioca "
                           "(pip install 'ophyd-async[ca]'), or pass mock=True")
    provider = _path_provider(path_provider, cfg)
    cam = cfg.camera
    sample_x: Motor | None = None
    shutter: TXMShutterAsync | None = None
    with _mock_transport(mock), init_devices(mock=mock, timeout=timeout):
        detector = TXMDetectorAsync(cam.prefix, provider, readout_time=cam.readout_time,
                                    frame_shape=frame_shape, name=cam.name)
        rotation = Motor(cfg.rotation.prefix, name=cfg.rotation.name)
        if cfg.sample_x is not None:
            sample_x = Motor(cfg.sample_x.prefix, name=cfg.sample_x.name)
        if cfg.shutter is not None:
            shutter = TXMShutterAsync.from_config(cfg.shutter)
    return EpicsTXMAsync(detector=detector, rotation=rotation, sample_x=sample_x,
                         shutter=shutter, config=cfg, mock=mock)
