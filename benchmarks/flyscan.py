"""Fly-scan throughput and quality: ``lowdose_tomo_flyscan`` on the ophyd-async simulated TXM.

Throughput: 361 frames of 512x512 flown with no exposure wait (virtual clock), the
TiledWriter subscribed to an embedded Tiled server, frames announced by StreamDatum in
batches. Rate: primary frames over the time from the ``primary`` descriptor (declared
just before kickoff) to the last primary StreamDatum. Rows separate what the simulated
camera's physics costs (analytic projections, motion blur, Poisson noise) from what the
acquisition pipeline costs (clock, HDF5 write, StreamDatum, TiledWriter), the latter
measured with frames rendered once before the scan.

Quality: the same phantom and dose acquired three ways (ophyd step scan, ophyd-async step
scan, ophyd-async fly scan) and analysed live; SSIM of the raw and enhanced
reconstructions against the phantom.

Usage: ``python benchmarks/flyscan.py [--size 512] [--projections 361] [--quality-size 64]``
"""

from __future__ import annotations

import argparse
import tempfile
import time
import warnings
from pathlib import Path

from _results import machine_info, write_section
from bluesky import RunEngine
from skimage.metrics import structural_similarity

from lowdose_bluesky import results
from lowdose_bluesky.devices.sim import make_sim_txm
from lowdose_bluesky.plans import TomoScanWarning, lowdose_tomo_flyscan, lowdose_tomo_plan
from lowdose_bluesky.storage import DEFAULT_BATCH_SIZE, RAW, close, connect, subscribe_writer

warnings.simplefilter("ignore", TomoScanWarning)  # 512 px, 361 angles: the smear warns


class FlyClock:
    """A callback timing the flown ``primary`` stream and counting its StreamDatum batches."""

    def __init__(self, key: str) -> None:
        self.key = key
        self.t0: float | None = None
        self.t_last: float | None = None
        self.frames = 0
        self.batches = 0
        self._primary: set[str] = set()
        self._resources: dict[str, str] = {}

    def __call__(self, name: str, doc: dict) -> None:
        if name == "descriptor" and doc["name"] == "primary":
            self._primary.add(doc["uid"])
            self.t0 = time.perf_counter()
        elif name == "stream_resource":
            self._resources[doc["uid"]] = doc["data_key"]
        elif (name == "stream_datum" and doc["descriptor"] in self._primary
              and self._resources.get(doc["stream_resource"]) == self.key):
            self.frames += doc["seq_nums"]["stop"] - doc["seq_nums"]["start"]
            self.batches += 1
            self.t_last = time.perf_counter()

    @property
    def rate(self) -> float:
        return self.frames / (self.t_last - self.t0)


def fly(RE: RunEngine, txm, n: int) -> tuple[FlyClock, str]:
    clock = FlyClock(txm.detector.name)
    token = RE.subscribe(clock)
    (uid,) = RE(lowdose_tomo_flyscan(txm.detector, txm.rotation, sample_x=txm.sample_x,
                                     shutter=txm.shutter, num_projections=n, num_darks=5,
                                     num_flats=5, short_exposure=2.0, long_exposure=30.0))
    RE.unsubscribe(token)
    assert clock.frames == n, (clock.frames, n)
    return clock, uid


def synthesis_rate(txm, n: int) -> float:
    """Frames/s of the camera's physics alone: blurred projections plus noise."""
    acquisition = txm.detector._acquisition
    t0 = time.perf_counter()
    for k in range(n):
        angle = 180.0 * k / max(n - 1, 1)
        angles = [angle + 0.5 * (j - 1) / acquisition.blur_samples
                  for j in range(acquisition.blur_samples)]
        acquisition.draw_frame(angles, 2.0, beam_open=True, offset=0.0)
    return n / (time.perf_counter() - t0)


def throughput(size: int, n: int, work: Path) -> list[tuple[str, float, int]]:
    rows: list[tuple[str, float, int]] = []
    client = connect(directory=work / "tiled", readable_storage=[work])
    for blur in (3, 1):
        RE = RunEngine({}, call_returns_result=False)
        txm = make_sim_txm(detector_shape=(size, size), seed=0, flavour="ophyd-async",
                           data_dir=work / f"frames-blur{blur}")
        txm.detector._acquisition.blur_samples = blur
        synth = synthesis_rate(txm, 24)
        rows.append((f"{size}x{size}: camera physics alone (blur_samples={blur}), no RunEngine",
                     synth, 0))
        clock, _ = fly(RE, txm, n)
        rows.append((f"{size}x{size}: fly scan, HDF5, no Tiled (blur_samples={blur})",
                     clock.rate, clock.batches))
        subscribe_writer(RE, client, batch_size=DEFAULT_BATCH_SIZE)
        clock, uid = fly(RE, txm, n)
        back = client[RAW][uid]["primary"][txm.detector.name]
        assert back.shape[0] == n and back.shape[-2:] == (size, size), back.shape
        rows.append((f"{size}x{size}: fly scan, HDF5 + TiledWriter (blur_samples={blur})",
                     clock.rate, clock.batches))
    # the pipeline alone: frames rendered once, before the scan
    RE = RunEngine({}, call_returns_result=False)
    subscribe_writer(RE, client, batch_size=DEFAULT_BATCH_SIZE)
    txm = make_sim_txm(detector_shape=(size, size), seed=0, flavour="ophyd-async",
                       data_dir=work / "frames-prerendered")
    acquisition = txm.detector._acquisition
    frame = acquisition.draw_frame([0.0], 2.0, beam_open=True, offset=0.0)
    acquisition.draw_frame = lambda *args, **kwargs: frame
    clock, uid = fly(RE, txm, n)
    assert client[RAW][uid]["primary"][txm.detector.name].shape[0] == n
    rows.append((f"{size}x{size}: fly scan, HDF5 + TiledWriter, frames rendered before the "
                 "scan (the pipeline alone)", clock.rate, clock.batches))
    close(client)
    return rows


