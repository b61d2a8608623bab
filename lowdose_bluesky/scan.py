"""Run one simulated low-dose scan into a persistent embedded Tiled server."""

from __future__ import annotations

import time
from dataclasses import dataclass
from pathlib import Path

from bluesky import RunEngine

from .devices.sim import make_sim_txm
from .plans import lowdose_tomo_flyscan, lowdose_tomo_plan
from .storage import RAW, close, connect, subscribe_writer

__all__ = ["ScanSummary", "simulated_scan"]


@dataclass(frozen=True)
class ScanSummary:
    """Where a simulated scan went and how long it took."""

    uid: str
    data_dir: Path
    frames_dir: Path
    catalog_dir: Path
    seconds: float
    shapes: dict[str, tuple[int, ...]]
    image_key: str = "det_image"


def simulated_scan(data_dir: str | Path, *, size: int = 128, projections: int = 181,
                   dose_ratio: float = 15.0, short_exposure: float = 2.0, seed: int = 0,
                   fly: bool = False) -> ScanSummary:
    """Acquire one simulated scan and store it in an embedded Tiled server at ``data_dir``.

    Frames go to ``data_dir/frames`` (HDF5), the Tiled catalog to ``data_dir/tiled``,
    so a later ``connect(directory=data_dir/"tiled", readable_storage=[data_dir/"frames"])``
    finds the run again. ``fly=True`` flies the rotation with
    :func:`~lowdose_bluesky.plans.lowdose_tomo_flyscan` on the ophyd-async simulated TXM.
    """
    if size < 16:
        raise ValueError(f"size must be >= 16 pixels, got {size}")
    if dose_ratio <= 1:
        raise ValueError(f"dose_ratio must be > 1 (long / short exposure), got {dose_ratio}")
    root = Path(data_dir).expanduser().resolve()
    frames, catalog = root / "frames", root / "tiled"
    frames.mkdir(parents=True, exist_ok=True)
    RE = RunEngine({}, call_returns_result=False)  # ophyd-async devices connect on its loop
    txm = make_sim_txm(detector_shape=(size, size), seed=seed, data_dir=frames,
                       flavour="ophyd-async" if fly else "ophyd")
    plan = lowdose_tomo_flyscan if fly else lowdose_tomo_plan
    client = connect(directory=catalog, readable_storage=[frames])
    try:
        subscribe_writer(RE, client)
        t0 = time.perf_counter()
        (uid,) = RE(plan(
            txm.detector, txm.rotation, sample_x=txm.sample_x, shutter=txm.shutter,
            num_projections=projections, short_exposure=short_exposure,
            long_exposure=short_exposure * dose_ratio))
        seconds = time.perf_counter() - t0
        run = client[RAW][uid]
        key = run.metadata["start"]["lowdose"]["image_key"]
        shapes = {s: tuple(run[s][key].shape) for s in ("dark", "flat", "reference", "primary")}
    finally:
        close(client)
    return ScanSummary(uid=uid, data_dir=root, frames_dir=frames, catalog_dir=catalog,
                       seconds=seconds, shapes=shapes, image_key=key)
