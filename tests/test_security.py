"""Security properties, each proven here (see docs/decisions/0010-security-threat-model.md).

1. Tiled servers listen on loopback and refuse requests without the API key.
2. A remote server's key comes from the environment (or the URI / an argument), never from
   code: a missing or wrong key is named, and no file of the package, the profile or the
   README holds a hard-coded key.
3. Checkpoints and 0MQ documents are never unpickled: pickles (torch.save output included)
   are refused before a byte of them is interpreted, and the code they carry does not run.
4. Command-line paths are checked by argparse before anything starts.
5. The API key appears in no log record (at DEBUG), exception or printed line.
"""

from __future__ import annotations

import ast
import asyncio
import io
import ipaddress
import logging
import os
import pickle
import re
import socket
import stat
import threading
import time
import traceback
from pathlib import Path

import httpx
import numpy as np
import pytest
import torch
import zmq

from lowdose_bluesky.cli import build_parser, main
from lowdose_bluesky.storage import API_KEY_ENV, close, connect, ensure_container

ROOT = Path(__file__).resolve().parents[1]
SECRET = "s3cr3tK3y0123456789abcdefXYZ"
UID = "1b4e28ba-2fa1-41d2-883f-0016d3cca427"
WORKER = ["worker", "--zmq", "127.0.0.1:9", "--tiled", "http://127.0.0.1:9/api"]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def listening_addresses(port: int) -> set[str]:
    """Local addresses of the TCP sockets listening on ``port`` (from /proc/net)."""
    tables = [(Path("/proc/net/tcp"), socket.AF_INET), (Path("/proc/net/tcp6"), socket.AF_INET6)]
    if not tables[0][0].exists():
        pytest.skip("needs Linux /proc/net/tcp to list listening sockets")
    found = set()
    for path, family in tables:
        if not path.exists():
            continue
        for line in path.read_text().splitlines()[1:]:
            local, state = line.split()[1], line.split()[3]
            address, port_hex = local.split(":")
            if state != "0A" or int(port_hex, 16) != port:  # 0A: LISTEN
                continue
            raw = bytes.fromhex(address)  # 32-bit words in host (little-endian) order
            raw = b"".join(raw[i : i + 4][::-1] for i in range(0, len(raw), 4))
            found.add(socket.inet_ntop(family, raw))
    return found


def other_addresses() -> list[str]:
    """This machine's IPv4 addresses other than loopback (none on an isolated host)."""
    found = set()
    try:
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
            s.connect(("192.0.2.1", 9))  # TEST-NET-1: picks the outgoing address, sends nothing
            found.add(s.getsockname()[0])
    except OSError:
        pass
    try:
        found.update(i[4][0] for i in socket.getaddrinfo(socket.gethostname(), None,
                                                           socket.AF_INET))
    except OSError:
        pass
    return sorted(a for a in found
                  if not ipaddress.ip_address(a).is_loopback and a != "0.0.0.0")


def assert_loopback_only_with_key(port: int, key: str) -> None:
    """Listening on 127.0.0.1 only; anonymous and wrong-key requests refused, the key works."""
    assert listening_addresses(port) == {"127.0.0.1"}
    for address in other_addresses():
        with pytest.raises(OSError):
            socket.create_connection((address, port), timeout=3).close()
    url = f"http://127.0.0.1:{port}/api/v1/metadata/"
    anonymous = httpx.get(url, timeout=30, trust_env=False)
    assert anonymous.status_code in (401, 403), anonymous.text
    wrong = httpx.get(url, headers={"Authorization": "Apikey wrongkey0123"}, timeout=30,
                      trust_env=False)
    assert wrong.status_code in (401, 403), wrong.text
    keyed = httpx.get(url, headers={"Authorization": f"Apikey {key}"}, timeout=30,
                      trust_env=False)
    assert keyed.status_code == 200, keyed.text


def everything_said(exc: BaseException | None = None, caplog=None, capsys=None) -> str:
    """All text a user could see: the exception with its traceback and chain, log records
    (messages, arguments and formatted output), printed output."""
    parts = []
    while exc is not None:
        parts += [str(exc), repr(exc), "".join(traceback.format_exception(exc))]
        exc = exc.__cause__ or exc.__context__
    if caplog is not None:
        parts.append(caplog.text)
        parts += [f"{r.getMessage()} {r.args!r}" for r in caplog.records]
    if capsys is not None:
        parts += list(capsys.readouterr())
    return "\n".join(parts)


@pytest.fixture
def debug_logs(caplog):
    """Every logger at DEBUG, also those the worker command quietens (restored after)."""
    caplog.set_level(logging.DEBUG)
    for name in ("httpx", "httpcore", "tiled", "lowdose_bluesky"):
        caplog.set_level(logging.DEBUG, logger=name)
    return caplog


