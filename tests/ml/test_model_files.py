"""Opening Keras model files safely: real files in tmp_path, good and bad."""

from __future__ import annotations

import json
import zipfile

import numpy as np
import pytest

keras = pytest.importorskip("keras")

from neuralstudio.core.errors import UserError  # noqa: E402
from neuralstudio.ml.model_files import ModelFileError, load_keras_model, save_keras_model  # noqa: E402


def _tiny() -> keras.Model:
    inp = keras.Input((4,), name="x")
    out = keras.layers.Dense(3, activation="softmax", name="probs")(keras.layers.Dense(5, name="hidden")(inp))
    return keras.Model(inp, out, name="tiny")


def _with_lambda() -> keras.Model:
    inp = keras.Input((4,))
    out = keras.layers.Lambda(lambda t: t * 2.0, name="double_it")(inp)
    return keras.Model(inp, keras.layers.Dense(2)(out))


@pytest.fixture(scope="module")
def saved(tmp_path_factory):
    folder = tmp_path_factory.mktemp("models")
    model = _tiny()
    save_keras_model(model, folder / "tiny.keras")
    save_keras_model(model, folder / "tiny.h5")
    return folder, model


@pytest.mark.parametrize("name", ["tiny.keras", "tiny.h5"])
def test_saved_model_loads_with_same_outputs(saved, name):
    folder, model = saved
    loaded = load_keras_model(folder / name)
    x = np.random.default_rng(0).random((3, 4), dtype=np.float32)
    assert [layer.name for layer in loaded.layers] == [layer.name for layer in model.layers]
    np.testing.assert_allclose(loaded(x), model(x), atol=1e-6)


def test_save_is_atomic_and_keeps_no_temp_files(tmp_path):
    target = tmp_path / "m.keras"
    target.write_bytes(b"old content")
    save_keras_model(_tiny(), target)
    assert zipfile.is_zipfile(target)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["m.keras"]


def test_failed_save_leaves_the_old_file(tmp_path):
    target = tmp_path / "m.keras"
    target.write_bytes(b"old content")

    class Broken:
        def save(self, path):
            path.write_bytes(b"half")
            raise OSError("disk full")

    with pytest.raises(OSError):
        save_keras_model(Broken(), target)
    assert target.read_bytes() == b"old content"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["m.keras"]


def test_save_refuses_unknown_extension(tmp_path):
    with pytest.raises(ModelFileError, match=r"\.keras"):
        save_keras_model(_tiny(), tmp_path / "m.pb")


def _expect(path, *words):
    with pytest.raises(ModelFileError) as info:
        load_keras_model(path)
    assert isinstance(info.value, UserError)
    msg = str(info.value)
    for w in words:
        assert w in msg, msg
    return msg


def test_missing_file(tmp_path):
    _expect(tmp_path / "nope.keras", "does not exist")


def test_folder(tmp_path):
    (tmp_path / "saved_model.keras").mkdir()
    _expect(tmp_path / "saved_model.keras", "folder")


def test_empty_file(tmp_path):
    (tmp_path / "m.keras").write_bytes(b"")
    _expect(tmp_path / "m.keras", "empty")


def test_empty_h5(tmp_path):
    (tmp_path / "m.h5").write_bytes(b"")
    _expect(tmp_path / "m.h5", "empty")


@pytest.mark.parametrize("name", ["tiny.keras", "tiny.h5"])
def test_truncated(saved, tmp_path, name):
    data = (saved[0] / name).read_bytes()
    bad = tmp_path / name
    bad.write_bytes(data[: len(data) // 2])
    _expect(bad, "damaged or truncated")


def test_png_renamed_to_keras(tmp_path):
    png = b"\x89PNG\r\n\x1a\n" + b"\x00\x00\x00\rIHDR" + bytes(40)
    (tmp_path / "model.keras").write_bytes(png)
    _expect(tmp_path / "model.keras", "PNG image", "not a Keras model")


def test_h5_without_a_model(tmp_path):
    import h5py

    with h5py.File(tmp_path / "data.h5", "w") as f:
        f["x"] = np.arange(5)
    _expect(tmp_path / "data.h5", "HDF5", "no Keras model")


def test_weights_only_h5(tmp_path):
    model = _tiny()
    model.save_weights(tmp_path / "w.weights.h5")
    (tmp_path / "w.weights.h5").rename(tmp_path / "w.h5")
    _expect(tmp_path / "w.h5", "HDF5")


def test_zip_that_is_not_a_keras_archive(tmp_path):
    with zipfile.ZipFile(tmp_path / "m.keras", "w") as zf:
        zf.writestr("readme.txt", "hello")
    _expect(tmp_path / "m.keras", "zip archive but not a Keras model")


def test_keras_archive_with_broken_config(tmp_path):
    with zipfile.ZipFile(tmp_path / "m.keras", "w") as zf:
        zf.writestr("config.json", "{not json")
    _expect(tmp_path / "m.keras", "damaged")


@pytest.mark.parametrize(("source", "misnamed"), [("tiny.h5", "m.keras"), ("tiny.keras", "m.h5")])
def test_a_misnamed_model_opens_by_its_content(saved, tmp_path, source, misnamed):
    (tmp_path / misnamed).write_bytes((saved[0] / source).read_bytes())
    x = np.random.default_rng(0).random((3, 4), dtype=np.float32)
    np.testing.assert_allclose(load_keras_model(tmp_path / misnamed)(x), saved[1](x), atol=1e-6)


def test_wrong_extension(tmp_path):
    (tmp_path / "m.txt").write_text("x")
    _expect(tmp_path / "m.txt", "not a .keras or .h5 file")


@pytest.mark.parametrize("suffix", [".keras", ".h5"])
def test_lambda_layer_refused_unless_trusted(tmp_path, suffix):
    path = tmp_path / f"lam{suffix}"
    model = _with_lambda()
    model.save(path)
    msg = _expect(path, "Lambda", "double_it", "--trust", "Trust and open")
    assert "code" in msg
    trusted = load_keras_model(path, trusted=True)
    x = np.ones((1, 4), dtype=np.float32)
    assert trusted.get_layer("double_it") is not None
    assert trusted(x).shape == (1, 2)


def test_lambda_hidden_in_a_nested_model_is_found(tmp_path):
    inner = _with_lambda()
    inp = keras.Input((4,))
    model = keras.Model(inp, keras.layers.Dense(1)(inner(inp)))
    path = tmp_path / "nested.keras"
    model.save(path)
    _expect(path, "Lambda", "double_it")


def test_custom_layer_message(tmp_path):
    @keras.saving.register_keras_serializable(package="nstest")
    class Twice(keras.layers.Layer):
        def call(self, x):
            return x * 2

    inp = keras.Input((3,))
    model = keras.Model(inp, Twice(name="twice")(inp))
    path = tmp_path / "custom.keras"
    model.save(path)
    data = json.loads(zipfile.ZipFile(path).read("config.json"))
    assert "Twice" in json.dumps(data)
    keras.saving.get_custom_objects().pop("nstest>Twice", None)
    msg = _expect(path, "custom")
    assert "Traceback" not in msg


def test_compile_restores_the_optimizer(tmp_path):
    model = _tiny()
    model.compile(optimizer="adam", loss="sparse_categorical_crossentropy")
    save_keras_model(model, tmp_path / "c.keras")
    assert getattr(load_keras_model(tmp_path / "c.keras"), "optimizer", None) is None
    assert load_keras_model(tmp_path / "c.keras", compile=True).optimizer is not None
