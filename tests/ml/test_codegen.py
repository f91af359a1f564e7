"""Generated Keras scripts: executed, and compared with the model the builder makes from the same design."""

from __future__ import annotations

import ast
import os
import subprocess
import sys

import pytest

keras = pytest.importorskip("keras")

from neuralstudio.core.design import Design  # noqa: E402
from neuralstudio.core.graph import Graph  # noqa: E402
from neuralstudio.core.training_settings import TrainingSettings  # noqa: E402
from neuralstudio.ml.builder import build_model  # noqa: E402
from neuralstudio.ml.codegen import CodegenError, generate_code  # noqa: E402
from neuralstudio.ml.importer import import_model  # noqa: E402


def _plain(value):
    if isinstance(value, (list, tuple)):
        return [_plain(v) for v in value]
    if isinstance(value, dict):
        return {k: _plain(v) for k, v in value.items() if k != "name"}
    return value


def _layers(model):
    return [x for x in model.layers if not isinstance(x, keras.layers.InputLayer)]


def run_generated(code: str):
    """Execute the script as an imported module would be (the __main__ block does not run)."""
    namespace = {"__name__": "generated_net"}
    exec(compile(code, "generated_net.py", "exec"), namespace)  # noqa: S102 - our own generated code
    return namespace["model"]


def assert_same_as_design(design: Design, code: str) -> None:
    generated = run_generated(code)
    built = build_model(design.graph)
    assert [type(x).__name__ for x in _layers(generated)] == [type(x).__name__ for x in _layers(built)]
    for g, b in zip(_layers(generated), _layers(built)):
        assert _plain(g.get_config()) == _plain(b.get_config()), b.name
        assert g.count_params() == b.count_params(), b.name
    assert generated.count_params() == built.count_params()
    assert [tuple(t.shape) for t in generated.inputs] == [tuple(t.shape) for t in built.inputs]
    assert [tuple(t.shape) for t in generated.outputs] == [tuple(t.shape) for t in built.outputs]


def chain_design(**training) -> Design:
    g = Graph()
    i = g.add_node("InputLayer", {"batch_shape": [None, 28, 28, 1]}, name="image")
    c = g.add_node("Conv2D", {"filters": 8, "kernel_size": [3, 3], "activation": "relu", "padding": "same"})
    p = g.add_node("MaxPooling2D", {"pool_size": [2, 2]})
    f = g.add_node("Flatten")
    d = g.add_node("Dropout", {"rate": 0.3})
    o = g.add_node("Dense", {
        "units": 10, "activation": "softmax",
        "kernel_initializer": {"module": "keras.initializers", "class_name": "HeNormal",
                               "config": {"seed": 7}, "registered_name": None},
    }, name="digits")
    for a, b in [(i, c), (c, p), (p, f), (f, d), (d, o)]:
        g.connect(a.id, b.id)
    return Design(graph=g, name="small cnn", training=TrainingSettings(**training))


def branch_design() -> Design:
    g = Graph()
    i = g.add_node("InputLayer", {"batch_shape": [None, 784]}, name="pixels")
    a = g.add_node("Dense", {"units": 32, "activation": "relu"}, name="wide")
    b = g.add_node("Dense", {"units": 32, "activation": "tanh", "use_bias": False}, name="narrow")
    s = g.add_node("Add", {}, name="join")
    c = g.add_node("Concatenate", {"axis": -1}, name="cat")
    o = g.add_node("Dense", {"units": 10, "activation": "softmax"}, name="probs")
    g.connect(i.id, a.id)
    g.connect(i.id, b.id)
    g.connect(a.id, s.id)
    g.connect(b.id, s.id)
    g.connect(s.id, c.id)
    g.connect(a.id, c.id)
    g.connect(c.id, o.id)
    return Design(graph=g, name="branchy")


def test_chain_becomes_sequential_with_only_non_default_arguments():
    design = chain_design()
    code = generate_code(design)
    ast.parse(code)
    assert "keras.Sequential(" in code and "keras.Model(" not in code
    assert 'layers.Conv2D(8, 3, activation="relu", padding="same")' in code
    assert "layers.MaxPooling2D()" in code  # pool_size (2, 2) is the default
    assert "layers.Dropout(0.3)" in code
    assert "keras.initializers.HeNormal(seed=7)" in code
    assert 'name="digits"' in code and "conv2d" not in code  # Keras-style default names are left out
    assert "use_bias" not in code and "kernel_regularizer" not in code and "data_format" not in code
    assert_same_as_design(design, code)


def test_branch_and_merge_uses_the_functional_api():
    design = branch_design()
    code = generate_code(design)
    assert "keras.Sequential" not in code
    assert "join = layers.Add(name=\"join\")([wide, narrow])" in code
    assert "cat = layers.Concatenate(name=\"cat\")([join, wide])" in code
    assert "model = keras.Model(inputs=pixels, outputs=probs" in code
    assert_same_as_design(design, code)


def test_imported_model_with_shared_layer_and_two_outputs():
    a, b = keras.Input((6,), name="a"), keras.Input((6,), name="b")
    enc = keras.layers.Dense(4, activation="tanh", name="enc")
    h = keras.layers.Concatenate(name="both")([enc(a), enc(b)])
    model = keras.Model([a, b], [keras.layers.Dense(2, name="o1")(h), keras.layers.Dense(1, name="o2")(h)])
    design = import_model(model)
    code = generate_code(design)
    assert "enc_layer = layers.Dense(4, activation=\"tanh\", name=\"enc\")" in code
    assert "enc_layer(a)" in code and "enc_layer(b)" in code
    assert "outputs=[o1, o2]" in code
    generated = run_generated(code)
    assert generated.count_params() == model.count_params()
    assert len(generated.layers) == len(model.layers)


