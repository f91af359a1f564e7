"""The palette is derived from Keras: every entry builds, and the hints are right."""

import inspect

import keras
import pytest

from neuralstudio.core.graph import Graph
from neuralstudio.ml import catalog as cat
from neuralstudio.ml.builder import analyze, layer_class


def test_every_layer_in_the_palette_builds_from_its_default_config():
    specs = cat.catalog()
    assert len(specs) > 100
    for name, spec in specs.items():
        cls = layer_class(name)
        layer = cls.from_config(spec.default_config())
        assert isinstance(layer, keras.layers.Layer), name
        assert spec.category in cat.CATEGORIES, name


def test_default_configs_named_in_the_contract():
    assert cat.layer_spec("Dense").default_config() == {"units": 32}
    assert cat.layer_spec("Conv2D").default_config() == {"filters": 32, "kernel_size": [3, 3]}
    assert cat.layer_spec("InputLayer").default_config() == {"batch_shape": [None, 28, 28, 1]}
    assert cat.layer_spec("Dropout").default_config() == {"rate": 0.25}


def test_common_layers_can_be_chained_from_default_configs():
    x = keras.Input(batch_shape=(None, 28, 28, 1))
    for name in ["Conv2D", "MaxPooling2D", "BatchNormalization", "Dropout", "Flatten", "Dense"]:
        x = getattr(keras.layers, name).from_config(cat.layer_spec(name).default_config())(x)
    assert tuple(x.shape) == (None, 32)


def test_layers_keras_exports_under_another_name_are_keyed_by_class_name():
    spec = cat.layer_spec("GroupedQueryAttention")
    assert "GroupQueryAttention" not in cat.catalog()
    assert (spec.category, spec.min_inputs, spec.max_inputs) == ("Attention", 2, 3)
    g = Graph()
    q = g.add_node("InputLayer", {"batch_shape": [None, 5, 8]})
    v = g.add_node("InputLayer", {"batch_shape": [None, 7, 8]})
    att = g.add_node("GroupedQueryAttention", spec.default_config())
    g.connect(q.id, att.id)
    g.connect(v.id, att.id)
    result = analyze(g, loss="mse")
    assert result.ok, result.problems
    assert result.infos[att.id].output_shape == (None, 5, 8)


def test_aliases_wrappers_and_unsafe_layers_are_left_out():
    specs = cat.catalog()
    for name in ["MaxPool2D", "Convolution2D", "AvgPool1D", "Lambda", "Layer", "Bidirectional", "LSTMCell",
                 "TFSMLayer"]:
        assert name not in specs
    for name in ["InputLayer", "Dense", "Conv2D", "LSTM", "MultiHeadAttention", "Add", "Concatenate",
                 "RandomFlip", "ReLU"]:
        assert name in specs


def test_categories_in_palette_order():
    cats = cat.categories()
    assert cats[:3] == ["Core", "Convolution", "Pooling"]
    for c in ["Recurrent", "Attention", "Normalization", "Regularization", "Reshaping", "Merging",
              "Preprocessing/Augmentation", "Activation"]:
        assert c in cats
    expected = {"Dense": "Core", "Conv2D": "Convolution", "MaxPooling2D": "Pooling", "LSTM": "Recurrent",
                "MultiHeadAttention": "Attention", "BatchNormalization": "Normalization",
                "Dropout": "Regularization", "Flatten": "Reshaping", "Add": "Merging",
                "RandomFlip": "Preprocessing/Augmentation", "ReLU": "Activation"}
    for name, category in expected.items():
        assert cat.layer_spec(name).category == category, name
    grouped = cat.by_category()
    assert any(s.class_name == "Dense" for s in grouped["Core"])


def test_params_come_from_the_keras_signature_and_docstring():
    spec = cat.layer_spec("Conv2D")
    sig = inspect.signature(keras.layers.Conv2D.__init__)
    names = [p.name for p in spec.params]
    assert names[:2] == ["filters", "kernel_size"]
    assert set(names) == {n for n in sig.parameters if n not in ("self", "kwargs")}
    assert spec.param("kernel_initializer").default == "glorot_uniform"
    assert spec.param("kernel_initializer").kind == "initializer"
    assert spec.param("padding").kind == "choice" and spec.param("padding").choices == ("valid", "same")
    assert spec.param("strides").kind == "tuple" and spec.param("strides").tuple_len == 2
    assert spec.param("activation").kind == "activation" and "relu" in spec.param("activation").choices
    assert "number of filters" in spec.param("filters").doc
    assert spec.doc == "2D convolution layer."
    assert (spec.min_inputs, spec.max_inputs) == (1, 1)
    assert cat.layer_spec("Add").max_inputs is None and cat.layer_spec("Add").min_inputs == 2
    rate = cat.layer_spec("Dropout").param("rate")
    assert (rate.kind, rate.minimum, rate.maximum) == ("float", 0.0, 1.0)
    assert cat.layer_spec("Dense").param("units").minimum == 1


