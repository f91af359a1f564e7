"""What a prediction shows is what the output layer gives: probabilities, activations or the softmax of logits."""

import numpy as np
import pytest

keras = pytest.importorskip("keras")

from neuralstudio.ml.inference import (  # noqa: E402
    ACTIVATIONS,
    BINARY,
    BINARY_LOGIT,
    LOGITS,
    PROBABILITIES,
    IncompatibleModelError,
    Predictor,
    output_kind,
)


def images(n=4, seed=3):
    return np.random.default_rng(seed).random((n, 28, 28), dtype=np.float32)


def chain(*layers, shape=(28, 28), seed=0):
    keras.utils.set_random_seed(seed)
    inp = keras.Input(shape)
    x = keras.layers.Flatten()(inp)
    for layer in layers:
        x = layer(x)
    return keras.Model(inp, x)


def raw(model, x):
    return np.asarray(model(x, training=False), dtype=np.float64)


def test_sigmoid_outputs_are_shown_as_they_are_not_softmaxed_again():
    model = chain(keras.layers.Dense(30, activation="sigmoid"), keras.layers.Dense(10, activation="sigmoid"))
    predictor = Predictor(model)
    x = images()
    values = predictor.predict_batch(x)
    np.testing.assert_allclose(values, raw(model, x), atol=1e-6)
    assert not np.allclose(values.sum(axis=1), 1.0, atol=1e-2)  # activations, not probabilities
    kind = predictor.kind
    assert (kind.activation, kind.mode, kind.is_probability) == ("sigmoid", ACTIVATIONS, False)
    assert kind.value_label == "output activation (sigmoid)"
    assert "not probabilities" in kind.description
    p = predictor.predict(x[0])
    assert p.index == int(np.argmax(raw(model, x[:1])[0])) and p.score == pytest.approx(raw(model, x[:1])[0].max())
    d = p.as_dict()
    assert "probabilities" not in d and "confidence" not in d and d["output"] == "activations"
    np.testing.assert_allclose(d["activations"], raw(model, x[:1])[0], atol=1e-5)


def test_the_nielsen_template_reads_a_clear_seven_as_sure():
    """The 784-30-10 sigmoid network: an activation of 0.83 for 7 against 0.19 next is a sure 7, not 21%."""
    from neuralstudio.core.templates import load_template
    from neuralstudio.ml.builder import build_model

    model = build_model(load_template("nielsen-784-30-10").graph)
    predictor = Predictor(model, warm_up=False)
    assert predictor.kind.mode == ACTIVATIONS
    # the output layer's pre-activations chosen so that it gives the activations the issue reports
    want = np.array([0.015, 0.002, 0.01, 0.003, 0.002, 0.032, 0.001, 0.825, 0.094, 0.188])
    weights = model.get_weights()
    weights[-2][:] = 0.0
    weights[-1][:] = np.log(want / (1 - want))
    model.set_weights(weights)
    p = predictor.predict(images(1)[0])
    np.testing.assert_allclose(p.values, want, atol=1e-5)
    assert p.label == "7" and p.sure and p.margin == pytest.approx(0.825 - 0.188, abs=1e-5)
    weights[-1][:] = np.log(np.array([0.4 if i in (2, 7) else 0.01 for i in range(10)]) / 0.6)
    weights[-1][7] += 0.2  # 7 above 2, by less than the margin a sure verdict needs
    model.set_weights(weights)
    unsure = predictor.predict(images(1)[0])
    assert unsure.index == 7 and not unsure.sure


def test_logits_are_softmaxed_and_said_so():
    model = chain(keras.layers.Dense(10))
    predictor = Predictor(model)
    x = images()
    z = raw(model, x)
    e = np.exp(z - z.max(axis=1, keepdims=True))
    np.testing.assert_allclose(predictor.predict_batch(x), e / e.sum(axis=1, keepdims=True), atol=1e-6)
    assert predictor.kind.mode == LOGITS and predictor.kind.value_label == "softmax of the outputs"
    assert "softmax of the outputs" in predictor.kind.description
    assert "probabilities" in predictor.predict(x[0]).as_dict()


