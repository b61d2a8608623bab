"""The ``lowdose-bluesky demo`` command: table, figure, Tiled contents, Ctrl-C, bad options."""

from __future__ import annotations

import contextlib
import io
import os
import re
import signal
import struct
import subprocess
import sys
import threading
import time
from pathlib import Path

import numpy as np
import pytest

from lowdose_bluesky.cli import main
from lowdose_bluesky.storage import RAW, close, connect, results

PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"
TINY = ["--size", "32", "--projections", "19", "--epochs", "2", "--n2i-seconds", "2",
        "--no-progress"]


def png_size(path: Path) -> tuple[int, int]:
    """Width and height of a PNG file (checks the signature and the IHDR chunk)."""
    data = path.read_bytes()
    assert data[:8] == PNG_SIGNATURE, f"{path} is not a PNG file"
    assert data[12:16] == b"IHDR"
    return struct.unpack(">II", data[16:24])


def run_cli(argv: list[str]) -> tuple[int, str, str]:
    out, err = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        rc = main(argv)
    return rc, out.getvalue(), err.getvalue()


def table_value(text: str, label: str) -> str:
    match = re.search(rf"^{re.escape(label)}\s{{2,}}(.+)$", text, re.MULTILINE)
    assert match, f"no row {label!r} in:\n{text}"
    return match.group(1).strip()


def quality(text: str, label: str) -> tuple[float, float, float]:
    value = table_value(text, label)
    match = re.fullmatch(r"PSNR\s+([-\d.]+) dB,?\s+SSIM ([-\d.]+)\s+fine detail ([-\d.]+)",
                         value)
    assert match, value
    return float(match.group(1)), float(match.group(2)), float(match.group(3))


@pytest.fixture(scope="module")
def demo_run(tmp_path_factory: pytest.TempPathFactory) -> tuple[str, str, Path]:
    data = tmp_path_factory.mktemp("demo") / "data"
    rc, out, err = run_cli(["demo", *TINY, "--data-dir", str(data)])
    assert rc == 0, err
    return out, err, data


@pytest.mark.slow
def test_demo_prints_the_table_and_writes_a_png(demo_run):
    out, err, data = demo_run
    for label in ("raw reconstruction vs phantom", "enhanced reconstruction vs phantom"):
        psnr, ssim, fine = quality(out, label)
        assert 5 < psnr < 60 and 0 < ssim <= 1 and -1 <= fine <= 1
    assert table_value(out, "dose ratio (long / short)").startswith("15 (0.75 s / 0.05 s")
    assert table_value(out, "scan").endswith("(19 projections of 32x32)")
    assert re.fullmatch(r"[\d.]+ s \(\d+ epochs, stopped: \w+\)", table_value(out, "training"))
    for label in ("enhancement", "reconstruction", "result stored after last frame", "total"):
        assert re.fullmatch(r"[\d.]+ s", table_value(out, label)), label
    run_uid, result_uid = table_value(out, "run uid"), table_value(out, "result uid")
    assert re.fullmatch(r"[0-9a-f-]{36}", run_uid) and re.fullmatch(r"[0-9a-f-]{36}", result_uid)
    figure = Path(table_value(out, "figure"))
    assert figure == data.resolve() / "figures" / f"demo-{run_uid[:8]}.png"
    assert png_size(figure) == (1360, 680)
    assert figure.stat().st_size > 20_000
    assert f"lowdose-bluesky show {run_uid}" in out
    assert f"run {run_uid}: scanning 19 projections of 32x32" in err
    assert "waiting for the analysis" in err


@pytest.mark.slow
def test_demo_run_and_result_are_in_the_persistent_catalog(demo_run):
    out, _, data = demo_run
    run_uid, result_uid = table_value(out, "run uid"), table_value(out, "result uid")
    client = connect(directory=data / "tiled", readable_storage=[data / "frames"])
    try:
        run = client[RAW][run_uid]
        assert run.metadata["stop"]["exit_status"] == "success"
        assert run["primary"]["det_image"].read().shape == (19, 32, 32)
        res = results(client, run_uid)
        assert res.uid == result_uid and res.status == "complete"
        assert res.reconstruction.shape == (32, 32, 32)
        assert len(res.metadata["model"]["history"]) == 2
    finally:
        close(client)


