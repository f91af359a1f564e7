"""The Inside tab (ui/train/layer_stats_panel.py): per-layer signals from hand-made snapshots, and from a real run."""

from __future__ import annotations

import math

import numpy as np
import pytest
from PySide6.QtGui import QColor
from support import image_mlp

pytest.importorskip("pytestqt")

from neuralstudio.ui.train import layer_stats_panel as lsp  # noqa: E402
from neuralstudio.ui.train.layer_stats_panel import LayerStatsPanel, resample_histogram  # noqa: E402
from neuralstudio.ui.train.worker import BufferReporter, ReportBuffer, RunRequest  # noqa: E402

RUN_TIMEOUT_MS = 90_000
LAYERS = (("hidden_1", "sigmoid"), ("hidden_2", "relu"), ("digit", "softmax"))


def snapshot(epoch: int, *, batch: int | None = None, scale: float = 1.0, per_unit: bool = False) -> list[dict]:
    """One snapshot as the engine reports it (neuralstudio/ml/layer_stats.py), for the layers of LAYERS; without
    ``per_unit``, as for layers without a bias of their own per unit (convolutions...)."""
    rng = np.random.default_rng(epoch)
    out = []
    for i, (name, act) in enumerate(LAYERS):
        w = rng.normal(0.0, 0.1 * (1 + epoch), 500)
        a = rng.uniform(0.0, 1.0, 500)
        wc, we = np.histogram(w, bins=20)
        ac, ae = np.histogram(a, bins=20)
        out.append({"layer": name, "class_name": "Dense", "activation": act,
                    "grad_norm": scale * 10.0 ** (i - 3) * (epoch + 1),
                    "bias_grad_norm": 3.0 * 10.0 ** (2 * i - 6) if per_unit else None,
                    "bias_grad_rms": 10.0 ** (2 * i - 6) if per_unit else None,
                    "update_ratio": None if epoch == 0 else 10.0 ** (-2 - i),
                    "weight_hist": {"counts": wc.tolist(), "edges": we.tolist()},
                    "activation_hist": {"counts": ac.tolist(), "edges": ae.tolist()},
                    "dead_fraction": 0.75 if act == "relu" else None,
                    "saturated_fraction": 0.1 if act == "sigmoid" else None,
                    "epoch": epoch, "batch": batch})
    return out


@pytest.fixture
def panel(qtbot):
    said: list[list[dict]] = []

    def interpret(stats: list[dict]) -> str:
        said.append(stats)
        return f"{len(stats)} layers at epoch {stats[0]['epoch'] + 1}."

    p = LayerStatsPanel(interpret=interpret)
    p.said = said
    qtbot.addWidget(p)
    p.resize(1400, 320)
    return p


def test_the_panel_shows_each_layer_of_the_snapshots(qtbot, panel):
    panel.add_snapshots([(e, snapshot(e)) for e in range(3)])
    panel.refresh()
    assert panel.layer_names() == ["hidden_1", "hidden_2", "digit"]
    assert panel.table.rowCount() == 3
    assert [panel.table.item(k, 0).text() for k in range(3)] == [
        "hidden_1\nDense · sigmoid", "hidden_2\nDense · relu", "digit\nDense · softmax"]
    # the latest values in the rows; more than half dead is shown in colour
    assert panel.table.item(0, 1).text() == "3.0e-03"
    assert panel.table.item(1, 3).text() == "75% dead"
    assert panel.table.item(1, 3).foreground().color() == QColor(lsp.ALARM_COLOR)
    assert panel.table.item(0, 3).text() == "10% saturated"
    assert panel.table.item(0, 3).foreground().color() != QColor(lsp.ALARM_COLOR)
    assert panel.table.item(2, 3).text() == "–"
    # one curve per layer with one point per epoch, at x = epoch + 1 (as the loss plot's epochs)
    x, y = panel.grad_plot.values("hidden_1")
    np.testing.assert_allclose(x, [1, 2, 3])
    np.testing.assert_allclose(y, [1e-3, 2e-3, 3e-3])
    x, y = panel.ratio_plot.values("digit")
    assert math.isnan(y[0])  # the first epoch has no update ratio: a gap
    np.testing.assert_allclose(y[1:], [1e-4, 1e-4])
    assert len(panel.grad_plot.points.data) == 9 and len(panel.ratio_plot.points.data) == 6
    # the y ranges cover the curves, and the update plot keeps Karpathy's 1e-3 in view
    lo, hi = panel.grad_plot.item.viewRange()[1]
    assert lo <= -3 and hi >= math.log10(3e-1)
    lo, hi = panel.ratio_plot.item.viewRange()[1]
    assert lo <= -4 and hi >= -2.5
    # the strips: one column per epoch, one band per layer, all in view; every epoch's column holds something
    for strip in (panel.weights_plot, panel.activations_plot):
        img = strip.image.image
        assert img.shape == (3, 3 * (lsp.STRIP_BINS + lsp.STRIP_GAP_ROWS))
        assert np.all(img.max(axis=1) == pytest.approx(1.0))
        ticks = strip.item.getAxis("left")._tickLevels[0]
        assert [t[1] for t in sorted(ticks, reverse=True)] == ["hidden_1", "hidden_2", "digit"]  # first on top
        assert "hidden_1:" in strip.widget.toolTip()  # the value range of each band
    # the sentence of the latest snapshot, on top
    assert panel.sentence_label.text() == "3 layers at epoch 3."
    assert panel.said[-1][0]["epoch"] == 2