@pytest.mark.parametrize(("layers", "activation", "mode"), [
    (lambda: [keras.layers.Dense(10, activation="softmax")], "softmax", PROBABILITIES),
    (lambda: [keras.layers.Dense(10), keras.layers.Softmax()], "softmax", PROBABILITIES),
    (lambda: [keras.layers.Dense(10), keras.layers.Activation("softmax")], "softmax", PROBABILITIES),
    (lambda: [keras.layers.Dense(10, activation="softmax"), keras.layers.Dropout(0.5)], "softmax", PROBABILITIES),
    (lambda: [keras.layers.Dense(10), keras.layers.Activation("sigmoid")], "sigmoid", ACTIVATIONS),
    (lambda: [keras.layers.Dense(10, activation="tanh")], "tanh", ACTIVATIONS),
    (lambda: [keras.layers.Dense(10, activation="log_softmax")], "log_softmax", LOGITS),
    (lambda: [keras.layers.Dense(10, activation="relu"), keras.layers.Reshape((10,))], "relu", ACTIVATIONS),
    (lambda: [keras.layers.Dense(1, activation="sigmoid")], "sigmoid", BINARY),
    (lambda: [keras.layers.Dense(1)], "linear", BINARY_LOGIT),
])
def test_the_output_kind_comes_from_the_last_layer(layers, activation, mode):
    model = chain(*layers())
    kind = output_kind(model)
    assert (kind.activation, kind.mode) == (activation, mode)
    predictor = Predictor(model)
    x = images()
    values = predictor.predict_batch(x)
    assert values.shape == (4, kind.num_classes)
    if kind.is_probability:
        np.testing.assert_allclose(values.sum(axis=1), 1.0, atol=1e-5)
    if mode == PROBABILITIES:
        np.testing.assert_allclose(values, raw(model, x), atol=1e-6)


def test_a_nested_model_and_an_unknown_last_layer():
    inner = chain(keras.layers.Dense(10, activation="sigmoid"))
    inp = keras.Input((28, 28))
    outer = keras.Model(inp, inner(inp))
    assert output_kind(outer).mode == ACTIVATIONS
    inp = keras.Input((28, 28))
    flat = keras.layers.Flatten()(inp)
    added = keras.layers.Add()([keras.layers.Dense(10)(flat), keras.layers.Dense(10)(flat)])
    model = keras.Model(inp, added)
    kind = output_kind(model)
    assert kind.activation == "unknown" and kind.mode == ACTIVATIONS and kind.value_label == "output value"
    np.testing.assert_allclose(Predictor(model).predict_batch(images()), raw(model, images()), atol=1e-6)


def test_binary_outputs_are_the_probability_of_the_second_class():
    model = chain(keras.layers.Dense(1, activation="sigmoid"))
    predictor = Predictor(model, class_names=["cat", "dog"])
    x = images()
    p = raw(model, x)[:, 0]
    np.testing.assert_allclose(predictor.predict_batch(x), np.stack([1 - p, p], axis=1), atol=1e-6)
    assert predictor.predict(x[0]).label == ("dog" if p[0] > 0.5 else "cat")


def test_any_number_of_classes_with_their_names():
    model = chain(keras.layers.Dense(3, activation="softmax"))
    predictor = Predictor(model, class_names=["cat", "dog"])  # fewer names than outputs: the rest are numbered
    assert predictor.class_names == ("cat", "dog", "2") and predictor.names_known
    p = predictor.predict(images(1)[0])
    assert p.label == predictor.class_names[p.index]
    assert Predictor(model).class_names == ("0", "1", "2") and not Predictor(model).names_known
    inp = keras.Input((28, 28))
    with pytest.raises(IncompatibleModelError, match="one value per class"):
        Predictor(keras.Model(inp, keras.layers.Dense(4)(inp)))  # (None, 28, 4): not one value per class


def test_two_classes_are_not_sure_just_because_the_top_is_above_half():
    model = chain(keras.layers.Dense(2, activation="softmax"))
    weights = model.get_weights()
    weights[0][:] = 0.0
    for top, sure in ((0.55, False), (0.9, True)):
        weights[1][:] = np.log([top, 1 - top])
        model.set_weights(weights)
        p = Predictor(model, class_names=["cat", "dog"]).predict(images(1)[0])
        assert p.label == "cat" and p.score == pytest.approx(top, abs=1e-5) and p.sure is sure