@pytest.mark.slow
def test_show_prints_the_summary_of_the_demo_run_and_writes_its_figure(demo_run, tmp_path):
    out, _, data = demo_run
    run_uid, result_uid = table_value(out, "run uid"), table_value(out, "result uid")
    figure = tmp_path / "shown.png"
    rc, shown, err = run_cli(["show", run_uid, "--data-dir", str(data), "--figure", str(figure)])
    assert rc == 0, err
    assert table_value(shown, "raw run") == run_uid
    assert table_value(shown, "result") == result_uid
    assert table_value(shown, "status") == "complete"
    assert table_value(shown, "error") == "-"
    assert table_value(shown, "model").startswith("unet on cpu")
    assert table_value(shown, "epochs").startswith("2 run of 2")
    assert table_value(shown, "dose ratio") == "15"
    assert table_value(shown, "stream primary") == "(19, 32, 32)"
    assert table_value(shown, "stream reference") == "(4, 32, 32)"
    assert "num_projections=19" in table_value(shown, "plan args")
    assert re.fullmatch(r"[\d.]+ px", table_value(shown, "rotation centre"))
    # the phantom rebuilt from the start document gives the demo's numbers
    for label in ("raw reconstruction vs phantom", "enhanced reconstruction vs phantom"):
        assert quality(shown, label) == pytest.approx(quality(out, label), abs=0.006)
    assert f"figure: {figure}" in shown
    assert png_size(figure) == (1360, 680) and figure.stat().st_size > 20_000


@pytest.mark.slow
def test_show_default_figure_goes_to_the_data_dir(demo_run):
    out, _, data = demo_run
    run_uid = table_value(out, "run uid")
    rc, shown, err = run_cli(["show", run_uid, "--data-dir", str(data)])
    assert rc == 0, err
    expected = data.resolve() / "figures" / f"{run_uid[:8]}.png"
    assert f"figure: {expected}" in shown
    assert png_size(expected) == (1360, 680)


@pytest.mark.slow
def test_show_rejects_an_unknown_uid(demo_run):
    _, _, data = demo_run
    rc, _, err = run_cli(["show", "no-such-run", "--data-dir", str(data)])
    assert rc == 2
    assert "no raw run with uid 'no-such-run'" in err


# ---------------------------------------------------------------------------- Ctrl-C
def _default_sigint() -> None:
    """In the child: Ctrl-C as in a terminal, whatever this process's SIGINT disposition
    (a child inherits an ignored SIGINT, and Python then never raises KeyboardInterrupt)."""
    signal.signal(signal.SIGINT, signal.SIG_DFL)


def _start_demo(argv: list[str], data: Path) -> subprocess.Popen:
    env = {**os.environ, "PYTHONUNBUFFERED": "1"}
    return subprocess.Popen(
        [sys.executable, "-m", "lowdose_bluesky.cli", "demo", "--no-progress", "--n2i-seconds",
         "2", "--data-dir", str(data), *argv], stdout=subprocess.PIPE, stderr=subprocess.PIPE,
        text=True, env=env, preexec_fn=_default_sigint)


def _interrupt_after(proc: subprocess.Popen, marker: str, delay: float,
                     timeout: float = 240.0) -> tuple[str, str]:
    """Send SIGINT ``delay`` s after ``marker`` appears on stderr; return (stdout, stderr)."""
    lines: list[str] = []
    seen = threading.Event()

    def pump() -> None:
        for line in proc.stderr:
            lines.append(line)
            if marker in line:
                seen.set()

    reader = threading.Thread(target=pump, daemon=True)
    reader.start()
    try:
        assert seen.wait(timeout), f"{marker!r} never printed; stderr:\n{''.join(lines)}"
        time.sleep(delay)
        proc.send_signal(signal.SIGINT)
        out = proc.stdout.read()
        proc.wait(timeout=timeout)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    reader.join(10)
    return out, "".join(lines)


