"""File > Export... and the model information view, driven like a user would."""

from __future__ import annotations

import json

import pytest
from PySide6.QtCore import Qt

keras = pytest.importorskip("keras")

from neuralstudio.core.runs import RUN_FILE, RunRecord  # noqa: E402
from neuralstudio.ml.export_formats import DEFAULT_FORMAT, FORMATS, ExportFormat  # noqa: E402
from neuralstudio.ml.model_files import save_keras_model  # noqa: E402
from neuralstudio.ml.model_info import model_info  # noqa: E402
from neuralstudio.ui.export import ExportDialog, ModelInfoView  # noqa: E402


@pytest.fixture(scope="module")
def saved_model(tmp_path_factory):
    keras.utils.set_random_seed(5)
    model = keras.Sequential([keras.Input((28, 28)), keras.layers.Flatten(name="flat"),
                              keras.layers.Dense(10, activation="softmax", name="scores")], name="gui_model")
    folder = tmp_path_factory.mktemp("run")
    save_keras_model(model, folder / "model.keras")
    return model, folder / "model.keras"


@pytest.fixture
def make_dialog(qtbot):
    """Dialogs closed at the end of the test even when it fails (their export thread must stop)."""
    made = []

    def make(*args, **kwargs):
        dlg = ExportDialog(*args, **kwargs)
        qtbot.addWidget(dlg)
        made.append(dlg)
        return dlg

    yield make
    for dlg in made:
        qtbot.waitUntil(lambda d=dlg: not d.running, timeout=120_000)
        dlg.reject()


def test_format_choice_drives_the_options_and_the_default_path(qtbot, make_dialog, saved_model, tmp_path):
    model, path = saved_model
    dlg = make_dialog(model, model_path=path)
    dlg.set_format("litert")
    assert dlg.quantize_check.isEnabled()
    assert dlg.path_edit.text() == str(path.parent / "model.tflite")
    qtbot.mouseClick(dlg.quantize_check, Qt.MouseButton.LeftButton)
    assert dlg.path_edit.text() == str(path.parent / "model_dynamic.tflite")
    dlg.set_format("savedmodel")
    assert not dlg.quantize_check.isEnabled() and not dlg.quantize_check.isChecked()
    assert dlg.path_edit.text() == str(path.parent / "model_savedmodel")
    assert "TF Serving" in dlg.use_label.text()
    # Once the user typed a path, changing the format no longer overwrites it.
    dlg.path_edit.clear()
    qtbot.keyClicks(dlg.path_edit, str(tmp_path / "mine.onnx"))
    dlg.set_format("onnx")
    assert dlg.path_edit.text() == str(tmp_path / "mine.onnx")
    # ... but its suffix follows the format: no ONNX file named .keras
    dlg.set_format("keras")
    assert dlg.path_edit.text() == str(tmp_path / "mine.keras")
    dlg.set_format("savedmodel")
    assert dlg.path_edit.text() == str(tmp_path / "mine")
    dlg.reject()


def test_a_failure_of_another_format_is_not_shown_after_the_format_changes(qtbot, make_dialog, saved_model):
    model, path = saved_model
    dlg = make_dialog(model, model_path=path)
    dlg.path_edit.clear()
    qtbot.mouseClick(dlg.export_button, Qt.MouseButton.LeftButton)  # no path: refused
    assert dlg.status_label.text().startswith("Export FAILED")
    dlg.set_format("onnx")
    assert dlg.status_label.text() == "" and dlg.report_view.toPlainText() == ""
    dlg.reject()


def test_the_dialog_offers_exactly_the_registry_formats(make_dialog, saved_model):
    model, path = saved_model
    dlg = make_dialog(model, model_path=path)
    combo = dlg.format_combo
    assert [combo.itemData(i) for i in range(combo.count())] == list(FORMATS)
    assert [combo.itemText(i) for i in range(combo.count())] == [f.label for f in FORMATS.values()]
    assert dlg.format_name == DEFAULT_FORMAT
    for name, fmt in FORMATS.items():
        dlg.set_format(name)
        assert dlg.selected_format is fmt
        assert dlg.use_label.text().startswith(fmt.use)
        assert dlg.quantize_check.isEnabled() == bool(fmt.quantize)
        assert dlg.path_edit.text() == str(fmt.default_output(path))
    dlg.reject()


