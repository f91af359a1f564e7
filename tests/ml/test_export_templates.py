"""Every model the app trains exports truthfully: each template, trained as the app trains it, to every format.

Each template is trained once per module (one epoch on a few hundred MNIST images, by the app's own
``Trainer`` with a run record), reloaded from its run folder as the CLI and the window reload it, and
exported to every format of the registry that can run here; each export must pass its own verification
(its own runtime against the Keras model on real images).  ``cnn-augmented`` (the architecture of the
bundled model) is the one with augmentation layers, which Keras traces in training mode unless the
export leaves them out (docs/ARCHITECTURE.md, "Traps").
"""

from __future__ import annotations

import dataclasses
from pathlib import Path
from typing import Any

import numpy as np
import pytest

keras = pytest.importorskip("keras")

from support import mnist_slice, skip_unless_exportable  # noqa: E402

from neuralstudio.core.design import Design, design_from_dict  # noqa: E402
from neuralstudio.core.templates import load_template, template_names  # noqa: E402
from neuralstudio.ml.export import ExportError, export_model  # noqa: E402
from neuralstudio.ml.export_formats import FORMATS  # noqa: E402
from neuralstudio.ml.inference_graph import TRAINING_ONLY_LAYERS, inference_model, training_only_layers  # noqa: E402

AUGMENTED = "cnn-augmented"
SAMPLES = 16  # images each verification compares (the inference script's own check uses at most 16)


def _format_param(name: str) -> Any:
    missing = FORMATS[name].missing_packages()
    marks = [pytest.mark.skip(reason=f"needs {', '.join(missing)}: {FORMATS[name].install_hint()}")] if missing else []
    return pytest.param(name, marks=marks, id=name)


FORMAT_PARAMS = [_format_param(n) for n in FORMATS]


def _target(tmp_path: Path, fmt: str) -> Path:
    f = FORMATS[fmt]
    return tmp_path / (f"export_{fmt.replace('-', '_')}" if f.folder else f"export{f.suffix}")


@dataclasses.dataclass
class Trained:
    """A template trained by the app: the model as reloaded from its run folder and the run's design."""

    name: str
    model: Any
    design: Design
    model_path: Path


def _train(name: str, store_dir: Path) -> Trained:
    from neuralstudio.core.runs import RunsStore
    from neuralstudio.ml.model_files import load_keras_model
    from neuralstudio.ml.trainer import Trainer

    design = load_template(name)
    settings = dataclasses.replace(design.training, epochs=1, early_stopping=None)
    store = RunsStore(store_dir)
    result = Trainer(design, dataset=mnist_slice(256, 32), settings=settings, runs_store=store, device="cpu",
                     tune_steps_per_execution=False).run()
    assert result.status == "finished", result.message
    run = store.get(result.run_id)
    assert run.model_path is not None
    return Trained(name, load_keras_model(run.model_path), design_from_dict(run.design, name), run.model_path)


@pytest.fixture(scope="module")
def trained(tmp_path_factory) -> Any:
    """``trained(name)``: the template trained once for the module, on first use."""
    cache: dict[str, Trained] = {}

    def get(name: str) -> Trained:
        if name not in cache:
            cache[name] = _train(name, tmp_path_factory.mktemp(f"runs-{name}"))
        return cache[name]

    return get


def _export_and_check(t: Trained, fmt: str, tmp_path: Path) -> Any:
    """Export as the window does (the run's design for the formats built from it) and require verification."""
    design = t.design if FORMATS[fmt].uses_design else None
    result = export_model(t.model, _target(tmp_path, fmt), fmt, design=design, samples=SAMPLES)
    rep = result.report
    assert rep.passed, f"{t.name} as {fmt}: {rep.summary()}"
    assert rep.data.startswith("MNIST")  # real digits, not random inputs
    assert result.path.exists() and result.size_bytes > 0
    return result


def _graph_ops(fmt: str, path: Path) -> set[str]:
    """The operation types in a SavedModel or ONNX file (empty for the other formats)."""
    if fmt == "savedmodel":
        from tensorflow.core.protobuf import saved_model_pb2

        saved = saved_model_pb2.SavedModel.FromString((path / "saved_model.pb").read_bytes())
        ops = {n.op for g in saved.meta_graphs for n in g.graph_def.node}
        return ops | {n.op for g in saved.meta_graphs for f in g.graph_def.library.function for n in f.node_def}
    if fmt == "onnx":
        import onnx

        return {n.op_type for n in onnx.load(str(path)).graph.node}
    return set()