@pytest.fixture
def restore_server_logging():
    """An in-process ``serve`` configures the uvicorn and tiled loggers of the whole process
    (handlers on this test's captured streams): put them back for the session's servers."""
    names = ("uvicorn", "uvicorn.error", "uvicorn.access", "tiled")
    saved = {n: (logging.getLogger(n).handlers[:], logging.getLogger(n).level,
                 logging.getLogger(n).propagate, logging.getLogger(n).disabled) for n in names}
    yield
    for name, (handlers, level, propagate, disabled) in saved.items():
        logger = logging.getLogger(name)
        for handler in logger.handlers:
            if handler not in handlers:
                handler.close()
        logger.handlers[:] = handlers
        logger.setLevel(level)
        logger.propagate, logger.disabled = propagate, disabled


@pytest.fixture
def restore_log_levels():
    """``lowdose-bluesky worker`` quietens httpx and tiled for good: undo it after a test."""
    levels = {name: logging.getLogger(name).level for name in ("httpx", "tiled")}
    yield
    for name, level in levels.items():
        logging.getLogger(name).setLevel(level)


# ======================================================================= 1. loopback + key
def test_embedded_server_of_connect_listens_on_loopback_only_and_wants_the_key(tiled_client):
    server = tiled_client.embedded_server
    assert_loopback_only_with_key(server.port, server.api_key)
    ensure_container(tiled_client, "security-check")  # the client of connect() has the key
    assert "security-check" in tiled_client


def test_serve_without_host_listens_on_loopback_only_and_wants_the_key(
        tmp_path, monkeypatch, capsys, debug_logs, restore_server_logging):
    import uvicorn

    from lowdose_bluesky.storage import server as server_module
    from lowdose_bluesky.storage import tiled as storage_tiled

    # tiled keeps one single-user key per process (see storage/tiled.py): an in-process
    # server with another key would lock the session's embedded server out
    key = storage_tiled._PROCESS_API_KEY
    monkeypatch.setenv(API_KEY_ENV, key)
    servers, sockets = [], []

    class Recorded(uvicorn.Server):
        def __init__(self, *args, **kwargs):
            super().__init__(*args, **kwargs)
            servers.append(self)

    bind = server_module._bind
    monkeypatch.setattr(uvicorn, "Server", Recorded)
    monkeypatch.setattr(server_module, "_bind",
                        lambda host, port: sockets.append(bind(host, port)) or sockets[-1])
    data = tmp_path / "data"
    status = {}
    thread = threading.Thread(target=lambda: status.setdefault("rc", main(
        ["serve", "--data-dir", str(data), "--port", "0"])), daemon=True)
    thread.start()
    deadline = time.monotonic() + 120
    while not (servers and servers[0].started):
        assert thread.is_alive(), capsys.readouterr()
        assert time.monotonic() < deadline, "serve never started"
        time.sleep(0.1)
    port = sockets[0].getsockname()[1]
    try:
        assert sockets[0].getsockname()[0] == "127.0.0.1"
        assert_loopback_only_with_key(port, key)
        client = connect(f"http://127.0.0.1:{port}/api/v1")  # key from the environment
        ensure_container(client, "served")
        assert "served" in client
    finally:
        servers[0].should_exit = True
        thread.join(60)
    assert status["rc"] == 0
    said = everything_said(caplog=debug_logs, capsys=capsys)
    assert f"URI     : http://127.0.0.1:{port}/api/v1" in said
    assert f"API key : {key[:4]}… ({len(key)} characters), ${API_KEY_ENV}" in said
    assert key not in said
    access = data / "tiled" / "access.log"
    assert stat.S_IMODE(access.stat().st_mode) == 0o600
    assert "/api/v1/metadata/" in access.read_text() and key not in access.read_text()


def test_serve_keeps_its_access_log_private(tmp_path):
    from lowdose_bluesky.storage.server import _log_config

    log = tmp_path / "access.log"
    log.write_text("earlier line\n")
    log.chmod(0o644)
    assert _log_config(tmp_path)["handlers"]["access"]["filename"] == str(log)
    assert stat.S_IMODE(log.stat().st_mode) == 0o600
    assert log.read_text() == "earlier line\n"  # appended to, not truncated
    log.unlink()
    _log_config(tmp_path)
    assert stat.S_IMODE(log.stat().st_mode) == 0o600


# ======================================================================= 2. where keys come from
def test_connect_names_the_missing_or_refused_key_and_uses_the_environment(
        tiled_client, monkeypatch):
    server = tiled_client.embedded_server
    base = f"http://127.0.0.1:{server.port}/api/v1"
    monkeypatch.delenv(API_KEY_ENV, raising=False)
    with pytest.raises(ConnectionError) as info:
        connect(base)
    assert str(info.value) == (
        f"Tiled at {base} requires an API key and none was given: set LOWDOSE_TILED_API_KEY "
        "to the server's key (or pass api_key=...)")
    refused = {"the api_key argument": lambda: connect(base, api_key=SECRET),
               "the URI": lambda: connect(f"{base}?api_key={SECRET}"),
               "$LOWDOSE_TILED_API_KEY": lambda: connect(base)}
    monkeypatch.setenv(API_KEY_ENV, SECRET)
    for source, attempt in refused.items():
        with pytest.raises(ConnectionError) as info:
            attempt()
        assert str(info.value) == (f"Tiled at {base} refused the API key from {source} (401): "
                                   "check that it is this server's key")
        assert SECRET not in everything_said(info.value)
    monkeypatch.setenv(API_KEY_ENV, server.api_key)
    ensure_container(connect(base), "keyed-by-environment")
    assert "keyed-by-environment" in tiled_client


