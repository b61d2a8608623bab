"""Fixtures of the fault-injection tests."""

import pytest
from bluesky import RunEngine

from lowdose_bluesky.storage import subscribe_writer


@pytest.fixture
def RE(tiled_client):
    """A RunEngine writing to the session's Tiled; halted if a test leaves it busy."""
    engine = RunEngine({}, call_returns_result=False)
    subscribe_writer(engine, tiled_client, batch_size=10)
    yield engine
    if engine.state != "idle":
        engine.halt()
