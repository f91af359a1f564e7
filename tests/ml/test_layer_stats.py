"""Per-layer training signals (ml/layer_stats.py): measured inside real runs, on tiny slices of the MNIST sample."""

from __future__ import annotations

import json

import keras
import numpy as np
import pytest
from support import flat_mlp, mnist_slice

from neuralstudio.core.design import Design
from neuralstudio.core.graph import Graph
from neuralstudio.core.templates import load_template
from neuralstudio.core.training_settings import TrainingSettings
from neuralstudio.ml import layer_stats
from neuralstudio.ml.layer_stats import LayerStatsRecorder, format_table, interpret
from neuralstudio.ml.trainer import Trainer

KEYS = {"layer", "class_name", "activation", "grad_norm", "bias_grad_norm", "bias_grad_rms", "update_ratio",
        "weight_hist", "activation_hist", "dead_fraction", "saturated_fraction", "epoch", "batch"}


class StatsReporter:
    """A reporter with the optional ``on_layer_stats``, keeping what it is told."""

    def __init__(self) -> None:
        self.stats: list[tuple[int, list[dict]]] = []
        self.logs: list[str] = []

    def on_batch(self, epoch, batch, logs):
        pass

    def on_epoch(self, epoch, logs):
        pass

    def on_log(self, message):
        self.logs.append(message)

    def on_finished(self, result):
        pass

    def on_failed(self, message):
        self.logs.append("FAILED " + message)

    def on_layer_stats(self, epoch, stats):
        self.stats.append((epoch, stats))


class PlainReporter(StatsReporter):
    on_layer_stats = None  # a reporter of before the statistics: it has no such method


@pytest.fixture(scope="module")
def slice512():
    return mnist_slice(512, 64)


def _settings(**kw) -> TrainingSettings:
    base = {"epochs": 2, "batch_size": 32, "learning_rate": 0.05, "optimizer": "sgd", "validation_split": 0.0,
            "seed": 3}
    return TrainingSettings(**{**base, **kw})


def test_a_run_reports_one_snapshot_per_epoch_with_every_field(slice512):
    rep = StatsReporter()
    result = Trainer(flat_mlp(hidden=16, activation="relu"), dataset=slice512, settings=_settings(),
                     reporter=rep, layer_stats=True).run()
    assert result.status == "finished", result.message
    assert len(result.layer_stats) == 2
    assert [e for e, s in rep.stats if s[0]["batch"] is None] == [0, 1]
    for epoch, snap in enumerate(result.layer_stats):
        assert [s["class_name"] for s in snap] == ["Dense", "Dense"]
        assert [s["activation"] for s in snap] == ["relu", "softmax"]
        for s in snap:
            assert set(s) == KEYS and s["epoch"] == epoch and s["batch"] is None
            assert s["grad_norm"] > 0 and s["update_ratio"] > 0  # measured from the weights the run started from
            assert s["bias_grad_norm"] > 0  # Dense layers on flat inputs: one bias per unit
            assert s["bias_grad_rms"] == pytest.approx(s["bias_grad_norm"] / np.sqrt(16 if s is snap[0] else 10))
            for hist in (s["weight_hist"], s["activation_hist"]):
                assert len(hist["counts"]) == layer_stats.HIST_BINS and len(hist["edges"]) == layer_stats.HIST_BINS + 1
                assert sum(hist["counts"]) > 0 and hist["edges"] == sorted(hist["edges"])
        hidden, out = snap
        assert sum(hidden["weight_hist"]["counts"]) == 784 * 16  # the kernel, not the bias
        # the probe batch's outputs: 32 examples, the fewest (PROBE_SHARE of 512 examples is less)
        assert sum(hidden["activation_hist"]["counts"]) == layer_stats.MIN_PROBE_EXAMPLES * 16
        assert 0 <= hidden["dead_fraction"] < 0.5 and hidden["saturated_fraction"] is None
        assert out["dead_fraction"] is None and out["saturated_fraction"] is None
    summary = result.summary()
    assert json.loads(json.dumps(summary))["layer_stats"] == result.layer_stats

    # off (the default): nothing measured, nothing in the summary; a reporter without the method is fine on
    plain = Trainer(flat_mlp(hidden=16), dataset=slice512, settings=_settings(epochs=1), reporter=PlainReporter(),
                    layer_stats=True).run()
    assert plain.status == "finished" and len(plain.layer_stats) == 1
    off = Trainer(flat_mlp(hidden=16), dataset=slice512, settings=_settings(epochs=1)).run()
    assert off.layer_stats == [] and "layer_stats" not in off.summary()


