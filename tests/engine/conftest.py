"""Fixtures of the engine tests: a tiny simulated TXM and a RunEngine writing to Tiled.

The same as ``tests/callbacks/conftest.py`` (the session's ``tiled_client`` and
``frames_root`` come from ``tests/conftest.py``).
"""

import pytest
from bluesky import RunEngine

from lowdose_bluesky.devices.sim import make_sim_txm
from lowdose_bluesky.storage import subscribe_writer


@pytest.fixture
def live_txm(frames_root, request):
    """32x32 frames, no real exposure time (triggers finish at once)."""
    return make_sim_txm(detector_shape=(32, 32), seed=3, flux=50.0,
                        data_dir=frames_root / request.node.name)


@pytest.fixture
def live_RE(tiled_client):
    RE = RunEngine({}, call_returns_result=False)
    subscribe_writer(RE, tiled_client, batch_size=10)
    yield RE
    if RE.state != "idle":
        RE.halt()
