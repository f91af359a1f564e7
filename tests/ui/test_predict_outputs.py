"""Predict shows what the output layer gives, under the names of the classes the model was trained on.

Real models and files, real strokes on the canvas: a sigmoid network's readout is its raw activations (labelled
so), a logits network's is their softmax (said so), and a model trained on an image folder of "cat" and "dog"
names its verdict "cat" or "dog", whether it comes from its file or straight from training.
"""

import numpy as np
import pytest
from digit_strokes import draw_on_canvas, make_drawing
from named_data import pet_picture, train_on, write_pets

from neuralstudio.ui.predict.workspace import PredictWorkspace

keras = pytest.importorskip("keras")

LOAD_MS = 90_000


@pytest.fixture
def ws(qtbot):
    w = PredictWorkspace(load_bundled=False)
    qtbot.addWidget(w)
    w.show()
    yield w
    w.shutdown()


@pytest.fixture(scope="module")
def pets(tmp_path_factory):
    root = tmp_path_factory.mktemp("pets")
    result = train_on(write_pets(root / "pets"), root / "pets.keras")
    return result, root


def use(ws, qtbot, model=None, label="test", path=None):
    if path is not None:
        ws.load_model_file(path)
        label = path.name
    else:
        ws.set_model(model, label)
    qtbot.waitUntil(lambda: ws.source_label == label and not ws.is_loading, timeout=LOAD_MS)
    assert ws.predictor is not None, ws.statusLabel.text()


def draw(ws, qtbot, digit=7):
    before = ws.prediction_count
    stroke = make_drawing(digit, "plain", 280, rng=np.random.default_rng(0), height=0.7, aspect=0.65, cx=0.5,
                          cy=0.5, slant=0.0, width_factor=1.0, wobble=0.0)
    draw_on_canvas(ws.canvas, stroke)
    qtbot.waitUntil(lambda: ws.prediction_count > before and ws.predictionLabel.property("predictedClass") != -1,
                    timeout=5000)


def model_outputs(model, x):
    return np.asarray(model(x.reshape(1, 28, 28), training=False), dtype=np.float64)[0]


def sigmoid_net():
    keras.utils.set_random_seed(4)
    inp = keras.Input((28, 28))
    hidden = keras.layers.Dense(30, activation="sigmoid")(keras.layers.Flatten()(inp))
    return keras.Model(inp, keras.layers.Dense(10, activation="sigmoid")(hidden))


def test_a_sigmoid_network_shows_its_raw_activations_labelled_as_such(ws, qtbot):
    model = sigmoid_net()
    use(ws, qtbot, model, "sigmoid net")
    draw(ws, qtbot)
    raw = model_outputs(model, ws.last_input)
    np.testing.assert_allclose(ws.last_values, raw, atol=1e-5)  # not softmaxed again
    np.testing.assert_allclose(ws.chart.values, raw, atol=1e-5)
    assert ws.last_probabilities is None and not ws.chart.is_probability
    assert ws.chart.y_label == "output activation (sigmoid)"
    top = int(np.argmax(raw))
    assert ws.predictionLabel.property("predictedClass") == top == ws.chart.highlighted
    verdict = ws.confidenceLabel.text()
    assert "output activation" in verdict and f"{raw[top]:.2f}" in verdict and "%" not in verdict
    assert "not probabilities" in ws.outputLabel.text()


def test_a_logits_network_is_softmaxed_and_says_so(ws, qtbot):
    keras.utils.set_random_seed(5)
    inp = keras.Input((28, 28, 1))
    model = keras.Model(inp, keras.layers.Dense(10)(keras.layers.Flatten()(inp)))
    use(ws, qtbot, model, "logits net")
    draw(ws, qtbot)
    z = model_outputs(model, ws.last_input.reshape(1, 28, 28, 1))
    soft = np.exp(z - z.max())
    soft /= soft.sum()
    np.testing.assert_allclose(ws.last_values, soft, atol=1e-5)
    np.testing.assert_allclose(ws.last_probabilities, soft, atol=1e-5)
    assert ws.chart.y_label == "softmax of the outputs"
    assert "softmax of the outputs" in ws.confidenceLabel.text() and "%" in ws.confidenceLabel.text()
    assert "logits" in ws.outputLabel.text()


def test_class_names_stored_by_training_come_back_from_the_file(ws, qtbot, pets, tmp_path):
    _, root = pets
    use(ws, qtbot, path=root / "pets.keras")
    assert ws.chart.class_names == ("cat", "dog")
    ticks = ws.chart.getPlotItem().getAxis("bottom")._tickLevels[0]
    assert [t for _, t in ticks] == ["cat", "dog"]
    assert "Classes: cat, dog (trained on pets)" in ws.outputLabel.text()
    assert "cat, dog" in ws.hintLabel.text()
    assert ws.open_image(pet_picture(tmp_path / "cat.png", "cat"))
    qtbot.waitUntil(lambda: ws.predictionLabel.property("predictedClass") != -1, timeout=5000)
    assert ws.predictionLabel.text().rstrip("?") == "cat" and ws.predictionLabel.property("predictedClass") == 0
    assert "%" in ws.confidenceLabel.text()  # a softmax output: probabilities


def test_a_model_handed_over_by_training_keeps_its_names(ws, qtbot, pets):
    result, _ = pets
    use(ws, qtbot, result.model, "trained: pets")
    assert ws.chart.class_names == ("cat", "dog") and ws.predictor.model is not result.model
    draw(ws, qtbot, 1)
    assert ws.predictionLabel.text().rstrip("?") in ("cat", "dog")


def test_a_model_without_names_is_numbered_and_claims_no_data(ws, qtbot, tmp_path):
    keras.utils.set_random_seed(6)
    inp = keras.Input((784,))
    keras.Model(inp, keras.layers.Dense(3, activation="softmax")(inp)).save(tmp_path / "three.keras")
    use(ws, qtbot, path=tmp_path / "three.keras")
    assert ws.chart.class_names == ("0", "1", "2")
    text = ws.outputLabel.text()
    assert "Classes 0-2 (the model stores no class names)" in text and "trained on" not in text
    draw(ws, qtbot)
    assert ws.predictionLabel.text().rstrip("?") in ("0", "1", "2")
