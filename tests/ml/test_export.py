"""Export round trips on a real (tiny, briefly trained) model, verification, atomic overwrite, bad input."""

from __future__ import annotations

import importlib.util
import json
import warnings
from pathlib import Path

import numpy as np
import pytest

keras = pytest.importorskip("keras")

from support import skip_unless_exportable  # noqa: E402

from neuralstudio.ml import export as export_mod  # noqa: E402
from neuralstudio.ml.export import FORMATS, ExportError, export_model, get_format  # noqa: E402
from neuralstudio.ml.verify import VerificationError, verify_export  # noqa: E402


def _train_tiny_model() -> keras.Model:
    from neuralstudio.ml.data import load_dataset

    keras.utils.set_random_seed(1)
    ds = load_dataset("mnist-sample")
    inputs = keras.Input((28, 28), name="image")
    x = keras.layers.Reshape((28, 28, 1))(inputs)
    x = keras.layers.Conv2D(4, 3, activation="relu")(x)
    x = keras.layers.MaxPooling2D()(x)
    x = keras.layers.Flatten()(x)
    outputs = keras.layers.Dense(10, activation="softmax")(x)
    model = keras.Model(inputs, outputs, name="tiny")
    model.compile("adam", "sparse_categorical_crossentropy", metrics=["accuracy"])
    model.fit(ds.x_train[:3000], ds.y_train[:3000], epochs=1, batch_size=64, verbose=0)
    return model


@pytest.fixture(scope="module")
def trained(tmp_path_factory) -> tuple[keras.Model, Path]:
    """The model as the app has it after loading a saved file (never called, like a fresh load)."""
    from neuralstudio.ml.model_files import load_keras_model, save_keras_model

    path = tmp_path_factory.mktemp("model") / "tiny.keras"
    save_keras_model(_train_tiny_model(), path)
    return load_keras_model(path), path


def _mnist(n: int = 32) -> np.ndarray:
    from neuralstudio.ml.data import load_dataset

    return np.asarray(load_dataset("mnist-sample").x_test[:n], dtype=np.float32)


def _perturbed(model: keras.Model) -> keras.Model:
    other = keras.models.clone_model(model)
    other.set_weights([w + np.float32(0.05) for w in model.get_weights()])
    return other


FILE_CASES = [
    ("keras", "m.keras", None),
    ("h5", "m.h5", None),
    ("weights", "m.weights.h5", None),
    ("litert", "m.tflite", None),
    ("litert", "m_q.tflite", "dynamic"),
]


@pytest.mark.parametrize(("fmt", "name", "quantize"), FILE_CASES, ids=lambda v: str(v))
def test_file_formats_round_trip_and_verify(trained, tmp_path, fmt, name, quantize):
    skip_unless_exportable(fmt)
    model, _ = trained
    result = export_model(model, tmp_path / name, fmt, quantize=quantize)
    assert result.path == tmp_path / name and result.path.is_file() and result.size_bytes > 0
    rep = result.report
    assert rep.passed and rep.samples == 64 and rep.data == "MNIST sample test images"
    if quantize:
        assert rep.tolerance is None and rep.agreement >= 0.97
    else:
        assert rep.max_abs_diff <= 1e-4 and rep.agreement == 1.0
    assert sorted(p.name for p in tmp_path.iterdir()) == [name]  # no temp file left behind


def test_quantized_litert_is_smaller_and_runs_in_the_interpreter(trained, tmp_path):
    skip_unless_exportable("litert")
    model, _ = trained
    plain = export_model(model, tmp_path / "f.tflite", "litert")
    quant = export_model(model, tmp_path / "q.tflite", "litert", quantize="dynamic")
    assert quant.size_bytes < 0.6 * plain.size_bytes
    # Independently of verify.py: run the quantized file ourselves.
    import tensorflow as tf

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # tf.lite.Interpreter is deprecated in favour of ai_edge_litert
        interp = tf.lite.Interpreter(model_path=str(quant.path))
    x = _mnist(1)
    interp.allocate_tensors()
    interp.set_tensor(interp.get_input_details()[0]["index"], x)
    interp.invoke()
    got = interp.get_tensor(interp.get_output_details()[0]["index"])
    assert np.argmax(got) == np.argmax(model.predict_on_batch(x))


def test_savedmodel_serves_the_same_outputs(trained, tmp_path):
    skip_unless_exportable("savedmodel")
    import tensorflow as tf

    model, _ = trained
    result = export_model(model, tmp_path / "served", "savedmodel")
    assert (result.path / "saved_model.pb").is_file() and result.report.passed
    loaded = tf.saved_model.load(str(result.path))
    x = _mnist(8)
    np.testing.assert_allclose(loaded.serve(x).numpy(), model.predict_on_batch(x), atol=1e-5)


