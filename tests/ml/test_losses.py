"""Nielsen's quadratic cost: the book's learning rates mean what the book says, and the models stay plain Keras."""

from __future__ import annotations

import numpy as np
import pytest
from support import flat_mlp, mnist_slice

from neuralstudio.core.runs import RunsStore
from neuralstudio.core.training_settings import LOSSES, TrainingSettings, one_hot_targets
from neuralstudio.ml.losses import compile_arguments, keras_loss, loss_function, loss_weight
from neuralstudio.ml.trainer import Trainer


def _nielsen_cost(y: np.ndarray, a: np.ndarray) -> np.ndarray:
    """C_x = 1/2 ||y - a||^2 for every example x (chapter 1, equation 6, before averaging over x)."""
    return 0.5 * np.sum((y - a) ** 2, axis=-1)


def test_quadratic_is_a_known_loss_that_reads_one_hot_rows():
    assert "quadratic" in LOSSES
    TrainingSettings(loss="quadratic").validate()
    assert one_hot_targets("quadratic", 10) and one_hot_targets("mean_squared_error", 10)
    assert not one_hot_targets("sparse_categorical_crossentropy", 10)
    assert one_hot_targets("binary_crossentropy", 10) and not one_hot_targets("binary_crossentropy", 1)


def test_quadratic_is_keras_mean_squared_error_weighted_by_half_the_outputs():
    assert compile_arguments("quadratic", 10) == {"loss": "mean_squared_error", "loss_weights": 5.0}
    assert compile_arguments("mean_squared_error", 10) == {"loss": "mean_squared_error"}
    assert compile_arguments("sparse_categorical_crossentropy", 10) == {"loss": "sparse_categorical_crossentropy"}
    assert keras_loss("quadratic") == "mean_squared_error" and loss_weight("quadratic", 3) == 1.5
    assert loss_weight("categorical_crossentropy", 10) is None


def test_the_quadratic_loss_function_is_nielsens_cost_per_example():
    import keras

    rng = np.random.default_rng(0)
    y = np.eye(10, dtype="float32")[rng.integers(0, 10, 8)]
    a = rng.random((8, 10)).astype("float32")
    got = keras.ops.convert_to_numpy(loss_function("quadratic", 10)(y, a))
    np.testing.assert_allclose(got, _nielsen_cost(y, a), rtol=1e-5)


def test_one_sgd_step_at_rate_3_on_the_quadratic_cost_is_one_at_15_on_keras_mse():
    """Keras's mean squared error averages over the 10 outputs: its gradient is 5x smaller than Nielsen's."""
    import keras

    rng = np.random.default_rng(1)
    x = rng.random((10, 784)).astype("float32")
    y = np.eye(10, dtype="float32")[rng.integers(0, 10, 10)]
    after = []
    for loss, lr in (("quadratic", 3.0), ("mean_squared_error", 15.0)):
        keras.utils.set_random_seed(0)
        model = keras.Sequential([keras.Input((784,)), keras.layers.Dense(30, activation="sigmoid"),
                                  keras.layers.Dense(10, activation="sigmoid")])
        model.compile(optimizer=keras.optimizers.SGD(lr), **compile_arguments(loss, 10))
        model.train_on_batch(x, y)
        after.append([keras.ops.convert_to_numpy(w) for w in model.trainable_weights])
    for q, m in zip(*after):
        np.testing.assert_allclose(q, m, rtol=1e-4, atol=1e-6)


def test_a_run_on_the_quadratic_cost_reports_it_and_saves_a_plain_keras_model(tmp_path):
    import keras

    design = flat_mlp(output="sigmoid", optimizer="sgd", learning_rate=3.0, batch_size=10, epochs=1,
                      loss="quadratic", validation_split=0.2)
    data = mnist_slice(400, 100)
    result = Trainer(design, dataset=data, runs_store=RunsStore(tmp_path / "runs")).run()
    assert result.status == "finished", result.message
    x = data.x_test.reshape(len(data.x_test), -1).astype("float32")
    y = np.eye(10, dtype="float32")[data.y_test]
    outputs = keras.ops.convert_to_numpy(result.model(x, training=False))
    assert result.test_loss == pytest.approx(float(np.mean(_nielsen_cost(y, outputs))), rel=1e-4)
    # saved and opened by Keras alone, safe mode on: no NeuralStudio code is needed to read it
    path = tmp_path / "nielsen.keras"
    result.model.save(path)
    reopened = keras.saving.load_model(path, safe_mode=True)
    assert reopened.get_compile_config()["loss_weights"] == 5.0
    scores = reopened.evaluate(x, y, verbose=0, return_dict=True)
    assert scores["loss"] == pytest.approx(result.test_loss, rel=1e-4)


def test_generated_code_compiles_the_same_cost():
    import keras

    from neuralstudio.core.templates import load_template
    from neuralstudio.ml.codegen import generate_code

    code = generate_code(load_template("nielsen-784-30-10"))
    assert 'loss="mean_squared_error",' in code and "loss_weights=5.0," in code
    assert "to_categorical" in code
    namespace = {"__name__": "generated_net"}
    exec(compile(code, "generated_net.py", "exec"), namespace)  # noqa: S102 - our own generated code
    model = namespace["model"]
    model.compile(optimizer="sgd", loss="mean_squared_error", loss_weights=5.0)  # as the __main__ block does
    rng = np.random.default_rng(2)
    x = rng.random((4, 784)).astype("float32")
    y = np.eye(10, dtype="float32")[[1, 2, 3, 4]]
    loss = float(model.evaluate(x, y, verbose=0))
    assert loss == pytest.approx(float(np.mean(_nielsen_cost(y, keras.ops.convert_to_numpy(model(x))))), rel=1e-4)
