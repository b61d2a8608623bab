"""The ``lowdose-bluesky scan`` command and the light top-level import."""

import subprocess
import sys

import numpy as np
import pytest

from lowdose_bluesky.cli import main
from lowdose_bluesky.storage import RAW, close, connect


def test_scan_command_stores_a_run_that_reads_back(tmp_path, capsys):
    assert main(["scan", "--size", "32", "--projections", "5", "--data-dir",
                 str(tmp_path / "d")]) == 0
    out = capsys.readouterr().out
    uid = out.split()[1]
    assert "primary    (5, 32, 32)" in out
    client = connect(directory=tmp_path / "d" / "tiled",
                     readable_storage=[tmp_path / "d" / "frames"])
    frames = client[RAW][uid]["primary"]["det_image"].read()
    assert frames.shape == (5, 32, 32) and frames.dtype == np.uint16 and frames.max() > 0
    close(client)


def test_scan_fly_flies_the_rotation_on_ophyd_async_devices(tmp_path, capsys):
    assert main(["scan", "--fly", "--size", "32", "--projections", "181", "--data-dir",
                 str(tmp_path / "d")]) == 0
    out = capsys.readouterr().out
    uid = out.split()[1]
    assert "primary    (181, 1, 32, 32)" in out and "['primary']['det']" in out
    client = connect(directory=tmp_path / "d" / "tiled",
                     readable_storage=[tmp_path / "d" / "frames"])
    run = client[RAW][uid]
    assert run.metadata["start"]["plan_name"] == "lowdose_tomo_flyscan"
    angles = np.asarray(run["primary"]["det-rotation"].read()).reshape(-1)
    assert np.allclose(angles, np.linspace(0, 180, 181), atol=1e-6)
    close(client)


@pytest.mark.parametrize(("argv", "message"), [
    (["scan", "--size", "4"], "must be >= 16, got 4"),
    (["scan", "--projections", "x"], "expected an integer, got 'x'"),
])
def test_scan_command_rejects_bad_options(argv, message, capsys):
    with pytest.raises(SystemExit):
        main(argv)
    assert message in capsys.readouterr().err


def test_scan_command_rejects_bad_dose_ratio(tmp_path, capsys):
    assert main(["scan", "--dose-ratio", "0.5", "--data-dir", str(tmp_path)]) == 2
    assert "dose_ratio must be > 1" in capsys.readouterr().err


def test_top_level_and_plan_imports_stay_light():
    code = ("import sys, lowdose_bluesky, lowdose_bluesky.plans, lowdose_bluesky.devices.sim, "
            "lowdose_bluesky.storage; print('torch' in sys.modules)")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == "False"