def test_every_part_explains_itself(panel):
    assert "Nielsen" in panel.grad_plot.widget.toolTip() and "vanishing" in panel.grad_plot.widget.toolTip()
    assert "Karpathy" in panel.ratio_plot.widget.toolTip() and "1e-3" in panel.ratio_plot.widget.toolTip()
    assert "saturated" in panel.activations_plot.widget.toolTip()
    assert panel.weights_plot.widget.toolTip() and panel.sentence_label.toolTip()
    assert all(panel.table.horizontalHeaderItem(c).toolTip() for c in range(panel.table.columnCount()))
    # the band around 1e-3, in the log plot's coordinates
    band = panel.ratio_band.rect()
    assert band.top() < -3 < band.bottom() and panel.ratio_line.line().y1() == -3


def test_the_layers_are_compared_per_unit_when_they_have_biases_of_their_own(panel):
    panel.add_snapshots([(e, snapshot(e, per_unit=True)) for e in range(2)])
    panel.refresh()
    assert panel.measure == "bias_grad_rms"
    head = panel.table.horizontalHeaderItem(1)
    assert head.text() == "Gradient\nper unit" and "Nielsen calls delta" in head.toolTip()
    assert panel.grad_plot.widget.accessibleName() == "Gradient per unit"
    assert "per unit" in panel.grad_plot.widget.toolTip()
    # the plot and the column show the per-unit figure: two decades a layer here, not the kernel norm's one
    for name, value in (("hidden_1", 1e-6), ("digit", 1e-2)):
        x, y = panel.grad_plot.values(name)
        np.testing.assert_allclose(x, [1, 2])
        np.testing.assert_allclose(y, [value, value])
    assert [panel.table.item(k, 1).text() for k in range(3)] == ["1.0e-06", "1.0e-04", "0.01"]
    tip = panel.table.item(0, 1).toolTip()  # every figure of the layer, the kernel norm among them
    assert tip.startswith("hidden_1: gradient per unit 1.0e-06") and "kernel gradient norm 2.0e-03" in tip
    lo, hi = panel.grad_plot.item.viewRange()[1]
    assert lo <= -6 and hi >= -2

    # a network whose first layer has no bias per unit (a convolution): compared by the kernel norms, and said so
    panel.add_snapshots([(2, snapshot(2))])
    panel.refresh()
    assert panel.measure == "grad_norm" and head.text() == "Gradient\nnorm"
    assert panel.grad_plot.widget.accessibleName() == "Gradient norm"
    np.testing.assert_allclose(panel.grad_plot.values("hidden_1")[1], [1e-3, 2e-3, 3e-3])
    assert panel.table.item(0, 1).text() == "3.0e-03"
    panel.reset()
    assert panel.measure == "bias_grad_rms" and head.text() == "Gradient\nper unit"


def test_a_later_snapshot_of_an_epoch_replaces_the_earlier_one(panel):
    panel.add_snapshots([(0, snapshot(0)), (1, snapshot(1, batch=40, scale=5.0)), (1, snapshot(1))])
    panel.refresh()
    x, y = panel.grad_plot.values("hidden_1")
    np.testing.assert_allclose(x, [1, 2])
    np.testing.assert_allclose(y, [1e-3, 2e-3])
    assert panel.weights_plot.image.image.shape[0] == 2
    assert panel.snapshots == 3