def test_profile_with_a_remote_tiled_and_no_key_stops_with_a_clear_message(
        tmp_path, tiled_client):
    from tests.test_profile_collection import MARK, _report, run_profile

    server = tiled_client.embedded_server
    base = f"http://127.0.0.1:{server.port}/api/v1"
    proc = run_profile(tmp_path, _report("'loaded'"), ipython=False, LOWDOSE_TILED_URI=base)
    assert proc.returncode != 0 and MARK not in proc.stdout
    assert (f"ConnectionError: Tiled at {base} requires an API key and none was given: set "
            "LOWDOSE_TILED_API_KEY") in proc.stderr
    assert server.api_key not in proc.stdout + proc.stderr


PLACEHOLDER = re.compile(r"|\.\.\.|…|\*+|<[^>]*>|\$.*|\{.*|(YOUR_|API_)?KEY", re.IGNORECASE)
KEY_PATTERNS = [
    # api_key="...", "api_key": "...", single_user_api_key='...', api-key: "..."
    re.compile(r"""(?:^|[^A-Za-z0-9])api[_-]?key['"]?\s*[:=]\s*(?P<q>['"])(?P<value>[^'"\n]*)(?P=q)""",
               re.IGNORECASE),
    # YAML / INI: api_key: value (something key-like)
    re.compile(r"""^\s*api[_-]?key\s*[:=]\s*(?P<value>(?=[A-Za-z_-]*\d)[A-Za-z0-9_-]{8,})\s*$""",
               re.IGNORECASE | re.MULTILINE),
    # a key in a URL: ...?api_key=value
    re.compile(r"""[?&]api_key=(?P<value>[^&\s'"`)\]}>,;]+)""", re.IGNORECASE),
    # export LOWDOSE_TILED_API_KEY=value, LOWDOSE_TILED_API_KEY: value (something key-like)
    re.compile(r"""\bLOWDOSE_TILED_API_KEY\s*[=:]\s*['"]?(?P<value>(?=[A-Za-z_-]*\d)"""
               r"""[A-Za-z0-9_-]{8,})"""),
    # os.environ["LOWDOSE_TILED_API_KEY"] = "...", setenv("...", "..."), {"...": "..."}
    re.compile(r"""\bLOWDOSE_TILED_API_KEY['"]\s*(?:\]\s*=|,|:)\s*(?P<q>['"])"""
               r"""(?P<value>[^'"\n]*)(?P=q)"""),
    # an Authorization header with a literal key
    re.compile(r"""\bApikey\s+(?P<value>(?=[A-Za-z_-]*\d)[A-Za-z0-9_-]{8,})"""),
]


def hardcoded_keys(text: str) -> list[str]:
    """The places in ``text`` that write an API key as a literal (placeholders allowed)."""
    return [m.group(0).strip() for pattern in KEY_PATTERNS for m in pattern.finditer(text)
            if not PLACEHOLDER.fullmatch(m["value"].strip())]


@pytest.mark.parametrize("text", [
    'client = connect("http://tiled:8000/api", api_key="d3adb33f")',
    "c = from_uri('http://tiled:8000/api?api_key=0123abcd')",
    "lowdose-bluesky worker --zmq relay:5578 --tiled 'http://t:8000/api?api_key=9f8e7d6c'",
    "export LOWDOSE_TILED_API_KEY=9f8e7d6c5b4a3f2e",
    "LOWDOSE_TILED_API_KEY: 9f8e7d6c5b4a3f2e",
    'os.environ["LOWDOSE_TILED_API_KEY"] = "hunter22"',
    'monkeypatch.setenv("LOWDOSE_TILED_API_KEY", "letmein")',
    '{"api_key": "s3cr3t"}',
    "tiled:\n  api_key: s3cr3tk3y\n",
    "Authentication(single_user_api_key='abc123')",
    "headers={'Authorization': 'Apikey 0123abcdef'}",
])
def test_the_key_scanner_finds_hardcoded_keys(text):
    assert hardcoded_keys(text), text


@pytest.mark.parametrize("text", [
    "client = connect(uri)  # key from LOWDOSE_TILED_API_KEY",
    'export LOWDOSE_TILED_API_KEY=$(python -c "import secrets; print(secrets.token_hex(16))")',
    'api_key=os.environ["LOWDOSE_TILED_API_KEY"]',
    "from_uri(uri, api_key=api_key)",
    'f"{base}?api_key={key}"',
    "`LOWDOSE_TILED_URI` API key in the URI (`?api_key=...`)",
    "(or the key in the URI: ...?api_key=KEY)",
    'api_key=""',
    "`LOWDOSE_TILED_API_KEY`: the key, e.g. from a file only its owner reads",
    "Authorization: Apikey <key>",
])
def test_the_key_scanner_allows_keys_from_elsewhere(text):
    assert not hardcoded_keys(text), text


