"""The ``lowdose-bluesky`` command."""

from __future__ import annotations

import argparse
import functools
import sys
from pathlib import Path

__all__ = ["main"]

#: Data directory shared by ``scan``, ``demo``, ``serve`` and ``show``.
DEFAULT_DATA_DIR = Path("lowdose_data")
#: Environment variable of the Tiled API key (as in :mod:`lowdose_bluesky.storage`,
#: which is not imported here to keep ``--help`` fast).
API_KEY_ENV = "LOWDOSE_TILED_API_KEY"


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


def _number(text: str) -> float:
    """``float(text)``, or NaN (which fails every range check) for a non-number."""
    try:
        return float(text)
    except ValueError:
        return float("nan")


def _budget(text: str) -> str | float | None:
    if text in ("scan", "none"):
        return None if text == "none" else text
    value = _number(text)
    if not value > 0:
        raise argparse.ArgumentTypeError(
            f"expected 'scan', 'none' or a positive number of seconds, got {text!r}")
    return value


def _dose_ratio(text: str) -> float:
    value = _number(text)
    if not value > 1 or value == float("inf"):
        raise argparse.ArgumentTypeError(
            f"expected a number > 1 (long / short exposure), got {text!r}")
    return value


def _dwell_ratio(text: str) -> float:
    value = _number(text)
    if not value > 1 or value == float("inf"):
        raise argparse.ArgumentTypeError(
            f"expected a number > 1 (long / short dwell), got {text!r}")
    return value


def _seconds_or_none(text: str) -> float | None:
    if text == "none":
        return None
    value = _number(text)
    if not 0 < value < float("inf"):
        raise argparse.ArgumentTypeError(
            f"expected a positive number of seconds or 'none', got {text!r}")
    return value


def _positive_seconds(text: str) -> float:
    value = _number(text)
    if not 0 < value < float("inf"):
        raise argparse.ArgumentTypeError(f"expected a positive number of seconds, got {text!r}")
    return value


def _positive_number(text: str) -> float:
    value = _number(text)
    if not 0 < value < float("inf"):
        raise argparse.ArgumentTypeError(f"expected a positive number, got {text!r}")
    return value


def _add_method_options(parser: argparse.ArgumentParser) -> None:
    """--method and --n2i-seconds (the analysis method and its self-supervised budget)."""
    from .recipes.tomography.methods import METHODS

    parser.add_argument("--method", default="auto", choices=METHODS,
                        help="what the analysis learns from: auto (default: the benchmark's "
                        "best; noise2inverse on a blind run), supervised (the paper's "
                        "reference pairs), noise2inverse (blind, the whole rotation) or hybrid")
    parser.add_argument("--n2i-seconds", type=_positive_seconds, default=40.0,
                        help="Noise2Inverse training time after the scan (default 40)")


def _method_options(args: argparse.Namespace) -> dict[str, object]:
    return {"method": args.method, "n2i_options": {"max_seconds": args.n2i_seconds}}