@pytest.mark.xfail(keras.backend.backend() == "torch", strict=True,
                   reason="on PyTorch the run with the statistics on ends up to 0.03 away from the run without "
                          "(BatchNormalization + Dropout; measured, cause not found yet)")
def test_a_seeded_run_trains_the_same_with_the_statistics_on(slice512):
    """The probe runs the model in training mode; Dropout's seed and BatchNormalization's statistics are put back."""
    g = Graph()
    i = g.add_node("InputLayer", {"batch_shape": [None, 784]})
    h = g.add_node("Dense", {"units": 16, "activation": "relu"})
    b = g.add_node("BatchNormalization", {})
    d = g.add_node("Dropout", {"rate": 0.3})
    o = g.add_node("Dense", {"units": 10, "activation": "softmax"})
    for src, dst in ((i, h), (h, b), (b, d), (d, o)):
        g.connect(src.id, dst.id)
    design = Design(graph=g, name="bn-dropout")
    # steps_per_execution is chosen from measured step times, and a different one rounds differently: fixed here
    runs = [Trainer(design, dataset=slice512, settings=_settings(), layer_stats=on,
                    tune_steps_per_execution=False).run() for on in (False, True)]
    assert [r.status for r in runs] == ["finished", "finished"]
    for a, b_ in zip(runs[0].model.get_weights(), runs[1].model.get_weights(), strict=True):
        np.testing.assert_array_equal(a, b_)
    names = [s["layer"] for s in runs[1].layer_stats[0]]
    assert len(names) == 3 and runs[1].layer_stats[0][1]["class_name"] == "BatchNormalization"
    bn = runs[1].layer_stats[0][1]
    assert sum(bn["weight_hist"]["counts"]) == 32  # a layer with only 1-D weights: gamma and beta
    assert bn["bias_grad_norm"] is None and bn["bias_grad_rms"] is None  # beta is measured as its kernel


def _recorder_for(model, x, y, loss="sparse_categorical_crossentropy", **kw) -> LayerStatsRecorder:
    rec = LayerStatsRecorder(x, y, keras.losses.get(loss), **kw)
    rec.train_begin(model)
    return rec


def _dense_net(activation: str, **hidden_kw):
    keras.utils.set_random_seed(0)
    return keras.Sequential([keras.Input((784,)),
                             keras.layers.Dense(20, activation=activation, name="hidden", **hidden_kw),
                             keras.layers.Dense(10, activation="softmax", name="out")])


def test_the_probe_batch_is_a_small_share_of_an_epoch_within_bounds():
    def size(n, shape=(784,), batch=32):
        return len(LayerStatsRecorder(np.zeros((n, *shape), "float32"), np.zeros(n), None, batch_size=batch).y_probe)

    assert [size(10), size(512), size(8000), size(20_000), size(60_000)] == [10, 32, 32, 80, 240]
    assert size(10_000, (224, 224, 3), batch=16) == 16  # large images: one training batch
    rec = LayerStatsRecorder(np.arange(1000.0).reshape(-1, 1), np.arange(1000), None, seed=5)
    assert list(rec.y_probe) == sorted(set(rec.y_probe)) and list(rec.x_probe[:, 0]) == list(rec.y_probe)