@pytest.mark.slow
def test_ctrl_c_during_the_scan_aborts_the_run_and_keeps_it(tmp_path):
    data = tmp_path / "data"
    proc = _start_demo(["--size", "32", "--projections", "600", "--epochs", "1"], data)
    out, err = _interrupt_after(proc, "scanning 600 projections", delay=4.0)
    assert proc.returncode == 130, err
    match = re.search(r"lowdose-bluesky: interrupted: scan aborted after (\d+) of 600 "
                      r"projections; run ([0-9a-f-]{36}) \(exit status 'abort'\)", err)
    assert match, err
    taken, run_uid = int(match.group(1)), match.group(2)
    assert taken < 600
    assert "Ctrl-C: stopping the scan at the next frame" in err
    assert "Traceback" not in err and "quantity" not in out
    client = connect(directory=data / "tiled", readable_storage=[data / "frames"])
    try:
        run = client[RAW][run_uid]
        assert run.metadata["stop"]["exit_status"] == "abort"
        if taken:
            assert run["reference"]["det_image"].read().shape == (4, 32, 32)
            assert run["primary"]["det_image"].read().shape == (taken, 32, 32)
        else:
            assert "primary" not in run
        if "with its incomplete result" in err:
            assert results(client, run_uid).status == "incomplete"
    finally:
        close(client)


@pytest.mark.slow
def test_ctrl_c_during_the_analysis_stops_training_and_keeps_the_run(tmp_path):
    data = tmp_path / "data"
    # larger frames: slower epochs, so early stopping cannot end training before the
    # interrupt even when a loaded machine stretches the scan
    proc = _start_demo(["--size", "128", "--projections", "5", "--epochs", "10000",
                        "--training-budget", "none", "--method", "supervised"], data)
    out, err = _interrupt_after(proc, "waiting for the analysis", delay=0.5)
    assert proc.returncode == 130, err
    match = re.search(r"lowdose-bluesky: interrupted: analysis interrupted; the complete run "
                      r"([0-9a-f-]{36})( and result ([0-9a-f-]{36}) \(training stopped early\))?"
                      r" is stored in ", err)
    assert match, err
    assert "Traceback" not in err and "quantity" not in out
    client = connect(directory=data / "tiled", readable_storage=[data / "frames"])
    try:
        run = client[RAW][match.group(1)]
        assert run.metadata["stop"]["exit_status"] == "success"
        assert run["primary"]["det_image"].read().shape == (5, 128, 128)
        assert match.group(3), "the analysis did not store its result within the wait"
        res = results(client, match.group(1))
        assert res.uid == match.group(3)
        assert res.metadata["model"]["config"]["stopped"] == "requested"
    finally:
        close(client)


# ------------------------------------------------------------------------ bad options
@pytest.mark.parametrize(("argv", "message"), [
    (["demo", "--size", "8"], "argument --size: must be >= 16, got 8"),
    (["demo", "--size", "big"], "argument --size: expected an integer, got 'big'"),
    (["demo", "--projections", "2"], "argument --projections: must be >= 3, got 2"),
    (["demo", "--epochs", "0"], "argument --epochs: must be >= 1, got 0"),
    (["demo", "--dose-ratio", "1"],
     "argument --dose-ratio: expected a number > 1 (long / short exposure), got '1'"),
    (["demo", "--dose-ratio", "nan"],
     "argument --dose-ratio: expected a number > 1 (long / short exposure), got 'nan'"),
    (["demo", "--training-budget", "-5"],
     "argument --training-budget: expected a positive number of seconds or 'none', got '-5'"),
])
def test_demo_rejects_bad_options(argv, message, capsys):
    with pytest.raises(SystemExit) as info:
        main(argv)
    assert info.value.code == 2
    assert message in capsys.readouterr().err


def test_demo_rejects_a_file_as_data_dir(tmp_path, capsys):
    target = tmp_path / "file"
    target.write_text("x")
    with pytest.raises(SystemExit) as info:
        main(["demo", "--data-dir", str(target)])
    assert info.value.code == 2
    assert (f"argument --data-dir: expected a directory to write in (existing or to be "
            f"created), got {str(target)!r}: it exists and is not a directory") in (
        capsys.readouterr().err)


