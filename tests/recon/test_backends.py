"""Backend registry, ``auto`` selection (TomoPy first) and angle weights."""

from __future__ import annotations

import importlib.machinery
import subprocess
import sys
import types

import numpy as np
import pytest

from lowdose_bluesky.recon import (
    BACKENDS,
    ReconBackend,
    angle_weights,
    available_backends,
    get_backend,
    reconstruct,
)
from lowdose_bluesky.recon.backends import TomopyGridrec


def test_protocol_and_registry() -> None:
    assert set(BACKENDS) == {"tomopy", "numba", "torch", "algotom"}
    for name in available_backends():
        backend = get_backend(name)
        assert isinstance(backend, ReconBackend)
        assert backend.name == name


def test_auto_is_measured_default_without_tomopy(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(BACKENDS, "tomopy", (TomopyGridrec, lambda: False))
    assert "tomopy" not in available_backends()
    assert get_backend("auto").name == "numba"
    with pytest.raises(ValueError, match="backend 'tomopy' is not available here"):
        get_backend("tomopy")


def test_auto_prefers_tomopy_when_importable(monkeypatch: pytest.MonkeyPatch) -> None:
    """With a stand-in ``tomopy`` module: auto picks gridrec and calls it as the paper did."""
    calls: dict = {}

    def fake_recon(tomo, theta, **kwargs):
        calls.update(tomo=tomo, theta=theta, **kwargs)
        return np.zeros((tomo.shape[1], tomo.shape[2], tomo.shape[2]), np.float32)

    module = types.ModuleType("tomopy")
    module.__spec__ = importlib.machinery.ModuleSpec("tomopy", None)
    module.recon = fake_recon
    monkeypatch.setitem(sys.modules, "tomopy", module)
    assert available_backends()[0] == "tomopy"
    assert get_backend().name == "tomopy"
    angles = np.array([0.0, 45.0, 90.0])
    out = reconstruct(np.ones((3, 2, 8)), angles, center=3.0)
    assert out.shape == (2, 8, 8)
    assert calls["algorithm"] == "gridrec" and calls["filter_name"] == "parzen"
    assert calls["center"] == 3.0 and calls["sinogram_order"] is False
    np.testing.assert_allclose(calls["theta"], -np.deg2rad(angles))  # mirrored convention


@pytest.mark.parametrize(
    "angles",
    [np.linspace(0, 180, 181), np.linspace(0, 180, 180, endpoint=False),
     np.linspace(0, 360, 361), np.sort(np.random.default_rng(0).uniform(0, 180, 50))],
)
def test_angle_weights_sum_to_pi(angles: np.ndarray) -> None:
    w = angle_weights(np.deg2rad(angles))
    assert w.shape == angles.shape and np.all(w >= 0)
    assert abs(w.sum() - np.pi) < 1e-9


def test_angle_weights_missing_wedge_capped() -> None:
    w = angle_weights(np.deg2rad(np.linspace(0, 90, 91)))
    np.testing.assert_allclose(w, np.deg2rad(1.0))  # the 90 deg wedge counts as one step


def test_import_stays_light() -> None:
    """Importing recon pulls in neither bluesky nor the heavy optional engines."""
    code = ("import sys, lowdose_bluesky.recon; "
            "print(sorted(m for m in ('torch', 'numba', 'algotom', 'bluesky', 'tomopy') "
            "if m in sys.modules))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         check=True)
    assert out.stdout.strip() == "[]"
