"""Fixtures of the live-callback tests: a tiny simulated TXM and a RunEngine."""

import pytest
from bluesky import RunEngine

from lowdose_bluesky.devices.sim import make_sim_txm
from lowdose_bluesky.storage import subscribe_writer


@pytest.fixture
def live_txm(frames_root, request):
    return make_sim_txm(detector_shape=(32, 32), seed=3, flux=50.0,
                        data_dir=frames_root / request.node.name)


@pytest.fixture
def live_RE(tiled_client):
    RE = RunEngine({}, call_returns_result=False)
    subscribe_writer(RE, tiled_client, batch_size=10)
    yield RE
    if RE.state != "idle":  # a test that failed mid-scan leaves no run open
        RE.halt()
