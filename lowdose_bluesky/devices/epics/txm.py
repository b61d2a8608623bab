"""Factory for the EPICS transmission X-ray microscope (TXM), the twin of ``make_sim_txm``."""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import ophyd
from ophyd import EpicsMotor
from ophyd.sim import make_fake_device

from .camera import TXMDetector
from .config import EpicsTXMConfig, load_epics_config
from .motors import make_motor
from .shutter import TXMShutter

__all__ = ["EpicsTXM", "make_epics_txm"]


@dataclass
class EpicsTXM:
    """The microscope's EPICS devices, by the roles ``lowdose_tomo_plan`` gives them.

    Attributes
    ----------
    detector
        The camera (image key ``<name>_image``, ``exposure_time`` in seconds).
    rotation
        The rotation stage (degrees).
    sample_x
        The sample translation (``None`` if not configured).
    shutter
        The beam shutter (``None`` if not configured).
    config
        The validated configuration the devices were built from.
    """

    detector: TXMDetector
    rotation: EpicsMotor
    sample_x: EpicsMotor | None
    shutter: TXMShutter | None
    config: EpicsTXMConfig

    @property
    def devices(self) -> dict[str, Any]:
        """The ophyd devices by role (``None`` for a stage or shutter not configured)."""
        return {"detector": self.detector, "rotation": self.rotation,
                "sample_x": self.sample_x, "shutter": self.shutter}

    def wait_for_connection(self, timeout: float = 10.0) -> None:
        """Wait until every configured device is connected.

        Raises
        ------
        TimeoutError
            Naming the devices that did not connect within ``timeout`` seconds.
        """
        missing = []
        for role, device in self.devices.items():
            if device is None:
                continue
            try:
                device.wait_for_connection(timeout=timeout)
            except TimeoutError as exc:
                missing.append(f"{role} ({device.name}): {exc}")
        if missing:
            raise TimeoutError("EPICS devices not connected within "
                               f"{timeout} s:\n  " + "\n  ".join(missing))


def make_epics_txm(config: EpicsTXMConfig | Mapping[str, Any] | str | os.PathLike[str]
                   | None = None, *, fake: bool = False) -> EpicsTXM:
    """Build the TXM's EPICS devices from a configuration.

    Nothing is connected or moved: ophyd connects lazily, on first use (call
    :meth:`EpicsTXM.wait_for_connection` to check the PVs up front).

    Parameters
    ----------
    config
        Anything :func:`~lowdose_bluesky.devices.epics.load_epics_config` accepts: an
        :class:`EpicsTXMConfig`, a mapping, a YAML path, or ``None`` for the environment.
    fake
        Build the same classes with ophyd's fake signals (``make_fake_device``): no
        EPICS connection at all, for tests and dry runs.

    Returns
    -------
    EpicsTXM
        ``detector``, ``rotation``, ``sample_x`` and ``shutter`` ready for
        ``lowdose_tomo_plan(txm.detector, txm.rotation, sample_x=txm.sample_x,
        shutter=txm.shutter, ...)``.

    Raises
    ------
    EpicsConfigError
        If the configuration is invalid (a ``ValueError`` naming the bad keys).
    RuntimeError
        If real devices are asked for but ophyd has no EPICS control layer (neither
        pyepics nor caproto is installed).
    """
    cfg = load_epics_config(config)
    if not fake and ophyd.get_cl().name == "dummy":
        raise RuntimeError("no EPICS control layer: install pyepics (pip install "
                           "'lowdose_bluesky[epics]') or caproto, or pass fake=True to build "
                           "the devices on fake signals")

    def cls(real: type) -> type:
        return make_fake_device(real) if fake else real

    cam = cfg.camera
    detector = cls(TXMDetector)(
        cam.prefix, name=cam.name, write_path_template=cam.write_path_template,
        read_path_template=cam.read_path_template, root=cam.root,
        path_semantics=cam.path_semantics, readout_time=cam.readout_time,
        labels={"detectors"})
    rotation = make_motor(cfg.rotation, motor_class=cls(EpicsMotor))
    sample_x = (make_motor(cfg.sample_x, motor_class=cls(EpicsMotor))
                if cfg.sample_x is not None else None)
    shutter = None
    if cfg.shutter is not None:
        sh = cfg.shutter
        shutter = cls(TXMShutter)(
            open_pv=sh.open_command_pv, close_pv=sh.close_command_pv, status_pv=sh.status_pv,
            name=sh.name, command_value=sh.command_value, open_value=sh.open_value,
            closed_value=sh.closed_value, timeout=sh.timeout, settle_time=sh.settle_time,
            labels={"shutters"})
    return EpicsTXM(detector=detector, rotation=rotation, sample_x=sample_x, shutter=shutter,
                    config=cfg)
