"""The model information: read from real saved files, with a run's history beside the model."""

from __future__ import annotations

import json

import numpy as np
import pytest

keras = pytest.importorskip("keras")

from neuralstudio.core.formatting import human_size  # noqa: E402
from neuralstudio.core.runs import RUN_FILE, RunRecord  # noqa: E402
from neuralstudio.ml.model_files import ModelFileError, save_keras_model  # noqa: E402
from neuralstudio.ml.model_info import model_info  # noqa: E402

pytestmark = pytest.mark.backend_neutral  # read from the files


def _model() -> keras.Model:
    inputs = keras.Input((28, 28, 1), name="digit")
    x = keras.layers.Conv2D(3, 3, name="features")(inputs)
    x = keras.layers.BatchNormalization(name="norm")(x)
    x = keras.layers.Flatten(name="flat")(x)
    outputs = keras.layers.Dense(10, activation="softmax", name="scores")(x)
    model = keras.Model(inputs, outputs, name="infotest")
    model.compile("sgd", "sparse_categorical_crossentropy")
    return model


def test_info_of_a_keras_file(tmp_path):
    model = _model()
    path = tmp_path / "m.keras"
    save_keras_model(model, path)
    info = model_info(path)
    assert info.name == "infotest" and info.file_format == "keras"
    assert info.file_size == path.stat().st_size > 0
    assert info.keras_version == keras.__version__ and info.saved
    assert [(t.name, t.shape) for t in info.inputs] == [("digit", [None, 28, 28, 1])]
    assert [(t.name, t.shape) for t in info.outputs] == [("scores", [None, 10])]
    assert [ly.name for ly in info.layers] == ["digit", "features", "norm", "flat", "scores"]
    assert info.total_params == model.count_params()
    # BatchNormalization's moving mean and variance (2 x 3) are the only non-trainable weights.
    assert info.non_trainable_params == 6
    assert next(ly for ly in info.layers if ly.name == "features").output_shape == "(None, 26, 26, 3)"
    assert info.compiled == {"optimizer": "SGD", "loss": "sparse_categorical_crossentropy"}
    assert info.history == {}
    text = info.format()
    assert "Keras " + keras.__version__ in text and "BatchNormalization" in text and "none beside this file" in text
    as_json = json.loads(json.dumps(info.to_dict()))
    assert as_json["total_params"] == model.count_params()


def test_info_of_an_h5_file_reads_its_attributes(tmp_path):
    path = tmp_path / "m.h5"
    save_keras_model(_model(), path)
    info = model_info(path)
    assert info.file_format == "h5" and info.keras_version == keras.__version__
    assert info.backend == keras.backend.backend()  # the backend that saved it


def test_training_history_from_the_run_folder(tmp_path):
    run = tmp_path / "20261124-run"
    run.mkdir()
    save_keras_model(_model(), run / "model.keras")
    rec = RunRecord(id="20261124-run", created="2026-11-24T21:00:00Z", design={"name": "cnn"},
                    data={"name": "mnist-sample"}, status="finished", final={"test_accuracy": 0.91})
    rec.add_epoch({"epoch": 1, "loss": 0.9, "accuracy": 0.7})
    rec.add_epoch({"epoch": 2, "loss": 0.4, "accuracy": 0.88})
    (run / RUN_FILE).write_text(json.dumps(rec.to_dict()), encoding="utf-8")
    info = model_info(run / "model.keras")
    assert info.history == {"loss": [0.9, 0.4], "accuracy": [0.7, 0.88]}
    assert info.run["status"] == "finished" and info.run["final"] == {"test_accuracy": 0.91}
    text = info.format()
    assert "Training history (2 epochs" in text and "0.88" in text and "test_accuracy 0.91" in text


def test_lambda_model_needs_trust(tmp_path):
    inputs = keras.Input((4,))
    outputs = keras.layers.Lambda(lambda t: t * 2.0, name="doubler")(inputs)
    model = keras.Model(inputs, outputs)
    path = tmp_path / "lam.keras"
    model.save(path)
    with pytest.raises(ModelFileError, match="Lambda"):
        model_info(path)
    info = model_info(path, trusted=True)
    assert [ly.class_name for ly in info.layers] == ["InputLayer", "Lambda"]


def test_bad_files_give_clear_errors(tmp_path):
    with pytest.raises(ModelFileError, match="does not exist"):
        model_info(tmp_path / "missing.keras")
    png = tmp_path / "model.keras"
    png.write_bytes(b"\x89PNG\r\n\x1a\n" + bytes(np.arange(64, dtype=np.uint8)))
    with pytest.raises(ModelFileError, match="PNG"):
        model_info(png)


def test_human_size():
    assert human_size(512) == "512 B"
    assert human_size(48_800) == "48.8 kB"
    assert human_size(3_200_000) == "3.2 MB"
