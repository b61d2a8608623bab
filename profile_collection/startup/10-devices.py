"""The microscope: ``det``, ``rot``, ``sample_x``, ``shutter`` (and ``txm``, all of them).

``LOWDOSE_DEVICES=sim`` (default): the simulated TXM, frames written under
``LOWDOSE_DATA_DIR/frames``; ``LOWDOSE_SIM_SIZE`` sets the camera (``256`` or ``HxW``).

``LOWDOSE_DEVICES=epics``: the beamline's EPICS devices, PV prefixes from the YAML file
named by ``LOWDOSE_EPICS_CONFIG``, otherwise from the ``LOWDOSE_PV_*`` environment variables.
``LOWDOSE_EPICS_FAKE=1`` rehearses with fake devices answered by an IOC emulator
(frames of ``LOWDOSE_SIM_SIZE`` written to ``LOWDOSE_DATA_DIR/frames``).

``LOWDOSE_DEVICE_FLAVOUR=ophyd`` (default) builds ophyd devices, ``ophyd-async`` their
ophyd-async twins, which ``lowdose_tomo_flyscan`` needs (it flies the rotation). The
ophyd-async devices connect on the event loop of the RunEngine made in ``00-base.py``
(mock signals when ``LOWDOSE_EPICS_FAKE=1``).
"""

import os

_FLAVOURS = ("ophyd", "ophyd-async")


def _lowdose_sim_shape(text):
    """``"256"`` -> ``(256, 256)``, ``"128x160"`` -> ``(128, 160)``."""
    parts = text.lower().replace(",", "x").split("x")
    try:
        shape = tuple(int(p) for p in parts)
    except ValueError:
        shape = ()
    if len(shape) == 1:
        shape = shape * 2
    if len(shape) != 2:
        raise ValueError(f"LOWDOSE_SIM_SIZE must be N or HxW (pixels), got {text!r}")
    return shape


LOWDOSE_DEVICE_FLAVOUR = (os.environ.get("LOWDOSE_DEVICE_FLAVOUR") or "ophyd").strip().lower()
if LOWDOSE_DEVICE_FLAVOUR not in _FLAVOURS:
    raise ValueError(f"LOWDOSE_DEVICE_FLAVOUR must be 'ophyd' or 'ophyd-async', got "
                     f"{LOWDOSE_DEVICE_FLAVOUR!r}")

LOWDOSE_DEVICES = (os.environ.get("LOWDOSE_DEVICES") or "sim").strip().lower()
if LOWDOSE_DEVICES == "sim":
    from lowdose_bluesky.devices.sim import make_sim_txm

    txm = make_sim_txm(detector_shape=_lowdose_sim_shape(os.environ.get("LOWDOSE_SIM_SIZE")
                                                         or "256"),
                       data_dir=FRAMES_DIR,  # noqa: F821 (00-base.py)
                       flavour=LOWDOSE_DEVICE_FLAVOUR)
elif LOWDOSE_DEVICES == "epics":
    LOWDOSE_EPICS_FAKE = (os.environ.get("LOWDOSE_EPICS_FAKE") or "0").strip().lower()
    if LOWDOSE_EPICS_FAKE not in ("0", "1", "no", "yes", "false", "true"):
        raise ValueError("LOWDOSE_EPICS_FAKE must be 0/1 (no/yes, false/true), got "
                         f"{LOWDOSE_EPICS_FAKE!r}")
    _fake = LOWDOSE_EPICS_FAKE in ("1", "yes", "true")
    if LOWDOSE_DEVICE_FLAVOUR == "ophyd":
        from lowdose_bluesky.devices.epics import emulate_ioc, make_epics_txm

        txm = make_epics_txm(None, fake=_fake)  # None: LOWDOSE_EPICS_CONFIG or LOWDOSE_PV_*
        if _fake:
            ioc = emulate_ioc(txm, frame_shape=_lowdose_sim_shape(
                os.environ.get("LOWDOSE_SIM_SIZE") or "256"))
    else:
        from lowdose_bluesky.devices.epics import emulate_ioc_async, make_epics_txm_async

        if _fake:
            # mock signals; the emulated camera IOC writes its HDF5 files in FRAMES_DIR only
            _shape = _lowdose_sim_shape(os.environ.get("LOWDOSE_SIM_SIZE") or "256")
            txm = make_epics_txm_async(None, mock=True,
                                       path_provider=FRAMES_DIR,  # noqa: F821 (00-base.py)
                                       frame_shape=_shape)
            ioc = emulate_ioc_async(txm, FRAMES_DIR, frame_shape=_shape)  # noqa: F821
            del _shape
        else:  # files where LOWDOSE_CAMERA_WRITE_PATH/_READ_PATH (or the YAML file) say
            txm = make_epics_txm_async(None, mock=False)
    del _fake
else:
    raise ValueError(f"LOWDOSE_DEVICES must be 'sim' or 'epics', got {LOWDOSE_DEVICES!r}")

det, rot, sample_x, shutter = txm.detector, txm.rotation, txm.sample_x, txm.shutter