@pytest.mark.parametrize(("options", "message"), [
    ({"size": 15}, "size must be an integer >= 16 pixels"),
    ({"projections": 2}, "projections must be an integer >= 3, got 2"),
    ({"dose_ratio": 1.0}, "dose_ratio must be > 1 (long / short exposure), got 1.0"),
    ({"epochs": 0}, "epochs must be a positive integer, got 0"),
    ({"training_budget": 0}, "training_budget must be a positive number of seconds or None"),
    ({"fly": 1}, "fly must be True or False, got 1"),
])
def test_run_demo_checks_its_arguments_before_doing_anything(options, message, tmp_path):
    from lowdose_bluesky.demo import run_demo

    with pytest.raises(ValueError, match=re.escape(message)):
        run_demo(tmp_path / "data", **options)
    assert not (tmp_path / "data").exists()


@pytest.mark.slow
def test_demo_fly_flies_the_rotation_and_analyses_it(tmp_path):
    data = tmp_path / "data"
    rc, out, err = run_cli(["demo", "--size", "32", "--projections", "181", "--epochs", "2",
                            "--n2i-seconds", "2", "--no-progress", "--fly",
                            "--data-dir", str(data)])
    assert rc == 0, err
    assert "scanning 181 projections" in err
    uid = re.search(r"run ([0-9a-f-]{36}): scanning", err).group(1)
    client = connect(directory=data / "tiled", readable_storage=[data / "frames"])
    try:
        assert client[RAW][uid].metadata["start"]["plan_name"] == "lowdose_tomo_flyscan"
        res = results(client, uid)
        assert res.status == "complete" and res.enhanced.shape == (181, 32, 32)
    finally:
        close(client)
    for label in ("raw reconstruction vs phantom", "enhanced reconstruction vs phantom"):
        psnr, ssim, _ = quality(out, label)
        assert 5 < psnr < 60 and 0 < ssim <= 1
    assert table_value(out, "scan").endswith("(181 projections of 32x32)")


def test_new_modules_keep_torch_out_until_the_demo_runs():
    code = ("import sys, lowdose_bluesky.cli, lowdose_bluesky.demo, lowdose_bluesky.report, "
            "lowdose_bluesky.storage.server, lowdose_bluesky.demo_xrf; "
            "lowdose_bluesky.cli.build_parser(); print('torch' in sys.modules)")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         timeout=120)
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == "False"


def test_demo_parser_takes_blind():
    from lowdose_bluesky.cli import build_parser

    parser = build_parser()
    assert parser.parse_args(["demo", "--blind", *TINY]).blind is True
    assert parser.parse_args(["demo", *TINY]).blind is False


def test_demo_passes_blind_to_run_demo(monkeypatch, tmp_path):
    import lowdose_bluesky.demo as demo_module

    seen = {}

    def fake_run_demo(data_dir, **options):
        seen.update(options)
        raise demo_module.DemoFailed("stopped by the test")

    monkeypatch.setattr(demo_module, "run_demo", fake_run_demo)
    for argv, blind in ((["--blind"], True), ([], False)):
        rc, _, err = run_cli(["demo", *TINY, *argv, "--data-dir", str(tmp_path / "data")])
        assert rc == 1 and "stopped by the test" in err
        assert seen["blind"] is blind


def test_run_demo_checks_blind(tmp_path):
    from lowdose_bluesky.demo import run_demo

    with pytest.raises(ValueError, match=re.escape("blind must be True or False, got 'yes'")):
        run_demo(tmp_path / "data", blind="yes")
    assert not (tmp_path / "data").exists()


@pytest.mark.parametrize(("blind", "start", "row"), [
    (True, {"reference_angles": []},
     "blind (short exposure only: no reference pairs, no long darks or flats)"),
    (False, {"reference_angles": [30.0, 120.0]}, "long/short reference pairs at 30, 120 deg"),
])
def test_demo_table_says_whether_the_scan_was_blind(blind, start, row, tmp_path):
    from lowdose_bluesky.demo import DemoResult, demo_table
    from lowdose_bluesky.report import RunReport

    report = RunReport(run_uid="r" * 36, start=start, stop={}, shapes={})
    demo = DemoResult(run_uid="r" * 36, result_uid="u" * 36, data_dir=tmp_path, figure=None,
                      size=32, projections=19, dose_ratio=15.0, short_exposure=0.05,
                      long_exposure=0.75, scan_s=1.0, latency_s=1.0, total_s=2.0,
                      report=report, blind=blind)
    text = demo_table(demo)
    assert table_value(text, "acquisition") == row
    assert table_value(text, "dose ratio (long / short)").startswith("15 (0.75 s / 0.05 s")


