"""Rotation and sample stages: plain EPICS motor records."""

from __future__ import annotations

from ophyd import EpicsMotor

from .config import MotorConfig

__all__ = ["make_motor"]


def make_motor(config: MotorConfig, *, motor_class: type[EpicsMotor] = EpicsMotor
               ) -> EpicsMotor:
    """Build the :class:`ophyd.EpicsMotor` of one stage.

    Parameters
    ----------
    config
        Record name, ophyd name, settle time and move timeout.
    motor_class
        ``EpicsMotor`` or a subclass (``make_fake_device(EpicsMotor)`` in tests).

    Returns
    -------
    EpicsMotor
        Its readback's data key is the ophyd name (``rot``, ``sample_x``).
    """
    return motor_class(config.prefix, name=config.name, settle_time=config.settle_time,
                       timeout=config.timeout, labels={"motors"})