def test_imported_nested_model_and_multi_output_layer():
    inner_in = keras.Input((5, 4))
    inner = keras.Model(inner_in, keras.layers.Dense(4, name="inner_dense")(inner_in), name="block")
    inp = keras.Input((5, 4), name="seq")
    whole, h, c = keras.layers.LSTM(3, return_state=True, name="lstm")(inner(inp))
    model = keras.Model(inp, keras.layers.Concatenate(name="cat")([h, c]))
    design = import_model(model)
    code = generate_code(design)
    assert "deserialize_keras_object" in code and "lstm[1]" in code and "lstm[2]" in code
    assert_same_as_design(design, code)


def test_training_section_carries_the_hyperparameters_and_is_guarded():
    design = chain_design(optimizer="sgd-momentum", learning_rate=0.05, momentum=0.8, batch_size=32, epochs=3,
                          loss="mean_squared_error", validation_split=0.2, early_stopping=2, seed=123)
    code = generate_code(design)
    assert "keras.utils.set_random_seed(123)" in code
    assert "keras.optimizers.SGD(learning_rate=0.05, momentum=0.8)" in code
    assert 'loss="mean_squared_error"' in code and "to_categorical" in code
    assert "batch_size=32" in code and "epochs=3" in code and "validation_split=0.2" in code
    assert "EarlyStopping(patience=2" in code
    main_at = code.index('if __name__ == "__main__":')
    assert code.index("model.fit(") > main_at and code.index("= load_data()\n") > main_at
    tree = ast.parse(code)
    top_calls = [n for n in tree.body if isinstance(n, ast.If)]
    assert len(top_calls) == 1


@pytest.mark.parametrize("optimizer,expected", [
    ("sgd", "keras.optimizers.SGD(learning_rate=0.001)"),
    ("rmsprop", "keras.optimizers.RMSprop(learning_rate=0.001)"),
    ("adam", "keras.optimizers.Adam(learning_rate=0.001)"),
    ("adamw", "keras.optimizers.AdamW(learning_rate=0.001)"),
])
def test_each_optimizer(optimizer, expected):
    assert expected in generate_code(chain_design(optimizer=optimizer))


def test_no_seed_no_early_stopping():
    code = generate_code(chain_design(seed=None, early_stopping=None))
    assert "set_random_seed" not in code and "EarlyStopping" not in code


def test_non_mnist_input_says_to_replace_the_data():
    design = branch_design()
    design.graph.set_param(design.graph.inputs()[0], "batch_shape", [None, 10])
    code = generate_code(design)
    assert "replace load_data() with your own data" in code
    run_generated(code)  # still builds the model


def test_design_without_input_is_refused():
    g = Graph()
    g.add_node("Dense", {"units": 3})
    with pytest.raises(CodegenError, match="no Input"):
        generate_code(Design(graph=g))


def test_script_runs_as_a_file_and_trains_on_local_mnist_like_data(tmp_path):
    """The real script, run by Python, with keras.datasets.mnist replaced by 64 random images (offline)."""
    design = chain_design(epochs=1, batch_size=16)
    script = tmp_path / "train_net.py"
    script.write_text(generate_code(design), encoding="utf-8")
    runner = tmp_path / "run.py"
    runner.write_text(
        "import runpy, numpy as np, keras\n"
        "rng = np.random.default_rng(0)\n"
        "fake = ((rng.integers(0, 255, (64, 28, 28), dtype=np.uint8), rng.integers(0, 10, 64)),\n"
        "        (rng.integers(0, 255, (16, 28, 28), dtype=np.uint8), rng.integers(0, 10, 16)))\n"
        "keras.datasets.mnist.load_data = lambda: fake\n"
        f"runpy.run_path({str(script)!r}, run_name='__main__')\n",
        encoding="utf-8",
    )
    env = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "3", "CUDA_VISIBLE_DEVICES": ""}
    proc = subprocess.run([sys.executable, str(runner)], capture_output=True, text=True, timeout=300, env=env)
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert "test accuracy" in proc.stdout


def test_arguments_whose_default_depends_on_another_are_kept():
    """MaxPooling2D(3) would stride by 3: strides=2 must be written although 2 is the usual default."""
    g = Graph()
    i = g.add_node("InputLayer", {"batch_shape": [None, 28, 28, 1]})
    p = g.add_node("MaxPooling2D", {"pool_size": [3, 3], "strides": [2, 2], "padding": "valid"})
    q = g.add_node("MaxPooling2D", {"pool_size": [3, 3], "strides": [3, 3]})
    g.connect(i.id, p.id)
    g.connect(p.id, q.id)
    design = Design(graph=g)
    code = generate_code(design)
    assert "layers.MaxPooling2D(pool_size=3, strides=2)" in code
    assert "layers.MaxPooling2D(pool_size=3)" in code
    assert_same_as_design(design, code)


def test_layer_returning_several_tensors_feeds_its_first_output():
    """An LSTM with return_state returns [output, h, c]: the next layer must get only the output."""
    g = Graph()
    i = g.add_node("InputLayer", {"batch_shape": [None, 28, 28]})
    lstm = g.add_node("LSTM", {"units": 8, "return_state": True})
    d = g.add_node("Dense", {"units": 10, "activation": "softmax"})
    g.connect(i.id, lstm.id)
    g.connect(lstm.id, d.id)
    design = Design(graph=g)
    code = generate_code(design)
    assert "keras.Sequential" not in code and "(lstm[0])" in code
    assert_same_as_design(design, code)
