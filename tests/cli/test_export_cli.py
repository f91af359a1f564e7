"""``neuralstudio export`` and ``neuralstudio info`` end to end on a real saved model."""

from __future__ import annotations

import importlib.util
import json
from pathlib import Path

import pytest

keras = pytest.importorskip("keras")

from support import skip_unless_exportable  # noqa: E402

from neuralstudio.cli import main  # noqa: E402
from neuralstudio.ml.export_formats import FORMATS, QUANTIZE_CHOICES  # noqa: E402


@pytest.fixture(scope="module")
def model_file(tmp_path_factory) -> Path:
    from neuralstudio.ml.data import load_dataset
    from neuralstudio.ml.model_files import save_keras_model

    keras.utils.set_random_seed(3)
    ds = load_dataset("mnist-sample")
    model = keras.Sequential([keras.Input((28, 28)), keras.layers.Flatten(), keras.layers.Dense(10, "softmax")],
                             name="flat")
    model.compile("adam", "sparse_categorical_crossentropy")
    model.fit(ds.x_train[:2000], ds.y_train[:2000], epochs=1, batch_size=64, verbose=0)
    path = tmp_path_factory.mktemp("cli") / "digits.keras"
    save_keras_model(model, path)
    return path


def test_export_help_lists_exactly_the_registry_formats(capsys, monkeypatch):
    monkeypatch.setenv("COLUMNS", "200")  # no format name broken across lines
    with pytest.raises(SystemExit) as exited:
        main(["export", "--help"])
    assert exited.value.code == 0
    text = capsys.readouterr().out
    options, listed = text.split("\nformats:\n", 1)
    names = [line.split()[0] for line in listed.splitlines() if line.startswith("  ") and line[2] != " "]
    assert names == list(FORMATS)
    flat = " ".join(listed.split())
    for f in FORMATS.values():
        assert f"{f.name} {f.label}" in flat and f.use in flat
    assert "Needs pip install 'neuralstudio[onnx]' (tf2onnx, onnx, onnxruntime)" in flat
    assert f"one of: {', '.join(FORMATS)} (described below; default: keras)" in " ".join(options.split())
    assert f"--quantize {{{','.join(QUANTIZE_CHOICES)}}}" in options and "the litert format only" in options


def test_export_litert_quantized_prints_the_verification(model_file, tmp_path, capsys):
    skip_unless_exportable("litert")
    out = tmp_path / "digits.tflite"
    rc = main(["export", str(model_file), "--format", "litert", "--quantize", "dynamic", "-o", str(out)])
    text = capsys.readouterr().out
    assert rc == 0 and out.is_file()
    assert "dynamic-range quantized" in text
    assert "Verification OK: LiteRT interpreter" in text and "64 MNIST sample test images" in text


@pytest.mark.skipif(importlib.util.find_spec("tf2onnx") is None or importlib.util.find_spec("onnxruntime") is None,
                    reason="the onnx extra (tf2onnx, onnx, onnxruntime) is not installed")
def test_export_onnx_as_json(model_file, tmp_path, capsys):
    skip_unless_exportable("onnx")
    out = tmp_path / "digits.onnx"
    rc = main(["export", str(model_file), "-f", "onnx", "-o", str(out), "--json"])
    data = json.loads(capsys.readouterr().out)
    assert rc == 0 and out.is_file()
    assert data["path"] == str(out) and data["size_bytes"] == out.stat().st_size
    ver = data["verification"]
    assert ver["passed"] and ver["runtime"].startswith("onnxruntime") and ver["max_abs_diff"] <= 1e-4


def test_export_default_output_beside_the_model(model_file, capsys):
    rc = main(["export", str(model_file)])
    text = capsys.readouterr().out
    target = model_file.parent / "digits_export.keras"
    assert rc == 0 and target.is_file() and f"to {target}" in text


def test_export_savedmodel_lists_the_files(model_file, tmp_path, capsys):
    rc = main(["export", str(model_file), "-f", "savedmodel", "-o", str(tmp_path / "serve")])
    text = capsys.readouterr().out
    assert rc == 0 and "saved_model.pb" in text and "Verification OK: TensorFlow" in text


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["--format", "tflite"], "Unknown export format 'tflite'. Choose one of: keras, h5, weights, savedmodel"),
        (["--format", "keras", "--quantize", "dynamic"], "--quantize applies to the litert format only"),
        (["--format", "onnx", "-o", "out.tflite"], "needs a file name ending in .onnx"),
    ],
)
def test_export_bad_requests_fail_with_a_message(model_file, tmp_path, capsys, monkeypatch, argv, message):
    if "onnx" in argv:
        skip_unless_exportable("onnx")  # on JAX the refusal of the format comes before the file name is read
    monkeypatch.chdir(tmp_path)
    rc = main(["export", str(model_file), *argv])
    err = capsys.readouterr().err
    assert rc == 1 and err.startswith("error: ") and message in err and "Traceback" not in err
    assert list(tmp_path.iterdir()) == []


def test_export_missing_model(tmp_path, capsys):
    rc = main(["export", str(tmp_path / "nothing.keras"), "-o", str(tmp_path / "x.onnx"), "-f", "onnx"])
    assert rc == 1 and "does not exist" in capsys.readouterr().err


def test_info_text_and_json(model_file, capsys):
    assert main(["info", str(model_file)]) == 0
    text = capsys.readouterr().out
    assert "Model 'flat'" in text and "7,850" in text and "Keras " + keras.__version__ in text
    assert main(["info", str(model_file), "--json"]) == 0
    data = json.loads(capsys.readouterr().out)
    assert data["total_params"] == 7850 and data["inputs"][0]["shape"] == [None, 28, 28]


def test_info_on_a_file_that_is_not_a_model(tmp_path, capsys):
    bad = tmp_path / "model.keras"
    bad.write_text("hello")
    assert main(["info", str(bad)]) == 1
    assert "not a Keras model" in capsys.readouterr().err
