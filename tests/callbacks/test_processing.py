"""TomographyAnalysis pieces that need no RunEngine."""

import threading

import numpy as np

from lowdose_bluesky.engine import FrameRef, RunContext
from lowdose_bluesky.recipes.tomography import AnalysisSettings, TomographyAnalysis
from lowdose_bluesky.recon import minus_log


class _ArraySource:
    """Frames from a dict, keyed by datum id."""

    def __init__(self, frames):
        self.frames = frames

    def read(self, ref):
        return self.frames[ref["datum_id"]]


def _processor(frames):
    start = {"uid": "run", "short_exposure": 0.1, "long_exposure": 1.5,
             "reference_angles": [30.0, 120.0],
             "lowdose": {"image_key": "img", "rotation_key": "rot", "exposure_key": "exp",
                         "angles": {"start": 0.0, "stop": 180.0, "num": 3}}}
    context = RunContext(run_uid="run", source=_ArraySource(frames),
                         scan_ended=threading.Event())
    return TomographyAnalysis(start, AnalysisSettings(method="supervised", progress=False),
                              context)


def _add(proc, stream, name, exposure, index=0):
    ref = FrameRef(run_uid="run", stream=stream, index=index, descriptor=stream,
                   seq_num=index + 1)
    proc.add_frame(stream, ref, {"img": name, "rot": 0.0, "exp": exposure}, received=123.0)


def test_transmission_floor_is_half_a_count_of_the_short_exposure():
    frames = {"dark": np.full((4, 4), 10.0), "flat": np.full((4, 4), 210.0)}
    proc = _processor(frames)
    _add(proc, "dark", "dark", 0.1)
    _add(proc, "flat", "flat", 0.1)
    assert proc._transmission_floor() == 0.5 / 200
    # a pixel that got no photon gives -log(0.0025) ~ 6, not -log(1e-6) ~ 13.8
    assert float(minus_log(np.zeros(1), floor=proc._transmission_floor())[0]) < 6.0