def test_a_shown_panel_draws_in_stages_and_a_hidden_one_when_shown(qtbot, panel):
    panel.show()
    qtbot.waitExposed(panel)
    panel.add_snapshots([(0, snapshot(0))])
    # nothing at once: the snapshot lands as the training thread is busiest (an epoch's end)
    assert panel.drawing and panel.table.rowCount() == 0
    # then the table and the sentence, then the plots one per timer tick
    qtbot.waitUntil(lambda: panel.table.rowCount() == 3, timeout=5000)
    assert panel.sentence_label.text() == "3 layers at epoch 1."
    assert len(panel.grad_plot.points.data) == 0
    assert panel.weights_plot.image.image.shape[0] == 1 and not panel.weights_plot.image.image.any()
    qtbot.waitUntil(lambda: len(panel.grad_plot.points.data) == 3, timeout=5000)
    qtbot.waitUntil(lambda: not panel.drawing, timeout=5000)
    assert panel.weights_plot.image.image.any() and panel.activations_plot.image.image.any()
    panel.hide()
    panel.add_snapshots([(1, snapshot(1))])
    assert panel.drawing and len(panel.grad_plot.points.data) == 3  # kept, not drawn
    panel.show()
    qtbot.waitUntil(lambda: not panel.drawing, timeout=5000)
    assert len(panel.grad_plot.points.data) == 6



def test_a_live_update_waits_for_its_gate_and_not_for_ever(qtbot, panel, monkeypatch):
    """The Train window shuts the gate from an epoch's snapshot until batches flow again: a stage that met the
    recompile's trace stalled the window 53-67 ms. A gate that never opens delays the drawing, never loses it."""
    monkeypatch.setattr(lsp, "SETTLE_MS", 10)
    monkeypatch.setattr(lsp, "GATE_WAIT_MS", 600)
    flowing = [False]
    panel.set_gate(lambda: flowing[0])
    panel.show()
    qtbot.waitExposed(panel)
    panel.add_snapshots([(0, snapshot(0))])
    qtbot.wait(300)
    assert panel.table.rowCount() == 0 and panel.drawing  # shut: nothing drawn yet
    flowing[0] = True
    qtbot.waitUntil(lambda: not panel.drawing, timeout=5000)
    assert len(panel.grad_plot.points.data) == 3
    flowing[0] = False  # and a gate that stays shut: drawn after GATE_WAIT_MS a stage
    panel.add_snapshots([(1, snapshot(1))])
    qtbot.waitUntil(lambda: not panel.drawing, timeout=10_000)
    assert len(panel.grad_plot.points.data) == 6

def test_many_layers_get_their_items_a_few_per_turn(qtbot, panel):
    names = [f"dense_{i}" for i in range(2 * lsp.NEW_LAYERS_PER_TURN + 1)]
    stats = [{**snapshot(0)[0], "layer": n} for n in names]
    panel.show()
    qtbot.waitExposed(panel)
    panel.add_snapshots([(0, stats)])
    qtbot.waitUntil(lambda: panel.table.rowCount() > 0, timeout=5000)  # after the settling delay
    assert panel.table.rowCount() == lsp.NEW_LAYERS_PER_TURN
    qtbot.waitUntil(lambda: not panel.drawing, timeout=5000)
    assert panel.table.rowCount() == len(names) and list(panel.grad_plot.curves) == names
    assert panel.weights_plot.image.image.shape[1] == len(names) * (lsp.STRIP_BINS + lsp.STRIP_GAP_ROWS)


def test_reset_forgets_the_run_and_says_when_the_signals_are_off(panel):
    panel.add_snapshots([(0, snapshot(0))])
    panel.refresh()
    panel.reset(enabled=False)
    assert panel.layer_names() == [] and panel.table.rowCount() == 0 and not panel.grad_plot.curves
    assert panel.sentence_label.text() == lsp.OFF_TEXT
    panel.reset(enabled=True)
    assert panel.sentence_label.text() == lsp.WAITING_TEXT


def test_odd_values_leave_gaps_not_errors(panel):
    stats = snapshot(0)
    stats[0].update(grad_norm=None, update_ratio=float("nan"), activation_hist=None, dead_fraction=None)
    stats[1].update(grad_norm=0.0, weight_hist={"counts": [], "edges": []})
    stats[2].update(weight_hist={"counts": [4], "edges": [0.5, 0.5]})  # all weights equal
    panel.add_snapshots([(0, stats)])
    panel.refresh()
    assert panel.grad_plot.values("hidden_1")[0].size == 0  # no point at all: nothing to draw
    assert panel.table.item(0, 1).text() == "–" and panel.table.item(1, 1).text() == "0"  # no gradient at all
    assert panel.grad_plot.values("hidden_2")[0].size == 0  # but no point on a log plot
    img = panel.weights_plot.image.image
    assert np.isfinite(img).all() and img.max() == pytest.approx(1.0)


