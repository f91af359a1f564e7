"""The inside of a network for one drawing: probe outputs, filters, saliency and why views do not apply."""

import numpy as np
import pytest

keras = pytest.importorskip("keras")

from neuralstudio.core.errors import UserError  # noqa: E402
from neuralstudio.ml.activations import (  # noqa: E402
    DENSE,
    FEATURE_MAPS,
    FILTERS,
    ActivationProbe,
    explain_unavailable,
    first_layer_filters,
    saliency,
    unavailable_views,
)
from neuralstudio.ml.inference import IncompatibleModelError  # noqa: E402

NO_CONV = ("This model has no convolution layers, so there are no feature maps: its Dense layers' activations are "
           "shown instead.")


def small_cnn(seed=0):
    """Conv -> BN -> ReLU -> pool -> conv (relu) -> flatten -> Dense(16) -> Dense(10, softmax)."""
    keras.utils.set_random_seed(seed)
    inp = keras.Input((28, 28, 1), name="image")
    x = keras.layers.Conv2D(6, 3, padding="same", name="conv_a")(inp)
    x = keras.layers.BatchNormalization(name="bn_a")(x)
    x = keras.layers.Activation("relu", name="relu_a")(x)
    x = keras.layers.MaxPooling2D(name="pool")(x)
    x = keras.layers.Conv2D(8, 3, activation="relu", name="conv_b")(x)
    x = keras.layers.Flatten(name="flatten")(x)
    x = keras.layers.Dense(16, activation="relu", name="hidden")(x)
    out = keras.layers.Dense(10, activation="softmax", name="digit")(x)
    return keras.Model(inp, out)


def dense_only(seed=0):
    keras.utils.set_random_seed(seed)
    inp = keras.Input((784,))
    h = keras.layers.Dense(30, activation="sigmoid", name="hidden")(inp)
    return keras.Model(inp, keras.layers.Dense(10, activation="sigmoid", name="digit")(h))


def drawing(seed=3):
    """A stroke-like image: zero (no ink) almost everywhere, as a prepared drawing is."""
    x = np.zeros((28, 28), np.float32)
    x[6:22, 12:16] = np.random.default_rng(seed).uniform(0.3, 1.0, (16, 4))
    x[6:9, 8:20] = 1.0
    return x


@pytest.fixture(scope="module")
def cnn():
    model = small_cnn()
    return model, ActivationProbe(model)


