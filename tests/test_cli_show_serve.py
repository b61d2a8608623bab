"""``lowdose-bluesky serve`` and ``show``: a shared Tiled server, run summaries, bad options."""

from __future__ import annotations

import os
import re
import signal
import socket
import stat
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest

from lowdose_bluesky.cli import main
from lowdose_bluesky.storage import (
    API_KEY_ENV,
    RAW,
    close,
    connect,
    is_loopback,
    mask_key,
    plan_server,
)

KEY = "k3yfortests0123456789abcdef"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture(scope="module")
def scanned(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, str]:
    """A data directory holding one raw run (no analysis result)."""
    data = tmp_path_factory.mktemp("served") / "data"
    assert main(["scan", "--size", "32", "--projections", "5", "--data-dir", str(data)]) == 0
    catalog = connect(directory=data / "tiled", readable_storage=[data / "frames"])
    try:
        (uid,) = list(catalog[RAW])
    finally:
        close(catalog)
    return data, uid


@pytest.mark.slow
def test_serve_shares_a_data_dir_with_clients_and_show(scanned, tmp_path, monkeypatch, capsys):
    data, uid = scanned
    port = free_port()
    env = {**os.environ, API_KEY_ENV: KEY, "PYTHONUNBUFFERED": "1"}
    proc = subprocess.Popen(
        [sys.executable, "-m", "lowdose_bluesky.cli", "serve", "--data-dir", str(data),
         "--port", str(port)], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
        env=env)
    base = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 120
        while True:
            assert proc.poll() is None, proc.communicate()
            try:
                health = httpx.get(f"{base}/healthz", timeout=2, trust_env=False)
                if health.status_code == 200:
                    break
            except httpx.HTTPError:
                pass
            assert time.monotonic() < deadline, "serve never answered /healthz"
            time.sleep(0.5)
        # the key protects the data
        anonymous = httpx.get(f"{base}/api/v1/metadata/{RAW}", timeout=10, trust_env=False)
        assert anonymous.status_code == 401
        monkeypatch.setenv(API_KEY_ENV, KEY)
        client = connect(f"{base}/api/v1")
        assert uid in client[RAW]
        # frames written by the embedded session are readable through the server
        frames = client[RAW][uid]["primary"]["det_image"].read()
        assert frames.shape == (5, 32, 32) and frames.max() > 0
        figure = tmp_path / "remote.png"
        capsys.readouterr()
        assert main(["show", uid, "--tiled", f"{base}/api/v1", "--figure", str(figure)]) == 0
        shown = capsys.readouterr().out
        assert re.search(rf"^raw run\s+{uid}$", shown, re.MULTILINE)
        assert re.search(r"^stream primary\s+\(5, 32, 32\)$", shown, re.MULTILINE)
        assert re.search(r"^result\s+none \(no results stored yet", shown, re.MULTILINE)
        assert figure.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
        assert figure.stat().st_size > 20_000
    finally:
        proc.send_signal(signal.SIGINT)
        try:
            out, err = proc.communicate(timeout=60)
        except subprocess.TimeoutExpired:
            proc.kill()
            out, err = proc.communicate()
    assert proc.returncode == 0, err
    assert f"URI     : {base}/api/v1" in out
    assert f"API key : {KEY[:4]}… ({len(KEY)} characters), ${API_KEY_ENV}" in out
    assert "Tiled server stopped." in out
    assert KEY not in out + err
    # the access log (which may hold keys) stays in the catalog directory
    assert (data / "tiled" / "access.log").stat().st_size > 0


def test_serve_refuses_a_public_host_without_a_key(tmp_path, monkeypatch, capsys):
    monkeypatch.delenv(API_KEY_ENV, raising=False)
    assert main(["serve", "--host", "0.0.0.0", "--data-dir", str(tmp_path)]) == 2
    err = capsys.readouterr().err
    assert "host '0.0.0.0' is reachable from other machines and needs an API key" in err
    assert "--api-key KEY or set LOWDOSE_TILED_API_KEY" in err
    assert not (tmp_path / "tiled" / "api_key").exists()


def test_serve_reports_a_port_in_use(tmp_path, monkeypatch, capsys):
    monkeypatch.setenv(API_KEY_ENV, KEY)
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        port = busy.getsockname()[1]
        assert main(["serve", "--port", str(port), "--data-dir", str(tmp_path)]) == 2
    assert f"cannot listen on 127.0.0.1:{port}" in capsys.readouterr().err


@pytest.mark.parametrize(("argv", "message"), [
    (["serve", "--port", "70000"], "argument --port: must be from 0 to 65535, got 70000"),
    (["serve", "--port", "http"], "argument --port: expected an integer, got 'http'"),
    (["show"], "the following arguments are required: uid"),
])
def test_serve_and_show_reject_bad_arguments(argv, message, capsys):
    with pytest.raises(SystemExit) as info:
        main(argv)
    assert info.value.code == 2
    assert message in capsys.readouterr().err