def test_a_failing_sentence_does_not_stop_the_plots(qtbot):
    def broken(_stats: list[dict]) -> str:
        raise KeyError("grad_norm")

    p = LayerStatsPanel(interpret=broken)
    qtbot.addWidget(p)
    p.add_snapshots([(0, snapshot(0))])
    p.refresh()
    assert p.sentence_label.text() == "" and len(p.grad_plot.points.data) == 3


def test_log_axes_label_decades_and_over_a_short_span_2_and_5_times_them():
    decades, minor = lsp.log_ticks(-3.2, 0.1)
    assert [t for _, t in decades] == ["0.001", "0.01", "0.1", "1"] and minor == []
    decades, minor = lsp.log_ticks(-5.5, -4.1)
    assert [t for _, t in decades] == ["1e-5"]
    assert [t for _, t in minor] == ["5e-6", "2e-5", "5e-5"]


def test_histograms_are_resampled_keeping_their_counts():
    counts, edges = [1, 2, 3, 4], [0.0, 1.0, 2.0, 3.0, 4.0]
    out = resample_histogram(counts, edges, 0.0, 4.0, bins=8)
    np.testing.assert_allclose(out, [0.5, 0.5, 1, 1, 1.5, 1.5, 2, 2])
    out = resample_histogram(counts, edges, 1.0, 3.0, bins=2)  # what lies outside piles up in the end bins
    np.testing.assert_allclose(out, [3, 7])
    assert resample_histogram([5], [2.0, 2.0], 0.0, 4.0, bins=4).tolist() == [0, 0, 5, 0]
    assert resample_histogram([], [], 0.0, 1.0, bins=3).tolist() == [0, 0, 0]


def test_the_worker_buffer_carries_layer_stats():
    buf = ReportBuffer()
    reporter = BufferReporter(buf)
    stats = snapshot(0)
    reporter.on_layer_stats(0, stats)
    stats[0]["grad_norm"] = -1.0  # the trainer's own objects may change afterwards
    d = buf.drain()
    assert d and [e for e, _ in d.layer_stats] == [0]
    assert d.layer_stats[0][1][0]["grad_norm"] == pytest.approx(1e-3)
    assert not buf.drain()
    assert RunRequest(design=None, dataset=None, settings=None).layer_stats is False


# ----------------------------------------------------------------------------- through the Train workspace
@pytest.fixture
def workspace(train_workspace):
    return train_workspace  # tests/ui/conftest.py


def test_a_run_with_the_option_ticked_fills_the_inside_tab(qtbot, workspace):
    from neuralstudio.ml.layer_stats import interpret

    ws = workspace
    ws.show()
    qtbot.waitExposed(ws)
    panel = ws.layer_stats_panel
    ws.bottom_tabs.setCurrentWidget(panel)
    assert ws.bottom_tabs.tabText(ws.bottom_tabs.currentIndex()) == "Inside"
    ws.settings_panel.layer_stats_box.setChecked(True)
    ws.set_design(image_mlp("inside", hidden=16, activation="relu", epochs=2))
    assert ws.start()
    assert ws._request.layer_stats is True
    qtbot.waitUntil(lambda: not ws.is_running(), timeout=RUN_TIMEOUT_MS)
    res = ws.last_result
    assert res is not None and res.status == "finished", ws.last_message
    qtbot.waitUntil(lambda: not panel.drawing, timeout=5000)
    # every trainable layer, one point per epoch, the sentence of the last snapshot
    assert panel.layer_names() == ["hidden", "digit"]
    assert panel.snapshots >= 2 and len(res.layer_stats) == 2
    for name in ("hidden", "digit"):
        x, y = panel.grad_plot.values(name)
        np.testing.assert_allclose(x, [1, 2])
        assert np.all(np.isfinite(y)) and np.all(y > 0)
    assert np.isfinite(panel.ratio_plot.values("hidden")[1]).all()
    assert panel.weights_plot.image.image.shape[0] == 2 and panel.activations_plot.image.image.any()
    assert panel.table.item(0, 3).text().endswith("dead")  # a ReLU layer
    assert panel.sentence_label.text() == interpret(res.layer_stats[-1])
    # Dense layers on flat images: compared per unit, the figures of the run itself
    assert panel.measure == "bias_grad_rms"
    assert panel.table.horizontalHeaderItem(1).text() == "Gradient\nper unit"
    np.testing.assert_allclose(panel.grad_plot.values("digit")[1], [s[-1]["bias_grad_rms"] for s in res.layer_stats],
                               rtol=1e-6)

    # the next run without the option: the panel forgets the last one and says the signals are off
    ws.settings_panel.layer_stats_box.setChecked(False)
    assert ws.start()
    assert ws._request.layer_stats is False
    assert panel.layer_names() == [] and panel.sentence_label.text() == lsp.OFF_TEXT
    qtbot.waitUntil(lambda: not ws.is_running(), timeout=RUN_TIMEOUT_MS)
    assert ws.last_result.layer_stats == [] and panel.layer_names() == []