def _port(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected an integer, got {text!r}") from None
    if not 0 <= value <= 65535:
        raise argparse.ArgumentTypeError(f"must be from 0 to 65535, got {value}")
    return value


def _path_problem(path: Path, *, directory: bool) -> str | None:
    """Why ``path`` cannot be written (a directory to use or create; a file to create or
    replace), or None. Nothing is created."""
    import os

    try:
        path = path.absolute()
        if path.exists():
            if directory and not path.is_dir():
                return "it exists and is not a directory"
            if not directory and path.is_dir():
                return "it is a directory"
            if directory and not os.access(path, os.W_OK | os.X_OK):
                return "no write permission in it"
            if directory:
                return None
        parent = path.parent
        while directory and not parent.exists():
            parent = parent.parent
        cannot = "it cannot be created: " if directory else ""
        if not parent.is_dir():
            return cannot + (f"directory {str(parent)!r} does not exist" if not parent.exists()
                             else f"{str(parent)!r} is not a directory")
        if not os.access(parent, os.W_OK | os.X_OK):
            return f"{cannot}no write permission in {str(parent)!r}"
    except (OSError, ValueError) as exc:  # e.g. permission denied on the way, NUL byte
        return f"it cannot be checked ({getattr(exc, 'strerror', None) or exc})"
    return None


def _data_dir(text: str) -> Path:
    """A directory to write in: existing, or creatable (nothing is created here)."""
    problem = _path_problem(Path(text).expanduser(), directory=True) if text else "empty"
    if problem:
        raise argparse.ArgumentTypeError(
            f"expected a directory to write in (existing or to be created), got {text!r}: "
            f"{problem}")
    return Path(text).expanduser()


def _catalog_dir(text: str) -> Path:
    """An existing data directory holding a Tiled catalog (for reading)."""
    path = Path(text).expanduser()
    try:
        problem = ("no such directory" if not path.exists() else
                   "it is not a directory" if not path.is_dir() else
                   None if (path / "tiled" / "catalog.db").is_file() else
                   "it holds no tiled/catalog.db")
    except (OSError, ValueError) as exc:
        problem = f"it cannot be checked ({getattr(exc, 'strerror', None) or exc})"
    if problem:
        raise argparse.ArgumentTypeError(
            f"expected an existing data directory holding a Tiled catalog (DIR/tiled/"
            f"catalog.db, written by 'demo', 'scan' or 'serve'), got {text!r}: {problem}; "
            "pass an existing data directory or --tiled URI")
    return path


def _png(text: str) -> Path:
    """A PNG file to write, in an existing writable directory."""
    path = Path(text).expanduser()
    if path.suffix.lower() != ".png":
        raise argparse.ArgumentTypeError(f"expected a file name ending in .png, got {text!r}")
    problem = _path_problem(path, directory=False)
    if problem:
        raise argparse.ArgumentTypeError(
            f"expected a .png file in an existing writable directory, got {text!r}: {problem}")
    return path


def _pretrained(text: str) -> str:
    """An existing checkpoint file (verified now, never unpickled) or a result uid."""
    path = Path(text).expanduser()
    try:
        exists = bool(text) and path.exists()
    except (OSError, ValueError):
        exists = False
    if exists:
        if path.is_dir():
            raise argparse.ArgumentTypeError(
                f"expected a checkpoint file or a result uid, got {text!r}: it is a directory")
        from .model import Enhancer

        try:
            Enhancer.load(path, device="cpu")
        except ValueError as exc:
            raise argparse.ArgumentTypeError(str(exc)) from None
        except OSError as exc:
            raise argparse.ArgumentTypeError(
                f"cannot read checkpoint file {text!r}: {exc.strerror or exc}") from None
        return str(path)
    from .storage import is_result_uid

    if not is_result_uid(text):
        raise argparse.ArgumentTypeError(
            "expected an existing checkpoint file (.safetensors, written by Enhancer.save) or "
            f"a result uid (8-4-4-4-12 hex digits), got {text!r}: no such file, and not a uid")
    return text


def _scan(args: argparse.Namespace) -> int:
    from .scan import simulated_scan

    summary = simulated_scan(args.data_dir, size=args.size, projections=args.projections,
                             dose_ratio=args.dose_ratio, seed=args.seed, fly=args.fly)
    print(f"Run {summary.uid} acquired in {summary.seconds:.1f} s.")
    for stream, shape in summary.shapes.items():
        print(f"  {stream:<10} {shape}")
    print(f"HDF5 frames : {summary.frames_dir}")
    print(f"Tiled data  : {summary.catalog_dir}")
    print("Read it back in Python:")
    print("  from lowdose_bluesky.storage import connect")
    print(f"  client = connect(directory={str(summary.catalog_dir)!r}, "
          f"readable_storage=[{str(summary.frames_dir)!r}])")
    print(f"  client['raw']['{summary.uid}']['primary']['{summary.image_key}'].read()")
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
               training_budget=args.training_budget, figure=figure, **_method_options(args))
    return 0