def test_layer_spec_unknown_raises_keyerror():
    with pytest.raises(KeyError):
        cat.layer_spec("NoSuchLayer")


def test_summary_text_examples():
    assert cat.summary_text("Conv2D", {"filters": 32, "kernel_size": [3, 3], "activation": "relu"}) == \
        "Conv2D 32 3x3 relu"
    assert cat.summary_text("Conv2D", {"filters": 16, "kernel_size": 5}) == "Conv2D 16 5x5"
    assert cat.summary_text("Dense", {"units": 10, "activation": "softmax"}) == "Dense 10 softmax"
    assert cat.summary_text("Dense", {"units": 64, "activation": "linear"}) == "Dense 64"
    assert cat.summary_text("Dropout", {"rate": 0.25}) == "Dropout 0.25"
    assert cat.summary_text("MaxPooling2D", {}) == "MaxPooling2D 2x2"
    assert cat.summary_text("MaxPooling2D", {"pool_size": [3, 3]}) == "MaxPooling2D 3x3"
    assert cat.summary_text("InputLayer", {"batch_shape": [None, 28, 28, 1]}) == "Input 28x28x1"
    assert cat.summary_text("LSTM", {"units": 128}) == "LSTM 128"
    assert cat.summary_text("Flatten", {}) == "Flatten"
    assert cat.summary_text("Activation", {"activation": "relu"}) == "Activation relu"


@pytest.mark.parametrize(("cls", "key", "value", "refused"), [
    ("Dropout", "rate", 0.5, False),
    ("Dropout", "rate", 1.0, True),
    ("Dropout", "rate", -0.1, True),
    ("Dropout", "rate", "half", True),
    ("Dense", "units", 10, False),
    ("Dense", "units", 0, True),
    ("Dense", "units", 2.5, True),
    ("Dense", "units", True, True),
    ("Dense", "units", None, True),
    ("Dense", "activation", "relu", False),
    ("Dense", "activation", None, False),
    ("Dense", "activation", "relux", True),
    ("Dense", "kernel_initializer", "he_normal", False),
    ("Dense", "kernel_initializer", "nope", True),
    ("Dense", "use_bias", "yes", True),
    ("Dense", "colour", 1, True),
    ("Conv2D", "padding", "same", False),
    ("Conv2D", "padding", "full", True),
    ("Conv2D", "kernel_size", [3, 3], False),
    ("Conv2D", "kernel_size", 3, False),
    ("Conv2D", "kernel_size", [3, 3, 3], True),
    ("Conv2D", "kernel_size", [0, 3], True),
    ("InputLayer", "batch_shape", [None, 28, 28, 1], False),
    ("InputLayer", "batch_shape", [None, 0, 28], True),
    ("InputLayer", "batch_shape", [None], True),
    ("Reshape", "target_shape", [28, -1], False),
    ("Reshape", "target_shape", [-1, -1], True),
    ("Dense", "name", "my dense", True),
    ("NoSuchLayer", "units", 1, True),
])
def test_validate_param(cls, key, value, refused):
    reason = cat.validate_param(cls, key, value)
    assert (reason is not None) == refused, reason
    if refused:
        assert isinstance(reason, str) and len(reason) > 10


def test_catalog_is_cached():
    assert cat.catalog() is cat.catalog()


def test_an_optional_integer_parameter_takes_whole_numbers_only():
    """The Inspector accepted "abc" for lora_rank ("Optional integer" in Keras's docs): no longer."""
    from neuralstudio.ml.catalog import layer_spec, validate_param

    assert layer_spec("Dense").param("lora_rank").kind == "int"
    assert validate_param("Dense", "lora_rank", "abc") == "lora_rank must be a whole number."
    assert validate_param("Dense", "lora_rank", 0) == "lora_rank must be at least 1."
    assert validate_param("Dense", "lora_rank", 4) is None
    assert validate_param("Dense", "lora_rank", None) is None  # optional: no LoRA