def scanned_files() -> list[Path]:
    """The package, the profile, the README and the ADRs: every text file a key could hide in."""
    suffixes = {".py", ".md", ".yaml", ".yml", ".toml", ".cfg", ".ini", ".txt", ".json", ".ipy"}
    files = [ROOT / "README.md", *sorted((ROOT / "docs").rglob("*.md"))]
    for top in ("lowdose_bluesky", "profile_collection"):
        files += sorted(p for p in (ROOT / top).rglob("*")
                        if p.is_file() and p.suffix in suffixes and "__pycache__" not in p.parts)
    return files


def test_no_api_key_is_hardcoded_in_the_package_profile_or_readme():
    files = scanned_files()
    names = {p.relative_to(ROOT).as_posix() for p in files}
    assert {"README.md", "lowdose_bluesky/storage/tiled.py", "lowdose_bluesky/cli.py",
            "profile_collection/startup/00-base.py", "profile_collection/README.md"} <= names
    found = {p.relative_to(ROOT).as_posix(): hits for p in files
             if (hits := hardcoded_keys(p.read_text(errors="replace")))}
    assert not found, f"API keys written into files (read them from {API_KEY_ENV}): {found}"


# ======================================================================= 3. no pickle anywhere
UNSAFE_MODULES = {"pickle", "_pickle", "cPickle", "dill", "cloudpickle", "joblib", "shelve",
                  "marshal", "msgpack_numpy"}  # msgpack_numpy unpickles object arrays


def unsafe_deserialisation(source: str) -> list[str]:
    """Imports of pickle-like modules, torch.load, allow_pickle=True, weights_only=False,
    and bluesky 0MQ Publisher/RemoteDispatcher left on their pickle default."""
    found = []
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.Import):
            found += [f"import {a.name}" for a in node.names
                      if a.name.split(".")[0] in UNSAFE_MODULES]
        elif isinstance(node, ast.ImportFrom) and (node.module or "").split(".")[0] in (
                UNSAFE_MODULES):
            found.append(f"from {node.module} import ...")
        elif isinstance(node, ast.Call):
            func = node.func
            name = func.attr if isinstance(func, ast.Attribute) else getattr(func, "id", "")
            owner = getattr(func.value, "id", "") if isinstance(func, ast.Attribute) else ""
            keywords = {k.arg: k.value for k in node.keywords}
            if (owner, name) == ("torch", "load") or name == "read_pickle":
                found.append(f"{owner}.{name}(...)")
            for flag, bad in (("allow_pickle", True), ("weights_only", False)):
                value = keywords.get(flag)
                if isinstance(value, ast.Constant) and value.value is bad:
                    found.append(f"{name}({flag}={bad})")
            if name == "Publisher" and "serializer" not in keywords:
                found.append("Publisher(...) with the pickle serializer")
            if name == "RemoteDispatcher" and "deserializer" not in keywords:
                found.append("RemoteDispatcher(...) with the pickle deserializer")
    return found


def test_the_pickle_scanner_finds_unsafe_deserialisation():
    snippet = ("import pickle\nfrom dill import loads\nimport msgpack_numpy\n"
               "torch.load('m.pt')\nnp.load('a.npy', allow_pickle=True)\n"
               "torch.load('m.pt', weights_only=False)\npd.read_pickle('x')\n"
               "RE.subscribe(Publisher('relay:5577'))\nRemoteDispatcher(('relay', 5578))\n")
    assert len(unsafe_deserialisation(snippet)) == 10  # torch.load(weights_only=False): 2
    assert not unsafe_deserialisation(
        "Publisher('r:1', serializer=serialize_document)\n"
        "RemoteDispatcher(('r', 2), deserializer=deserialize_document)\n"
        "np.load('a.npy')\nimport json\n")


def test_nothing_in_the_package_profile_or_readme_unpickles():
    sources = {p.relative_to(ROOT).as_posix(): p.read_text() for p in scanned_files()
               if p.suffix == ".py"}
    readme = (ROOT / "README.md").read_text()
    for i, block in enumerate(re.findall(r"```python\n(.*?)```", readme, re.DOTALL)):
        sources[f"README.md python block {i + 1}"] = block
    assert any(name.startswith("README.md python") for name in sources)
    found = {name: hits for name, text in sources.items()
             if (hits := unsafe_deserialisation(text))}
    assert not found, found


class RunsCode:
    """What a malicious pickle does: unpickling it creates ``marker`` (here, harmlessly)."""

    def __init__(self, marker: Path) -> None:
        self.marker = str(marker)

    def __reduce__(self):
        return (os.open, (self.marker, os.O_CREAT | os.O_WRONLY, 0o600))


def pickled(kind: str, marker: Path) -> bytes:
    """A file that runs code (creates ``marker``) when loaded the pickle way."""
    payload = {"state_dict": {"weight": torch.zeros(2)}, "hook": RunsCode(marker)}
    if kind.startswith("pickle-"):
        return pickle.dumps(payload, protocol=int(kind.split("-")[1]))
    buffer = io.BytesIO()
    torch.save(payload, buffer, _use_new_zipfile_serialization=kind == "torch.save")
    return buffer.getvalue()