def _reprocess(args: argparse.Namespace) -> int:
    import logging

    from .callbacks.reprocess import reprocess
    from .storage import close

    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(message)s")
    for noisy in ("httpx", "tiled", "alembic"):
        logging.getLogger(noisy).setLevel(logging.WARNING)
    client = _connect_where(args)
    try:
        uid = reprocess(client, args.uid, arch=args.arch, epochs=args.epochs,
                        device=args.device, pretrained=args.pretrained,
                        progress=not args.no_progress, training_budget=args.training_budget,
                        backup_directory=args.backup_dir, **_method_options(args))
    except KeyError as exc:
        raise ValueError(str(exc).strip('"')) from None
    finally:
        close(client)
    print(f"stored result {uid} for run {args.uid}")
    return 0


def _demo(args: argparse.Namespace) -> int:
    if args.modality == "xrf":
        return _demo_xrf(args)
    if args.modality == "ptycho":
        return _demo_ptycho(args)
    if args.modality == "sr":
        return _demo_sr(args)
    from .demo import DemoFailed, demo_table, run_demo

    try:
        demo = run_demo(args.data_dir, size=args.size, projections=args.projections,
                        dose_ratio=args.dose_ratio, epochs=args.epochs,
                        training_budget=args.training_budget, seed=args.seed,
                        progress=not args.no_progress, figure=args.figure,
                        log=lambda line: print(line, file=sys.stderr, flush=True),
                        blind=args.blind, fly=args.fly, **_method_options(args))
    except DemoFailed as exc:
        print(f"lowdose-bluesky: analysis failed: {exc}", file=sys.stderr)
        return 1
    print(demo_table(demo))
    print("Look at it again later:")
    print(f"  lowdose-bluesky show {demo.run_uid} --data-dir {str(demo.data_dir)!r}")
    return 0


def _demo_xrf(args: argparse.Namespace) -> int:
    from .demo import DemoFailed
    from .demo_xrf import run_xrf_demo, xrf_demo_table

    try:
        demo = run_xrf_demo(args.data_dir, size=args.size, dwell=args.dwell,
                            dwell_ratio=args.dwell_ratio, method=args.method,
                            epochs=args.epochs, training_budget=args.training_budget,
                            seed=args.seed, blind=args.blind, fly=args.fly,
                            progress=not args.no_progress, figure=args.figure,
                            log=lambda line: print(line, file=sys.stderr, flush=True))
    except DemoFailed as exc:
        print(f"lowdose-bluesky: analysis failed: {exc}", file=sys.stderr)
        return 1
    print(demo.table)
    print()
    print(xrf_demo_table(demo))
    print("Read the maps back in Python:")
    print("  from lowdose_bluesky import results")
    print("  from lowdose_bluesky.storage import connect")
    print(f"  client = connect(directory={str(demo.data_dir / 'tiled')!r}, "
          f"readable_storage=[{str(demo.data_dir / 'frames')!r}])")
    print(f"  results(client, {demo.run_uid!r}).maps   # {demo.method}; .maps_raw: fitted")
    return 0


def _demo_ptycho(args: argparse.Namespace) -> int:
    from .demo import DemoFailed
    from .demo_ptycho import ptycho_demo_table, run_ptycho_demo

    try:
        demo = run_ptycho_demo(args.data_dir, method=args.method, epochs=args.epochs,
                               training_budget=args.training_budget, seed=args.seed,
                               progress=not args.no_progress, figure=args.figure,
                               log=lambda line: print(line, file=sys.stderr, flush=True))
    except DemoFailed as exc:
        print(f"lowdose-bluesky: analysis failed: {exc}", file=sys.stderr)
        return 1
    print(ptycho_demo_table(demo))
    print("Read the images back in Python:")
    print("  from lowdose_bluesky import results")
    print("  from lowdose_bluesky.storage import connect")
    print(f"  client = connect(directory={str(demo.data_dir / 'tiled')!r}, "
          f"readable_storage=[{str(demo.data_dir / 'frames')!r}])")
    print(f"  results(client, {demo.run_uid!r}).phase   # .amplitude, .phase_iterative")
    return 0