def test_probe_outputs_match_a_reference_keras_model(cnn):
    model, probe = cnn
    assert [layer.name for layer in probe.layers] == ["conv_a", "conv_b", "hidden", "digit"]
    conv_a = probe.layers[0]
    assert conv_a.through == ("bn_a", "relu_a") and conv_a.kind == "maps" and conv_a.shape == (28, 28, 6)
    assert conv_a.title == "conv_a (Conv2D) → bn_a → relu_a"
    assert [layer.kind for layer in probe.layers] == ["maps", "maps", "vector", "vector"]
    assert [layer.is_output for layer in probe.layers] == [False, False, False, True]

    x = drawing()
    names = ("relu_a", "conv_b", "hidden", "digit")
    reference = keras.Model(model.inputs[0], [model.get_layer(n).output for n in names])
    expected = [keras.ops.convert_to_numpy(t)[0] for t in reference(x[None, ..., None], training=False)]
    got = probe.activations(x)
    assert [a.name for a in got] == ["conv_a", "conv_b", "hidden", "digit"]
    for activation, want in zip(got, expected):
        np.testing.assert_allclose(activation.output, want, rtol=1e-5, atol=1e-6)
    look = probe.look(x, 4)
    for activation, want in zip(look.activations, expected):  # the saliency's forward pass gives the same outputs
        np.testing.assert_allclose(activation.output, want, rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(look.output, keras.ops.convert_to_numpy(model(x[None, ..., None]))[0], atol=1e-6)
    assert [a.name for a in look.feature_maps()] == ["conv_a", "conv_b"]
    assert [a.name for a in look.vectors()] == ["hidden"]  # the output layer is the probabilities chart


def test_feature_maps_for_display(cnn):
    _, probe = cnn
    conv_a = probe.activations(drawing())[0]
    maps = conv_a.maps()
    assert maps.shape == (6, 28, 28) and conv_a.channels == 6
    np.testing.assert_array_equal(maps[2], conv_a.output[..., 2])
    shown, more = conv_a.display_maps(limit=4)
    assert shown.shape == (4, 28, 28) and more == 2
    assert shown.min() >= 0.0 and shown.max() <= 1.0
    top = maps.max()  # after a ReLU: one scale for the layer, zero stays black
    np.testing.assert_allclose(shown, maps[:4] / top, rtol=1e-5)
    with pytest.raises(ValueError):
        probe.activations(drawing())[2].maps()  # a Dense layer has no maps


def test_first_layer_filters(cnn):
    model, _ = cnn
    filters = first_layer_filters(model)
    assert filters.available and filters.layer == "conv_a" and filters.class_name == "Conv2D"
    assert filters.images.shape == (6, 3, 3) and filters.note == ""
    kernel = model.get_layer("conv_a").get_weights()[0][:, :, 0, :]
    np.testing.assert_allclose(filters.images, np.moveaxis(0.5 + 0.5 * kernel / np.abs(kernel).max(), -1, 0),
                               rtol=1e-5, atol=1e-7)  # float32 rounding differs by backend (JAX: 1e-8 apart)
    assert filters.images.min() >= 0.0 and filters.images.max() <= 1.0

    none = first_layer_filters(dense_only())
    assert not none.available and none.images is None and "no convolution layers" in none.reason


def test_filters_of_a_conv1d_over_rows_and_a_depthwise_layer():
    inp = keras.Input((28, 28))
    x = keras.layers.Conv1D(5, 3, name="rows")(inp)
    model = keras.Model(inp, keras.layers.Dense(10, activation="softmax")(keras.layers.Flatten()(x)))
    filters = first_layer_filters(model)
    assert filters.images.shape == (5, 3, 28)  # kernel size x input features, one image per filter
    probe = ActivationProbe(model)
    maps = probe.activations(drawing())[0].maps()
    assert maps.shape == (1, 5, 26)  # one map: the channels as rows, the steps as columns

    inp = keras.Input((28, 28, 1))
    x = keras.layers.DepthwiseConv2D(3, depth_multiplier=4, name="depthwise")(inp)
    model = keras.Model(inp, keras.layers.Dense(10, activation="softmax")(keras.layers.Flatten()(x)))
    assert first_layer_filters(model).images.shape == (4, 3, 3)


def test_saliency_is_gradient_times_input_normalised(cnn):
    model, probe = cnn
    x = drawing()
    s = probe.saliency(x, 4)
    assert s.shape == (28, 28) and s.dtype == np.float32
    assert s.max() == pytest.approx(1.0) and s.min() >= 0.0
    assert not s[x == 0].any()  # gradient x input: nothing where there is no ink
    assert np.count_nonzero(s[x > 0]) > 0.5 * np.count_nonzero(x)
    # The same through the model itself (its gradient taken eagerly) and through the probe's traced function.
    np.testing.assert_allclose(saliency(model, x, 4), s, atol=1e-4)
    np.testing.assert_allclose(saliency(probe, x, 4), s, atol=1e-6)
    np.testing.assert_allclose(probe.look(x, 4).saliency, s, atol=1e-6)
    assert not saliency(model, np.zeros((28, 28), np.float32), 4).any()  # an empty drawing has no saliency


def test_saliency_is_highest_on_the_pixels_that_decide_the_class():
    """A model whose class 1 reads only the ink in the left half: the saliency of class 1 lies there."""
    inp = keras.Input((28, 28, 1))
    flat = keras.layers.Flatten()(inp)
    out = keras.layers.Dense(2, activation="softmax", name="digit")(flat)
    model = keras.Model(inp, out)
    weights = np.zeros((784, 2), np.float32)
    left = (np.arange(784) % 28) < 14
    weights[left, 1] = 0.05
    model.get_layer("digit").set_weights([weights, np.zeros(2, np.float32)])
    x = np.zeros((28, 28), np.float32)
    x[4:24, 6:22] = 1.0  # ink on both sides
    s = ActivationProbe(model).saliency(x, 1)
    assert s[:, :14].sum() > 0 and not s[:, 14:].any()
    assert s[4:24, 6:14].min() > 0.99  # every left-half ink pixel counts the same here


def test_probe_saliency_equals_the_eager_gradient_and_is_traced_once_per_model():
    """The probe's one compiled call gives the saliency that an eager gradient of the model itself gives (to 1e-5),
    and is traced once: never again for another drawing or class."""
    from neuralstudio.ml.activations import _gradient_times_input
    from neuralstudio.ml.gradients import input_gradient

    keras.utils.set_random_seed(5)
    inp = keras.Input((28, 28, 1))
    x = keras.layers.Conv2D(3, 3, activation="tanh", name="conv")(inp)
    x = keras.layers.MaxPooling2D()(x)
    x = keras.layers.Flatten()(x)
    x = keras.layers.Dense(8, activation="tanh", name="hidden")(x)
    model = keras.Model(inp, keras.layers.Dense(4, activation="softmax", name="digit")(x))
    probe = ActivationProbe(model)
    warm = probe.traces
    assert warm == (0 if keras.backend.backend() == "torch" else 1)  # traced by the warm-up, on the caller's thread
    for seed, cls in ((3, 0), (4, 2), (5, 3), (6, 1), (7, 2)):
        image = drawing(seed)
        eager = _gradient_times_input(input_gradient(model, image.reshape(1, 28, 28, 1), cls)[0], image)
        look = probe.look(image, cls)
        np.testing.assert_allclose(look.saliency, eager, atol=1e-5)
        np.testing.assert_allclose(saliency(model, image, cls), eager, atol=1e-6)  # the model's own (eager) path
        np.testing.assert_allclose(look.output, keras.ops.convert_to_numpy(model(image[None, ..., None]))[0],
                                   rtol=1e-5, atol=1e-6)
    assert probe.traces == warm  # five drawings, four classes: not one more trace


def test_a_model_without_a_gradient_keeps_its_other_views():
    """A gradient that cannot be taken (here cut by stop_gradient) drops the saliency, says why, and the feature maps
    still come."""
    if keras.backend.backend() == "jax":
        pytest.skip("JAX's stop_gradient gives a zero gradient, not a missing one")

    class Cut(keras.layers.Layer):
        def call(self, t):
            return keras.ops.stop_gradient(t)

    inp = keras.Input((28, 28, 1))
    conv = keras.layers.Conv2D(4, 3, activation="relu", name="conv")(Cut()(inp))
    model = keras.Model(inp, keras.layers.Dense(10, activation="softmax")(keras.layers.Flatten()(conv)))
    probe = ActivationProbe(model)
    look = probe.look(drawing(), 1)
    assert look.saliency is None and "could not be taken" in look.saliency_reason
    assert not probe.has_saliency and "no saliency" in probe.explanation
    assert [a.name for a in look.feature_maps()] == ["conv"] and look.output.shape == (10,)


def test_probe_takes_only_prepared_drawings(cnn):
    _, probe = cnn
    with pytest.raises(ValueError, match="28, 28"):
        probe.activations(np.zeros((28, 28, 1), np.float32))


def test_a_dense_only_model_is_explained_and_its_dense_layers_read():
    model = dense_only()
    assert explain_unavailable(model) == NO_CONV
    assert set(unavailable_views(model)) == {FEATURE_MAPS}
    probe = ActivationProbe(model)
    assert probe.explanation == NO_CONV and not probe.filters.available
    look = probe.look(drawing(), 3)
    assert [a.name for a in look.vectors()] == ["hidden"] and look.vectors()[0].vector().shape == (30,)
    assert look.saliency.shape == (28, 28) and not look.saliency[drawing() == 0].any()


def test_a_sequence_model_is_explained():
    keras.utils.set_random_seed(0)
    inp = keras.Input((28, 28))
    h = keras.layers.LSTM(12, name="lstm")(inp)
    model = keras.Model(inp, keras.layers.Dense(10, activation="softmax", name="digit")(h))
    text = explain_unavailable(model)
    assert "sequence of rows (LSTM)" in text and "no feature maps" in text
    probe = ActivationProbe(model)
    look = probe.look(drawing(), 1)
    assert [a.name for a in look.vectors()] == ["lstm"]  # its last state, as bars
    assert look.saliency is not None and look.saliency.max() == pytest.approx(1.0)


def test_other_reasons():
    inp = keras.Input((28, 28, 1))
    conv = keras.layers.Conv2D(4, 3, activation="relu")(inp)
    pooled = keras.layers.GlobalAveragePooling2D()(conv)
    only_output = keras.Model(inp, keras.layers.Dense(10, activation="softmax")(pooled))
    assert set(unavailable_views(only_output)) == {DENSE}
    assert "no hidden Dense layer" in explain_unavailable(only_output)

    a, b = keras.Input((28, 28, 1)), keras.Input((3,))
    joined = keras.layers.Concatenate()([keras.layers.Flatten()(a), b])
    two_inputs = keras.Model([a, b], keras.layers.Dense(10, activation="softmax")(joined))
    assert explain_unavailable(two_inputs).startswith("This model has 2 inputs")
    assert set(unavailable_views(two_inputs)) == {FEATURE_MAPS, FILTERS, "saliency", DENSE}

    colour = keras.Input((32, 32, 3))
    rgb = keras.Model(colour, keras.layers.Dense(10, activation="softmax")(keras.layers.Flatten()(colour)))
    assert "28x28" in explain_unavailable(rgb)
    with pytest.raises(IncompatibleModelError):
        ActivationProbe(rgb)
    assert issubclass(IncompatibleModelError, UserError)


def test_a_sequential_model_read_from_a_file(tmp_path):
    """Keras gives each layer of a loaded Sequential model two nodes: the probe reads those of the model's graph."""
    from neuralstudio.ml.model_files import load_keras_model

    keras.utils.set_random_seed(2)
    model = keras.Sequential([keras.Input((28, 28, 1)), keras.layers.Conv2D(4, 3, activation="relu", name="conv"),
                              keras.layers.Flatten(), keras.layers.Dense(8, activation="relu", name="hidden"),
                              keras.layers.Dense(10, activation="softmax", name="digit")])
    model.save(tmp_path / "sequential.keras")
    loaded = load_keras_model(tmp_path / "sequential.keras")
    probe = ActivationProbe(loaded)
    assert [(layer.name, layer.is_output) for layer in probe.layers] == [
        ("conv", False), ("hidden", False), ("digit", True)]
    assert probe.explanation == ""
    x = drawing()
    for got, want in zip(probe.activations(x), ActivationProbe(model, warm_up=False).activations(x)):
        np.testing.assert_allclose(got.output, want.output, rtol=1e-5, atol=1e-6)