@pytest.mark.slow
def test_the_deep_sigmoid_template_shows_its_first_layer_two_decades_below_the_last(qtbot, workspace):
    """Chapter 5's lesson as a learner sees it: one short epoch of nielsen-deep-sigmoid, the Inside tab open."""
    from neuralstudio.core.templates import load_template

    ws = workspace
    ws.show()
    qtbot.waitExposed(ws)
    panel = ws.layer_stats_panel
    ws.bottom_tabs.setCurrentWidget(panel)
    ws.settings_panel.layer_stats_box.setChecked(True)
    design = load_template("nielsen-deep-sigmoid")
    design.training = design.training.updated(epochs=1, seed=1)
    ws.set_design(design)
    assert ws.start()
    qtbot.waitUntil(lambda: not ws.is_running(), timeout=RUN_TIMEOUT_MS)
    assert ws.last_result is not None and ws.last_result.status == "finished", ws.last_message
    qtbot.waitUntil(lambda: not panel.drawing, timeout=5000)
    assert panel.layer_names() == ["hidden_1", "hidden_2", "hidden_3", "digit"]
    assert panel.grad_plot.widget.accessibleName() == "Gradient per unit"
    first, last = panel.grad_plot.values("hidden_1")[1][-1], panel.grad_plot.values("digit")[1][-1]
    assert last / first >= 100, last / first
    text = panel.sentence_label.text()
    assert text.startswith("The first layer's gradients are ") and text.endswith(
        "x smaller than the last's: it learns slowly (vanishing gradients)."), text
    assert f"{last / first:,.0f}x" in text


@pytest.mark.parametrize(("epochs", "labels"), [(2, ["1", "2"]), (9, ["1", "4", "7"])])
def test_every_plot_labels_whole_epochs_and_few_of_them(panel, epochs, labels):
    """pyqtgraph's own ticks put halves between epochs, and 120 px strips ran their labels together ("1.01.52.0")."""
    panel.add_snapshots([(e, snapshot(e)) for e in range(epochs)])
    panel.refresh()
    panel.finish_drawing()
    for widget in panel.plot_widgets():
        levels = widget.getPlotItem().getAxis("bottom")._tickLevels  # what setTicks() fixed
        assert [[label for _, label in level] for level in levels] == [labels], widget.objectName()


def test_the_plot_titles_fit_their_plots_and_the_sentence_keeps_an_early_vanishing_gradient(qtbot):
    """At a 1366 px window a plot is about 90 px wide: "Gradient per unit" and "Update / weight" were clipped."""
    from PySide6.QtGui import QFontMetrics

    panel = LayerStatsPanel()  # the engine's own sentence
    qtbot.addWidget(panel)
    panel.resize(900, 320)
    panel.show()
    qtbot.waitExposed(panel)
    grads = {0: (2.9e-5, 4.3e-3), 1: (1.5e-3, 1.9e-3)}
    for epoch, (first, last) in grads.items():
        stats = snapshot(epoch, per_unit=True)
        stats[0]["bias_grad_rms"], stats[-1]["bias_grad_rms"] = first, last
        stats[1]["dead_fraction"] = None
        panel.add_snapshots([(epoch, stats)])
    panel.refresh()
    panel.finish_drawing()
    assert "After epoch 1 the first layer's gradients were 148x smaller" in panel.sentence_label.text()
    for widget in panel.plot_widgets():
        item = widget.getPlotItem()
        title = item.titleLabel.text
        width = QFontMetrics(item.titleLabel.item.font()).horizontalAdvance(title)
        # 15% to spare: X11's fonts ran wider than the offscreen platform's (the clipped titles fitted here)
        assert width <= 0.85 * item.getViewBox().width(), (title, width, item.getViewBox().width())