def _demo_sr(args: argparse.Namespace) -> int:
    from .demo import DemoFailed
    from .demo_sr import run_sr_demo, sr_demo_table

    try:
        demo = run_sr_demo(args.data_dir, method=args.method, size=args.size,
                           psf_sigma_px=args.psf_sigma, epochs=args.epochs,
                           training_budget=args.training_budget, seed=args.seed,
                           figure=args.figure,
                           log=lambda line: print(line, file=sys.stderr, flush=True))
    except DemoFailed as exc:
        print(f"lowdose-bluesky: analysis failed: {exc}", file=sys.stderr)
        return 1
    print(sr_demo_table(demo))
    print("Read the results back in Python:")
    print("  from lowdose_bluesky import results")
    print("  from lowdose_bluesky.storage import connect")
    print(f"  client = connect(directory={str(demo.data_dir / 'tiled')!r}, "
          f"readable_storage=[{str(demo.data_dir / 'frames')!r}])")
    print(f"  results(client, {demo.run_uid!r}).super_resolved")
    print(f"  results(client, {demo.calibration_run_uid!r}).psf_sigma_px")
    return 0


#: Modalities of ``demo`` and the defaults of the options they share or own; an option
#: of one modality given with the other is refused (see :func:`_check_demo_args`).
DEMO_DEFAULTS: dict[str, dict[str, object]] = {
    "tomo": {"size": 128, "training_budget": 60.0, "method": "auto", "fly": False,
             "projections": 181, "dose_ratio": 15.0, "n2i_seconds": 40.0},
    "xrf": {"size": 64, "training_budget": 20.0, "method": "noise2noise", "fly": True,
            "dwell": 0.01, "dwell_ratio": 20.0},
    "ptycho": {"training_budget": 60.0, "method": "linear"},
    "sr": {"size": 256, "training_budget": 60.0, "method": "joint", "psf_sigma": 3.0},
}


def _demo_methods(modality: str) -> tuple[str, ...]:
    """The analysis methods of a modality (the XRF ones import torch: asked for late)."""
    if modality == "xrf":
        from .recipes.xrf.analysis import METHODS as XRF_METHODS

        return tuple(XRF_METHODS)
    if modality == "ptycho":
        from .demo_ptycho import PTYCHO_METHODS

        return PTYCHO_METHODS
    if modality == "sr":
        from .demo_sr import SR_METHODS

        return SR_METHODS
    from .recipes.tomography.methods import METHODS as TOMO_METHODS

    return tuple(TOMO_METHODS)


def _check_demo_args(parser: argparse.ArgumentParser, args: argparse.Namespace) -> None:
    """Fill in the modality's defaults; refuse another modality's options and methods.

    Errors go through ``parser.error`` (usage, exit status 2), as argparse's own.
    """
    modality = args.modality
    for other, defaults in DEMO_DEFAULTS.items():
        if other == modality:
            continue
        given = [name for name in defaults
                 if name not in DEMO_DEFAULTS[modality] and hasattr(args, name)]
        if given:
            flags = ", ".join("--" + name.replace("_", "-") for name in given)
            parser.error(f"argument {flags}: only with --modality {other}, not with "
                         f"--modality {modality}")
    for name, value in DEMO_DEFAULTS[modality].items():
        if not hasattr(args, name):
            setattr(args, name, value)
    if modality == "sr" and args.blind:
        parser.error("argument --blind: not with --modality sr (nothing is taken at a long "
                     "exposure)")
    if modality == "sr" and (args.size % 2 or args.size < 128):
        parser.error(f"argument --size: with --modality sr the sensor size must be even (the "
                     f"camera bins 2 x 2) and >= 128 (the resolution chart), got {args.size}")
    if modality == "ptycho" and args.blind:
        parser.error("argument --blind: not with --modality ptycho (the sparse field needs "
                     "the dense training field)")
    methods = _demo_methods(modality)
    if args.method not in methods:
        parser.error(f"argument --method: invalid choice for --modality {modality}: "
                     f"{args.method!r} (choose from {', '.join(map(repr, methods))})")


def _data_dir_catalog(data_dir: Path) -> tuple[Path, Path]:
    """``(DIR/tiled, DIR/frames)`` of an existing data directory, else ValueError."""
    root = data_dir.expanduser().resolve()
    catalog, frames = root / "tiled", root / "frames"
    if not (catalog / "catalog.db").is_file():
        raise ValueError(f"--data-dir {str(data_dir)!r} holds no Tiled catalog (expected "
                         f"{catalog / 'catalog.db'}, written by 'lowdose-bluesky demo', 'scan' "
                         "or 'serve'); pass an existing data directory or --tiled URI")
    return catalog, frames


