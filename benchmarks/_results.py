"""Shared helpers of the benchmark scripts: machine facts and RESULTS.md sections."""

from __future__ import annotations

import os
import platform
import re
import sys
from importlib import metadata
from pathlib import Path

RESULTS = Path(__file__).with_name("RESULTS.md")
HEADER = ("# Benchmark results\n\nEach section is rewritten by the script named in it; "
          "numbers come from the machine described in the section.\n")


def machine_info() -> str:
    """One markdown line describing this machine and the key package versions."""
    try:
        import torch

        gpu = torch.cuda.get_device_name(0) if torch.cuda.is_available() else "none"
        torch_v = torch.__version__
    except ImportError:  # pragma: no cover - torch is a dependency
        gpu, torch_v = "unknown", "absent"
    mem = ""
    if hasattr(os, "sysconf") and "SC_PHYS_PAGES" in os.sysconf_names:
        mem = f", {os.sysconf('SC_PHYS_PAGES') * os.sysconf('SC_PAGE_SIZE') / 2**30:.0f} GiB RAM"
    versions = ", ".join(f"{p} {metadata.version(p)}" for p in
                         ("bluesky", "ophyd", "ophyd-async", "tiled", "bluesky-tiled-plugins",
                          "numpy", "h5py"))
    return (f"Machine: {platform.machine()}, {os.cpu_count()} CPU cores{mem}, GPU: {gpu}; "
            f"Python {sys.version.split()[0]}, torch {torch_v}, {versions}.")


def write_section(name: str, body: str, path: Path | None = None) -> None:
    """Replace (or append) the section ``name`` of ``path`` (RESULTS.md) with ``body``."""
    path = RESULTS if path is None else Path(path)
    text = path.read_text() if path.exists() else HEADER
    begin, end = f"<!-- BEGIN {name} -->", f"<!-- END {name} -->"
    block = f"{begin}\n{body.rstrip()}\n{end}"
    pattern = re.compile(re.escape(begin) + ".*?" + re.escape(end), re.S)
    text = pattern.sub(lambda _: block, text) if pattern.search(text) else (
        text.rstrip() + "\n\n" + block + "\n")
    path.write_text(text)
