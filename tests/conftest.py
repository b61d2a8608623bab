"""Shared fixtures: a RunEngine, small simulated TXMs, an embedded Tiled server."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import event_model
import pytest
from bluesky import RunEngine

from lowdose_bluesky.devices.sim import SimTXM, make_sim_txm
from lowdose_bluesky.storage import close_embedded_servers, connect


class DocumentCollector:
    """Collects (name, doc) pairs and validates each against the event-model schemas."""

    def __init__(self) -> None:
        self.docs: list[tuple[str, dict]] = []

    def __call__(self, name: str, doc: dict) -> None:
        event_model.schema_validators[event_model.DocumentNames[name]].validate(doc)
        self.docs.append((name, doc))

    def of(self, name: str) -> list[dict]:
        return [d for n, d in self.docs if n == name]

    def events(self, stream: str) -> list[dict]:
        descriptors = {d["uid"] for d in self.of("descriptor") if d["name"] == stream}
        return [d for d in self.of("event") if d["descriptor"] in descriptors]


@pytest.fixture
def RE() -> Iterator[RunEngine]:
    engine = RunEngine({}, call_returns_result=False)
    yield engine
    if engine.state != "idle":
        engine.halt()


@pytest.fixture
def collector(RE: RunEngine) -> DocumentCollector:
    c = DocumentCollector()
    RE.subscribe(c)
    return c


@pytest.fixture
def txm(tmp_path: Path) -> SimTXM:
    return make_sim_txm(detector_shape=(32, 40), seed=7, data_dir=tmp_path / "frames",
                        flux=1000.0)


@pytest.fixture(scope="session")
def frames_root(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("frames_root")


@pytest.fixture(scope="session")
def tiled_client(frames_root: Path, tmp_path_factory: pytest.TempPathFactory):
    client = connect(directory=tmp_path_factory.mktemp("tiled"), readable_storage=[frames_root])
    yield client
    close_embedded_servers()


@pytest.fixture
def stored_txm(frames_root: Path, request: pytest.FixtureRequest) -> SimTXM:
    """A TXM writing under the embedded server's readable storage."""
    return make_sim_txm(detector_shape=(32, 40), seed=11,
                        data_dir=frames_root / request.node.name, flux=1000.0)
