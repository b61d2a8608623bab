"""LiveFigure: the snapshot is thread-safe, drawn headless, and fed by a real live run."""

import threading

import numpy as np
import pytest
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure
from PIL import Image

from lowdose_bluesky.callbacks import LiveEnhancer, LiveFigure

from ._live import TRAIN, scan


def _figure() -> Figure:
    fig = Figure()
    FigureCanvasAgg(fig)
    return fig


def test_draw_shows_curve_projection_and_slice():
    live = LiveFigure()
    live.reset("abcdef0123")
    for epoch, (loss, val) in enumerate([(0.5, 20.0), (0.3, 23.5)], start=1):
        live.add_epoch({"epoch": epoch, "train_loss": loss, "val_psnr": val})
    raw, enhanced = np.random.default_rng(0).random((2, 16, 16))
    live.set_projection(7, raw, enhanced)
    live.set_slices(raw[:8], enhanced[:8])
    fig = _figure()
    live.draw(fig)
    curve, p_raw, p_enh, s_raw = fig.axes[:4]
    np.testing.assert_array_equal(curve.lines[0].get_ydata(), [0.5, 0.3])
    assert list(fig.axes[5].lines[0].get_ydata()) == [20.0, 23.5]  # PSNR on the twin axis
    assert p_raw.get_title() == "projection 7 raw" and p_enh.get_title() == "projection 7 enhanced"
    np.testing.assert_allclose(p_enh.images[0].get_array(), enhanced)
    assert s_raw.images[0].get_array().shape == (8, 16)
    assert fig.get_suptitle() == "run abcdef01: reconstructed"


def test_refresh_redraws_only_on_change():
    live, fig = LiveFigure(), _figure()
    assert live.refresh(fig) is True
    assert live.refresh(fig) is False
    live.stage("training")
    assert live.refresh(fig) is True


def test_updates_from_another_thread_are_consistent():
    live = LiveFigure()
    live.reset("run")

    def feed():
        for epoch in range(1, 201):
            live.add_epoch({"epoch": epoch, "train_loss": 1 / epoch, "val_psnr": None})

    worker = threading.Thread(target=feed)
    worker.start()
    while worker.is_alive():
        epochs = live.snapshot()["epochs"]
        assert [e[0] for e in epochs] == list(range(1, len(epochs) + 1))
    worker.join()
    assert len(live.snapshot()["epochs"]) == 200


def test_bad_interval():
    with pytest.raises(ValueError, match="min_interval must be a number >= 0, got -1"):
        LiveFigure(min_interval=-1)


def test_live_run_writes_the_figure(tiled_client, live_RE, live_txm, tmp_path):
    path = tmp_path / "live.png"
    figure = LiveFigure(path, min_interval=0)
    live = LiveEnhancer(tiled_client, process=False, method="supervised",
                        epochs=3, training_budget=None, progress=False, figure=figure,
                        train_options=TRAIN)
    live_RE.subscribe(live)
    (uid,) = scan(live_RE, live_txm, num_projections=9)
    live.wait(timeout=300)
    state = figure.snapshot()
    assert state["run"] == uid and state["stage"] == "reconstructed"
    assert [e[0] for e in state["epochs"]] == [1, 2, 3]
    assert state["projection"][0] == 8  # the last projection enhanced
    assert state["slices"][1].shape == (32, 32)
    with Image.open(path) as png:
        assert png.format == "PNG" and png.size[0] > 500
    live.close()
