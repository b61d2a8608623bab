"""RunProcessor pieces that need no RunEngine."""

import numpy as np

from lowdose_bluesky.callbacks.frame_source import FrameRef
from lowdose_bluesky.callbacks.processing import AnalysisSettings, RunProcessor
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
    return RunProcessor(start, AnalysisSettings(method="supervised", progress=False),
                        _ArraySource(frames), load_pretrained=None)


def _add(proc, stream, name, exposure, index=0):
    ref = FrameRef(run_uid="run", stream=stream, index=index, datum_id=name)
    proc.add_frame(stream, ref, {"img": name, "rot": 0.0, "exp": exposure}, received=123.0)


def test_transmission_floor_is_half_a_count_of_the_short_exposure():
    frames = {"dark": np.full((4, 4), 10.0), "flat": np.full((4, 4), 210.0)}
    proc = _processor(frames)
    _add(proc, "dark", "dark", 0.1)
    _add(proc, "flat", "flat", 0.1)
    assert proc._transmission_floor() == 0.5 / 200
    # a pixel that got no photon gives -log(0.0025) ~ 6, not -log(1e-6) ~ 13.8
    assert float(minus_log(np.zeros(1), floor=proc._transmission_floor())[0]) < 6.0
    assert proc.last_frame_time == 123.0  # when the event arrived, not when it was read
