"""Memory under load: a long scan with the live callback grows only by the stacks it keeps.

Runs the measurement of ``benchmarks/load_scan.py`` at a small scale (a scan of 240
projections of 64x64 under tracemalloc, a tiny network): the Python heap (numpy buffers
included) may grow during the rotation only by the per-run bookkeeping of the RunEngine,
TiledWriter and callback (1-2 KiB per frame), never by anything the size of a frame. Also checks
that a finished run leaves nothing behind in the frame source and that the embedded Tiled
server keeps written payloads only briefly.
"""

from __future__ import annotations

import importlib.util
import json
import sys
from pathlib import Path

import pytest
from bluesky import RunEngine

from lowdose_bluesky.callbacks import LiveEnhancer
from lowdose_bluesky.plans import lowdose_tomo_plan
from lowdose_bluesky.storage import STREAMING_CACHE_TTL_S, subscribe_writer

BENCH_DIR = Path(__file__).resolve().parents[1] / "benchmarks"
#: Tiny network for 64x64 frames (as the live-callback tests train).
TRAIN = {"patch_size": 16, "max_patches": 1024, "batch_size": 32, "patience": None}
#: Frames of the scan measured by RSS, and of the scan followed by tracemalloc.
SIZE, SCAN, PROJECTIONS = 64, 60, 240
FRAME_KIB = SIZE * SIZE * 4 / 1024  # one float32 frame: 16 KiB
#: Heap growth per frame beyond the stacks allowed: a quarter of a float32 frame.
HEAP_BOUND_KIB = FRAME_KIB / 4


def _load_script():
    """Import the benchmark script as the module ``load_scan``."""
    if str(BENCH_DIR) not in sys.path:
        sys.path.insert(0, str(BENCH_DIR))  # for ``import _results``
    spec = importlib.util.spec_from_file_location("load_scan", BENCH_DIR / "load_scan.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.mark.slow
@pytest.mark.timeout(300)
@pytest.mark.skipif(not Path("/proc/self/statm").exists(), reason="reads RSS from /proc")
def test_no_growth_per_frame_beyond_the_stacks(tmp_path):
    script = _load_script()
    real_results = BENCH_DIR / "RESULTS.md"
    before = real_results.read_text() if real_results.exists() else None

    info = script.main([
        "--size", str(SIZE), "--projections", str(SCAN), "--warmup", "0", "--settle-s", "0",
        "--no-realistic-timing", "--epochs", "1", "--training-budget", "none",
        "--min-training-s", "0", "--train-options", json.dumps(TRAIN),
        "--heap-projections", str(PROJECTIONS), "--trace-from", "0.4", "--trace-points", "8",
        "--work-dir", str(tmp_path / "work"), "--output", str(tmp_path / "RESULTS.md"),
        "--figures-dir", str(tmp_path / "figures")])

    heap = info["growth"]["heap"]
    assert heap["points"] >= 3
    per_frame = heap["rest_slope_b"] / 1024
    assert per_frame < HEAP_BOUND_KIB, (
        f"the Python heap grew {per_frame:.2f} KiB per frame beyond the stacks "
        f"(bound {HEAP_BOUND_KIB:g} KiB); largest growth: {heap['top'][:4]}")
    # the result of the long scan is complete and readable
    stored = info["stored"]
    assert stored["status"] == "complete"
    assert stored["shapes"]["enhanced"] == (SCAN, SIZE, SIZE)
    assert stored["shapes"]["reconstruction"] == (SIZE, SIZE, SIZE)
    assert stored["frames_nonzero"] == SCAN and stored["finite"]
    assert info["raw_frames"] == (SCAN, SIZE, SIZE)
    assert info["growth"]["heap_status"] == "complete"
    assert info["figure"].stat().st_size > 1000
    text = (tmp_path / "RESULTS.md").read_text()
    assert "<!-- BEGIN load_scan -->" in text and "peak RSS" in text
    # the real RESULTS.md is left alone
    assert (real_results.read_text() if real_results.exists() else None) == before


def test_finished_runs_leave_nothing_in_the_frame_source(tiled_client, stored_txm):
    RE = RunEngine({}, call_returns_result=False)
    subscribe_writer(RE, tiled_client, batch_size=10)
    live = LiveEnhancer(tiled_client, process=False, method="supervised",
                        epochs=1, progress=False, reconstruct=False,
                        train_options=TRAIN)
    RE.subscribe(live)
    source = live.worker.source
    for _ in range(2):
        RE(lowdose_tomo_plan(stored_txm.detector, stored_txm.rotation,
                             sample_x=stored_txm.sample_x, shutter=stored_txm.shutter,
                             num_projections=5, num_darks=2, num_flats=2,
                             long_exposure=30.0, short_exposure=1.0))
        live.wait(timeout=300)
        # every frame was read: the run's files are closed and its documents forgotten
        assert source._files == {} and source._datums == {} and source._resources == {}
    live.close()


def test_embedded_server_keeps_streamed_payloads_briefly(tiled_client):
    datastore = tiled_client.embedded_server.catalog.context.streaming_cache._datastore
    assert datastore._data_cache.ttl == STREAMING_CACHE_TTL_S