def _show(args: argparse.Namespace) -> int:
    from .report import collect_report, format_table, save_report_figure, summary_lines
    from .storage import close, connect

    if args.tiled is not None:
        client = connect(args.tiled)
        default_figure = Path(f"lowdose-{args.uid[:8]}.png")
    else:
        catalog, frames = _data_dir_catalog(args.data_dir)
        client = connect(directory=catalog,
                         readable_storage=[frames] if frames.is_dir() else [])
        default_figure = catalog.parent / "figures" / f"{args.uid[:8]}.png"
    try:
        report = collect_report(client, args.uid)
        print(format_table(summary_lines(report)))
        path = save_report_figure(report, args.figure or default_figure)
    finally:
        close(client)
    print(f"figure: {path}")
    return 0


def _connect_where(args: argparse.Namespace) -> object:
    """A client of ``--tiled URI`` or of the embedded catalog in ``--data-dir``."""
    from .storage import connect

    if args.tiled is not None:
        return connect(args.tiled)
    catalog, frames = _data_dir_catalog(args.data_dir)
    return connect(directory=catalog, readable_storage=[frames] if frames.is_dir() else [])


def _replay(args: argparse.Namespace) -> int:
    from .storage import close, replay

    if not args.directory.is_dir():
        raise ValueError(f"backup directory {str(args.directory)!r} does not exist or is not "
                         "a directory")
    client = _connect_where(args)
    try:
        reports = replay(args.directory, client)
    finally:
        close(client)
    if not reports:
        print(f"nothing to restore in {args.directory}")
    for r in reports:
        events = ", ".join(f"{k} {v}" for k, v in sorted(r.events.items()))
        extra = " (replaced a partial copy)" if r.replaced_partial else ""
        detail = f": {r.detail}" if r.detail else ""
        print(f"{r.path.name}: {r.kind} {r.uid} {r.outcome}{extra}{detail}"
              + (f" [events: {events}]" if events else ""))
    return 1 if any(r.outcome == "failed" for r in reports) else 0


def _serve(args: argparse.Namespace) -> int:
    from .storage import mask_key, plan_server, serve

    root = args.data_dir.expanduser().resolve()
    if root.exists() and not root.is_dir():
        raise ValueError(f"--data-dir {str(args.data_dir)!r} exists and is not a directory")
    plan = plan_server(root / "tiled", [root / "frames"], host=args.host, port=args.port,
                       api_key=args.api_key)

    def ready(uri: str) -> None:
        print(f"Tiled server for {plan.directory} (frames readable from "
              f"{plan.readable_storage[0]})")
        print(f"URI     : {uri}")
        print(f"API key : {mask_key(plan.api_key)}, {plan.key_source}")
        print(f"Clients : connect({uri!r}) from lowdose_bluesky.storage, with {API_KEY_ENV}")
        print("          set to the key (or the key in the URI: ...?api_key=KEY)")
        print("Stop with Ctrl-C.", flush=True)

    try:
        serve(plan, on_ready=ready)
    except KeyboardInterrupt:
        pass
    except RuntimeError as exc:
        print(f"lowdose-bluesky: error: {exc}", file=sys.stderr)
        return 1
    print("Tiled server stopped.")
    return 0


def _add_catalog_options(parser: argparse.ArgumentParser, data_dir_help: str) -> None:
    """``--data-dir DIR`` (an embedded catalog) or ``--tiled URI``, one of the two."""
    where = parser.add_mutually_exclusive_group()
    where.add_argument("--data-dir", type=_catalog_dir, default=DEFAULT_DATA_DIR,
                       help=data_dir_help)
    where.add_argument("--tiled", default=None, metavar="URI",
                       help=f"Tiled server URI instead (API key in the URI or {API_KEY_ENV})")


