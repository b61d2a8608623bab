"""The public namespace: flat, complete, and free of torch and bluesky."""

from __future__ import annotations

import subprocess
import sys

import lowdose_bluesky.sr as sr


def test_all_names_exist() -> None:
    assert sorted(sr.__all__) == sorted(set(sr.__all__))
    for name in sr.__all__:
        assert hasattr(sr, name), name


def test_imports_neither_torch_nor_bluesky() -> None:
    code = ("import sys, lowdose_bluesky.sr; "
            "print(sorted(m for m in ('torch', 'bluesky', 'ophyd') if m in sys.modules))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         check=True, timeout=60)
    assert out.stdout.strip() == "[]"