def test_onnx_round_trip_with_onnxruntime(trained, tmp_path):
    skip_unless_exportable("onnx")
    pytest.importorskip("tf2onnx", reason="the onnx extra (tf2onnx, onnx, onnxruntime) is not installed")
    ort = pytest.importorskip("onnxruntime", reason="the onnx extra is not installed")
    model, _ = trained
    result = export_model(model, tmp_path / "m.onnx", "onnx")
    assert result.report.passed and result.report.runtime.startswith("onnxruntime")
    sess = ort.InferenceSession(str(result.path), providers=["CPUExecutionProvider"])
    x = _mnist(5)
    (got,) = sess.run(None, {sess.get_inputs()[0].name: x})
    np.testing.assert_allclose(got, model.predict_on_batch(x), atol=1e-5)


def test_verification_catches_a_different_model(trained, tmp_path):
    """An artifact that does not compute what the model computes is reported as FAILED."""
    skip_unless_exportable("litert")
    model, _ = trained
    export_model(model, tmp_path / "m.tflite", "litert", verify=False)
    rep = verify_export(_perturbed(model), tmp_path / "m.tflite", "litert")
    assert not rep.passed and rep.max_abs_diff > 1e-3
    with pytest.raises(VerificationError, match="FAILED"):
        rep.raise_if_failed()


def test_mismatching_export_is_not_moved_into_place(trained, tmp_path, monkeypatch):
    model, _ = trained
    target = tmp_path / "m.keras"
    target.write_bytes(b"previous export")
    wrong = _perturbed(model)
    real_writer = export_mod._WRITERS["keras"]
    monkeypatch.setitem(export_mod._WRITERS, "keras", lambda m, tmp, **kw: real_writer(wrong, tmp, **kw))
    with pytest.raises(VerificationError, match="FAILED verification"):
        export_model(model, target, "keras")
    assert target.read_bytes() == b"previous export"
    assert [p.name for p in tmp_path.iterdir()] == ["m.keras"]


def test_failing_file_export_keeps_the_old_file(trained, tmp_path, monkeypatch):
    skip_unless_exportable("litert")
    model, _ = trained
    target = tmp_path / "m.tflite"
    target.write_bytes(b"old model")

    def half_write(m, tmp, **kw):
        tmp.write_bytes(b"half")
        raise RuntimeError("disk full")

    monkeypatch.setitem(export_mod._WRITERS, "litert", half_write)
    with pytest.raises(ExportError, match="litert export failed: RuntimeError: disk full"):
        export_model(model, target, "litert")
    assert target.read_bytes() == b"old model"
    assert [p.name for p in tmp_path.iterdir()] == ["m.tflite"]


def test_failing_folder_export_keeps_the_old_folder(trained, tmp_path, monkeypatch):
    skip_unless_exportable("savedmodel")
    model, _ = trained
    target = tmp_path / "served"
    first = export_model(model, target, "savedmodel")
    before = {p.relative_to(target): p.read_bytes() for p in first.files}

    def half_write(m, tmp, **kw):
        tmp.mkdir()
        (tmp / "saved_model.pb").write_bytes(b"partial")
        raise RuntimeError("converter crashed")

    monkeypatch.setitem(export_mod._WRITERS, "savedmodel", half_write)
    with pytest.raises(ExportError, match="converter crashed"):
        export_model(model, target, "savedmodel")
    after = {p.relative_to(target): p.read_bytes() for p in target.rglob("*") if p.is_file()}
    assert after == before
    assert [p.name for p in tmp_path.iterdir()] == ["served"]
    monkeypatch.undo()
    # A successful export replaces the previous one completely.
    again = export_model(model, target, "savedmodel")
    assert again.report.passed and [p.name for p in tmp_path.iterdir()] == ["served"]