@pytest.mark.slow
def test_blind_demo_runs_self_supervised(tmp_path):
    data = tmp_path / "data"
    rc, out, err = run_cli(["demo", *TINY, "--blind", "--data-dir", str(data)])
    assert rc == 0, err
    assert table_value(out, "method").startswith("noise2inverse")
    assert table_value(out, "acquisition").startswith("blind")
    client = connect(directory=data / "tiled", readable_storage=[data / "frames"])
    try:
        res = results(client, table_value(out, "run uid"))
        assert res.metadata["blind"] is True and res.metadata["method"] == "noise2inverse"
        assert "enhanced" not in res.node and "reference" not in client[RAW][res.metadata[
            "parent_uid"]]
        assert res.reconstruction.shape == (32, 32, 32)
    finally:
        close(client)


# ------------------------------------------------------------------------ --modality xrf
XRF_TINY = ["--modality", "xrf", "--size", "16", "--epochs", "1", "--training-budget", "1",
            "--method", "noise2noise", "--no-progress"]


def quality_rows(text: str) -> dict[str, tuple[float, float, float, float]]:
    """The XRF quality table: element -> (SSIM raw, SSIM enhanced, PSNR raw, PSNR enh.)."""
    lines = text.splitlines()
    start = next(i for i, line in enumerate(lines) if line.split()[:3] == ["element", "SSIM",
                                                                           "raw"])
    assert set(lines[start + 1]) <= {"-", " "}
    rows = {}
    for line in lines[start + 2:]:
        if not line.strip():
            break
        element, *numbers = line.split()
        rows[element] = tuple(float(n) for n in numbers)
    return rows


@pytest.mark.slow
def test_xrf_demo_maps_enhances_scores_and_draws_a_png(tmp_path):
    data = tmp_path / "data"
    rc, out, err = run_cli(["demo", *XRF_TINY, "--data-dir", str(data)])
    assert rc == 0, err
    run_uid, result_uid = table_value(out, "run uid"), table_value(out, "result uid")
    assert f"run {run_uid}: mapping 16x16 pixels at 0.01 s per pixel" in err
    assert "waiting for the analysis (noise2noise" in err
    figure = Path(table_value(out, "figure"))
    assert figure == data.resolve() / "figures" / f"demo-xrf-{run_uid[:8]}.png"
    width, height = png_size(figure)
    assert width > 600 and height > 900 and figure.stat().st_size > 20_000
    assert table_value(out, "dwell (long / short)") == "20 (0.2 s / 0.01 s per pixel)"
    assert table_value(out, "acquisition").startswith("reference rows 4, 12 at the long dwell")
    assert table_value(out, "method") == "noise2noise"
    rows = quality_rows(out)
    for element, (ssim_raw, ssim_enh, psnr_raw, psnr_enh) in rows.items():
        assert -1 <= ssim_raw <= 1 and -1 <= ssim_enh <= 1, element
        assert 0 < psnr_raw < 80 and 0 < psnr_enh < 80, element
    client = connect(directory=data / "tiled", readable_storage=[data / "frames"])
    try:
        run = client[RAW][run_uid]
        assert run.metadata["start"]["plan_name"] == "lowdose_xrf_plan"
        assert run.metadata["start"]["xrf"]["reference_rows"] == [4, 12]
        assert run.metadata["stop"]["exit_status"] == "success"
        res = results(client, run_uid)
        assert res.uid == result_uid and res.status == "complete"
        elements = res.metadata["elements"]
        assert list(rows) == elements and {"Fe", "Cu", "Zn", "P"} <= set(elements)
        assert res.metadata["method"] == "noise2noise"
        assert res.maps_raw.shape == res.maps.shape == (len(elements), 16, 16)
    finally:
        close(client)
    assert table_value(out, "maps").startswith(f"({len(elements)}, 16, 16)")