PICKLES = {"pickle-0": None, "pickle-2": "a Python pickle (protocol 2",
           "pickle-4": "a Python pickle (protocol 4", "pickle-5": "a Python pickle (protocol 5",
           "torch.save": "a zip archive (torch.save's format, which holds a pickle)",
           "torch.save-legacy": "a Python pickle (protocol 2; also torch.save's legacy format)"}


@pytest.mark.parametrize("kind", list(PICKLES))
def test_pickled_checkpoints_are_refused_everywhere_without_running_their_code(
        kind, tmp_path, capsys):
    from lowdose_bluesky.callbacks import LiveEnhancer
    from lowdose_bluesky.model import Enhancer, train_enhancer
    from lowdose_bluesky.model.checkpoint import EXPECTED, read_checkpoint

    # the payload is live: loaded the pickle way, it runs
    control = tmp_path / "control-marker"
    data = pickled(kind, control)
    if kind.startswith("torch.save"):
        loaded = torch.load(io.BytesIO(data), weights_only=False)
    else:
        loaded = pickle.loads(data)
    os.close(loaded["hook"])  # the file descriptor the payload opened
    assert control.exists()
    marker = tmp_path / "marker"
    path = tmp_path / "model.pt"
    path.write_bytes(pickled(kind, marker))
    said = f"checkpoint file {str(path)!r}: not an Enhancer checkpoint: "
    problem = (f"it is {PICKLES[kind]}" if PICKLES[kind] else "safetensors header claims")
    for load in (lambda: Enhancer.load(path),
                 lambda: train_enhancer(np.ones((1, 32, 32)), np.ones((1, 32, 32)), init=path)):
        with pytest.raises(ValueError) as info:
            load()
        assert str(info.value).startswith(said + problem) and str(info.value).endswith(EXPECTED)
    if PICKLES[kind]:
        assert "pickles can run arbitrary code when loaded and are never opened" in str(
            info.value)
    for load in (lambda: Enhancer.from_bytes(path.read_bytes()),
                 lambda: read_checkpoint(path.read_bytes())):
        with pytest.raises(ValueError, match=r"^checkpoint data: not an Enhancer checkpoint"):
            load()
    with pytest.raises(ValueError) as info:
        LiveEnhancer(None, process=False, method="supervised", pretrained=str(path))
    assert str(info.value).startswith("pretrained " + said + problem)
    with pytest.raises(SystemExit) as exit_info:
        main([*WORKER, "--pretrained", str(path)])
    assert exit_info.value.code == 2
    assert f"argument --pretrained: {said}{problem}" in capsys.readouterr().err
    assert not marker.exists()


@pytest.fixture(scope="module")
def checkpoint_bytes() -> bytes:
    """A small valid (untrained) U-Net checkpoint."""
    from lowdose_bluesky.model import Enhancer, Normalisation, build_network

    options = {"base_channels": 4}
    return Enhancer(build_network("unet", options), arch="unet", network_options=options,
                    normalisation=Normalisation(0.0, 1.0, 0.0, 1.0), device="cpu").to_bytes()


def flipped(data: bytes) -> bytes:
    bad = bytearray(data)
    bad[-5] ^= 0x10
    return bytes(bad)


def test_live_enhancer_and_worker_name_a_bad_checkpoint_file_before_starting(
        checkpoint_bytes, tmp_path, capsys, tiled_client):
    from lowdose_bluesky.callbacks import LiveEnhancer

    path = tmp_path / "model.safetensors"
    path.write_bytes(flipped(checkpoint_bytes))
    digest = (f"checkpoint file {str(path)!r}: corrupted Enhancer checkpoint: SHA-256 digest "
              "does not match (changed or damaged after it was written); expected a "
              "safetensors checkpoint written by Enhancer.save")
    def workers() -> int:
        return sum(t.name == "lowdose-live-enhancer" for t in threading.enumerate())

    before = workers()
    with pytest.raises(ValueError) as info:
        LiveEnhancer(tiled_client, process=False, method="supervised", pretrained=path)
    assert str(info.value).startswith("pretrained " + digest)
    assert workers() == before  # refused before its worker thread started
    with pytest.raises(SystemExit):
        main([*WORKER, "--pretrained", str(path)])
    assert f"argument --pretrained: {digest}" in capsys.readouterr().err
    with pytest.raises(ValueError, match=r"^pretrained must be an Enhancer, an existing "
                       r"checkpoint file or a result uid \(8-4-4-4-12 hex digits\), got "
                       r"'no-such-model.safetensors': no such file, and not a uid$"):
        LiveEnhancer(tiled_client, process=False, method="supervised",
                     pretrained="no-such-model.safetensors")
    with pytest.raises(ValueError, match=r"pretrained must be .*, got a dict"):
        LiveEnhancer(tiled_client, process=False, method="supervised", pretrained={"weights": 1})
    # a good file, and a uid (looked up when a run is analysed), are accepted
    path.write_bytes(checkpoint_bytes)
    for spec in (path, str(path), UID):
        LiveEnhancer(tiled_client, process=False, method="supervised", pretrained=spec,
                     progress=False).close()
    args = build_parser().parse_args([*WORKER, "--pretrained", str(path)])
    assert args.pretrained == str(path)


