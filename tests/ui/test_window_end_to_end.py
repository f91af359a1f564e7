"""The whole app as a user meets it: design -> Train button -> the trained model in Predict -> a drawn digit."""

import numpy as np
from digit_strokes import draw_on_canvas, make_drawing
from PySide6.QtCore import Qt
from PySide6.QtTest import QTest
from window_helpers import open_file  # noqa: E402

from neuralstudio.core.design import Design
from neuralstudio.core.graph import Graph
from neuralstudio.core.training_settings import TrainingSettings


def mlp_design() -> Design:
    g = Graph()
    ids = [
        g.add_node("InputLayer", {"batch_shape": [None, 28, 28]}, name="image").id,
        g.add_node("Flatten", {}, name="flat").id,
        g.add_node("Dense", {"units": 64, "activation": "relu"}, name="hidden").id,
        g.add_node("Dense", {"units": 10, "activation": "softmax"}, name="digit").id,
    ]
    for a, b in zip(ids, ids[1:]):
        g.connect(a, b)
    return Design(graph=g, training=TrainingSettings(epochs=2, batch_size=32, validation_split=0.1), name="mlp")


def test_train_in_the_window_then_draw_with_the_trained_model(ready_window, qtbot, tmp_path):
    from neuralstudio.ml.data import Dataset, load_dataset

    w = ready_window
    path = tmp_path / "mlp.nsd"
    mlp_design().save(path)
    assert open_file(qtbot, w, path, confirm=False)
    assert not w.act_export.isEnabled()  # nothing trained or opened yet

    ds = load_dataset("mnist-sample")
    w.train_page.set_dataset(Dataset(name="sample (2000)", x_train=ds.x_train[:2000], y_train=ds.y_train[:2000],
                                     x_test=ds.x_test[:300], y_test=ds.y_test[:300], class_names=ds.class_names))
    QTest.keyClick(w, Qt.Key.Key_T, Qt.KeyboardModifier.ControlModifier)  # Run > Train
    assert w.tabs.currentIndex() == 1  # the Train tab
    train_button = w.train_page.findChild(object, "trainButton")
    qtbot.mouseClick(train_button, Qt.MouseButton.LeftButton)
    qtbot.waitUntil(lambda: w.train_page.is_running(), timeout=10_000)
    # the run's end, its later steps included: the model reaches Predict and Export in one of them
    qtbot.waitUntil(lambda: not w.train_page.is_running() and not w.train_page.ending, timeout=120_000)
    result = w.train_page.last_result
    assert result is not None and result.status == "finished", w.train_page.last_message
    assert result.test_accuracy > 0.6

    # The trained model is now the current model: Predict uses it (a copy) and Export is offered.
    assert w.current_model is result.model
    assert w.act_export.isEnabled() and w.act_model_info.isEnabled()
    predict = w.predict_page
    qtbot.waitUntil(lambda: predict.source_label.startswith("trained") and predict.predictor is not None,
                    timeout=60_000)
    w.tabs.setCurrentWidget(predict)
    canvas = predict.findChild(object, "digitCanvas")
    drawing = make_drawing(1, "plain", canvas.width(), rng=np.random.default_rng(0), height=0.7, aspect=0.3,
                           cx=0.5, cy=0.5, slant=0.0, width_factor=1.0, wobble=0.0)
    draw_on_canvas(canvas, drawing)
    label = predict.findChild(object, "predictionLabel")
    qtbot.waitUntil(lambda: label.property("predictedClass") != -1, timeout=10_000)
    probs = predict.last_probabilities
    assert probs is not None and abs(float(np.sum(probs)) - 1.0) < 1e-3
