"""The Experiment tab of the Train workspace, driven through its real widgets with real (tiny) trials."""

from __future__ import annotations

import math

import pytest
from PySide6.QtCore import QPoint, Qt, QTimer
from PySide6.QtGui import QContextMenuEvent
from PySide6.QtWidgets import QApplication, QLineEdit, QSpinBox
from window_helpers import close_workspace

from neuralstudio.core.runs import RunsStore
from neuralstudio.core.templates import load_template

pytest.importorskip("pytestqt")

from neuralstudio.ui.train.experiment_results import ExperimentResultsView, heat_grid  # noqa: E402
from neuralstudio.ui.train.workspace import TrainWorkspace  # noqa: E402

TRIALS_TIMEOUT_MS = 120_000
NIELSEN = "nielsen-784-30-10"


@pytest.fixture
def workspace(train_workspace):
    return train_workspace  # tests/ui/conftest.py; its close stops a running experiment too


def set_values(qtbot, edit: QLineEdit, text: str) -> None:
    """Type ``text`` into a Values field as a user does (select all, type over it)."""
    edit.setFocus()
    edit.selectAll()
    qtbot.keyClick(edit, Qt.Key.Key_Backspace)
    qtbot.keyClicks(edit, text)


def add_from_menu(panel, path: str) -> QLineEdit:
    """Choose ``path`` in the Add menu (filled as when it opens) and return the new row's Values field."""
    panel.fill_add_menu(panel.add_menu)
    actions = [a for a in panel.add_menu.findChildren(type(panel.add_menu.menuAction())) if a.data() == path]
    assert actions, f"{path} is not offered in the Add menu"
    actions[0].trigger()
    edit = panel.values_edit(path)
    assert edit is not None
    return edit


# ----------------------------------------------------------------------------- results pictures (no training)
def fake_study(params: dict[str, list], scores: list[float]) -> object:
    """An in-memory Optuna study whose trials carry the user attributes ``ml.sweep`` records."""
    import itertools

    import optuna

    from neuralstudio.ml.sweep import ATTR

    optuna.logging.set_verbosity(optuna.logging.WARNING)
    study = optuna.create_study(direction="maximize")
    study.set_user_attr(ATTR, {"params": [f"{k}=" + ",".join(str(v) for v in vs) for k, vs in params.items()],
                               "metric": "val_accuracy"})
    combos = list(itertools.product(*params.values()))
    for i, (combo, score) in enumerate(zip(combos, scores)):
        values = dict(zip(params, combo))
        dists = {k: optuna.distributions.CategoricalDistribution(vs) for k, vs in params.items()}
        complete = i < len(scores) - 1  # the last trial was pruned
        state = optuna.trial.TrialState.COMPLETE if complete else optuna.trial.TrialState.PRUNED
        study.add_trial(optuna.trial.create_trial(
            params=values, distributions=dists, value=score if complete else None,
            state=state, intermediate_values={0: score - 0.1, 1: score},
            user_attrs={"values": values, "status": "finished" if complete else "pruned",
                        "val_loss": 1 - score, "epochs_run": 2, "seconds": 3.0 + i, "run_id": f"run-{i}",
                        "history": {"val_accuracy": [score - 0.1, score], "accuracy": [score - 0.15, score - 0.05]}}))
    return study