def test_a_bad_stored_checkpoint_is_named_by_its_result(checkpoint_bytes, tmp_path,
                                                        tiled_client):
    from lowdose_bluesky.recipes.tomography.recipe import _load
    from lowdose_bluesky.storage import write_result

    marker = tmp_path / "marker"
    for data, problem in ((flipped(checkpoint_bytes), "corrupted Enhancer checkpoint: "
                           "SHA-256 digest does not match"),
                          (pickled("pickle-5", marker), "not an Enhancer checkpoint: it "
                           "is a Python pickle (protocol 5")):
        uid = write_result(tiled_client, parent_uid="security", checkpoint=data,
                           metadata={"status": "complete"})
        with pytest.raises(ValueError, match=re.escape(f"checkpoint of result {uid}: "
                                                       f"{problem}")):
            _load(uid, tiled_client, "cpu")  # how the recipe loads pretrained=<uid>
    assert not marker.exists()


# ======================================================================= 0MQ documents
def test_documents_travel_as_json_and_pickles_are_refused(RE, txm, tmp_path):
    from lowdose_bluesky.callbacks.remote import deserialize_document, serialize_document
    from lowdose_bluesky.plans import lowdose_tomo_plan

    docs = []
    RE.subscribe(lambda name, doc: docs.append((name, doc)))
    RE(lowdose_tomo_plan(txm.detector, txm.rotation, sample_x=txm.sample_x,
                         shutter=txm.shutter, num_projections=3, num_darks=1, num_flats=1,
                         long_exposure=2.0, short_exposure=1.0))
    assert {"start", "descriptor", "resource", "datum", "event", "stop"} <= {n for n, _ in docs}
    for _, doc in docs:
        message = serialize_document(doc)
        back = deserialize_document(message)
        assert serialize_document(back) == message
        assert back == jsonable(doc)
    marker = tmp_path / "marker"
    for protocol in (0, 2, 5):
        with pytest.raises(ValueError, match=r"^0MQ message is not a JSON document"):
            deserialize_document(pickle.dumps({"uid": "x", "hook": RunsCode(marker)},
                                              protocol=protocol))
    with pytest.raises(ValueError, match=r"\(it is a pickle: publish with lowdose_bluesky"):
        deserialize_document(pickle.dumps({"hook": RunsCode(marker)}, protocol=5))
    with pytest.raises(ValueError, match="is JSON but not a document"):
        deserialize_document(b"[1, 2]")
    assert not marker.exists()


