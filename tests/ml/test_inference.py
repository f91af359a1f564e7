"""The fast predictor: input adaptation, incompatible models, copies, agreement with Keras."""

import numpy as np
import pytest

keras = pytest.importorskip("keras")

from neuralstudio.core.errors import UserError  # noqa: E402
from neuralstudio.ml.inference import IncompatibleModelError, Predictor, inference_copy  # noqa: E402


def tiny(shape, units=10, activation="softmax", seed=0):
    keras.utils.set_random_seed(seed)
    inp = keras.Input(shape)
    if None in shape:
        x = keras.layers.GlobalAveragePooling2D()(keras.layers.Conv2D(4, 3)(inp))
    else:
        x = keras.layers.Flatten()(inp) if len(shape) > 1 else inp
    out = keras.layers.Dense(units, activation=activation)(x)
    return keras.Model(inp, out)


def digits(n=3, seed=1):
    return np.random.default_rng(seed).random((n, 28, 28), dtype=np.float32)


@pytest.mark.parametrize("shape", [(28, 28), (28, 28, 1), (784,), (None, None, 1)])
def test_accepts_the_usual_digit_inputs_and_matches_keras(shape):
    model = tiny(shape)
    predictor = Predictor(model)
    x = digits()
    probs = predictor.predict_batch(x)
    assert probs.shape == (3, 10)
    np.testing.assert_allclose(probs.sum(axis=1), 1.0, atol=1e-5)
    feed = x.reshape((3, 784)) if shape == (784,) else (x[..., None] if len(shape) == 3 else x)
    np.testing.assert_allclose(probs, model.predict(feed, verbose=0), atol=1e-5)
    one = predictor.predict(x[0])
    assert one.digit == int(np.argmax(probs[0])) and one.confidence == pytest.approx(probs[0].max())


def test_logits_get_a_softmax():
    model = tiny((28, 28), activation=None)
    probs = Predictor(model).predict_batch(digits())
    np.testing.assert_allclose(probs.sum(axis=1), 1.0, atol=1e-6)
    assert (probs >= 0).all()


@pytest.mark.parametrize(
    ("shape", "units", "words"),
    [((32, 32, 3), 10, ["(32, 32, 3)", "colour", "28x28"]), ((64, 64, 1), 10, ["64x64"]),
     ((100,), 10, ["(100)", "28x28"])],
)
def test_incompatible_models_are_explained(shape, units, words):
    with pytest.raises(IncompatibleModelError) as err:
        Predictor(tiny(shape, units=units))
    assert isinstance(err.value, UserError)
    for w in words:
        assert w in str(err.value)


def test_two_inputs_refused():
    a, b = keras.Input((28, 28)), keras.Input((28, 28))
    out = keras.layers.Dense(10)(keras.layers.Flatten()(keras.layers.Add()([a, b])))
    with pytest.raises(IncompatibleModelError, match="2 inputs"):
        Predictor(keras.Model([a, b], out))


def test_inference_copy_is_independent():
    model = tiny((28, 28, 1))
    x = digits(1)
    copy = inference_copy(model)
    predictor = Predictor(copy)
    before = predictor.predict_batch(x)
    model.set_weights([w * 0 for w in model.get_weights()])  # "training" changes the original
    np.testing.assert_allclose(predictor.predict_batch(x), before)
    assert not np.allclose(Predictor(model).predict_batch(x), before)


def test_inference_copy_of_a_compiled_sequential_model_leaves_the_optimizer_alone():
    layers = [keras.Input((28, 28)), keras.layers.Flatten(), keras.layers.Dense(10, activation="softmax")]
    model = keras.Sequential(layers)
    model.compile(optimizer="adam", loss="sparse_categorical_crossentropy")
    copy = inference_copy(model)
    assert copy is not model and not copy.compiled
    np.testing.assert_allclose(Predictor(copy).predict_batch(digits(2)), model.predict(digits(2), verbose=0), atol=1e-5)
