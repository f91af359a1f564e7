"""The gradients NeuralStudio takes itself agree with finite differences on a tiny model."""

from __future__ import annotations

import keras
import numpy as np
import pytest

from neuralstudio.ml.gradients import input_gradient, layer_gradients, outputs_and_input_gradient


@pytest.fixture
def tiny():
    keras.utils.set_random_seed(1)
    inp = keras.Input((3,))
    h = keras.layers.Dense(4, activation="tanh", name="hidden")(inp)
    out = keras.layers.Dense(2, activation="softmax", name="out")(h)
    return keras.Model(inp, out)


def _loss_of(model, x, y, loss):
    return float(np.mean(keras.ops.convert_to_numpy(loss(y, model(x, training=True)))))


def test_weight_gradients_match_finite_differences(tiny):
    rng = np.random.default_rng(0)
    x = rng.normal(size=(5, 3)).astype("float64").astype("float32")
    y = np.array([0, 1, 1, 0, 1])
    loss = keras.losses.SparseCategoricalCrossentropy()
    grads = layer_gradients(tiny, x, y, loss)
    assert set(grads) == {"hidden", "out"}
    kernel = tiny.get_layer("hidden").kernel
    w = keras.ops.convert_to_numpy(kernel).copy()
    eps = 1e-3
    for i, j in [(0, 0), (2, 3), (1, 2)]:
        plus, minus = w.copy(), w.copy()
        plus[i, j] += eps
        minus[i, j] -= eps
        kernel.assign(plus)
        up = _loss_of(tiny, x, y, loss)
        kernel.assign(minus)
        down = _loss_of(tiny, x, y, loss)
        kernel.assign(w)
        assert grads["hidden"][0][i, j] == pytest.approx((up - down) / (2 * eps), rel=2e-2, abs=1e-4)
    np.testing.assert_array_equal(keras.ops.convert_to_numpy(kernel), w)  # the weights are left as they were


def test_input_gradient_matches_finite_differences_per_example(tiny):
    x = np.array([[0.1, -0.2, 0.3], [1.0, 0.5, -0.5]], "float32")
    g = input_gradient(tiny, x, np.array([1, 0]))
    assert g.shape == x.shape
    eps = 1e-3
    for n, cls in ((0, 1), (1, 0)):
        for k in range(3):
            plus, minus = x.copy(), x.copy()
            plus[n, k] += eps
            minus[n, k] -= eps
            fd = (keras.ops.convert_to_numpy(tiny(plus))[n, cls] - keras.ops.convert_to_numpy(tiny(minus))[n, cls])
            assert g[n, k] == pytest.approx(fd / (2 * eps), rel=2e-2, abs=1e-4)


def test_outputs_and_input_gradient_is_one_compiled_call_traced_once(tiny):
    """The compiled form gives the model's outputs and the same gradient as input_gradient (checked against finite
    differences above) and as finite differences itself, and is traced once for every drawing and class."""
    both = outputs_and_input_gradient(tiny, (3,))
    assert both.traces == 0  # traced on its first call, on the caller's thread
    rng = np.random.default_rng(4)
    eps = 1e-3
    for n in range(4):
        x = rng.normal(size=(1, 3)).astype("float32")
        cls = n % 2
        outputs, g = both(x, cls)
        assert len(outputs) == 1 and g.shape == x.shape
        np.testing.assert_allclose(outputs[0], keras.ops.convert_to_numpy(tiny(x, training=False)), rtol=1e-6,
                                   atol=1e-7)
        np.testing.assert_allclose(g, input_gradient(tiny, x, cls), rtol=1e-5, atol=1e-7)
        for k in range(3):
            plus, minus = x.copy(), x.copy()
            plus[0, k] += eps
            minus[0, k] -= eps
            fd = keras.ops.convert_to_numpy(tiny(plus))[0, cls] - keras.ops.convert_to_numpy(tiny(minus))[0, cls]
            assert g[0, k] == pytest.approx(fd / (2 * eps), rel=2e-2, abs=1e-4)
    outputs, g = both(np.zeros((2, 3), "float32") + 0.5, np.array([1, 0]))  # one class per example
    np.testing.assert_allclose(g, input_gradient(tiny, np.zeros((2, 3), "float32") + 0.5, np.array([1, 0])),
                               rtol=1e-5, atol=1e-7)
    # TensorFlow: one trace for every batch size (a batch-free signature); JAX: one per batch size; PyTorch: none
    assert both.traces == {"tensorflow": 1, "jax": 2, "torch": 0}[keras.backend.backend()]


def test_outputs_and_input_gradient_of_a_model_with_several_outputs(tiny):
    """The last output is the one differentiated; every output comes back, in the model's order."""
    hidden = tiny.get_layer("hidden").output
    two = keras.Model(tiny.inputs[0], [hidden, tiny.outputs[0]])
    x = np.array([[0.3, -0.1, 0.7]], "float32")
    outputs, g = outputs_and_input_gradient(two, (3,))(x, 1)
    assert [o.shape for o in outputs] == [(1, 4), (1, 2)]
    np.testing.assert_allclose(outputs[0], keras.ops.convert_to_numpy(keras.Model(tiny.inputs[0], hidden)(x)),
                               rtol=1e-6, atol=1e-7)
    np.testing.assert_allclose(g, input_gradient(tiny, x, 1), rtol=1e-5, atol=1e-7)
