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
    """DESIGN.md trap: PySide6 6.12.0 + pyqtgraph 0.14 aborted within a few hundred repaints offscreen.

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