_FLY_HELP = ("fly the rotation: lowdose_tomo_flyscan on the ophyd-async simulated TXM (the "
             "stage moves continuously, the detector times its own exposures, frames are "
             "announced by StreamDatum); default: lowdose_tomo_plan steps it on ophyd devices")


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
    scan.add_argument("--data-dir", type=_data_dir, default=DEFAULT_DATA_DIR,
                      help="where frames and the Tiled catalog go (default ./lowdose_data)")
    scan.add_argument("--fly", action="store_true", help=_FLY_HELP)
    scan.set_defaults(func=_scan)

    worker = sub.add_parser("worker", help="run the live analysis on this machine, fed by a "
                                           "RunEngine through a bluesky 0MQ proxy")
    worker.add_argument("--zmq", required=True, help="HOST:PORT of bluesky-0MQ-proxy's output")
    worker.add_argument("--tiled", required=True,
                        help="Tiled URI (API key in the URI or LOWDOSE_TILED_API_KEY)")
    worker.add_argument("--arch", default="unet", choices=["unet", "yang2018"])
    worker.add_argument("--epochs", type=_positive_int(1), default=30)
    worker.add_argument("--device", default="auto", help="auto, cpu, cuda or cuda:N")
    worker.add_argument("--pretrained", type=_pretrained, default=None,
                        help="result uid or checkpoint file (.safetensors) to fine-tune from")
    worker.add_argument("--training-budget", type=_budget, default="scan",
                        help="stop training when the scan ends ('scan', default), after N "
                             "seconds, or only by epochs/early stopping ('none')")
    worker.add_argument("--figure", type=_png, default=None, metavar="PNG",
                        help="keep a live figure of the analysis in this PNG file")
    worker.add_argument("--no-progress", action="store_true", help="no progress bars")
    _add_method_options(worker)
    worker.set_defaults(func=_worker)

    again = sub.add_parser("reprocess", help="run the analysis again on a run stored in "
                                             "Tiled (e.g. after a worker died)", description=(
        "Rebuild the documents of a stored raw run from Tiled and run LiveEnhancer on them, "
        "reading the frames through Tiled; store a new result. Use it when the analysis "
        "process died during a scan, or to analyse a run with other settings."))
    again.add_argument("uid", help="uid of the raw run")
    _add_catalog_options(again, "data directory of the embedded catalog (default ./lowdose_data)")
    again.add_argument("--arch", default="unet", choices=["unet", "yang2018"])
    again.add_argument("--epochs", type=_positive_int(1), default=30)
    again.add_argument("--device", default="auto", help="auto, cpu, cuda or cuda:N")
    again.add_argument("--pretrained", type=_pretrained, default=None,
                       help="result uid or checkpoint file (.safetensors) to fine-tune from")
    again.add_argument("--training-budget", type=_budget, default=None,
                       help="seconds of training, or 'none' (default: epochs and early "
                            "stopping bound it)")
    again.add_argument("--backup-dir", type=Path, default=None, metavar="DIR",
                       help="save the result here if Tiled cannot take it")
    again.add_argument("--no-progress", action="store_true", help="no progress bars")
    _add_method_options(again)
    again.set_defaults(func=_reprocess)

    demo = sub.add_parser("demo", help="the whole job on a simulated TXM (or, with "
                                       "--modality xrf, a simulated XRF microprobe): scan "
                                       "with live analysis, quality against the ground "
                                       "truth, a figure", description=(
        "Scan a simulated sample with lowdose_tomo_plan in a RunEngine while LiveEnhancer "
        "trains on the long/short reference pairs and enhances every short-exposure "
        "projection; reconstruct raw and enhanced, store everything in a persistent embedded "
        "Tiled catalog, print PSNR/SSIM against the phantom and timings, write a figure. "
        "With --blind the scan takes no reference pairs and nothing at the long exposure. "
        "With --modality xrf: map a simulated field of cells with lowdose_xrf_plan on a "
        "scanning fluorescence microprobe (long-dwell reference rows, unless --blind, then "
        "the map at the short dwell, rows flown unless --no-fly) while LiveEnhancer fits "
        "each line's spectra into element maps and enhances them at the end; print SSIM/"
        "PSNR of each element's raw and enhanced map against the true map and write a "
        "figure (Fe, Cu, Zn and a major element: truth / raw / enhanced). "
        "With --modality ptycho: scan a simulated object with lowdose_ptycho_plan (a dense "
        "strip, then the rest at zero overlap) while LiveEnhancer reconstructs the strip with "
        "pty-chi, trains PtychoNN on it and stitches every sparse pattern's prediction; print "
        "phase SSIM/PSNR of both against the true object and write a figure. "
        "With --modality sr: image a resolution chart on a simulated lens-coupled TXM whose "
        "camera blurs (Gaussian PSF) and bins 2 x 2: knife_edge_plan on the chart's slanted "
        "edge (the live engine fits the blur, measures the noise and trains the "
        "super-resolution network), then super_resolution_plan (each radiograph "
        "super-resolved x2 as it arrives); print the fitted sigma against the simulated one, "
        "the smallest line pair resolved before and after, and write a figure. "
        "Ctrl-C aborts the scan (the run stays readable) and exits with status 130."))
    S = argparse.SUPPRESS  # modality-dependent defaults, filled in by _check_demo_args
    demo.add_argument("--modality", choices=tuple(DEMO_DEFAULTS), default="tomo",
                      help="tomo: tomography on a simulated TXM (default); xrf: low-dose "
                           "XRF element maps on a simulated microprobe; ptycho: PtychoNN on "
                           "a sparse ptychography scan; sr: knife-edge calibration and live "
                           "super-resolution of a resolution chart")
    demo.add_argument("--size", type=_positive_int(16), default=S,
                      help="detector (tomo), map (xrf) or sensor (sr) width and height in "
                           "pixels, >= 16 (default 128; 64 with --modality xrf; 256 with "
                           "--modality sr, >= 128)")
    demo.add_argument("--projections", type=_positive_int(3), default=S,
                      help="tomo: short-exposure projections over 0..180 deg, >= 3 "
                           "(default 181)")
    demo.add_argument("--dose-ratio", type=_dose_ratio, default=S,
                      help="tomo: long / short exposure, > 1 (default 15)")
    demo.add_argument("--dwell", type=_positive_seconds, default=S, metavar="SECONDS",
                      help="xrf: seconds per pixel of the map (default 0.01)")
    demo.add_argument("--dwell-ratio", type=_dwell_ratio, default=S,
                      help="xrf: long / short dwell of the reference rows, > 1 (default 20)")
    demo.add_argument("--epochs", type=_positive_int(1), default=30,
                      help="maximum training epochs (default 30)")
    demo.add_argument("--training-budget", type=_seconds_or_none, default=S,
                      metavar="SECONDS",
                      help="stop training after this many seconds at the latest, or 'none' "
                           "(default 60; 20 with --modality xrf)")
    demo.add_argument("--seed", type=int, default=0,
                      help="sample, noise and training seed (default 0)")
    demo.add_argument("--data-dir", type=_data_dir, default=DEFAULT_DATA_DIR,
                      help="where frames and the Tiled catalog go (default ./lowdose_data)")
    demo.add_argument("--figure", type=_png, default=None, metavar="PNG",
                      help="figure file (default DATA_DIR/figures/demo-<run uid>.png, "
                           "demo-xrf-<run uid>.png with --modality xrf)")
    demo.add_argument("--blind", action="store_true",
                      help="blind scan: no long/short reference pairs and no long-exposure "
                           "darks or flats (tomo: reference_angles=(), --dose-ratio then only "
                           "sets the nominal long exposure recorded with the run), no "
                           "long-dwell reference rows (xrf: reference_rows=()); the analysis "
                           "learns from the short exposure alone")
    demo.add_argument("--fly", action=argparse.BooleanOptionalAction, default=S,
                      help="tomo: " + _FLY_HELP + "; xrf: fly each row of the map "
                           "(default) or, with --no-fly, step pixel by pixel")
    demo.add_argument("--no-progress", action="store_true", help="no progress bars")
    demo.add_argument("--method", default=S, metavar="METHOD",
                      help="ptycho: ptychonn (default) or phase-only; sr: joint (default: "
                           "the network learns the measured noise too) or sr-only; "
                           "tomo: what the analysis learns from: auto (default: the "
                           "benchmark's best; noise2inverse on a blind run), supervised (the "
                           "paper's reference pairs), noise2inverse (blind, the whole "
                           "rotation) or hybrid; xrf: an enhancement method of the XRF recipe "
                           "(lowdose_bluesky.recipes.xrf.analysis.METHODS, e.g. none or "
                           "noise2noise, the default)")
    demo.add_argument("--psf-sigma", type=_positive_number, default=S, metavar="PX",
                      help="sr: the simulated camera's PSF sigma in sensor pixels (default 3)")
    demo.add_argument("--n2i-seconds", type=_positive_seconds, default=S,
                      help="tomo: Noise2Inverse training time after the scan (default 40)")
    demo.set_defaults(func=_demo, check=functools.partial(_check_demo_args, demo))

    serve = sub.add_parser("serve", help="serve the Tiled catalog of a data directory to "
                                         "profiles, workers and 'show' until Ctrl-C",
                           description=(
        "Serve DATA_DIR/tiled (the catalog of 'demo' and 'scan') over HTTP, with the detector "
        "frames in DATA_DIR/frames readable, until Ctrl-C. Clients: "
        "lowdose_bluesky.storage.connect(URI) with the key in LOWDOSE_TILED_API_KEY."))
    serve.add_argument("--data-dir", type=_data_dir, default=DEFAULT_DATA_DIR,
                       help="catalog in DATA_DIR/tiled, frames read from DATA_DIR/frames "
                            "(default ./lowdose_data; created if missing)")
    serve.add_argument("--host", default="127.0.0.1",
                       help="address to listen on (default 127.0.0.1; any other than "
                            "loopback needs an API key)")
    serve.add_argument("--port", type=_port, default=8000,
                       help="port, 0 for any free one (default 8000)")
    serve.add_argument("--api-key", default=None,
                       help=f"single-user API key (better: set {API_KEY_ENV}, which is used "
                            "when this is not given; loopback default: a key generated and "
                            "kept in DATA_DIR/tiled/api_key)")
    serve.set_defaults(func=_serve)

    show = sub.add_parser("show", help="print a stored run's metadata and result summary "
                                       "and write its figure", description=(
        "Print a raw run's metadata (plan arguments, exposures, dose ratio, stream shapes) and "
        "its newest analysis result (status, model, epochs, timings, rotation centre; PSNR/SSIM "
        "against the phantom for a simulated run), and write its figure."))
    show.add_argument("uid", help="uid of the raw run")
    _add_catalog_options(show, "data directory of 'demo' or 'scan' (default ./lowdose_data)")
    show.add_argument("--figure", type=_png, default=None, metavar="PNG",
                      help="figure file (default DATA_DIR/figures/<uid>.png, or "
                           "./lowdose-<uid>.png with --tiled)")
    show.set_defaults(func=_show)

    replay = sub.add_parser("replay", help="restore runs that Tiled failed to store from "
                                           "their JSON-lines backups", description=(
        "Restore into Tiled every run backed up in DIR (the backup directory of the "
        "RunEngine's writer, e.g. DATA_DIR/tiled-backup of the profile): a partial copy is "
        "replaced, a run already stored is skipped, each restored run is checked event by "
        "event and its file moved to DIR/replayed."))
    replay.add_argument("directory", type=Path, metavar="DIR", help="backup directory")
    _add_catalog_options(replay, "data directory of the embedded catalog (default ./lowdose_data)")
    replay.set_defaults(func=_replay)
    return parser


def main(argv: list[str] | None = None) -> int:
    """Entry point of ``lowdose-bluesky``."""
    args = build_parser().parse_args(argv)
    check = getattr(args, "check", None)
    if check is not None:
        check(args)  # exits with status 2 and the usage, as argparse does
    try:
        return args.func(args)
    except (ValueError, ConnectionError) as exc:
        print(f"lowdose-bluesky: error: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt as exc:
        detail = f": {exc}" if str(exc) else ""
        print(f"lowdose-bluesky: interrupted{detail}", file=sys.stderr)
        return 130


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