def test_a_format_whose_packages_are_missing_says_what_to_install(make_dialog, saved_model, monkeypatch):
    real = ExportFormat.missing_packages
    monkeypatch.setattr(ExportFormat, "missing_packages",
                        lambda self, verify=True, backend=None: ["onnxruntime"] if self.name == "onnx"
                        else real(self, verify=verify, backend=backend))
    model, path = saved_model
    dlg = make_dialog(model, model_path=path)
    dlg.set_format("onnx")
    assert not dlg.export_button.isEnabled()
    assert "Needs onnxruntime" in dlg.use_label.text() and "pip install 'neuralstudio[onnx]'" in dlg.use_label.text()
    dlg.set_format("keras")
    assert dlg.export_button.isEnabled() and "Needs" not in dlg.use_label.text()
    dlg.reject()


def test_export_runs_in_the_background_and_shows_the_verification(qtbot, make_dialog, saved_model, tmp_path):
    model, path = saved_model
    dlg = make_dialog(model, model_path=path)
    dlg.show()
    dlg.set_format("litert")
    dlg.path_edit.setText(str(tmp_path / "gui.tflite"))
    with qtbot.waitSignal(dlg.exported, timeout=120_000) as sig:
        qtbot.mouseClick(dlg.export_button, Qt.MouseButton.LeftButton)
        assert dlg.running and not dlg.export_button.isEnabled()
    result = sig.args[0]
    assert result.path == tmp_path / "gui.tflite" and result.path.is_file()
    assert not dlg.running and dlg.export_button.isEnabled()
    assert "Verification OK: LiteRT interpreter" in dlg.report_view.toPlainText()
    assert "Exported to" in dlg.status_label.text()
    dlg.reject()
    assert not dlg.isVisible()


def test_a_failed_export_says_so_and_writes_nothing(qtbot, make_dialog, saved_model, tmp_path):
    model, path = saved_model
    dlg = make_dialog(model, model_path=path)
    dlg.set_format("h5")
    out = tmp_path / "out"
    out.mkdir()
    dlg.path_edit.setText(str(out / "wrong.onnx"))
    with qtbot.waitSignal(dlg.failed, timeout=60_000) as sig:
        qtbot.mouseClick(dlg.export_button, Qt.MouseButton.LeftButton)
    assert "ending in .h5" in sig.args[0]
    assert "FAILED" in dlg.status_label.text() and "ending in .h5" in dlg.report_view.toPlainText()
    assert list(out.iterdir()) == []


def test_model_info_view_shows_layers_and_history(qtbot, saved_model):
    model, path = saved_model
    rec = RunRecord(id="run-7", created="2026-11-24T21:00:00Z", data={"name": "mnist-sample"}, status="finished",
                    final={"test_accuracy": 0.9})
    rec.add_epoch({"epoch": 1, "loss": 0.8, "accuracy": 0.75})
    rec.add_epoch({"epoch": 2, "loss": 0.5, "accuracy": 0.85})
    (path.parent / RUN_FILE).write_text(json.dumps(rec.to_dict()), encoding="utf-8")
    try:
        view = ModelInfoView(model_info(path))
    finally:
        (path.parent / RUN_FILE).unlink()
    qtbot.addWidget(view)
    view.resize(720, 620)
    view.show()
    qtbot.waitExposed(view)
    assert view.fields["name"].text() == "gui_model"
    assert f"Keras {keras.__version__}" in view.fields["saved_by"].text()
    assert view.fields["params"].text().startswith("7,850 ")
    rows = [[view.layers_table.item(r, c).text() for c in range(4)] for r in range(view.layers_table.rowCount())]
    assert rows == [["flat", "Flatten", "(None, 784)", "0"], ["scores", "Dense", "(None, 10)", "7,850"]]
    assert view.history_table.isVisible() and view.history_table.rowCount() == 2
    assert view.history_table.item(1, 2).text() == "0.85"
    assert "run-7" in view.history_note.text() and "test_accuracy 0.9" in view.history_note.text()
    # A model with no run beside it: the table hides and the note says why.
    view.set_info(model_info(path))
    assert not view.history_table.isVisible() and "Training history: none beside this file" in view.history_note.text()