def quality(size: int, n: int, work: Path) -> list[tuple[str, float, float, str]]:
    from lowdose_bluesky.callbacks import LiveEnhancer

    client = connect(directory=work / "tiled-quality", readable_storage=[work])
    rows = []
    cases = (("ophyd", lowdose_tomo_plan), ("ophyd-async", lowdose_tomo_plan),
             ("ophyd-async", lowdose_tomo_flyscan))
    for flavour, plan in cases:
        RE = RunEngine({}, call_returns_result=False)
        subscribe_writer(RE, client)
        txm = make_sim_txm(detector_shape=(size, size), seed=1, flux=300.0, flavour=flavour,
                           data_dir=work / f"q-{flavour}-{plan.__name__}")
        live = LiveEnhancer(client, process=False, method="supervised", epochs=15,
                            training_budget=None, progress=False, seed=0)
        RE.subscribe(live)
        (uid,) = RE(plan(txm.detector, txm.rotation, sample_x=txm.sample_x, shutter=txm.shutter,
                         num_projections=n, short_exposure=0.1, long_exposure=1.5))
        live.wait()
        live.close()
        res = results(client, uid)
        truth = txm.phantom * txm.optics.mu
        rng = float(truth.max() - truth.min())
        raw = structural_similarity(res.reconstruction_raw, truth, data_range=rng)
        enhanced = structural_similarity(res.reconstruction, truth, data_range=rng)
        rows.append((f"{flavour}, {plan.__name__}", raw, enhanced, res.status))
    close(client)
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--size", type=int, default=512)
    parser.add_argument("--projections", type=int, default=361)
    parser.add_argument("--quality-size", type=int, default=64)
    parser.add_argument("--quality-projections", type=int, default=91)
    args = parser.parse_args()
    work = Path(tempfile.mkdtemp(prefix="lowdose_fly_"))
    rows = throughput(args.size, args.projections, work)
    qrows = quality(args.quality_size, args.quality_projections, work)
    lines = [
        "## Fly scan (`benchmarks/flyscan.py`)",
        "",
        f"`python benchmarks/flyscan.py --size {args.size} --projections {args.projections} "
        f"--quality-size {args.quality_size} --quality-projections "
        f"{args.quality_projections}`: `lowdose_tomo_flyscan` on the ophyd-async simulated "
        f"TXM, {args.projections} flown frames of {args.size}x{args.size} uint16, no exposure "
        "wait (virtual clock); rate = primary frames / (primary descriptor to last primary "
        f"StreamDatum); StreamDatum flushed every 0.5 s; TiledWriter batch_size="
        f"{DEFAULT_BATCH_SIZE}; read-back from Tiled checked for shape.",
        "",
        "| configuration | frames/s | StreamDatum batches |",
        "| --- | ---: | ---: |",
    ]
    lines += [f"| {label} | {rate:.0f} | {batches or '-'} |" for label, rate, batches in rows]
    lines += [
        "",
        f"Quality: {args.quality_size}x{args.quality_size}, {args.quality_projections} "
        "projections, short 0.1 s / long 1.5 s at flux 300 (30 counts per pixel at the short "
        "exposure), same phantom (seed 1), `LiveEnhancer(method='supervised', epochs=15)` "
        "during each scan; SSIM of the reconstructions against the phantom.",
        "",
        "| acquisition | SSIM raw recon | SSIM enhanced recon | result |",
        "| --- | ---: | ---: | --- |",
    ]
    lines += [f"| {label} | {raw:.4f} | {enh:.4f} | {status} |"
              for label, raw, enh, status in qrows]
    lines += ["", "Goals: >= 100 frames/s for the 512x512 fly scan with the TiledWriter; "
              "quality equal to the ophyd step scan within 0.01 SSIM. " + machine_info()]
    write_section("flyscan", "\n".join(lines))
    print("\n".join(lines))


if __name__ == "__main__":
    main()