# --------------------------------------------------------------------------- cnn-augmented, each format
@pytest.mark.slow
@pytest.mark.parametrize("fmt", FORMAT_PARAMS)
def test_cnn_augmented_exports_to_every_format(trained, tmp_path, fmt):
    """The template of the bundled model: every format holds what the network computes at inference."""
    skip_unless_exportable(fmt)
    t = trained(AUGMENTED)
    assert training_only_layers(t.model)[:3] == ["rotate", "shift", "zoom"]
    result = _export_and_check(t, fmt, tmp_path)
    ops = _graph_ops(fmt, result.path)
    if ops:  # the inference graph: the network is there, the augmentation is not
        # (a JAX model's SavedModel holds its whole computation as one StableHLO module: XlaCallModule)
        assert {"Conv2D", "Conv"} & ops or (keras.backend.backend() == "jax" and "XlaCallModule" in ops), sorted(ops)
        assert not {o for o in ops if "Random" in o or "ImageProjectiveTransform" in o}, sorted(ops)
    if fmt == "python":  # the code rebuilds the whole network, augmentation included, to train it further
        code = (result.path / "model.py").read_text(encoding="utf-8")
        for layer in ("RandomRotation", "RandomTranslation", "RandomZoom", "Dropout"):
            assert f"layers.{layer}(" in code


# --------------------------------------------------------------------------- every template x every format
OTHER_TEMPLATES = [n for n in template_names() if n != AUGMENTED]


def _input_shape(name: str) -> tuple[Any, ...]:
    g = load_template(name).graph
    return tuple(g.nodes[g.inputs()[0]].config.get("batch_shape") or ())


# predict.py is the same script for every model but for the input shape it reshapes a prepared digit to, and
# the model.keras beside it is written as the keras export is (checked for every template): it runs, in a
# process of its own, for one template of each input shape.
def _one_per_input_shape() -> list[str]:
    seen, picked = {_input_shape(AUGMENTED)}, []
    for name in OTHER_TEMPLATES:
        if _input_shape(name) not in seen:
            seen.add(_input_shape(name))
            picked.append(name)
    return picked


SCRIPT_TEMPLATES = _one_per_input_shape()
#: formats whose writer does not depend on the backend (Keras's own files, the generated code): on the other
#: backends CI exports cnn-augmented to them, and the other templates only to the formats the backend writes itself
NEUTRAL_FORMATS = {"h5", "weights", "python", "inference-script"}
MATRIX = [pytest.param(name, fmt.values[0], id=f"{name}-{fmt.id}",
                       marks=[*fmt.marks, *([pytest.mark.backend_neutral] if fmt.values[0] in NEUTRAL_FORMATS else [])])
          for name in OTHER_TEMPLATES for fmt in FORMAT_PARAMS
          if fmt.values[0] != "inference-script" or name in SCRIPT_TEMPLATES]


@pytest.mark.slow
@pytest.mark.parametrize(("name", "fmt"), MATRIX)
def test_every_template_exports_to_every_format(trained, tmp_path, name, fmt):
    skip_unless_exportable(fmt)
    _export_and_check(trained(name), fmt, tmp_path)


def test_the_templates_and_formats_are_all_covered():
    assert AUGMENTED in template_names() and len(OTHER_TEMPLATES) == len(template_names()) - 1
    covered = {(p.values[0], p.values[1]) for p in MATRIX}
    for name in OTHER_TEMPLATES:
        assert {f for n, f in covered if n == name} >= set(FORMATS) - {"inference-script"}
    shapes = {_input_shape(n) for n in [AUGMENTED, *SCRIPT_TEMPLATES]}
    assert shapes == {_input_shape(n) for n in template_names()}  # every input shape runs predict.py


# --------------------------------------------------------------------------- the inference graph
def _sample_input(class_name: str) -> np.ndarray:
    rng = np.random.default_rng(0)
    if class_name == "SpatialDropout1D":
        return rng.random((2, 12, 3), dtype=np.float32)
    if class_name == "SpatialDropout3D":
        return rng.random((2, 6, 6, 6, 3), dtype=np.float32)
    scale = 255.0 if class_name.startswith("Rand") or class_name in ("AugMix", "Solarization", "CutMix",
                                                                       "MixUp") else 1.0
    return rng.random((2, 16, 16, 3), dtype=np.float32) * scale


_ARGS = {"Dropout": {"rate": 0.5}, "SpatialDropout1D": {"rate": 0.5}, "SpatialDropout2D": {"rate": 0.5},
         "SpatialDropout3D": {"rate": 0.5}, "GaussianDropout": {"rate": 0.5}, "AlphaDropout": {"rate": 0.5},
         "GaussianNoise": {"stddev": 0.5}, "RandomTranslation": {"height_factor": 0.2, "width_factor": 0.2},
         "RandomZoom": {"height_factor": 0.2}, "RandomRotation": {"factor": 0.2}, "RandomPosterization": {"factor": 4},
         "RandomBrightness": {"factor": 0.2}, "RandomContrast": {"factor": 0.2}, "RandomHue": {"factor": 0.2},
         "RandomSaturation": {"factor": 0.2}, "RandomSharpness": {"factor": 0.2}, "RandomShear": {"x_factor": 0.2},
         "RandomColorDegeneration": {"factor": 0.2}, "RandomGaussianBlur": {"factor": 0.2}}