@pytest.mark.parametrize(("argv", "message"), [
    (["--modality", "bogus"],
     "argument --modality: invalid choice: 'bogus' (choose from 'tomo', 'xrf', 'ptycho', "
     "'sr')"),
    (["--modality", "sr", "--blind"], "argument --blind: not with --modality sr"),
    (["--modality", "sr", "--size", "129"], "argument --size: with --modality sr the sensor "
                                            "size must be even (the camera bins 2 x 2) and "
                                            ">= 128 (the resolution chart), got 129"),
    (["--modality", "sr", "--size", "64"], "and >= 128 (the resolution chart), got 64"),
    (["--modality", "sr", "--psf-sigma", "-1"],
     "argument --psf-sigma: expected a positive number, got '-1'"),
    (["--modality", "sr", "--method", "ptychonn"],
     "argument --method: invalid choice for --modality sr: 'ptychonn'"),
    (["--modality", "ptycho", "--psf-sigma", "2"],
     "argument --psf-sigma: only with --modality sr, not with --modality ptycho"),
    (["--modality", "ptycho", "--blind"], "argument --blind: not with --modality ptycho"),
    (["--modality", "ptycho", "--method", "noise2noise"],
     "argument --method: invalid choice for --modality ptycho: 'noise2noise'"),
    (["--modality", "ptycho", "--dwell", "0.1"],
     "argument --dwell: only with --modality xrf, not with --modality ptycho"),
    (["--modality", "xrf", "--projections", "19"],
     "argument --projections: only with --modality tomo, not with --modality xrf"),
    (["--modality", "xrf", "--dose-ratio", "15", "--n2i-seconds", "2"],
     "argument --dose-ratio, --n2i-seconds: only with --modality tomo"),
    (["--dwell", "0.1"], "argument --dwell: only with --modality xrf, not with --modality tomo"),
    (["--modality", "tomo", "--dwell-ratio", "5"], "argument --dwell-ratio: only with "
                                                   "--modality xrf"),
    (["--modality", "xrf", "--dwell", "0"],
     "argument --dwell: expected a positive number of seconds, got '0'"),
    (["--modality", "xrf", "--dwell-ratio", "1"],
     "argument --dwell-ratio: expected a number > 1 (long / short dwell), got '1'"),
    (["--modality", "xrf", "--size", "8"], "argument --size: must be >= 16, got 8"),
])
def test_demo_modality_rejects_bad_options(argv, message, capsys, tmp_path):
    with pytest.raises(SystemExit) as info:
        main(["demo", *argv, "--data-dir", str(tmp_path / "data")])
    assert info.value.code == 2
    err = capsys.readouterr().err
    assert "usage: lowdose-bluesky demo" in err and message in err
    assert not (tmp_path / "data").exists()


def test_xrf_demo_takes_its_methods_from_the_recipe():
    from lowdose_bluesky.cli import _demo_methods
    from lowdose_bluesky.recipes.xrf.analysis import METHODS

    assert _demo_methods("xrf") == tuple(METHODS)


@pytest.mark.parametrize(("modality", "method"), [("xrf", "no-such-method"),
                                                  ("tomo", "noise2noise")])
def test_demo_method_must_be_one_of_the_modality(modality, method, capsys, tmp_path):
    from lowdose_bluesky.cli import _demo_methods

    with pytest.raises(SystemExit) as info:
        main(["demo", "--modality", modality, "--method", method,
              "--data-dir", str(tmp_path / "data")])
    assert info.value.code == 2
    choices = ", ".join(map(repr, _demo_methods(modality)))
    assert (f"argument --method: invalid choice for --modality {modality}: {method!r} "
            f"(choose from {choices})") in capsys.readouterr().err
    assert not (tmp_path / "data").exists()


def _fake_runs(monkeypatch):
    import lowdose_bluesky.demo as demo_module
    import lowdose_bluesky.demo_xrf as xrf_module

    seen: dict[str, dict] = {}

    def fake(kind):
        def run(data_dir, **options):
            seen[kind] = {"data_dir": data_dir, **options}
            raise demo_module.DemoFailed("stopped by the test")
        return run

    monkeypatch.setattr(demo_module, "run_demo", fake("tomo"))
    monkeypatch.setattr(xrf_module, "run_xrf_demo", fake("xrf"))
    return seen


