"""The gradients NeuralStudio takes itself agree with finite differences on a tiny model."""

from __future__ import annotations

import keras
import numpy as np
import pytest

from neuralstudio.ml.gradients import input_gradient, layer_gradients


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
