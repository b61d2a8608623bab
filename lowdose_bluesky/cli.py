"""The ``lowdose-bluesky`` command."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

__all__ = ["main"]


def _positive_int(minimum: int):
    def parse(text: str) -> int:
        try:
            value = int(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"expected an integer, got {text!r}") from None
        if value < minimum:
            raise argparse.ArgumentTypeError(f"must be >= {minimum}, got {value}")
        return value
    return parse


def _budget(text: str) -> str | float | None:
    if text in ("scan", "none"):
        return None if text == "none" else text
    try:
        value = float(text)
    except ValueError:
        value = -1.0
    if not value > 0:
        raise argparse.ArgumentTypeError(
            f"expected 'scan', 'none' or a positive number of seconds, got {text!r}")
    return value


def _scan(args: argparse.Namespace) -> int:
    from .scan import simulated_scan

    summary = simulated_scan(args.data_dir, size=args.size, projections=args.projections,
                             dose_ratio=args.dose_ratio, seed=args.seed)
    print(f"Run {summary.uid} acquired in {summary.seconds:.1f} s.")
    for stream, shape in summary.shapes.items():
        print(f"  {stream:<10} {shape}")
    print(f"HDF5 frames : {summary.frames_dir}")
    print(f"Tiled data  : {summary.catalog_dir}")
    print("Read it back in Python:")
    print("  from lowdose_bluesky.storage import connect")
    print(f"  client = connect(directory={str(summary.catalog_dir)!r}, "
          f"readable_storage=[{str(summary.frames_dir)!r}])")
    print(f"  client['raw']['{summary.uid}']['primary']['det_image'].read()")
    return 0


def _worker(args: argparse.Namespace) -> int:
    import logging

    from .callbacks.remote import parse_address, run_worker

    parse_address(args.zmq)  # validate before connecting anywhere
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(message)s")
    for noisy in ("httpx", "tiled"):
        logging.getLogger(noisy).setLevel(logging.WARNING)
    figure = None
    if args.figure is not None:
        from .callbacks.live_figure import LiveFigure

        figure = LiveFigure(args.figure)
    run_worker(args.zmq, args.tiled, arch=args.arch, epochs=args.epochs, device=args.device,
               pretrained=args.pretrained, progress=not args.no_progress,
               training_budget=args.training_budget, figure=figure)
    return 0


def build_parser() -> argparse.ArgumentParser:
    """The argument parser (exposed for documentation and tests)."""
    parser = argparse.ArgumentParser(prog="lowdose-bluesky", description=(
        "Low-dose X-ray tomography inside Bluesky."))
    sub = parser.add_subparsers(dest="command", required=True)
    scan = sub.add_parser("scan", help="acquire one simulated low-dose scan into an embedded "
                                       "Tiled server and print where the data went")
    scan.add_argument("--size", type=_positive_int(16), default=128,
                      help="detector width and height in pixels (default 128)")
    scan.add_argument("--projections", type=_positive_int(2), default=181,
                      help="short-exposure projections over 0..180 deg (default 181)")
    scan.add_argument("--dose-ratio", type=float, default=15.0,
                      help="long / short exposure (default 15)")
    scan.add_argument("--seed", type=int, default=0, help="phantom and noise seed")
    scan.add_argument("--data-dir", type=Path, default=Path("lowdose_data"),
                      help="where frames and the Tiled catalog go (default ./lowdose_data)")
    scan.set_defaults(func=_scan)

    worker = sub.add_parser("worker", help="run the live analysis on this machine, fed by a "
                                           "RunEngine through a bluesky 0MQ proxy")
    worker.add_argument("--zmq", required=True, help="HOST:PORT of bluesky-0MQ-proxy's output")
    worker.add_argument("--tiled", required=True,
                        help="Tiled URI (API key in the URI or LOWDOSE_TILED_API_KEY)")
    worker.add_argument("--arch", default="unet", choices=["unet", "yang2018"])
    worker.add_argument("--epochs", type=_positive_int(1), default=30)
    worker.add_argument("--device", default="auto", help="auto, cpu, cuda or cuda:N")
    worker.add_argument("--pretrained", default=None,
                        help="result uid or checkpoint path to fine-tune from")
    worker.add_argument("--training-budget", type=_budget, default="scan",
                        help="stop training when the scan ends ('scan', default), after N "
                             "seconds, or only by epochs/early stopping ('none')")
    worker.add_argument("--figure", type=Path, default=None, metavar="PNG",
                        help="keep a live figure of the analysis in this PNG file")
    worker.add_argument("--no-progress", action="store_true", help="no progress bars")
    worker.set_defaults(func=_worker)
    return parser


def main(argv: list[str] | None = None) -> int:
    """Entry point of ``lowdose-bluesky``."""
    args = build_parser().parse_args(argv)
    try:
        return args.func(args)
    except (ValueError, ConnectionError) as exc:
        print(f"lowdose-bluesky: error: {exc}", file=sys.stderr)
        return 2


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