def test_the_bias_gradients_are_nielsens_delta_computed_by_hand():
    """bias_grad_norm is ||delta^l|| of chapter 5, backpropagated here in NumPy with the book's four equations."""
    rng = np.random.default_rng(7)
    x = rng.uniform(0.0, 1.0, (8, 5)).astype("float32")
    y = np.eye(3, dtype="float32")[rng.integers(0, 3, 8)]
    keras.utils.set_random_seed(0)
    model = keras.Sequential([keras.Input((5,)), keras.layers.Dense(4, activation="sigmoid", name="hidden"),
                              keras.layers.Dense(3, activation="sigmoid", name="out")])
    w1, b1, w2, b2 = (rng.normal(0.0, 1.0, s).astype("float32") for s in ((5, 4), (4,), (4, 3), (3,)))
    model.set_weights([w1, b1, w2, b2])
    hidden, out = _recorder_for(model, x, y, loss="binary_crossentropy", probe_examples=8).snapshot(0)

    def sigmoid(z):
        return 1.0 / (1.0 + np.exp(-z))

    x64, y64 = x.astype(np.float64), y.astype(np.float64)
    a1 = sigmoid(x64 @ w1 + b1)
    a2 = sigmoid(a1 @ w2 + b2)
    # the cost is the mean over the 8 examples and the 3 outputs: delta^L = (a - y) / 24 for cross-entropy
    delta2 = (a2 - y64) / y64.size
    delta1 = (delta2 @ w2.T) * a1 * (1.0 - a1)  # delta^l = (w^{l+1})^T delta^{l+1} * sigma'(z^l)
    for s, delta, a_in in ((hidden, delta1, x64), (out, delta2, a1)):
        nabla_b = delta.sum(axis=0)  # dC/db: the errors of the examples, summed over the probe batch
        assert s["bias_grad_norm"] == pytest.approx(np.linalg.norm(nabla_b), rel=1e-4)
        assert s["bias_grad_rms"] == pytest.approx(np.sqrt(np.mean(nabla_b ** 2)), rel=1e-4)
        assert s["grad_norm"] == pytest.approx(np.linalg.norm(a_in.T @ delta), rel=1e-4)  # dC/dw = a_in delta


def test_only_a_bias_of_its_own_per_unit_is_measured():
    """A shared bias (every position of a convolution, every step of an LSTM or of a Dense layer on a sequence)
    sums the errors over the positions: it is left out, as a layer without a bias is."""
    keras.utils.set_random_seed(0)
    inp = keras.Input((6, 6, 1))
    conv = keras.layers.Conv2D(2, 3, activation="relu", name="conv")(inp)
    seq = keras.layers.Reshape((4, 8))(conv)
    on_seq = keras.layers.Dense(3, name="on_seq")(seq)
    lstm = keras.layers.LSTM(4, name="lstm")(on_seq)
    bare = keras.layers.Dense(5, use_bias=False, name="bare")(lstm)
    norm = keras.layers.BatchNormalization(name="norm")(bare)
    out = keras.layers.Dense(2, activation="softmax", name="out")(norm)
    model = keras.Model(inp, out)
    x = np.random.default_rng(0).normal(size=(32, 6, 6, 1)).astype("float32")
    y = np.arange(32) % 2
    snap = _recorder_for(model, x, y).snapshot(0)
    got = {s["layer"]: (s["bias_grad_norm"], s["bias_grad_rms"]) for s in snap}
    assert list(got) == ["conv", "on_seq", "lstm", "bare", "norm", "out"]
    assert all(v == (None, None) for name, v in got.items() if name != "out"), got
    assert got["out"][0] > 0 and got["out"][1] == pytest.approx(got["out"][0] / np.sqrt(2))
    assert all(s["grad_norm"] > 0 for s in snap)  # the kernels still are
    # the first layer has no per-unit bias: the layers are compared by their kernel gradients
    assert layer_stats.gradient_measure(snap) == "grad_norm"


