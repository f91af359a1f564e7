"""The live training plots: growing buffers, log scale, hover values, overfitting marks, long repaints."""

from __future__ import annotations

import numpy as np
import pytest
from PySide6.QtCore import QPointF

from neuralstudio.ui.train import plots as plots_mod
from neuralstudio.ui.train.plots import GrowingSeries, TrainingPlots
from neuralstudio.ui.train.workspace import TrainWorkspace, overfitting_start


def shown_plots(qtbot, width: int, height: int) -> TrainingPlots:
    plots = TrainingPlots()
    qtbot.addWidget(plots)
    plots.resize(width, height)
    plots.show()
    qtbot.waitExposed(plots)
    return plots


def test_growing_series_doubles_and_keeps_values():
    s = GrowingSeries(4)
    for i in range(5):
        s.append(i, i * 10)
    assert s.capacity == 8 and len(s) == 5
    s.extend(np.arange(5, 20), np.arange(5, 20) * 10)
    assert s.capacity == 32 and len(s) == 20
    np.testing.assert_array_equal(s.x, np.arange(20))
    np.testing.assert_array_equal(s.y, np.arange(20) * 10)
    buf = s._x
    s.clear()
    s.append(1, 2)
    assert s._x is buf  # cleared, not reallocated


def test_overfitting_rule():
    assert overfitting_start([1.0, 0.8, 0.6, 0.5], [0.9, 0.7, 0.75, 0.8]) == 2
    assert overfitting_start([1.0, 0.8, 0.6], [0.9, 0.7, 0.75]) is None  # one rise only
    assert overfitting_start([1.0, 0.8, 0.9, 1.0], [0.9, 0.7, 0.75, 0.8]) is None  # train loss rose too


def test_overfitting_is_marked_and_explained(qtbot):
    ws = TrainWorkspace()
    qtbot.addWidget(ws)
    for e, (tl, vl) in enumerate([(1.0, 0.9), (0.8, 0.7), (0.6, 0.75), (0.5, 0.8)]):
        ws._on_epoch(e, {"loss": tl, "val_loss": vl, "accuracy": 0.5, "val_accuracy": 0.5})
    assert ws.plots.overfit_epoch == 2
    assert len(ws.plots.loss.markers) == 2 and len(ws.plots.acc.markers) == 2
    msg = ws.plots.overfit_label.text()
    assert "Overfitting since epoch 2" in msg and "validation loss" in msg
    assert not ws.plots.overfit_label.isHidden()
    ws.plots.reset()
    assert ws.plots.overfit_epoch is None and not ws.plots.loss.markers


def test_log_scale_and_values_under_the_mouse(qtbot):
    plots = shown_plots(qtbot, 900, 400)
    plots.add_batches([0.5, 1.0, 1.5, 2.0], [2.0, 1.0, 0.5, 0.25], [0.1, 0.2, 0.3, 0.4])
    plots.add_epoch(1.0, {"loss": 1.0, "accuracy": 0.2, "val_loss": 1.1, "val_accuracy": 0.15})
    plots.add_epoch(2.0, {"loss": 0.25, "accuracy": 0.4, "val_loss": 0.3, "val_accuracy": 0.35})
    assert plots.refresh()
    assert not plots.refresh()  # nothing new: no redraw
    plots.log_box.setChecked(True)
    assert plots.loss.item.ctrl.logYCheck.isChecked()
    x, y = plots.loss.train_curve.getData()
    np.testing.assert_allclose(y, np.log10([1.0, 0.25]))  # pyqtgraph plots log10 of the data
    plots.log_box.setChecked(False)
    vb = plots.loss.item.vb
    vb.setRange(xRange=(0, 2.5), yRange=(0, 2.5), padding=0)
    scene_pt = vb.mapViewToScene(QPointF(1.0, 1.0))
    plots.loss_widget.scene().sigMouseMoved.emit(scene_pt)
    text = plots.hover_label.text()
    assert "epoch 1.0" in text and "train loss: 1 @ 1.00" in text and "val loss: 1.1 @ 1.00" in text


def test_nan_values_are_not_drawn(qtbot):
    plots = TrainingPlots()
    qtbot.addWidget(plots)
    plots.add_batches([0.5, 1.0], [1.0, float("nan")], [0.5, 0.6])
    plots.refresh()
    _x, y = plots.loss.batch_curve.getData()
    assert list(y) == [1.0]
    assert len(plots.loss.batch) == 2  # kept in the data, just not drawn