def test_heat_map_when_two_values_vary(qtbot):
    from neuralstudio.ml.sweep_results import results_of

    study = fake_study({"learning_rate": [0.1, 1.0, 3.0], "batch_size": [16, 64]}, [0.5, 0.6, 0.7, 0.9, 0.8, 0.75])
    results = results_of(study)
    view = ExperimentResultsView()
    qtbot.addWidget(view)
    view.resize(1000, 420)
    view.show()
    view.set_results(results)
    assert view.map_stack.currentWidget() is view.heat_map
    assert view.views.tabText(view.views.indexOf(view.map_stack)) == "Heat map"
    hm = view.heat_map
    assert hm.x_labels == ["0.1", "1", "3"] and hm.y_labels == ["16", "64"]
    assert hm.image.image.shape == (3, 2)
    assert hm.matrix[1, 1] == pytest.approx(0.9)  # learning rate 1, batch 64
    assert math.isnan(hm.matrix[2, 1])  # the pruned trial has no score: its cell says so
    assert "90.0%" in hm.cell_texts() and "no score" in hm.cell_texts()
    ticks = hm.getPlotItem().getAxis("bottom")._tickLevels[0]
    assert [t for _x, t in ticks] == ["0.1", "1", "3"]
    # the table: one row per trial, sortable by accuracy as a number, with the pruned one marked
    table = view.table
    assert table.rowCount() == 6
    headers = [table.horizontalHeaderItem(c).text() for c in range(table.columnCount())]
    acc_col = headers.index("Val. accuracy")
    table.sortItems(acc_col, Qt.SortOrder.DescendingOrder)
    assert table.item(0, acc_col).text() == "90.00%"
    assert any("pruned" in table.item(r, headers.index("Result")).text() for r in range(6))
    assert results.sentence and view.sentence.text() == results.sentence
    assert view.apply_button.isEnabled()
    got = []
    view.apply_requested.connect(got.append)
    qtbot.mouseClick(view.apply_button, Qt.MouseButton.LeftButton)
    assert got == [{"learning_rate": 1.0, "batch_size": 64}]
    view.views.setCurrentWidget(view.top_curves)  # the other pictures are drawn when their tab is chosen
    assert len(view.top_curves.curves) == 5
    view.views.setCurrentWidget(view.importance)
    assert set(view.importance.names) == {"learning_rate", "batch_size"}


def test_parallel_coordinates_when_three_vary(qtbot):
    from neuralstudio.ml.sweep_results import results_of

    params = {"learning_rate": [0.01, 1.0], "hidden.units": [16, 64], "hidden.activation": ["relu", "tanh"]}
    study = fake_study(params, [0.6, 0.7, 0.8, 0.9, 0.65, 0.75, 0.85, 0.5])
    view = ExperimentResultsView()
    qtbot.addWidget(view)
    view.resize(1000, 420)
    view.show()
    view.set_results(results_of(study))
    assert view.map_stack.currentWidget() is view.parallel
    assert view.views.tabText(0) == "Parallel coordinates"
    assert len(view.parallel.lines) == 8  # one line per trial, the pruned one too (grey, dashed)
    best = max(view.parallel.lines, key=lambda line: line.yData[-1])
    assert best.name() == "trial 3" and best.yData[-1] == pytest.approx(1.0)
    ticks = [t for _x, t in view.parallel.getPlotItem().getAxis("bottom")._tickLevels[0]]
    assert ticks == ["learning_rate", "units", "activation", "val. accuracy"]
    # a narrow view puts the table among the pictures' tabs, and back beside them when there is room
    view.resize(600, 420)
    qtbot.waitUntil(lambda: view.views.indexOf(view.table) == 0)
    view.resize(1000, 420)
    qtbot.waitUntil(lambda: view.split.indexOf(view.table) == 0)


def test_heat_grid_groups_many_values_into_ranges():
    from types import SimpleNamespace

    rows = [SimpleNamespace(values={"lr": 10 ** (-4 + i * 0.25), "b": 16 if i % 2 else 32}, state="complete",
                            value=0.5 + i / 40) for i in range(17)]
    rows[-1].state = "running"
    xl, yl, best, count, running = heat_grid(rows, "lr", "b")
    assert len(xl) <= 8 and yl == ["16", "32"]
    assert int(count.sum()) == 16 and int(running.sum()) == 1 and best.shape == (len(xl), 2)