def test_demo_modality_defaults_and_options_reach_the_right_demo(monkeypatch, tmp_path):
    seen = _fake_runs(monkeypatch)
    data = str(tmp_path / "data")
    rc, _, err = run_cli(["demo", "--modality", "xrf", "--data-dir", data])
    assert rc == 1 and "analysis failed: stopped by the test" in err
    assert "tomo" not in seen
    xrf = seen.pop("xrf")
    assert {k: xrf[k] for k in ("size", "dwell", "dwell_ratio", "method", "epochs",
                                "training_budget", "seed", "blind", "fly", "progress",
                                "figure")} == {
        "size": 64, "dwell": 0.01, "dwell_ratio": 20.0, "method": "noise2noise",
        "epochs": 30, "training_budget": 20.0, "seed": 0, "blind": False, "fly": True,
        "progress": True, "figure": None}
    rc, _, _ = run_cli(["demo", "--modality", "xrf", "--size", "32", "--dwell", "0.02",
                        "--dwell-ratio", "10", "--method", "none", "--seed", "7", "--blind",
                        "--no-fly", "--training-budget", "none", "--no-progress",
                        "--data-dir", data])
    xrf = seen.pop("xrf")
    assert (xrf["size"], xrf["dwell"], xrf["dwell_ratio"], xrf["method"], xrf["seed"]) == (
        32, 0.02, 10.0, "none", 7)
    assert xrf["blind"] is True and xrf["fly"] is False and xrf["training_budget"] is None
    assert xrf["progress"] is False
    # the tomography demo keeps its own defaults
    rc, _, _ = run_cli(["demo", "--data-dir", data])
    tomo = seen.pop("tomo")
    assert (tomo["size"], tomo["projections"], tomo["dose_ratio"], tomo["training_budget"],
            tomo["method"], tomo["fly"]) == (128, 181, 15.0, 60.0, "auto", False)
    assert tomo["n2i_options"] == {"max_seconds": 40.0} and "xrf" not in seen


@pytest.mark.parametrize(("options", "message"), [
    ({"size": 15}, "size must be an integer >= 16 pixels"),
    ({"dwell": 0}, "dwell must be a positive number of seconds, got 0"),
    ({"dwell_ratio": 1.0}, "dwell_ratio must be a number > 1 (long / short dwell), got 1.0"),
    ({"epochs": 0}, "epochs must be a positive integer, got 0"),
    ({"training_budget": -1}, "training_budget must be a positive number of seconds or None"),
    ({"blind": "yes"}, "blind must be True or False, got 'yes'"),
    ({"fly": 1}, "fly must be True or False, got 1"),
    ({"method": "no-such-method"}, "method must be one of 'none', 'noise2noise'"),
])
def test_run_xrf_demo_checks_its_arguments_before_doing_anything(options, message, tmp_path):
    from lowdose_bluesky.demo_xrf import run_xrf_demo

    with pytest.raises(ValueError, match=re.escape(message)):
        run_xrf_demo(tmp_path / "data", **options)
    assert not (tmp_path / "data").exists()


def test_xrf_quality_table_and_figure_rows():
    from lowdose_bluesky.demo_xrf import (
        ElementQuality,
        figure_elements,
        quality_table,
        score_maps,
    )

    assert figure_elements(("P", "S", "K", "Ca", "Fe", "Cu", "Zn")) == ["Fe", "Cu", "Zn", "P"]
    assert figure_elements(("K", "Zn", "Fe")) == ["Fe", "Zn", "K"]
    rng = np.random.default_rng(0)
    truth = rng.random((2, 16, 16))
    quality = score_maps(("Fe", "Zn"), truth, truth + 0.1 * rng.random((2, 16, 16)), None)
    assert [q.element for q in quality] == ["Fe", "Zn"]
    assert all(0 < q.ssim_raw < 1 and q.ssim_enhanced is None for q in quality)
    perfect = score_maps(("Fe",), truth[:1], truth[:1], truth[:1])[0]
    assert perfect.ssim_raw == pytest.approx(1.0) and perfect.psnr_enhanced == float("inf")
    text = quality_table([*quality, ElementQuality("Cu", 0.5, 0.9, 20.0, 30.0)])
    lines = text.splitlines()
    assert lines[0].split() == ["element", "SSIM", "raw", "SSIM", "enhanced", "PSNR", "raw",
                                "(dB)", "PSNR", "enhanced", "(dB)"]
    assert lines[2].split() == ["Fe", f"{quality[0].ssim_raw:.3f}", "-",
                                f"{quality[0].psnr_raw:.2f}", "-"]
    assert len({len(line) for line in lines[:2]}) == 1  # header and rule aligned
    assert lines[4].split() == ["Cu", "0.500", "0.900", "20.00", "30.00"]


