"""A ``lowdose-bluesky serve`` subprocess for tests that need a server they can kill."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
from pathlib import Path

import httpx

from lowdose_bluesky.storage import API_KEY_ENV

KEY = "k3yfortests0123456789abcdef"


def free_port() -> int:
    """A TCP port free on loopback right now."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def start_server(data_dir: Path, port: int, *, key: str = KEY,
                 timeout: float = 120.0) -> subprocess.Popen:
    """Start ``lowdose-bluesky serve`` on ``data_dir`` and wait until it answers."""
    env = {**os.environ, API_KEY_ENV: key, "PYTHONUNBUFFERED": "1"}
    proc = subprocess.Popen(
        [sys.executable, "-m", "lowdose_bluesky.cli", "serve", "--data-dir", str(data_dir),
         "--port", str(port)], stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
        env=env)
    deadline = time.monotonic() + timeout
    while True:
        if proc.poll() is not None:
            raise RuntimeError(f"serve exited: {proc.communicate()[0]}")
        try:
            if httpx.get(f"http://127.0.0.1:{port}/healthz", timeout=2,
                         trust_env=False).status_code == 200:
                return proc
        except httpx.HTTPError:
            pass
        if time.monotonic() > deadline:
            proc.kill()
            raise RuntimeError("serve never answered /healthz")
        time.sleep(0.3)


def kill(proc: subprocess.Popen) -> None:
    """SIGKILL the server (no clean shutdown) and reap it."""
    if proc.poll() is None:
        proc.kill()
    proc.communicate(timeout=30)