# ----------------------------------------------------------------------------- the definition form
def test_invalid_values_show_an_inline_error_and_disable_start(qtbot, workspace):
    ws = workspace
    ws.set_design(load_template(NIELSEN))
    ws.show()
    qtbot.waitExposed(ws)
    ws.show_experiment()
    panel = ws.experiment.panel
    assert not panel.start_button.isEnabled()  # nothing varies yet
    edit = add_from_menu(panel, "hidden.units")
    assert edit.text() == "16:128"  # around the design's 30 units
    assert panel.start_button.isEnabled()
    set_values(qtbot, edit, "16:lots")
    assert panel.error_label.isVisible() and "not a number" in panel.error_label.text()
    assert edit.property("invalid") and not panel.start_button.isEnabled()
    assert "red" in panel.start_button.toolTip()
    set_values(qtbot, edit, "64:16")
    assert "smaller end first" in panel.error_label.text()
    set_values(qtbot, edit, "16:64")
    assert not panel.error_label.isVisible() and panel.start_button.isEnabled()
    # a name the design does not have is refused once checked against the design (after typing pauses)
    other = panel.add_param("output.units", "10,20")
    qtbot.waitUntil(lambda: not panel.start_button.isEnabled(), timeout=5000)
    assert "no layer of that name" in panel.error_label.text() and other.property("invalid")
    qtbot.mouseClick(panel.table.viewport(), Qt.MouseButton.LeftButton,
                     pos=panel.table.visualItemRect(panel.table.item(1, 0)).center())
    qtbot.mouseClick(panel.remove_button, Qt.MouseButton.LeftButton)
    assert panel.paths() == ["hidden.units"] and panel.start_button.isEnabled()
    # the estimate says how many trials (grid: 3 values of the range) once the background work answers
    qtbot.waitUntil(lambda: "3 trial" in panel.estimate_label.text(), timeout=60_000)


def test_stop_during_a_trial_keeps_the_finished_ones(qtbot, workspace):
    ws = workspace
    ws.set_design(load_template(NIELSEN))
    ws.show()
    qtbot.waitExposed(ws)
    tab = ws.experiment
    panel = tab.panel
    set_values(qtbot, tab.add_param("learning_rate"), "0.3,3,30")
    set_values(qtbot, tab.add_param("epochs"), "3")
    qtbot.mouseClick(panel.start_button, Qt.MouseButton.LeftButton)
    assert tab.is_running() and not ws.train_button.isEnabled() and not panel.start_button.isEnabled()
    qtbot.waitUntil(lambda: len(tab.runner.outcomes) == 1 and tab.runner.trial_number == 1
                    and len(ws.plots.loss.batch) > 0, timeout=TRIALS_TIMEOUT_MS)
    qtbot.mouseClick(panel.stop_button, Qt.MouseButton.LeftButton)
    qtbot.waitUntil(lambda: not tab.is_running(), timeout=TRIALS_TIMEOUT_MS)
    first, second = tab.runner.outcomes
    assert first.state == "complete" and second.status == "stopped"
    qtbot.waitUntil(lambda: tab.results.table.rowCount() == 2 and not tab.results_pending, timeout=30_000)
    states = {t.number: t.state.name for t in tab.runner.study.trials}
    assert states[0] == "COMPLETE" and len(states) == 2  # no third trial was started
    assert first.run_id in {r.id for r in ws.runs_store.scan().records}  # the finished trial's run is kept
    assert ws.train_button.isEnabled() and panel.start_button.isEnabled()

    # the study is stored: Open experiment… lists it (in the background) and shows it again
    from neuralstudio.ui.train.open_study_dialog import OpenStudyDialog

    name = tab.runner.study.study_name
    dialog = OpenStudyDialog(ws._info_runner(), ws)
    dialog.show()
    qtbot.waitUntil(lambda: dialog.study_list.count() >= 1, timeout=30_000)
    assert dialog.chosen_name() == name and dialog.open_button.isEnabled()
    assert dialog.url_edit.text() == dialog.default_url
    tab.results.clear()
    tab.open_study(dialog.url(), dialog.chosen_name())
    dialog.close()
    dialog.deleteLater()
    qtbot.waitUntil(lambda: tab.results.table.rowCount() == 2, timeout=30_000)
    assert tab.shown_study.study_name == name and not tab.follower.is_following()  # no trial runs there now


def test_closing_the_workspace_stops_the_experiment_cleanly(qtbot, tmp_path, tiny_data):
    ws = TrainWorkspace(runs_store=RunsStore(tmp_path / "runs"))
    ws.set_dataset(tiny_data)
    ws.set_design(load_template(NIELSEN))
    ws.show()
    tab = ws.experiment
    tab.add_param("learning_rate", "0.3,3")
    tab.add_param("epochs", "20")
    assert tab.start()
    qtbot.waitUntil(lambda: tab.runner.trial_number == 0 and len(ws.plots.loss.batch) > 0, timeout=TRIALS_TIMEOUT_MS)
    close_workspace(ws)  # request_close stops the experiment and waits for its thread; then no thread is left


