"""Smoke test of ``benchmarks/paper_synthetic.py`` in ``--quick`` mode."""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path

import pytest

BENCH_DIR = Path(__file__).resolve().parents[1] / "benchmarks"


def _load_script():
    """Import the benchmark script as the module ``paper_synthetic``."""
    if str(BENCH_DIR) not in sys.path:
        sys.path.insert(0, str(BENCH_DIR))  # for ``import _results`` (and spawned workers)
    spec = importlib.util.spec_from_file_location("paper_synthetic",
                                                  BENCH_DIR / "paper_synthetic.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.mark.slow
@pytest.mark.timeout(900)
def test_paper_synthetic_quick(tmp_path):
    script = _load_script()
    results = tmp_path / "RESULTS.md"
    figures = tmp_path / "figures"
    real_results = BENCH_DIR / "RESULTS.md"
    before = real_results.read_text() if real_results.exists() else None

    info = script.main(["--quick", "--output", str(results), "--figures-dir", str(figures)])

    text = results.read_text()
    assert "<!-- BEGIN paper_synthetic -->" in text and "<!-- END paper_synthetic -->" in text
    assert "| noise | raw | median 3x3 | TV (Chambolle) |" in text
    assert "| 10 % |" in text and "| 30 % |" in text
    assert "### Poisson dose series" in text and "### Goals" in text
    for png in info["figures"]:
        assert png.exists() and png.stat().st_size > 1000
    assert "](figures/paper_synthetic_histograms.png)" in text
    for level in (10.0, 30.0):
        for scores in info["gauss"]["scores"][level].values():
            assert 0 < scores["ssim"] <= 1 and scores["psnr"] > 0
    # the real RESULTS.md is left alone
    assert (real_results.read_text() if real_results.exists() else None) == before
