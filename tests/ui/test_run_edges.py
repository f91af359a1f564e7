"""A run's start, Stop and end in the Train window: what the window does there, in which order, on which thread.

Those are the moments the window stalled longest (tests/benchmarks/bench_train_window.py measures the
stalls); these tests pin the order that keeps them short, through the real widgets and real tiny runs.
"""

from __future__ import annotations

import threading

import pytest
from PySide6.QtCore import Qt, QTimer
from support import image_mlp

from neuralstudio.core.runs import RunsStore

pytest.importorskip("pytestqt")

from neuralstudio.ui.train.workspace import TrainWorkspace  # noqa: E402

RUN_TIMEOUT_MS = 90_000


@pytest.fixture
def workspace(shown_workspace):
    return shown_workspace


def show_tab(ws: TrainWorkspace, name: str) -> None:
    tabs = ws.bottom_tabs
    tabs.setCurrentIndex(next(k for k in range(tabs.count()) if tabs.tabText(k).startswith(name)))


def run_to_end(qtbot, ws: TrainWorkspace) -> None:
    qtbot.waitUntil(lambda: not ws.is_running() and not ws.ending, timeout=RUN_TIMEOUT_MS)


def test_the_run_thread_starts_once_the_inside_tab_has_drawn_its_cleared_plots(qtbot, workspace):
    ws = workspace
    ws.set_design(image_mlp("edges", epochs=1))
    show_tab(ws, "Inside")
    seen: list[tuple[bool, bool]] = []  # (still drawing the cleared plots, thread started), every 5 ms

    def look() -> None:
        thread = ws._thread
        seen.append((ws.layer_stats_panel.staging, thread is not None and thread.isRunning()))

    probe = QTimer()
    probe.setInterval(5)
    probe.timeout.connect(look)
    probe.start()
    qtbot.mouseClick(ws.train_button, Qt.MouseButton.LeftButton)
    assert ws.layer_stats_panel.staging  # the table is cleared; the plots follow, one a stage
    qtbot.waitUntil(lambda: any(started for _drawing, started in seen), timeout=RUN_TIMEOUT_MS)
    probe.stop()
    assert (True, False) in seen
    assert (True, True) not in seen, "the training thread started while the Inside tab was still being cleared"
    run_to_end(qtbot, ws)
    assert ws.last_result.status == "finished", ws.last_message


def test_after_stop_the_plots_wait_for_the_end_and_then_show_every_point(qtbot, workspace):
    ws = workspace
    ws.set_design(image_mlp("edges", epochs=200, batch_size=8))
    qtbot.mouseClick(ws.train_button, Qt.MouseButton.LeftButton)
    qtbot.waitUntil(lambda: len(ws.plots.loss.batch) >= 3, timeout=RUN_TIMEOUT_MS)
    at_end: list[int] = []
    ws.running_changed.connect(lambda running: at_end.append(ws.plots.refresh_count) if not running else None)
    qtbot.mouseClick(ws.stop_button, Qt.MouseButton.LeftButton)
    clicked = ws.plots.refresh_count
    qtbot.waitUntil(lambda: bool(at_end), timeout=RUN_TIMEOUT_MS)
    assert at_end == [clicked], "the plots were redrawn while the run was stopping"
    assert ws.ending  # the last points are drawn in the steps after the run's end
    run_to_end(qtbot, ws)
    assert ws.last_result.status == "stopped"
    assert ws.plots.refresh_count > clicked
    for plot in (ws.plots.loss, ws.plots.acc):  # the last batch reported before the stop is drawn in both
        assert len(plot.batch) > 3
        assert plot.batch_tail.xData[-1] == plot.batch.x[-1]


def test_the_gui_thread_parses_no_run_record_at_a_runs_end(qtbot, workspace, monkeypatch):
    """The record (every batch's loss) is parsed once, by the training thread; the runs table reuses it."""
    ws = workspace
    ws.set_design(image_mlp("edges", epochs=2))
    readers: list[str] = []
    original = RunsStore._read

    def read(self, folder):
        readers.append(threading.current_thread().name)
        return original(self, folder)

    monkeypatch.setattr(RunsStore, "_read", read)
    qtbot.mouseClick(ws.train_button, Qt.MouseButton.LeftButton)
    run_to_end(qtbot, ws)
    assert ws.last_result.status == "finished", ws.last_message
    assert ws.runs_panel.table.rowCount() == 1
    assert readers and "MainThread" not in readers, readers
    assert "learned" in ws.last_message or "accuracy" in ws.last_message  # the diagnosis made it into the message


def test_the_status_line_keeps_its_height_from_one_runs_end_to_the_next_runs_start(qtbot, workspace):
    """A status line that shrank and grew with its message re-laid out the window and repainted every plot."""
    ws = workspace
    ws.set_design(image_mlp("edges", epochs=1))
    qtbot.mouseClick(ws.train_button, Qt.MouseButton.LeftButton)
    run_to_end(qtbot, ws)
    qtbot.wait(50)
    ended = ws.status_label.height()
    plots = ws.plots.loss.widget.height()
    assert ended >= 2 * ws.status_label.fontMetrics().lineSpacing()
    qtbot.mouseClick(ws.train_button, Qt.MouseButton.LeftButton)
    assert ws.status_label.text().startswith("Preparing")
    qtbot.wait(50)
    assert ws.status_label.height() == ended
    assert ws.plots.loss.widget.height() == plots
    run_to_end(qtbot, ws)