# ----------------------------------------------------------------------------- end to end in the window
def test_experiment_runs_trials_and_applies_the_best_as_one_undo_step(ready_window, qtbot, tiny_data):
    w = ready_window
    assert w.new_from_template(NIELSEN)
    w.tabs.setCurrentWidget(w._train_host)
    ws = w.train_page
    ws.set_dataset(tiny_data)
    ws.settings_panel.lr_box.setValue(0.5)  # neither of the rates tried, so that applying one shows
    qtbot.waitUntil(lambda: w.doc.design.training.learning_rate == 0.5)
    w.activateWindow()
    qtbot.keyClick(w, Qt.Key.Key_E, Qt.KeyboardModifier.ControlModifier | Qt.KeyboardModifier.ShiftModifier)
    tab = ws.experiment
    assert ws.bottom_tabs.currentWidget() is tab
    panel = tab.panel
    set_values(qtbot, add_from_menu(panel, "learning_rate"), "0.3,3")
    set_values(qtbot, add_from_menu(panel, "epochs"), "1")
    assert panel.start_button.isEnabled()
    qtbot.mouseClick(panel.start_button, Qt.MouseButton.LeftButton)
    assert tab.is_running() and not ws.train_button.isEnabled()
    qtbot.waitUntil(lambda: len(tab.runner.outcomes) == 2 and not tab.is_running(), timeout=TRIALS_TIMEOUT_MS)
    assert [o.state for o in tab.runner.outcomes] == ["complete", "complete"]
    qtbot.waitUntil(lambda: tab.results.table.rowCount() == 2 and not tab.results_pending, timeout=30_000)
    assert tab.results.sentence.text() and "No trial" not in tab.results.sentence.text()
    assert len(ws.runs_store.scan().records) == 2  # each trial is an ordinary run...
    assert ws.runs_panel.table.rowCount() == 2  # ...of this design, in the Runs tab
    assert panel.progress_bar.format() == "2 of 2 trials done"
    assert ws.train_button.isEnabled()

    best = tab.results.results.best
    qtbot.mouseClick(tab.results.apply_button, Qt.MouseButton.LeftButton)
    assert w.doc.design.training.learning_rate == best.values["learning_rate"]
    assert w.doc.design.training.epochs == 1
    assert ws.settings_panel.settings().learning_rate == best.values["learning_rate"]  # the form follows
    assert w.doc.undo_stack.count() == 1
    tab.results.table.setFocus()
    qtbot.keyClick(tab.results.table, Qt.Key.Key_Z, Qt.KeyboardModifier.ControlModifier)
    assert w.doc.design.training.learning_rate == 0.5 and w.doc.design.training.epochs == 30
    assert ws.settings_panel.settings().learning_rate == 0.5


def test_vary_this_from_the_inspector(ready_window, qtbot):
    w = ready_window
    assert w.new_from_template(NIELSEN)
    qtbot.waitUntil(lambda: w.editor.analysis_current, timeout=60_000)
    hidden = w.doc.graph.node_by_name("hidden")
    w.scene.select_nodes([hidden.id])
    assert w.inspector.node_id == hidden.id
    spin = w.inspector.findChild(QSpinBox, "param_units")
    assert spin is not None and spin.value() == 30
    chosen = []

    def choose_from_menu() -> None:
        menu = QApplication.activePopupWidget()
        if menu is None:
            QTimer.singleShot(20, choose_from_menu)
            return
        action = next(a for a in menu.actions() if a.text() == "Vary this in an experiment")
        chosen.append(action.text())
        action.trigger()
        menu.close()

    QTimer.singleShot(50, choose_from_menu)
    target = spin.lineEdit() if spin.lineEdit() is not None else spin
    event = QContextMenuEvent(QContextMenuEvent.Reason.Mouse, QPoint(5, 5), target.mapToGlobal(QPoint(5, 5)))
    QApplication.sendEvent(target, event)  # the menu runs its own loop until the action is chosen
    assert chosen
    assert w.tabs.currentWidget() is w._train_host
    tab = w.train_page.experiment
    assert w.train_page.bottom_tabs.currentWidget() is tab
    assert tab.panel.paths() == ["hidden.units"]
    assert tab.panel.values_edit("hidden.units").text() == "16:128"
    # the layer's title offers the number of such layers
    assert ("Vary the number of hidden layers in an experiment", "hidden.repeat") in w.inspector.vary_paths("repeat")