def test_dead_relu_units_are_found(slice512):
    x, y = slice512.x_train.reshape(-1, 784), slice512.y_train
    dead = _dense_net("relu", bias_initializer=keras.initializers.Constant(-1000.0))
    hidden, _ = _recorder_for(dead, x, y).snapshot(0)
    assert hidden["dead_fraction"] == pytest.approx(1.0)
    assert hidden["grad_norm"] == 0.0  # no gradient passes a dead unit
    assert interpret([hidden, _]).startswith("100% of hidden's ReLU units are dead")
    alive, _ = _recorder_for(_dense_net("relu", bias_initializer=keras.initializers.Constant(1.0)), x, y).snapshot(0)
    assert alive["dead_fraction"] == 0.0


@pytest.mark.parametrize("activation", ["sigmoid", "tanh"])
def test_saturated_sigmoid_and_tanh_units_are_found(slice512, activation):
    x, y = slice512.x_train.reshape(-1, 784), slice512.y_train
    big = _dense_net(activation, kernel_initializer=keras.initializers.RandomNormal(stddev=100.0))
    hidden, out = _recorder_for(big, x, y).snapshot(0)
    assert hidden["saturated_fraction"] > 0.95 and hidden["dead_fraction"] is None
    # (saturated units pass little gradient: the sentence would say so first, unless the last layer's is as small)
    same = {**out, "grad_norm": hidden["grad_norm"], "bias_grad_rms": hidden["bias_grad_rms"]}
    assert f"{activation} outputs are saturated" in interpret([hidden, same])
    small = _dense_net(activation, kernel_initializer=keras.initializers.RandomNormal(stddev=0.001))
    assert _recorder_for(small, x, y).snapshot(0)[0]["saturated_fraction"] == 0.0


def test_the_snapshot_leaves_the_model_as_it_was(slice512):
    x, y = slice512.x_train.reshape(-1, 784), slice512.y_train
    keras.utils.set_random_seed(0)
    model = keras.Sequential([keras.Input((784,)), keras.layers.Dense(8), keras.layers.BatchNormalization(),
                              keras.layers.Dropout(0.5), keras.layers.Dense(10, activation="softmax")])
    before = [keras.ops.convert_to_numpy(v).copy() for v in model.variables]
    _recorder_for(model, x, y).snapshot(0)
    for a, v in zip(before, model.variables, strict=True):
        np.testing.assert_array_equal(a, keras.ops.convert_to_numpy(v))


def test_a_probe_that_fails_turns_the_statistics_off_with_one_line(slice512, monkeypatch):
    from neuralstudio.ml import gradients

    def refuse(*args, **kwargs):
        raise gradients.GradientsUnavailableError("Gradients are not available on the jax backend yet.")

    monkeypatch.setattr(gradients, "layer_gradients", refuse)
    rep = StatsReporter()
    result = Trainer(flat_mlp(hidden=8), dataset=slice512, settings=_settings(), reporter=rep, layer_stats=True).run()
    assert result.status == "finished" and result.layer_stats == [] and rep.stats == []
    lines = [m for m in rep.logs if "Layer statistics" in m]
    assert lines == ["Layer statistics are off for the rest of this run: GradientsUnavailableError: Gradients are not "
                     "available on the jax backend yet."]


def test_long_epochs_get_snapshots_on_the_clock_as_well(slice512):
    x, y = slice512.x_train.reshape(-1, 784), slice512.y_train
    model = _dense_net("relu")
    model.compile(keras.optimizers.SGD(0.05), "sparse_categorical_crossentropy")
    rep = StatsReporter()
    rec = LayerStatsRecorder(x, y, keras.losses.get("sparse_categorical_crossentropy"), reporter=rep,
                             min_interval_s=0.0)
    model.fit(x, y, batch_size=8, epochs=2, verbose=0, callbacks=[rec.callback])
    during = [s for _, s in rep.stats if s[0]["batch"] is not None]
    assert during and all(isinstance(s[0]["batch"], int) for s in during)
    assert len(rec.per_epoch) == 2 and all(s[0]["batch"] is None for s in rec.per_epoch)  # only the epochs' ends
    # after the first, the interval grows to keep the snapshots' cost under 1% of the training time: not every batch
    assert len(during) < 10 and rec._interval > 0.05


