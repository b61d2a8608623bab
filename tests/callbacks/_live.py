"""Helpers of the live-callback tests."""

from lowdose_bluesky.plans import lowdose_tomo_plan

#: Small, fast training options for 32x32 frames.
TRAIN = {"patch_size": 16, "max_patches": 1024, "batch_size": 32, "patience": None}


def scan(RE, txm, **kwargs):
    args = {"num_projections": 37, "num_darks": 3, "num_flats": 3, "long_exposure": 30.0,
            "short_exposure": 1.0, "reference_angles": (30.0, 120.0), **kwargs}
    return RE(lowdose_tomo_plan(txm.detector, txm.rotation, sample_x=txm.sample_x,
                                shutter=txm.shutter, **args))