@pytest.mark.slow
def test_long_repaint_does_not_crash(qtbot):
    """docs/ARCHITECTURE.md trap: PySide6 6.12.0 + pyqtgraph 0.14 aborted within a few hundred repaints offscreen.

    The soak script (tests/benchmarks/soak_train_window.py) does 5,000; CI keeps 1,000.
    """
    plots = shown_plots(qtbot, 800, 300)
    rng = np.random.default_rng(0)
    for i in range(1000):
        plots.add_batches([i / 100], [float(rng.random())], [float(rng.random())])
        if i % 100 == 99:
            plots.add_epoch(i / 100, {"loss": 0.5, "val_loss": 0.6, "accuracy": 0.5, "val_accuracy": 0.4})
        plots.refresh()
        plots.loss_widget.repaint()
        plots.acc_widget.repaint()
    assert plots.refresh_count == 1000
    assert len(plots.loss.batch) == 1000


def test_grid_lines_are_opaque_tints_beneath_the_curves(qtbot):
    """Translucent aliased lines are Qt's slow path: the grid is pre-blended over the background."""
    from PySide6.QtGui import QColor, QPen

    plots = TrainingPlots()
    qtbot.addWidget(plots)
    axis = plots.loss.item.getAxis("left")
    pen = QPen(QColor(0, 0, 0, 64))
    out = axis._opaque(pen)
    assert out.color().alpha() == 255
    assert out.color().red() == out.color().green() == out.color().blue() == round(255 * (1 - 64 / 255))
    assert axis._opaque(pen) is out  # one pen per tick level, not one per line
    assert axis._opaque(QPen(QColor(10, 20, 30))).color() == QColor(10, 20, 30)
    assert axis.zValue() < plots.loss.item.vb.zValue()  # drawn beneath the curves' view box


def test_overfitting_message_does_not_resize_the_plots(qtbot):
    plots = shown_plots(qtbot, 900, 400)
    assert "Overfitting" in plots.overfit_label.text() and plots.overfit_label.isVisible()  # the hint
    size = plots.loss_widget.size()
    plots.mark_overfitting(2, "Overfitting since epoch 2: validation loss has risen for 2 epochs while "
                              "training loss kept falling, so the network is memorising the training examples.")
    qtbot.wait(50)
    assert plots.loss_widget.size() == size  # no re-layout, so no full re-render mid-run
    assert plots.overfit_label.text().startswith("Overfitting since epoch 2")
    plots.reset()
    assert plots.overfit_label.text() == plots_mod.OVERFIT_HINT


def _drawn_near(plots: TrainingPlots, x: float, y: float, color: tuple[int, int, int], radius: int = 4) -> bool:
    """Whether the loss plot, as painted, shows ``color`` within ``radius`` pixels of view point (x, y)."""
    from PySide6.QtGui import QColor

    widget = plots.loss_widget
    image = widget.viewport().grab().toImage()
    pos = widget.mapFromScene(plots.loss.item.vb.mapViewToScene(QPointF(x, y)))
    want = QColor(*color)
    for dx in range(-radius, radius + 1):
        for dy in range(-radius, radius + 1):
            px, py = pos.x() + dx, pos.y() + dy
            if 0 <= px < image.width() and 0 <= py < image.height():
                got = image.pixelColor(px, py)
                if max(abs(got.red() - want.red()), abs(got.green() - want.green()),
                       abs(got.blue() - want.blue())) <= 12:
                    return True
    return False


def test_cached_epoch_curves_follow_new_epochs_and_a_moving_y_range(qtbot):
    """The epoch curves are cached pixmaps: a new epoch, and a y range that moves, must still show."""
    from PySide6.QtWidgets import QGraphicsItem

    plots = shown_plots(qtbot, 900, 400)
    cached = QGraphicsItem.CacheMode.DeviceCoordinateCache
    assert plots.loss.train_curve.scatter.cacheMode() == cached
    assert plots.loss.batch_curve.curve.cacheMode() != cached  # changes at every refresh: no cache
    plots.reset(epochs=8)  # the points stay left of the legend (top right), which would tint them
    plots.add_epoch(1, {"loss": 0.5})
    plots.refresh()
    qtbot.wait(20)
    assert _drawn_near(plots, 1, 0.5, plots_mod.TRAIN_COLOR)
    plots.add_epoch(2, {"loss": 0.4})
    plots.refresh()
    qtbot.wait(20)
    assert _drawn_near(plots, 2, 0.4, plots_mod.TRAIN_COLOR)
    top = plots.loss.item.vb.viewRange()[1][1]
    plots.add_epoch(3, {"loss": 5.0})  # far above: the y range grows, every cached point moves
    plots.refresh()
    qtbot.wait(20)
    assert plots.loss.item.vb.viewRange()[1][1] > top
    for x, y in ((1, 0.5), (2, 0.4), (3, 5.0)):
        assert _drawn_near(plots, x, y, plots_mod.TRAIN_COLOR), (x, y)
    assert not _drawn_near(plots, 1.5, 4.0, plots_mod.TRAIN_COLOR)  # and nothing where no point is


