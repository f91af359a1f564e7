"""Model files people actually have open, or are refused in one plain sentence (tests/legacy_models.py).

The corpus is written once for the module: tf.keras 2.x files saved by ``tf_keras`` in a child process,
Keras <= 2.3 copies of them (edited with h5py), Keras 3 archives, misnamed files and hostile ones.  Before
the fix, the Keras 2.2.4 CNN failed with "Kernel shape must have the same length as input, but received
kernel of shape (3, 3, 1, 4) and input of shape (None, None, 28, 28, 1)", the Keras 2.2.4 MLP opened with
an input of shape (None, None, 784) that no data fits, a bare-list Sequential (Keras <= 2.2.2) failed with
"pop expected at most 1 argument, got 2", a compiled file whose loss has ``reduction="auto"`` or whose
optimizer has ``lr`` was refused whole, misnamed files were refused with "rename it", and a pickle in an
archive's weights was refused with numpy's "Object arrays cannot be loaded when allow_pickle=False".
"""

from __future__ import annotations

import hashlib
import importlib.util
import json

import numpy as np
import pytest

keras = pytest.importorskip("keras")
if importlib.util.find_spec("tf_keras") is None:  # not imported here: only the corpus builder's child imports it
    pytest.skip("tf_keras (the test extras) writes the Keras 2 files", allow_module_level=True)

import legacy_models as lm  # noqa: E402

from neuralstudio.cli import main  # noqa: E402
from neuralstudio.ml import legacy_h5  # noqa: E402
from neuralstudio.ml.model_files import (  # noqa: E402
    ModelFileError,
    UntrustedCodeError,
    check_model_file,
    load_keras_model,
    load_notes,
    model_file_format,
)

pytestmark = pytest.mark.backend_neutral  # old files are translated before Keras reads them


DIGIT_MODELS = ["cnn_keras224.h5", "mlp_keras220.h5", "cnn_keras224_is_h5.keras", "k3_is_zip.h5"]


@pytest.fixture(scope="module")
def corpus(tmp_path_factory):
    return lm.build_corpus(tmp_path_factory.mktemp("legacy"))