@pytest.mark.parametrize("class_name", sorted(TRAINING_ONLY_LAYERS))
def test_training_only_layers_are_the_identity_at_inference(class_name):
    """Leaving a listed layer out is exactly what Keras computes at inference (checked for this Keras)."""
    layer = getattr(keras.layers, class_name)(**_ARGS.get(class_name, {}))
    x = _sample_input(class_name)
    assert tuple(layer.compute_output_shape(x.shape)) == x.shape
    np.testing.assert_array_equal(np.asarray(layer(x, training=False)), x)


def test_inference_model_shares_the_weights_and_leaves_the_original_alone():
    keras.utils.set_random_seed(0)
    inner = keras.Sequential([keras.Input((8, 8, 1)), keras.layers.RandomFlip(name="flip"),
                              keras.layers.Conv2D(2, 3, name="conv")], name="inner")
    inp = keras.Input((8, 8, 1), name="image")
    x = keras.layers.RandomRotation(0.3, name="rot")(inp)
    x = inner(x)
    x = keras.layers.GaussianNoise(0.5, name="noise")(keras.layers.Flatten()(x))
    model = keras.Model(inp, keras.layers.Dense(3, name="out")(x))
    before = model.get_config()
    graph = inference_model(model)
    assert training_only_layers(model) == ["rot", "flip", "noise"]
    assert training_only_layers(graph) == []
    assert [w is v for w, v in zip(graph.weights, model.weights)] == [True] * len(model.weights)
    assert graph.inputs[0].name == "image" and model.get_config() == before
    xs = np.random.default_rng(1).random((4, 8, 8, 1), dtype=np.float32)
    np.testing.assert_array_equal(np.asarray(graph(xs)), np.asarray(model(xs, training=False)))
    # the trap itself: called without a flag, the original model augments
    assert not np.allclose(np.asarray(model(xs)), np.asarray(model(xs, training=False)))


def test_inference_model_of_a_sequential_model():
    model = keras.Sequential([keras.Input((6,), name="x"), keras.layers.Dropout(0.5), keras.layers.Dense(2)])
    graph = inference_model(model)
    assert [type(layer).__name__ for layer in graph.layers] == ["InputLayer", "Dense"]
    xs = np.ones((3, 6), dtype=np.float32)
    np.testing.assert_array_equal(np.asarray(graph(xs)), np.asarray(model(xs, training=False)))


# --------------------------------------------------------------------------- what the converters lack
_ONNX = pytest.mark.skipif(bool(FORMATS["onnx"].missing_packages()), reason="the onnx extra is not installed")


@_ONNX
def test_exact_gelu_converts_to_onnx(tmp_path):
    """Keras's exact GELU is traced with Erfc, which tf2onnx 1.17 cannot convert by itself."""
    skip_unless_exportable("onnx")
    keras.utils.set_random_seed(0)
    model = keras.Sequential([keras.Input((28, 28)), keras.layers.Flatten(), keras.layers.Dense(16, "gelu"),
                              keras.layers.Dense(10, "softmax")])
    result = export_model(model, tmp_path / "gelu.onnx", "onnx", samples=SAMPLES)
    assert result.report.passed, result.report.summary()


@pytest.mark.slow
def test_litert_unrolls_a_recurrent_layer_over_fixed_steps(tmp_path):
    skip_unless_exportable("litert")
    keras.utils.set_random_seed(0)
    model = keras.Sequential([keras.Input((28, 28)), keras.layers.GRU(8, name="rows"),
                              keras.layers.Dense(10, "softmax")])
    result = export_model(model, tmp_path / "rnn.tflite", "litert", samples=SAMPLES)
    assert result.report.passed, result.report.summary()
    assert model.get_layer("rows").unroll is False  # the model itself is untouched


@pytest.mark.slow
def test_litert_says_in_words_why_a_loop_over_any_length_cannot_be_exported(tmp_path):
    """The one combination LiteRT cannot hold: a recurrent layer over sequences of any length."""
    skip_unless_exportable("litert")
    model = keras.Sequential([keras.Input((None, 28)), keras.layers.LSTM(4, name="rows"),
                              keras.layers.Dense(10, "softmax")])
    with pytest.raises(ExportError, match=r"^The litert export cannot hold this model: it needs TensorFlow "
                                          r"operations that LiteRT does not have built in \(.*TensorList.*\).*"
                                          r"They come from rows, which loop over sequences of any length"):
        export_model(model, tmp_path / "rnn.tflite", "litert")
    assert list(tmp_path.iterdir()) == []  # nothing written
