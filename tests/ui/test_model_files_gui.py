"""Opening model files in the window: the warned trust opt-in, weights-only files, continuing training."""

from __future__ import annotations

import numpy as np
import pytest
from PySide6.QtCore import QTimer
from PySide6.QtWidgets import QApplication, QMessageBox
from support import image_mlp, mnist_slice
from window_helpers import open_file  # noqa: E402

from neuralstudio.core.design import Design
from neuralstudio.core.training_settings import TrainingSettings

pytest.importorskip("pytestqt")

RUN_TIMEOUT_MS = 90_000


def tiny_design(hidden: int = 32) -> Design:
    return image_mlp(f"tiny{hidden}", hidden=hidden)


@pytest.fixture(scope="module")
def tiny_data():
    """600 training and 100 test images of the bundled MNIST sample (as in test_train_workspace)."""
    return mnist_slice(600, 100)


@pytest.fixture(scope="module")
def trained_file(tmp_path_factory, tiny_data):
    """A .keras file of the tiny design trained well above chance."""
    from neuralstudio.ml.trainer import Trainer

    path = tmp_path_factory.mktemp("models") / "trained.keras"
    settings = TrainingSettings(epochs=4, batch_size=32, learning_rate=0.003, validation_split=0.0, seed=3)
    result = Trainer(tiny_design(), dataset=tiny_data, settings=settings, out_path=str(path)).run()
    assert result.status == "finished", result.message
    assert result.train_accuracy > 0.8
    return path


@pytest.fixture
def lambda_file(tmp_path):
    import keras

    model = keras.Sequential([keras.Input((28, 28)), keras.layers.Flatten(),
                              keras.layers.Lambda(lambda x: x * 1.0, name="scale"),
                              keras.layers.Dense(10, activation="softmax")])
    path = tmp_path / "lam.keras"
    model.save(path)
    return path


def _no_boxes(monkeypatch, w) -> list[str]:
    errors: list[str] = []
    monkeypatch.setattr(w, "_show_error", lambda title, message: errors.append(message))
    monkeypatch.setattr(w, "_ask_unsaved", lambda: "discard")
    return errors


def test_a_model_with_code_opens_only_when_the_user_trusts_it_every_time(ready_window, qtbot, monkeypatch,
                                                                           lambda_file):
    w = ready_window
    errors = _no_boxes(monkeypatch, w)
    before = w.doc.design.to_dict()
    asked: list[tuple[str, str]] = []
    answer = {"trust": False}

    def ask(name, exc):
        asked.append((name, exc.what()))
        return answer["trust"]

    monkeypatch.setattr(w, "_ask_trust", ask)
    assert open_file(qtbot, w, lambda_file) is False
    assert asked == [("lam.keras", "a Lambda layer 'scale'")]
    assert w.doc.design.to_dict() == before and w.current_model is None and not errors
    assert "Lambda" in w.last_error

    answer["trust"] = True
    assert open_file(qtbot, w, lambda_file) is True
    assert len(asked) == 2  # never remembered
    assert w.current_model is not None and w.current_model_path == lambda_file
    assert w.doc.design.to_dict() == before  # code cannot become a design: the design is kept
    qtbot.waitUntil(lambda: "lam.keras" in w.predict_page.source_label, timeout=30_000)
    assert w.predict_page.predictor is not None

    answer["trust"] = False
    assert open_file(qtbot, w, lambda_file) is False
    assert len(asked) == 3


def test_predict_open_model_asks_before_running_code(ready_window, qtbot, monkeypatch, lambda_file):
    page = ready_window.predict_page
    asked: list[str] = []
    answer = {"trust": False}
    monkeypatch.setattr(page, "_ask_trust", lambda name, exc: asked.append(name) or answer["trust"])
    failed: list[str] = []
    page.model_failed.connect(failed.append)
    page.load_model_file(lambda_file)
    qtbot.waitUntil(lambda: bool(failed), timeout=30_000)
    assert asked == ["lam.keras"] and "Lambda" in failed[0] and page.source_label != "lam.keras"
    answer["trust"] = True
    with qtbot.waitSignal(page.model_changed, timeout=30_000):
        page.load_model_file(lambda_file)
    assert asked == ["lam.keras", "lam.keras"] and page.source_label == "lam.keras"


def test_the_trust_question_warns_and_defaults_to_cancel(qtbot):
    from neuralstudio.ml.model_files import UntrustedCodeError
    from neuralstudio.ui.predict.workspace import ask_trust

    seen: dict[str, object] = {}

    def answer():
        box = QApplication.activeModalWidget()
        if not isinstance(box, QMessageBox):
            QTimer.singleShot(20, answer)
            return
        seen["text"] = box.text()
        seen["icon"] = box.icon()
        seen["default"] = box.defaultButton().text()
        box.defaultButton().click()  # Enter: the default answer

    QTimer.singleShot(0, answer)
    assert ask_trust(None, "m.keras", UntrustedCodeError("refused", ["f"])) is False
    assert "m.keras contains Python code (a Lambda layer 'f')" in str(seen["text"])
    assert "can do anything on your computer" in str(seen["text"])
    assert seen["icon"] == QMessageBox.Icon.Warning and "Cancel" in str(seen["default"])


def test_weights_only_files_load_into_the_current_design(ready_window, qtbot, monkeypatch, trained_file, tmp_path):
    from neuralstudio.ml.builder import build_model

    w = ready_window
    errors = _no_boxes(monkeypatch, w)
    assert open_file(qtbot, w, trained_file)
    design = w.doc.design.to_dict()
    source = w.current_model
    weights_file = tmp_path / "x.weights.h5"
    source.save_weights(weights_file)

    assert open_file(qtbot, w, weights_file), errors
    assert w.current_model is not source and w.current_model_path == weights_file
    for a, b in zip(w.current_model.get_weights(), source.get_weights(), strict=True):
        np.testing.assert_array_equal(a, b)
    assert w.doc.design.to_dict() == design
    qtbot.waitUntil(lambda: "x.weights.h5" in w.predict_page.source_label and w.predict_page.predictor is not None,
                    timeout=30_000)
    assert w.act_export.isEnabled()

    other = tmp_path / "other.weights.h5"
    build_model(tiny_design(hidden=8).graph).save_weights(other)
    kept = w.current_model
    assert open_file(qtbot, w, other) is False
    assert len(errors) == 1 and "these weights do not fit the current design" in errors[0].lower()
    assert w.doc.design.to_dict() == design and w.current_model is kept


def test_training_continues_from_the_opened_model(ready_window, qtbot, monkeypatch, trained_file, tiny_data):
    w = ready_window
    _no_boxes(monkeypatch, w)
    ws = w.train_page
    assert not ws.continue_check.isEnabled()
    assert open_file(qtbot, w, trained_file)
    assert ws.continue_check.isEnabled() and ws.continue_check.toolTip()
    ws.set_dataset(tiny_data)
    ws.settings_panel.epochs_box.setValue(1)
    ws.continue_check.setChecked(True)
    assert ws.start()
    assert not ws.continue_check.isEnabled()  # not while a run is going
    qtbot.waitUntil(lambda: not ws.is_running(), timeout=RUN_TIMEOUT_MS)
    result = ws.last_result
    assert result is not None and result.status == "finished", ws.last_message
    # a fresh network reaches about 0.3 after one short epoch; the trained one starts high
    assert result.history["accuracy"][0] > 0.8
    assert "Continuing from opened: trained.keras" in ws.log_view.toPlainText()