def _digest(path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def _all_good():
    return ["cnn_tfkeras.h5", "mlp_tfkeras.h5", "functional_tfkeras.h5", "cnn_keras224.h5", "mlp_keras224.h5",
            "mlp_keras220.h5", "k3_plain.keras", "k3_compiled.keras", "k3_bad_compile.keras",
            "cnn_keras224_is_h5.keras", "k3_is_zip.h5"]


def test_the_corpus_is_what_it_claims(corpus):
    import sys

    assert "tf_keras" not in sys.modules, "tf_keras is imported only in the corpus builder's child process"
    assert sorted(corpus.good) == sorted(_all_good())
    for name in ("cnn_keras224.h5", "mlp_keras224.h5", "mlp_keras220.h5"):
        import h5py

        with h5py.File(corpus.good[name]) as f:
            config = json.loads(f.attrs["model_config"])
            assert f.attrs["keras_version"] in (b"2.2.4", b"2.2.0")
        layers = config["config"] if name == "mlp_keras220.h5" else config["config"]["layers"]
        assert layers[0]["class_name"] != "InputLayer" and "batch_input_shape" in layers[0]["config"]
    assert model_file_format(corpus.good["cnn_keras224_is_h5.keras"]) == "h5"
    assert model_file_format(corpus.good["k3_is_zip.h5"]) == "keras"


# ---------------------------------------------------------------- every good file opens and predicts the same
@pytest.mark.parametrize("name", _all_good())
def test_opens_and_predicts_what_the_model_that_wrote_it_predicted(corpus, name):
    path = corpus.good[name]
    before, temporary = _digest(path), _temporary_folders()
    x, y = corpus.reference[name]
    model = load_keras_model(path)
    assert model.input_shape == (None, *x.shape[1:])
    np.testing.assert_allclose(model.predict(x, verbose=0), y, rtol=1e-5, atol=1e-6)
    assert _digest(path) == before, "the user's file must never be changed"
    assert sorted(corpus.folder.iterdir()) == sorted(corpus.files), "nothing is written beside it"
    assert _temporary_folders() <= temporary, "the temporary copy or link is removed"


def _temporary_folders() -> set[str]:
    import tempfile
    from pathlib import Path

    return {p.name for p in Path(tempfile.gettempdir()).glob("neuralstudio-*-*") if p.name.startswith(
        ("neuralstudio-legacy-", "neuralstudio-open-"))}


def test_keras2_training_settings_are_repaired(corpus):
    model = load_keras_model(corpus.good["cnn_keras224.h5"], compile=True)
    assert type(model.optimizer).__name__ == "Adam"
    assert float(model.optimizer.learning_rate) == pytest.approx(1e-3)  # was saved as Keras 2's "lr"
    assert model.loss is not None
    notes = load_notes(model)
    assert len(notes) == 1 and "decay=0.0001" in notes[0] and "left out" in notes[0]
    x, y = corpus.reference["cnn_keras224.h5"]
    np.testing.assert_allclose(model.predict(x, verbose=0), y, rtol=1e-5, atol=1e-6)


def test_tf_keras_loss_objects_are_repaired(corpus):
    model = load_keras_model(corpus.good["functional_tfkeras.h5"], compile=True)
    assert type(model.optimizer).__name__ == "SGD"
    assert [n for n in load_notes(model) if "training settings" in n] == []


def test_training_settings_keras3_refuses_do_not_stop_the_model(corpus):
    model = load_keras_model(corpus.good["k3_bad_compile.keras"], compile=True)
    assert getattr(model, "optimizer", None) is None
    (note,) = load_notes(model)
    assert "training settings" in note and "could not be restored" in note and "weights were loaded" in note
    assert load_notes(load_keras_model(corpus.good["k3_compiled.keras"], compile=True)) == []
    assert load_notes(object()) == []


def test_info_reports_the_note_and_the_real_format(corpus, capsys):
    assert main(["info", str(corpus.good["k3_bad_compile.keras"])]) == 0
    out = capsys.readouterr().out
    assert "note: the training settings saved in k3_bad_compile.keras" in out
    assert main(["info", str(corpus.good["cnn_keras224_is_h5.keras"]), "--json"]) == 0
    info = json.loads(capsys.readouterr().out)
    assert info["file_format"] == "h5" and info["keras_version"] == "2.2.4"
    assert [layer["name"] for layer in info["layers"]] == ["conv", "pool", "flat", "probs"]


# ---------------------------------------------------------------- the command line, exit 0
def _digit_png(path):
    from PIL import Image

    img = np.zeros((120, 120), np.uint8)
    img[15:105, 55:66] = 255
    Image.fromarray(img).save(path)
    return path


@pytest.mark.parametrize("name", _all_good())
def test_cli_info(corpus, name, capsys):
    assert main(["info", str(corpus.good[name])]) == 0
    captured = capsys.readouterr()
    assert "Traceback" not in captured.out + captured.err
    assert "parameters:" in captured.out


@pytest.mark.parametrize("name", DIGIT_MODELS)
def test_cli_predict_and_import(corpus, name, tmp_path, capsys):
    path = corpus.good[name]
    png = _digit_png(tmp_path / "one.png")
    assert main(["predict", str(path), str(png), "--json"]) == 0
    captured = capsys.readouterr()
    assert "Traceback" not in captured.out + captured.err and "one.png" in captured.out
    out = tmp_path / "net.nsd"
    assert main(["import", str(path), "-o", str(out)]) == 0
    captured = capsys.readouterr()
    assert out.is_file() and "Traceback" not in captured.out + captured.err


# ---------------------------------------------------------------- hostile files: one plain sentence, nothing run
HOSTILE_WORDS = {
    "lambda_tfkeras.h5": ["Lambda layer (double)", "Python code would run", "--trust"],
    "lambda_keras224.h5": ["Lambda layer (double)", "Python code would run", "--trust"],
    "pickled.keras": ["contains Python objects", "could run code on this computer", "nothing in it was run",
                      "will not open it"],
    "pickled_is_zip.h5": ["contains Python objects", "could run code on this computer", "nothing in it was run",
                          "will not open it"],
}


@pytest.mark.parametrize("name", sorted(HOSTILE_WORDS))
def test_hostile_files_are_refused_in_one_plain_sentence(corpus, name):
    path = corpus.hostile[name]
    with pytest.raises(ModelFileError) as info:
        load_keras_model(path, compile=True)
    message = str(info.value)
    for word in HOSTILE_WORDS[name]:
        assert word in message, message
    assert "allow_pickle" not in message and "Traceback" not in message and "\n" not in message
    assert isinstance(info.value, UntrustedCodeError) == name.startswith("lambda")
    assert not corpus.sentinel.exists(), "code from the file ran"


def test_a_pickle_is_refused_even_when_trusted_and_before_keras(corpus):
    with pytest.raises(ModelFileError, match="contains Python objects"):
        check_model_file(corpus.hostile["pickled.keras"])
    with pytest.raises(ModelFileError, match="contains Python objects"):
        load_keras_model(corpus.hostile["pickled.keras"], trusted=True)
    assert not corpus.sentinel.exists()


@pytest.mark.parametrize("name", sorted(HOSTILE_WORDS))
@pytest.mark.parametrize("command", ["info", "import", "predict"])
def test_cli_refuses_hostile_files_in_one_line(corpus, name, command, tmp_path, capsys):
    path = corpus.hostile[name]
    argv = {"info": ["info", str(path)], "import": ["import", str(path), "-o", str(tmp_path / "x.nsd")],
            "predict": ["predict", str(path), str(_digit_png(tmp_path / "one.png"))]}[command]
    assert main(argv) == 1
    captured = capsys.readouterr()
    err = captured.err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("error: ") and path.name in err[0], err
    assert "Traceback" not in captured.out + captured.err and "allow_pickle" not in captured.err
    assert HOSTILE_WORDS[name][0] in err[0]
    assert not (tmp_path / "x.nsd").exists() and not corpus.sentinel.exists()


# ---------------------------------------------------------------- the translation itself (no Keras needed)
def test_translation_leaves_configs_keras3_reads_unchanged(corpus):
    import h5py

    for name in ("cnn_tfkeras.h5", "mlp_tfkeras.h5", "functional_tfkeras.h5"):
        with h5py.File(corpus.good[name]) as f:
            config = json.loads(f.attrs["model_config"])
        assert legacy_h5.translate_model_config(config) == (config, [])


def test_translation_inserts_the_input_layer_keras2_implied():
    config = {"class_name": "Sequential", "config": [
        {"class_name": "Dense", "config": {"name": "dense_1", "batch_input_shape": [None, 4], "dtype": "float32",
                                           "units": 2}},
        {"class_name": "Dense", "config": {"name": "dense_1_input", "units": 1}}]}
    original = json.loads(json.dumps(config))
    new, changes = legacy_h5.translate_model_config(config)
    assert config == original, "the input is not changed"
    layers = new["config"]["layers"]
    assert [layer["class_name"] for layer in layers] == ["InputLayer", "Dense", "Dense"]
    assert layers[0]["config"] == {"batch_input_shape": [None, 4], "dtype": "float32", "sparse": False,
                                   "name": "dense_1_input_"}
    assert "batch_input_shape" not in layers[1]["config"] and len(changes) == 2
    assert legacy_h5.translate_model_config(new) == (new, [])


def test_translation_reaches_nested_sequentials_and_ignores_junk():
    inner = {"class_name": "Sequential", "config": {"name": "inner", "layers": [
        {"class_name": "Conv2D", "config": {"name": "c", "batch_input_shape": [None, 8, 8, 1],
                                            "dtype": {"class_name": "Policy", "config": {"name": "float32"}}}}]}}
    outer = {"class_name": "Functional", "config": {"layers": [inner, {"class_name": "Sequential", "config": 5},
                                                               {"class_name": "Sequential",
                                                                "config": {"layers": ["x"]}}]}}
    new, changes = legacy_h5.translate_model_config(outer)
    fixed = new["config"]["layers"][0]["config"]["layers"]
    assert fixed[0]["class_name"] == "InputLayer" and fixed[0]["config"]["dtype"] == "float32"
    assert len(changes) == 1
    for junk in ([], "x", {"class_name": "Sequential", "config": {"layers": [{"class_name": "Dense", "config": {
            "batch_input_shape": [None, -1]}}]}}):
        assert legacy_h5.translate_model_config(junk)[1] == []


def test_training_config_repair():
    config = {"optimizer_config": {"class_name": "Nadam", "config": {"lr": 0.002, "schedule_decay": 0.004,
                                                                     "decay": 0.0}},
              "loss": {"class_name": "MeanSquaredError", "config": {"reduction": "auto", "fn": "mse"}},
              "metrics": [{"class_name": "MeanMetricWrapper", "config": {"fn": "mae"}}], "loss_weights": None}
    new, changed, notes = legacy_h5.repair_training_config(config)
    assert changed and new["optimizer_config"]["config"] == {"learning_rate": 0.002}
    assert new["loss"]["config"] == {"reduction": "sum_over_batch_size"}
    assert new["metrics"][0]["config"] == {"fn": "mae"}, "a metric wrapper keeps its function"
    assert notes == ["the optimizer's learning-rate decay (schedule_decay=0.004) does not exist in Keras 3 and "
                     "was left out"]
    assert legacy_h5.repair_training_config(new)[1:] == (False, [])


def test_keras_errors_on_an_old_file_name_its_version_and_what_to_do(tmp_path):
    from neuralstudio.ml import model_files

    message = model_files._explain_load_error(tmp_path / "old.h5", ValueError("Bad layer."), saved_by="2.1.6")
    assert "saved by Keras 2.1.6" in message and "Keras 3 cannot rebuild" in message
    assert "ask whoever made it" in message and "Save it again" not in message
    plain = model_files._explain_load_error(tmp_path / "m.keras", ValueError("Bad layer."))
    assert "Save it again" not in plain and "ask whoever made it" in plain


def test_an_old_file_keras3_cannot_rebuild_is_refused_naming_its_version(corpus, tmp_path, capsys):
    import h5py

    path = tmp_path / "keras1.h5"
    path.write_bytes(corpus.good["mlp_keras224.h5"].read_bytes())
    with h5py.File(path, "a") as f:  # a Keras 1 argument Keras 3 does not know
        config = json.loads(f.attrs["model_config"])
        config["config"]["layers"][0]["config"]["output_dim"] = 16
        f.attrs["model_config"] = json.dumps(config).encode()
        f.attrs["keras_version"] = np.bytes_("1.2.2")
    assert main(["info", str(path)]) == 1
    captured = capsys.readouterr()
    (line,) = captured.err.strip().splitlines()
    assert "keras1.h5 was saved by Keras 1.2.2, and Keras 3 cannot rebuild" in line and "output_dim" in line
    assert "tf-keras" in line and "Traceback" not in captured.out + captured.err


def test_no_room_for_the_temporary_copy_is_a_plain_message(corpus, monkeypatch):
    import tempfile

    def full(*args, **kwargs):
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(tempfile, "mkdtemp", full)
    with pytest.raises(ModelFileError, match="No space left on device.*free some disk space"):
        load_keras_model(corpus.good["cnn_keras224.h5"])
    assert load_keras_model(corpus.good["cnn_tfkeras.h5"]) is not None, "a file opened in place needs no copy"


def test_a_data_file_with_python_objects_is_refused_without_running_them(corpus, tmp_path):
    from neuralstudio.core.errors import UserError
    from neuralstudio.ml.data import load_dataset

    path = lm.pickled_data_npz(tmp_path / "digits.npz", corpus.sentinel)
    with pytest.raises(UserError) as info:
        load_dataset(str(path))
    message = str(info.value)
    assert "Python objects" in message and "digits.npz" in message and "allow_pickle" not in message
    assert not corpus.sentinel.exists()