def test_batch_curve_redraws_only_its_tail_and_draws_every_point_once(qtbot):
    """A refresh re-sets the short tail, not the whole curve (a full repaint), and the parts join."""
    plots = shown_plots(qtbot, 900, 400)
    plots.reset(epochs=4)
    rng = np.random.default_rng(1)
    settled_sets = 0
    original = plots.loss.batch_curve.setData

    def counting_set_data(*args, **kwargs):
        nonlocal settled_sets
        settled_sets += 1
        return original(*args, **kwargs)

    plots.loss.batch_curve.setData = counting_set_data
    n = 0
    for _ in range(300):
        xs = [(n + i) / 150 for i in range(2)]  # within the 4 epochs shown (clipped to view otherwise)
        n += 2
        plots.add_batches(xs, list(rng.random(2) + 0.5), list(rng.random(2)))
        plots.refresh()
    assert len(plots.loss.batch) == 600
    # the tail folds in once it spans 5% of the 4 visible epochs (about 30 points): ~20 folds, not 300
    assert 10 <= settled_sets <= 60
    x, y = plots.loss.drawn_batches()
    np.testing.assert_array_equal(x, plots.loss.batch.x)
    np.testing.assert_array_equal(y, plots.loss.batch.y)
    tx, _ty = plots.loss.batch_tail.getData()
    assert tx[0] == plots.loss.batch_curve.getData()[0][-1]  # the tail starts where the settled part ends
    assert [label.text for _s, label in plots.loss.legend.items].count("train loss (batches)") == 1
    plots.log_box.setChecked(True)  # a log switch re-sets both parts, in log10
    x, y = plots.loss.drawn_batches()
    np.testing.assert_allclose(y, np.log10(plots.loss.batch.y))


def test_y_range_moves_a_few_times_a_run_and_keeps_every_point_in_view(qtbot):
    """Each move re-renders the axes and the whole plot: a falling loss must not move it at every refresh."""
    plots = shown_plots(qtbot, 900, 400)
    plots.reset(epochs=8)
    moves = {"loss": 0, "accuracy": 0}
    for plot in (plots.loss, plots.acc):
        original = plot.item.setYRange

        def counting(*args, _original=original, _label=plot.label, **kwargs):
            moves[_label] += 1
            return _original(*args, **kwargs)

        plot.item.setYRange = counting
    rng = np.random.default_rng(0)
    steps = 141
    for epoch in range(8):
        avg_loss = avg_acc = 0.0
        for b in range(steps):
            t = epoch + (b + 1) / steps
            avg_loss += (0.05 + 2.25 * np.exp(-3 * t) + 0.05 * rng.random() - avg_loss) / (b + 1)
            avg_acc += (1 - 0.9 * np.exp(-3 * t) - 0.02 * rng.random() - avg_acc) / (b + 1)
            plots.add_batches([t], [avg_loss], [avg_acc])
            if b % 2:
                plots.refresh()
                for plot, value in ((plots.loss, avg_loss), (plots.acc, avg_acc)):
                    lo, hi = plot.item.vb.viewRange()[1]
                    assert lo <= value <= hi
        plots.add_epoch(epoch + 1, {"loss": avg_loss, "accuracy": avg_acc, "val_loss": avg_loss * 1.1,
                                    "val_accuracy": avg_acc - 0.01})
        plots.refresh()
    assert moves["loss"] <= 16 and moves["accuracy"] <= 16, moves  # 32 each before room was left ahead
    lo, _hi = plots.loss.item.vb.viewRange()[1]
    assert lo >= -0.1  # a loss is never negative: no room wasted below zero
    _lo, hi = plots.acc.item.vb.viewRange()[1]
    assert hi <= 1.1  # nor above 100% accuracy


def test_overlaid_runs_take_one_legend_entry_each_and_only_a_few(qtbot):
    """Eight entries (train and validation of four runs) covered the data; hovering still names every curve."""
    from neuralstudio.ui.train.plots import OVERLAY_LEGEND_RUNS, TrainingPlots

    plots = TrainingPlots()
    qtbot.addWidget(plots)
    hist = {"loss": [1.0, 0.5], "val_loss": [1.1, 0.6], "accuracy": [0.5, 0.8], "val_accuracy": [0.45, 0.75]}
    plots.set_overlays([(f"run-{i}", hist) for i in range(5)])
    labels = [label.text for _s, label in plots.loss.legend.items]
    listed = [t for t in labels if t.startswith("run-")]
    assert len(listed) == OVERLAY_LEGEND_RUNS
    assert listed[0] == "run-0 (dashed: validation)"
    assert len(plots.loss.overlays) == 10
    hover = plots.loss.nearest(2.0)
    assert "run-4 val loss: 0.6 @ 2.00" in hover