def test_show_takes_a_data_dir_or_a_uri_not_both(tmp_path, capsys):
    (tmp_path / "tiled").mkdir()
    (tmp_path / "tiled" / "catalog.db").write_bytes(b"")
    with pytest.raises(SystemExit) as info:
        main(["show", "u", "--data-dir", str(tmp_path), "--tiled", "http://h:1"])
    assert info.value.code == 2
    assert "argument --tiled: not allowed with argument --data-dir" in capsys.readouterr().err


def test_serve_rejects_bad_keys_and_a_file_as_data_dir(tmp_path, monkeypatch, capsys):
    assert main(["serve", "--api-key", " ", "--data-dir", str(tmp_path)]) == 2
    assert "the API key must not be empty or blank" in capsys.readouterr().err
    monkeypatch.setenv(API_KEY_ENV, "secret-with-dashes-0123")
    assert main(["serve", "--data-dir", str(tmp_path)]) == 2
    err = capsys.readouterr().err
    assert f"the API key (${API_KEY_ENV}) must hold only letters and digits" in err
    assert "secret-with-dashes-0123" not in err
    target = tmp_path / "file"
    target.write_text("x")
    with pytest.raises(SystemExit) as info:
        main(["serve", "--data-dir", str(target)])
    assert info.value.code == 2
    assert f"--data-dir: expected a directory to write in (existing or to be created), got " \
           f"{str(target)!r}: it exists and is not a directory" in capsys.readouterr().err


def test_loopback_server_without_key_keeps_a_private_generated_one(tmp_path, monkeypatch):
    monkeypatch.delenv(API_KEY_ENV, raising=False)
    plan = plan_server(tmp_path / "tiled", [tmp_path / "frames"], port=0)
    key_file = tmp_path / "tiled" / "api_key"
    assert plan.api_key == key_file.read_text().strip() and len(plan.api_key) == 32
    assert stat.S_IMODE(key_file.stat().st_mode) == 0o600
    assert plan.key_source == f"generated, kept in {key_file}"
    assert plan_server(tmp_path / "tiled", port=0).api_key == plan.api_key  # reused
    assert (tmp_path / "frames").is_dir()
    monkeypatch.setenv(API_KEY_ENV, KEY)
    env_plan = plan_server(tmp_path / "tiled", host="0.0.0.0", port=0)
    assert env_plan.api_key == KEY and env_plan.key_source == f"${API_KEY_ENV}"
    assert plan_server(tmp_path / "tiled", api_key="given", port=0).key_source == "--api-key"


@pytest.mark.parametrize(("host", "loopback"), [
    ("127.0.0.1", True), ("127.1.2.3", True), ("::1", True), ("[::1]", True),
    ("localhost", True), ("0.0.0.0", False), ("192.168.1.5", False), ("beamline-ws", False),
])
def test_is_loopback(host, loopback):
    assert is_loopback(host) is loopback


def test_mask_key_never_shows_the_key():
    key = "abcd" + "x" * 28
    assert mask_key(key) == "abcd… (32 characters)"
    assert mask_key("short") == "(5 characters)"


def test_show_rejects_a_data_dir_without_a_catalog(tmp_path, monkeypatch, capsys):
    missing = tmp_path / "nowhere"
    with pytest.raises(SystemExit) as info:
        main(["show", "some-uid", "--data-dir", str(missing)])
    assert info.value.code == 2
    err = capsys.readouterr().err
    assert (f"argument --data-dir: expected an existing data directory holding a Tiled catalog "
            f"(DIR/tiled/catalog.db, written by 'demo', 'scan' or 'serve'), got "
            f"{str(missing)!r}: no such directory") in err
    assert "pass an existing data directory or --tiled URI" in err
    assert not missing.exists()
    monkeypatch.chdir(tmp_path)  # the default ./lowdose_data is checked when show runs
    assert main(["show", "some-uid"]) == 2
    assert "--data-dir 'lowdose_data' holds no Tiled catalog" in capsys.readouterr().err


def test_show_reports_an_unreachable_server(capsys):
    uri = f"http://127.0.0.1:{free_port()}/api/v1"
    assert main(["show", "some-uid", "--tiled", uri]) == 2
    assert f"cannot reach Tiled at {uri}" in capsys.readouterr().err


def test_show_rejects_a_uri_that_is_not_http(capsys):
    assert main(["show", "some-uid", "--tiled", "ftp://host/api"]) == 2
    assert "Tiled URI must be http(s)://host:port/..., got 'ftp://host/api'" in (
        capsys.readouterr().err)


@pytest.mark.slow
def test_show_without_a_result_still_summarises_the_run(scanned, tmp_path, capsys):
    data, uid = scanned
    figure = tmp_path / "raw-only.png"
    assert main(["show", uid, "--data-dir", str(data), "--figure", str(figure)]) == 0
    out = capsys.readouterr().out
    assert re.search(r"^exposures\s+short 2\.0 s, long 30\.0 s at \[30\.0, 120\.0\] deg$", out,
                     re.MULTILINE)
    assert re.search(r"^dose ratio\s+15$", out, re.MULTILINE)
    assert re.search(r"^stream dark\s+\(10, 32, 32\)$", out, re.MULTILINE)
    assert re.search(r"^result\s+none \(no results stored yet", out, re.MULTILINE)
    assert figure.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