def _layer(name, grad, dead=None, sat=None, act="relu", unit=None):
    return {"layer": name, "class_name": "Dense", "activation": act, "grad_norm": grad,
            "bias_grad_norm": None if unit is None else 3 * unit, "bias_grad_rms": unit, "update_ratio": 0.01,
            "weight_hist": {"counts": [], "edges": []}, "activation_hist": None, "dead_fraction": dead,
            "saturated_fraction": sat, "epoch": 0, "batch": None}


def test_interpret_says_one_thing_a_learner_can_act_on():
    assert interpret([_layer("a", 0.01), _layer("b", 0.4)]) == (
        "The first layer's gradients are 40x smaller than the last's: it learns slowly (vanishing gradients).")
    assert interpret([_layer("a", 0.1), _layer("b", 0.2), _layer("c", 0.15)]) == (
        "Gradients reach every layer at similar sizes.")
    assert interpret([_layer("a", 0.1), _layer("b", 0.5)]).startswith("The first layer's gradients are 5.0x smaller")
    assert "exploding gradients" in interpret([_layer("a", 50.0), _layer("b", 0.5)])
    assert interpret([_layer("a", 0.1), _layer("hidden", 0.1, dead=0.62), _layer("out", 0.1)]).startswith(
        "62% of hidden's ReLU units are dead")
    # dead units come before the gradients they explain; the output layer's saturation is not a fault
    assert "dead" in interpret([_layer("a", 0.0001, dead=0.9), _layer("b", 0.5)])
    assert "saturated" in interpret([_layer("h", 0.1, sat=0.8, act="tanh"), _layer("o", 0.1)])
    assert interpret([_layer("h", 0.1), _layer("o", 0.1, sat=0.9, act="sigmoid")]).startswith("Gradients reach")
    assert interpret([]) == "No layer has trainable weights to measure."
    assert interpret([_layer("a", 0.0), _layer("b", 0.0)]).startswith("No gradient reaches the weights")


def test_interpret_compares_the_layers_per_unit_when_the_first_and_last_have_a_bias_each():
    # per unit, the first layer is 120x behind, though its kernel gradient norm is as large as the last's
    layers = [_layer("h1", 0.04, unit=1e-5, act="sigmoid"), _layer("h2", 0.03, unit=1e-4, act="sigmoid"),
              _layer("out", 0.04, unit=1.2e-3, act="sigmoid")]
    assert layer_stats.gradient_measure(layers) == "bias_grad_rms"
    assert interpret(layers) == ("The first layer's gradients are 120x smaller than the last's: it learns slowly "
                                 "(vanishing gradients).")
    # a middle layer without one (BatchNormalization) does not matter; the first or the last does
    layers[1] = _layer("norm", 0.03)
    assert interpret(layers).startswith("The first layer's gradients are 120x smaller")
    layers[0] = _layer("conv", 0.04, act="relu")
    assert layer_stats.gradient_measure(layers) == "grad_norm"
    assert interpret(layers) == "Gradients reach every layer at similar sizes."
    assert layer_stats.gradient_measure([_layer("out", 0.1, unit=0.1)]) == "grad_norm"
    assert interpret([_layer("a", 0.1, unit=0.002), _layer("b", 0.1, unit=0.003)]).startswith("Gradients reach")


def test_format_table_lists_every_layer_and_ends_with_the_sentence():
    text = format_table([_layer("first", 0.01, dead=0.25), _layer("last", 0.4, act="softmax")])
    lines = text.splitlines()
    assert lines[0] == "Layer statistics after epoch 1:"
    assert lines[1].split() == ["layer", "type", "grad/unit", "grad", "norm", "update/weight", "dead", "saturated"]
    assert lines[2].split() == ["first", "Dense", "(relu)", "-", "0.01", "0.01", "25%", "-"]
    assert lines[3].split()[0] == "last" and lines[-1].startswith("The first layer's gradients are 40x smaller")
    text = format_table([_layer("first", 0.4, unit=2e-5), _layer("last", 0.4, unit=3e-3, act="softmax")])
    assert text.splitlines()[2].split()[3:5] == ["2e-05", "0.4"]
    assert text.splitlines()[-1].startswith("The first layer's gradients are 150x smaller")