def jsonable(value):
    if isinstance(value, dict):
        return {str(k): jsonable(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [jsonable(v) for v in value]
    if isinstance(value, np.generic | np.ndarray):
        return jsonable(value.tolist())
    return value


class Relay:
    """A minimal bluesky-0MQ-proxy: publishers connect to ``in_port``, dispatchers to
    ``out_port``; it forwards messages as they are."""

    def __init__(self) -> None:
        self._ctx = zmq.Context()
        self._front = self._ctx.socket(zmq.SUB)
        self._front.setsockopt(zmq.SUBSCRIBE, b"")
        self.in_port = self._front.bind_to_random_port("tcp://127.0.0.1")
        self._back = self._ctx.socket(zmq.PUB)
        self.out_port = self._back.bind_to_random_port("tcp://127.0.0.1")
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._forward, daemon=True)
        self._thread.start()

    def _forward(self) -> None:
        while not self._stop.is_set():
            if self._front.poll(50):
                self._back.send(self._front.recv())

    def close(self) -> None:
        self._stop.set()
        self._thread.join()
        self._front.close(linger=0)
        self._back.close(linger=0)
        self._ctx.term()


def received(got: list[tuple[str, dict]]) -> list[tuple[str, dict]]:
    return [(name, doc) for name, doc in got if doc["uid"] != "ping"]


def test_worker_dispatcher_reads_json_and_drops_pickles_unopened(tmp_path, capsys):
    from lowdose_bluesky.callbacks.remote import make_dispatcher, make_publisher

    relay = Relay()
    dispatcher = make_dispatcher(f"127.0.0.1:{relay.out_port}")
    got = []
    dispatcher.subscribe(lambda name, doc: got.append((name, doc)))

    def listen() -> None:
        try:
            dispatcher.start()
        except asyncio.CancelledError:
            pass

    listener = threading.Thread(target=listen, daemon=True)
    listener.start()
    publisher = make_publisher(f"127.0.0.1:{relay.in_port}")
    marker = tmp_path / "marker"
    try:
        deadline = time.monotonic() + 30
        while not got:  # PUB/SUB: wait until the subscription has reached the publisher
            assert time.monotonic() < deadline, "no document came through the relay"
            publisher("start", {"uid": "ping", "time": 0.0})
            time.sleep(0.1)
        # someone on the network sends a pickle, the way bluesky's default Publisher does
        publisher._socket.send(b" ".join(
            [b"", b"start", pickle.dumps({"uid": "evil", "hook": RunsCode(marker)})]))
        sent = [("start", {"uid": "a", "time": 1.0, "scan_id": np.int64(3)}),
                ("stop", {"uid": "b", "run_start": "a", "time": 2.0, "exit_status": "success"})]
        for name, doc in sent:
            publisher(name, doc)
        deadline = time.monotonic() + 30
        while len(received(got)) < len(sent):
            assert time.monotonic() < deadline, got
            time.sleep(0.05)
    finally:
        while dispatcher._task is None and listener.is_alive():
            time.sleep(0.05)
        if listener.is_alive():
            dispatcher.loop.call_soon_threadsafe(dispatcher._task.cancel)
        listener.join(10)
        publisher._socket.close(linger=0)
        publisher._context.term()
        relay.close()
    assert [(n, d["uid"]) for n, d in received(got)] == [("start", "a"), ("stop", "b")]
    assert received(got)[0][1]["scan_id"] == 3
    assert not marker.exists()
    assert "0MQ message is not a JSON document (it is a pickle" in capsys.readouterr().out


# ======================================================================= 4. CLI paths
@pytest.fixture
def places(tmp_path, monkeypatch):
    """A working directory with a file, an empty directory and a directory named like a PNG."""
    (tmp_path / "a_file").write_text("x")
    (tmp_path / "empty_dir").mkdir()
    (tmp_path / "dir.png").mkdir()
    monkeypatch.chdir(tmp_path)  # the default ./lowdose_data would go here
    return tmp_path


WRITE_DIR = "expected a directory to write in (existing or to be created), got "
CATALOG = ("expected an existing data directory holding a Tiled catalog (DIR/tiled/catalog.db, "
           "written by 'demo', 'scan' or 'serve'), got ")
PNG_DIR = "expected a .png file in an existing writable directory, got "
CHECKPOINT = ("expected an existing checkpoint file (.safetensors, written by Enhancer.save) or "
              "a result uid (8-4-4-4-12 hex digits), got ")
SHOW = ["show", "some-uid", "--tiled", "http://127.0.0.1:9/api"]


@pytest.mark.parametrize(("argv", "message"), [
    (["scan", "--data-dir", "{d}/a_file"],
     "argument --data-dir: " + WRITE_DIR + "'{d}/a_file': it exists and is not a directory"),
    (["demo", "--data-dir", "{d}/a_file/sub"],
     "argument --data-dir: " + WRITE_DIR + "'{d}/a_file/sub': it cannot be created: "
     "'{d}/a_file' is not a directory"),
    (["serve", "--data-dir", "{d}/a_file"],
     "argument --data-dir: " + WRITE_DIR + "'{d}/a_file': it exists and is not a directory"),
    (["scan", "--data-dir", ""], "argument --data-dir: " + WRITE_DIR + "'': empty"),
    (["show", "u", "--data-dir", "{d}/missing"],
     "argument --data-dir: " + CATALOG + "'{d}/missing': no such directory; pass an existing "
     "data directory or --tiled URI"),
    (["show", "u", "--data-dir", "{d}/a_file"],
     "argument --data-dir: " + CATALOG + "'{d}/a_file': it is not a directory"),
    (["show", "u", "--data-dir", "{d}/empty_dir"],
     "argument --data-dir: " + CATALOG + "'{d}/empty_dir': it holds no tiled/catalog.db"),
    (["demo", "--figure", "{d}/figure.jpg"],
     "argument --figure: expected a file name ending in .png, got '{d}/figure.jpg'"),
    ([*SHOW, "--figure", "figure"], "argument --figure: expected a file name ending in .png, "
                                    "got 'figure'"),
    ([*SHOW, "--figure", "{d}/missing/figure.png"],
     "argument --figure: " + PNG_DIR + "'{d}/missing/figure.png': directory '{d}/missing' "
     "does not exist"),
    ([*WORKER, "--figure", "{d}/a_file/figure.png"],
     "argument --figure: " + PNG_DIR + "'{d}/a_file/figure.png': '{d}/a_file' is not a "
     "directory"),
    (["demo", "--figure", "{d}/dir.png"],
     "argument --figure: " + PNG_DIR + "'{d}/dir.png': it is a directory"),
    ([*WORKER, "--pretrained", "{d}/missing.safetensors"],
     "argument --pretrained: " + CHECKPOINT + "'{d}/missing.safetensors': no such file, and "
     "not a uid"),
    ([*WORKER, "--pretrained", "1b4e28ba"],
     "argument --pretrained: " + CHECKPOINT + "'1b4e28ba': no such file, and not a uid"),
    ([*WORKER, "--pretrained", "{d}/empty_dir"],
     "argument --pretrained: expected a checkpoint file or a result uid, got '{d}/empty_dir': "
     "it is a directory"),
    ([*WORKER, "--pretrained", "{d}/a_file"],
     "argument --pretrained: checkpoint file '{d}/a_file': not an Enhancer checkpoint: 1 bytes "
     "is too short for a safetensors file; expected a safetensors checkpoint"),
])
def test_cli_paths_are_checked_before_anything_starts(argv, message, places, capsys):
    before = sorted(p.name for p in places.iterdir())
    argv = [a.format(d=places) for a in argv]
    with pytest.raises(SystemExit) as info:
        main(argv)
    assert info.value.code == 2
    err = capsys.readouterr().err
    assert err.startswith("usage: lowdose-bluesky")
    assert message.format(d=places) in err
    assert sorted(p.name for p in places.iterdir()) == before  # nothing created or started


@pytest.mark.skipif(not hasattr(os, "geteuid") or os.geteuid() == 0,
                    reason="root may write anywhere")
def test_cli_paths_need_write_permission(places, capsys):
    locked = places / "locked"
    locked.mkdir(mode=0o500)
    try:
        for argv, message in (
                (["scan", "--data-dir", f"{locked}/data"], f"argument --data-dir: {WRITE_DIR}"
                 f"'{locked}/data': it cannot be created: no write permission in '{locked}'"),
                (["serve", "--data-dir", str(locked)],
                 f"argument --data-dir: {WRITE_DIR}'{locked}': no write permission in it"),
                (["demo", "--figure", f"{locked}/f.png"], f"argument --figure: {PNG_DIR}"
                 f"'{locked}/f.png': no write permission in '{locked}'")):
            with pytest.raises(SystemExit) as info:
                main(argv)
            assert info.value.code == 2
            assert message in capsys.readouterr().err
    finally:
        locked.chmod(0o700)


def test_cli_accepts_good_paths_without_creating_them(places):
    parser = build_parser()
    args = parser.parse_args(["demo", "--data-dir", "new/nested/data", "--figure",
                              "Figure.PNG"])
    assert args.data_dir == Path("new/nested/data") and args.figure == Path("Figure.PNG")
    assert not (places / "new").exists()
    (places / "data" / "tiled").mkdir(parents=True)
    (places / "data" / "tiled" / "catalog.db").write_bytes(b"")
    assert parser.parse_args(["show", "u", "--data-dir", "data"]).data_dir == Path("data")
    assert parser.parse_args([*WORKER, "--pretrained", UID]).pretrained == UID
    assert parser.parse_args(["serve", "--data-dir", "empty_dir"]).data_dir == Path("empty_dir")


# ======================================================================= 5. no key in logs
def test_unreachable_server_error_hides_the_key(debug_logs, capsys):
    port = free_port()
    with pytest.raises(ConnectionError) as info:
        connect(f"http://127.0.0.1:{port}/api/v1?api_key={SECRET}")
    assert str(info.value).startswith(f"cannot reach Tiled at http://127.0.0.1:{port}/api/v1: ")
    assert SECRET not in everything_said(info.value, debug_logs, capsys)
    for uri in (f"ftp://host/api?api_key={SECRET}", f"http://user:{SECRET}@127.0.0.1:{port}/"):
        with pytest.raises((ValueError, ConnectionError)) as info:
            connect(uri)
        assert SECRET not in everything_said(info.value, debug_logs, capsys)


def test_a_key_in_the_uri_reaches_no_log_record(tiled_client, debug_logs, capsys):
    server = tiled_client.embedded_server
    key = server.api_key
    assert "?api_key=" in server.uri  # tiled's form, passed on by users and tests
    client = connect(server.uri)
    ensure_container(client, "from-a-keyed-uri")
    embedded = connect()  # its own client gets the key too
    try:
        ensure_container(embedded, "x")
        said = everything_said(caplog=debug_logs, capsys=capsys)
        assert "HTTP Request: GET http://127.0.0.1" in said  # httpx did log its requests
        assert key not in said
        assert key not in repr(embedded.embedded_server) + embedded.embedded_server._repr_html_()
        assert repr(server) == (f"<embedded Tiled server http://127.0.0.1:{server.port}/api/v1 "
                                "(API key hidden)>")
    finally:
        close(embedded)


def test_worker_logs_its_tiled_uri_without_the_key(tiled_client, monkeypatch, debug_logs,
                                                   capsys):
    import signal

    from lowdose_bluesky.callbacks import remote

    subscribed = []

    class Idle:
        """A dispatcher that has nothing to dispatch."""

        def subscribe(self, callback):
            subscribed.append(callback)

        def start(self):
            remote.log.debug("dispatcher started and stopped")

        def stop(self):
            pass

    monkeypatch.setattr(remote, "make_dispatcher", lambda address: Idle())
    handler = signal.getsignal(signal.SIGTERM)
    server = tiled_client.embedded_server
    try:
        remote.run_worker("127.0.0.1:5999", server.uri, progress=False)
    finally:
        signal.signal(signal.SIGTERM, handler)
    assert [type(c).__name__ for c in subscribed] == ["LiveEnhancer"]
    said = everything_said(caplog=debug_logs, capsys=capsys)
    assert (f"worker listening on 127.0.0.1:5999, results to "
            f"http://127.0.0.1:{server.port}/api/v1") in said
    assert server.api_key not in said


@pytest.mark.parametrize("command", [
    ["worker", "--zmq", "127.0.0.1:5999", "--tiled"], ["show", "some-uid", "--tiled"]])
def test_commands_never_print_the_key_of_an_unreachable_server(
        command, debug_logs, capsys, restore_log_levels):
    port = free_port()
    assert main([*command, f"http://127.0.0.1:{port}/api/v1?api_key={SECRET}"]) == 2
    said = everything_said(caplog=debug_logs, capsys=capsys)
    assert f"lowdose-bluesky: error: cannot reach Tiled at http://127.0.0.1:{port}/api/v1: " in (
        said)
    assert SECRET not in said
