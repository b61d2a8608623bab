"""Plans: ``lowdose_tomo_plan``, ``lowdose_tomo_flyscan`` and a few everyday ones (``count``,
``mv``, ``mvr``).

    RE(lowdose_tomo_plan(det, rot, sample_x=sample_x, shutter=shutter))
    RE(lowdose_tomo_flyscan(det, rot, sample_x=sample_x, shutter=shutter))  # ophyd-async

``lowdose_tomo_flyscan`` flies the rotation: it needs the ophyd-async devices
(``LOWDOSE_DEVICE_FLAVOUR=ophyd-async``); ``lowdose_tomo_plan`` steps it on either flavour.
Both are thin wrappers of :func:`lowdose_bluesky.plans.lowdose_tomo_plan` and
:func:`lowdose_bluesky.plans.lowdose_tomo_flyscan` (same arguments, same documents) that
the Bluesky queue server can describe and validate:

- the plan module uses ``from __future__ import annotations``, so its type hints are
  strings, which the queue server would take as string literals; the wrapper exposes the
  evaluated signature (``float``, ``int``, ``Sequence[float]``, ...);
- device parameters take the name of a device of this profile: ``detector`` one of the
  detectors, ``rotation``, ``sample_x`` and ``shutter`` one of the movable devices, so that
  a queued plan naming anything else is rejected before it runs.
"""

import functools
import inspect

import bluesky.plan_stubs as bps  # noqa: F401 (for the user)
import bluesky.plans as bp  # noqa: F401 (for the user)
import bluesky.preprocessors as bpp  # noqa: F401 (for the user)
from bluesky.plan_stubs import mv, mvr  # noqa: F401 (for the user)
from bluesky.plans import count  # noqa: F401 (for the user)

from lowdose_bluesky import plans as _lowdose_plans
from lowdose_bluesky import results  # noqa: F401 (for the user)


# Reached through the module, so that no second plan object sits in the namespace.
@functools.wraps(_lowdose_plans.lowdose_tomo_plan)
def lowdose_tomo_plan(*args, **kwargs):
    return (yield from _lowdose_plans.lowdose_tomo_plan(*args, **kwargs))


@functools.wraps(_lowdose_plans.lowdose_tomo_flyscan)
def lowdose_tomo_flyscan(*args, **kwargs):
    return (yield from _lowdose_plans.lowdose_tomo_flyscan(*args, **kwargs))


lowdose_tomo_plan.__signature__ = inspect.signature(_lowdose_plans.lowdose_tomo_plan,
                                                    eval_str=True)
lowdose_tomo_flyscan.__signature__ = inspect.signature(_lowdose_plans.lowdose_tomo_flyscan,
                                                       eval_str=True)

try:
    from bluesky_queueserver import parameter_annotation_decorator
except ImportError:  # the queue server is optional: IPython needs none of this
    pass
else:
    _detector = {"Detector": ["__DETECTOR__:.+"]}  # readable, not movable
    _motor = {"Motor": ["__MOTOR__:.+"]}  # readable and movable
    _tomo_parameters = {
        "detector": {"annotation": "Detector", "devices": _detector,
                     "description": "Camera (name of a detector of this profile, e.g. det)."},
        "rotation": {"annotation": "Motor", "devices": _motor,
                     "description": "Rotation stage in degrees (e.g. rot)."},
        "sample_x": {"annotation": "typing.Optional[Motor]", "devices": _motor,
                     "description": "Sample translation stage for the flats (e.g. sample_x)."},
        "shutter": {"annotation": "typing.Optional[Motor]", "devices": _motor,
                    "description": "Shutter for the darks (e.g. shutter)."},
        "num_projections": {"min": 2},
        "num_darks": {"min": 0},
        "num_flats": {"min": 0},
    }
    lowdose_tomo_plan = parameter_annotation_decorator(
        {"parameters": _tomo_parameters})(lowdose_tomo_plan)
    lowdose_tomo_flyscan = parameter_annotation_decorator({"parameters": {
        **_tomo_parameters,
        "detector": {**_tomo_parameters["detector"], "description":
                     "ophyd-async camera that times its own frames (e.g. det)."},
        "rotation": {**_tomo_parameters["rotation"], "description":
                     "Flyable rotation stage in degrees (e.g. rot)."},
        "frame_period": {"annotation": "typing.Optional[float]", "description":
                         "Seconds between the starts of consecutive frames; None: the short "
                         "exposure plus the detector's dead time (the fastest scan)."},
    }})(lowdose_tomo_flyscan)
    del _detector, _motor, _tomo_parameters

print(f"lowdose profile: devices {det.name}, {rot.name}, {sample_x.name}, "  # noqa: F821
      f"{shutter.name} ({LOWDOSE_DEVICES}, {LOWDOSE_DEVICE_FLAVOUR}); "  # noqa: F821
      f"data in {DATA_DIR}; "  # noqa: F821
      f"Tiled {'at ' + TILED_URI.split('?')[0] if TILED_URI else 'embedded'}; "  # noqa: F821
      f"live analysis {'on' if live is not None else 'off'}"  # noqa: F821
      f"{'; publishing to ' + publisher.address if publisher is not None else ''}")  # noqa: F821