def _first_snapshot(name: str, data, seed: int) -> list[dict]:
    design = load_template(name)
    settings = design.training.updated(epochs=1, seed=seed)
    settings.validation_split = 0.0
    result = Trainer(design, dataset=data, settings=settings, layer_stats=True).run()
    assert result.status == "finished", result.message
    (snap,) = result.layer_stats
    assert [s["layer"] for s in snap] == ["hidden_1", "hidden_2", "hidden_3", "digit"]
    return snap


@pytest.mark.slow
@pytest.mark.parametrize("seed", [1, 2])
def test_the_deep_sigmoid_template_shows_vanishing_gradients_and_its_relu_twin_does_not(seed):
    """Chapter 5's lesson, on 100 batches of the bundled sample (the README's figures are one full epoch).

    Measured on 1,000 examples, one epoch, seeds 1, 2, 3 and 42: the last layer's gradient per unit over the
    first's was 170-234 in the sigmoid net on TensorFlow (JAX 181-342, PyTorch 123-231) and 0.8-2.4 in the ReLU
    twin on all three; the kernel gradient norm, which grows with the 784 x 30 weights of the first layer, showed
    only 17-37 against 0.5-1.1.
    """
    data = mnist_slice(1000, 10)
    sigmoid = _first_snapshot("nielsen-deep-sigmoid", data, seed)
    relu = _first_snapshot("nielsen-deep-relu", data, seed)
    assert layer_stats.gradient_measure(sigmoid) == layer_stats.gradient_measure(relu) == "bias_grad_rms"
    s_ratio = sigmoid[-1]["bias_grad_rms"] / sigmoid[0]["bias_grad_rms"]
    r_ratio = relu[-1]["bias_grad_rms"] / relu[0]["bias_grad_rms"]
    assert s_ratio >= 100, s_ratio  # two orders of magnitude: the first layer hardly learns
    assert 1 / 3 < r_ratio < 3, r_ratio  # every layer learns at about the same speed
    assert s_ratio > 30 * r_ratio
    # the sentence says it, with the figure, for the sigmoid net, and nothing of the kind for the ReLU net
    said = interpret(sigmoid)
    assert said == (f"The first layer's gradients are {s_ratio:,.0f}x smaller than the last's: it learns slowly "
                    "(vanishing gradients)."), said
    assert "smaller than the last's" not in interpret(relu) and "vanishing" not in interpret(relu)


def _gradients(epoch: int, first: float, last: float) -> list[dict]:
    """A snapshot of two sigmoid layers with per-unit bias gradients ``first`` and ``last``."""
    return [{"layer": name, "epoch": epoch, "batch": None, "grad_norm": g * 10, "bias_grad_rms": g,
             "dead_fraction": None, "saturated_fraction": 0.1}
            for name, g in (("hidden_1", first), ("digit", last))]


def test_a_vanishing_gradient_that_went_away_is_still_told():
    """After 8 epochs nielsen-deep-sigmoid's gradients have caught up: the last snapshot alone would hide the lesson."""
    from neuralstudio.ml.layer_stats import interpret_history

    early, late = _gradients(0, 2.9e-5, 4.3e-3), _gradients(7, 1.5e-3, 1.9e-3)
    assert interpret_history([early, late]) == (
        "Gradients reach every layer at similar sizes. After epoch 1 the first layer's gradients were 148x smaller "
        "than the last's (vanishing gradients): it started learning late.")
    assert interpret_history([late]) == "Gradients reach every layer at similar sizes."
    assert interpret_history([early]).endswith("smaller than the last's: it learns slowly (vanishing gradients).")
    assert interpret_history([]) == "No layer has trainable weights to measure."