@pytest.mark.slow
def test_ptycho_demo_end_to_end(tmp_path):
    data = tmp_path / "data"
    rc, out, err = run_cli(["demo", "--modality", "ptycho", "--epochs", "2",
                            "--training-budget", "5", "--no-progress", "--data-dir",
                            str(data)])
    assert rc == 0, err
    assert "a dense strip, then the rest of the field at zero overlap" in err
    dense, sparse = table_value(out, "patterns").split(", ")
    assert dense.startswith("297 dense") and sparse.startswith("24 sparse (overlap 0.00)")
    ssim, psnr = table_value(out, "phase SSIM / PSNR, pty-chi dense field").split(" / ")
    assert 0.3 < float(ssim) <= 1.0 and psnr.endswith(" dB")
    figure = Path(table_value(out, "figure"))
    assert figure.is_file() and figure.parent == data / "figures"
    assert ").phase   # .amplitude, .phase_iterative" in out
    # the linear retrieval (the default) learns the sparse field's phase
    ssim, _ = table_value(out, "phase SSIM / PSNR, linear sparse field").split(" / ")
    assert float(ssim) > 0.2
    assert table_value(out, "model training").endswith("pairs (ridge fit)")


def test_ptycho_demo_options_reach_it(monkeypatch, tmp_path):
    import lowdose_bluesky.demo as demo_module
    import lowdose_bluesky.demo_ptycho as ptycho_module

    seen = {}

    def fake(data_dir, **options):
        seen.update(options)
        raise demo_module.DemoFailed("stopped by the test")

    monkeypatch.setattr(ptycho_module, "run_ptycho_demo", fake)
    data = str(tmp_path / "data")
    rc, _, err = run_cli(["demo", "--modality", "ptycho", "--data-dir", data])
    assert rc == 1 and "analysis failed: stopped by the test" in err
    assert (seen["method"], seen["training_budget"], seen["epochs"]) == ("linear", 60.0, 30)
    rc, _, _ = run_cli(["demo", "--modality", "ptycho", "--method", "phase-only", "--data-dir",
                        data])
    assert seen["method"] == "phase-only"


@pytest.mark.slow
def test_sr_demo_end_to_end(tmp_path):
    data = tmp_path / "data"
    rc, out, err = run_cli(["demo", "--modality", "sr", "--size", "128", "--epochs", "2",
                            "--training-budget", "5", "--data-dir", str(data)])
    assert rc == 0, err
    assert "knife edge: the chart's slanted edge" in err
    fitted = table_value(out, "PSF sigma, knife edge (camera px)")
    error = float(fitted.split(", ")[-1].rstrip(" %)"))
    assert abs(error) < 5  # within 5 % of the simulated sigma
    assert table_value(out, "smallest resolved bars, camera").endswith("sensor px")
    figure = Path(table_value(out, "figure"))
    assert figure.is_file() and figure.parent == data / "figures"
    assert ").super_resolved" in out and ").psf_sigma_px" in out


def test_sr_demo_options_reach_it(monkeypatch, tmp_path):
    import lowdose_bluesky.demo as demo_module
    import lowdose_bluesky.demo_sr as sr_module

    seen = {}

    def fake(data_dir, **options):
        seen.update(options)
        raise demo_module.DemoFailed("stopped by the test")

    monkeypatch.setattr(sr_module, "run_sr_demo", fake)
    data = str(tmp_path / "data")
    rc, _, err = run_cli(["demo", "--modality", "sr", "--data-dir", data])
    assert rc == 1 and "analysis failed: stopped by the test" in err
    assert (seen["method"], seen["size"], seen["psf_sigma_px"], seen["training_budget"]) == (
        "joint", 256, 3.0, 60.0)
    run_cli(["demo", "--modality", "sr", "--method", "sr-only", "--psf-sigma", "2.5",
             "--data-dir", data])
    assert (seen["method"], seen["psf_sigma_px"]) == ("sr-only", 2.5)