def test_inference_script_is_standalone_and_predicts_a_png(trained, tmp_path, capsys):
    from PIL import Image

    model, _ = trained
    result = export_model(model, tmp_path / "predictor", "inference-script")
    assert result.report.passed and result.report.samples == 16
    script = result.path / "predict.py"
    source = script.read_text(encoding="utf-8")
    assert "neuralstudio" not in source.replace("NeuralStudio", "")  # the user does not have NeuralStudio
    # A dark-on-light digit, as a photo would be: the copied preparation must invert and centre it.
    digit = _mnist(1)[0]
    big = np.kron(1.0 - digit, np.ones((4, 4)))
    Image.fromarray((big * 255).astype(np.uint8), mode="L").save(tmp_path / "photo.png")
    # verify.py already ran the script in a fresh process on 16 PNGs; here its code runs in-process (faster).
    spec = importlib.util.spec_from_file_location("exported_predict", script)
    predict = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(predict)
    assert predict.main(["--json", str(tmp_path / "photo.png")]) == 0
    row = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    from neuralstudio.ml.inference import Predictor
    from neuralstudio.ml.preprocess import prepare_image_file

    expected = Predictor(model).predict(prepare_image_file(tmp_path / "photo.png"))
    assert row["predicted"] == expected.digit
    assert abs(row["confidence"] - expected.confidence) < 1e-4


def test_python_export_rebuilds_the_network_with_the_trained_weights(trained, tmp_path):
    pytest.importorskip("neuralstudio.ml.codegen", reason="code generation (helper B) is not there yet")
    model, _ = trained
    result = export_model(model, tmp_path / "code", "python")
    assert {p.name for p in result.files} == {"model.py", "model.weights.h5"}
    assert result.report.passed and result.report.max_abs_diff <= 1e-4
    assert "def load_trained_model" in (result.path / "model.py").read_text(encoding="utf-8")


def test_unknown_format_lists_the_formats():
    with pytest.raises(ExportError) as err:
        get_format("tfjs")
    for name in FORMATS:
        assert name in str(err.value)


@pytest.mark.parametrize(
    ("fmt", "name", "kwargs", "message"),
    [
        ("keras", "m.keras", {"quantize": "dynamic"}, "litert format only"),
        ("litert", "m.tflite", {"quantize": "int4"}, "Unknown quantization"),
        ("litert", "m.onnx", {}, "ending in .tflite"),
        ("weights", "m.h5", {}, "ending in .weights.h5"),
        ("h5", "m.weights.h5", {}, "ending in .h5"),
        ("nope", "m.keras", {}, "Choose one of: keras, h5"),
    ],
)
def test_bad_export_requests_are_refused_before_writing(trained, tmp_path, fmt, name, kwargs, message):
    skip_unless_exportable(fmt)
    model, _ = trained
    with pytest.raises(ExportError, match=message):
        export_model(model, tmp_path / name, fmt, **kwargs)
    assert list(tmp_path.iterdir()) == []


@pytest.mark.parametrize("fmt", ["savedmodel", "inference-script"])  # the exports that write a folder
def test_a_folder_that_is_not_a_previous_export_is_never_replaced(trained, tmp_path, fmt):
    skip_unless_exportable(fmt)  # PyTorch refuses a SavedModel before it looks at the folder
    model, _ = trained
    mine = tmp_path / "documents"
    mine.mkdir()
    (mine / "thesis.txt").write_text("precious")
    with pytest.raises(ExportError, match=f"not a previous {fmt} export"):
        export_model(model, mine, fmt)
    assert (mine / "thesis.txt").read_text() == "precious"
    (tmp_path / "file.bin").write_text("x")
    with pytest.raises(ExportError, match="is a file"):
        export_model(model, tmp_path / "file.bin", fmt)


def test_default_output_names():
    assert export_mod.default_output("runs/a/model.keras", "onnx") == Path("runs/a/model.onnx")
    assert export_mod.default_output("m.keras", "litert", "dynamic") == Path("m_dynamic.tflite")
    assert export_mod.default_output("m.h5", "savedmodel") == Path("m_savedmodel")
    assert export_mod.default_output("m.keras", "keras") == Path("m_export.keras")
    assert export_mod.default_output("m.h5", "h5") == Path("m_export.h5")  # never the model file itself


def test_a_missing_optional_package_is_refused_before_converting(trained, tmp_path, monkeypatch):
    """The registry's capabilities are checked first: no conversion runs only to fail at verification."""
    skip_unless_exportable("onnx")
    import importlib.util

    model, _ = trained
    real = importlib.util.find_spec
    monkeypatch.setattr(importlib.util, "find_spec", lambda n, *a: None if n == "onnxruntime" else real(n, *a))
    monkeypatch.setitem(export_mod._WRITERS, "onnx", lambda *a, **k: pytest.fail("the converter ran"))
    with pytest.raises(ExportError, match=r"needs onnxruntime, which is not installed: pip install 'neuralstudio\["):
        export_model(model, tmp_path / "m.onnx", "onnx")
    assert list(tmp_path.iterdir()) == []
