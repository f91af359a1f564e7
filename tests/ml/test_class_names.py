"""Class names: kept from the data sources, stored with trained models, read back safely from hostile files."""

import json
import zipfile

import numpy as np
import pytest
from named_data import PETS, classifier_design, train_on, write_digits_without, write_image_folder, write_pets

from neuralstudio.core.class_names import (
    MAX_CLASS_NAME_CHARS,
    MAX_CLASS_NAMES,
    ClassNamesError,
    clean_class_names,
    data_classes,
    data_label,
    names_for_outputs,
    validate_class_names,
)
from neuralstudio.ml.data import DataError, load_dataset

keras = pytest.importorskip("keras")

from neuralstudio.ml.model_files import load_keras_model  # noqa: E402
from neuralstudio.ml.model_metadata import (  # noqa: E402
    METADATA_MEMBER,
    ModelClasses,
    load_model,
    read_classes,
    remembered_classes,
    save_model,
)

pytestmark = pytest.mark.backend_neutral  # class names are read and written without Keras computing anything


# --------------------------------------------------------------------------- validation (core)


def test_valid_names_pass_and_anything_else_is_refused():
    assert validate_class_names(["cat", "dog", "T-shirt/top", "Ankle boot", "ü"]) == ["cat", "dog", "T-shirt/top",
                                                                                     "Ankle boot", "ü"]
    for bad in ["cat", {"a": 1}, [1, 2], ["ok", None], ["x" * (MAX_CLASS_NAME_CHARS + 1)], ["new\nline"],
                ["\x1b[31mred"], ["a"] * (MAX_CLASS_NAMES + 1), ["\ud800"]]:
        with pytest.raises(ClassNamesError):
            validate_class_names(bad)


def test_names_are_cleaned_for_storing():
    assert clean_class_names(["a\nb", "x" * 500, 3]) == ["a?b", "x" * (MAX_CLASS_NAME_CHARS - 1) + "…", "3"]
    assert clean_class_names(str(i) for i in range(MAX_CLASS_NAMES + 1)) is None


def test_data_labels_and_known_classes():
    assert data_label("mnist-sample") == "MNIST sample" and data_label("fashion-mnist") == "Fashion-MNIST"
    assert data_label("/home/someone/private/pets") == "pets"  # a shared model does not carry the path
    assert data_classes({"source": "mnist-sample"}) == ("MNIST sample", 10)
    assert data_classes({"source": "/data/x.csv"}) is None
    assert data_classes({"source": "/data/x.csv", "num_classes": 3}) == ("x.csv", 3)
    assert names_for_outputs(["cat", "dog"], 4) == ["cat", "dog", "2", "3"]
    assert names_for_outputs(None, 3) == ["0", "1", "2"]


# --------------------------------------------------------------------------- data sources keep their labels


def test_a_digit_folder_missing_3_keeps_4_to_9(tmp_path):
    ds = load_dataset(str(write_digits_without(tmp_path / "digits", missing=3)))
    assert ds.class_names == [str(i) for i in range(10)] and ds.num_classes == 10
    y = np.concatenate([ds.y_train, ds.y_test])
    assert sorted(set(y.tolist())) == [0, 1, 2, 4, 5, 6, 7, 8, 9]
    # each image's label is the digit it shows: compare with the MNIST sample's own pictures of 4
    sample = load_dataset("mnist-sample")
    four = sample.x_train[np.flatnonzero(sample.y_train == 4)[0]]
    x = np.concatenate([ds.x_train, ds.x_test])
    match = [i for i in range(len(x)) if np.abs(x[i] - four).max() < 1 / 255]
    assert match and all(y[i] == 4 for i in match)


def test_csv_and_npz_digits_missing_one_keep_their_numbers(tmp_path):
    labels = [0, 1, 2, 4, 5, 6, 7, 8, 9] * 5
    csv = tmp_path / "d.csv"
    csv.write_text("label,a,b\n" + "".join(f"{v},{v},1\n" for v in labels))
    ds = load_dataset(str(csv))
    assert ds.class_names == [str(i) for i in range(10)]
    y = np.concatenate([ds.y_train, ds.y_test])
    x = np.concatenate([ds.x_train, ds.x_test])
    np.testing.assert_array_equal(y, np.rint(x[:, 0] * 255).astype(int))  # the label is still the value written
    npz = tmp_path / "d.npz"
    np.savez(npz, x_train=np.zeros((45, 4, 4), np.uint8), y_train=np.array(labels, np.uint8))
    assert load_dataset(str(npz)).class_names == [str(i) for i in range(10)]


def test_labels_that_are_not_class_numbers_are_numbered_and_named_by_value(tmp_path):
    csv = tmp_path / "wine.csv"
    csv.write_text("label,a\n" + "".join(f"{v},{v}\n" for v in [1, 2, 3] * 4))  # 1-based classes
    ds = load_dataset(str(csv))
    assert ds.class_names == ["1", "2", "3"] and sorted(set(ds.y_train.tolist())) == [0, 1, 2]
    sparse = tmp_path / "codes.csv"
    sparse.write_text("label,a\n" + "".join(f"{v},1\n" for v in [0, 5000] * 4))
    assert load_dataset(str(sparse)).class_names == ["0", "5000"]
    numbered = write_image_folder(tmp_path / "numbered", {"1": 1, "2": 2, "10": 0}, per_class=3)
    assert load_dataset(str(numbered)).class_names == ["1", "2", "10"]  # by number, not "1", "10", "2"


def test_npz_class_names_name_the_class_numbers(tmp_path):
    x = np.zeros((12, 4, 4), np.uint8)
    path = tmp_path / "f.npz"
    np.savez(path, x_train=x, y_train=np.array([0, 1, 2] * 4), class_names=np.array(["T-shirt", "Trouser",
                                                                                     "Pullover", "Dress"]))
    assert load_dataset(str(path)).class_names == ["T-shirt", "Trouser", "Pullover", "Dress"]  # no Dress pictures
    np.savez(path, x_train=x, y_train=np.array([0, 1, 2] * 4), class_names=np.array(["a", "b"]))
    with pytest.raises(DataError, match="2 names but the labels go up to 2"):
        load_dataset(str(path))


def test_named_folders_and_train_test_folders(tmp_path):
    ds = load_dataset(str(write_pets(tmp_path / "pets", per_class=5)))
    assert ds.class_names == ["cat", "dog"]
    root = tmp_path / "split"
    write_digits_without(root / "train", missing=3, per_class=3)
    write_image_folder(root / "test", {"0": 0, "4": 4}, per_class=2)
    ds = load_dataset(str(root))
    assert ds.class_names == [str(i) for i in range(10)] and sorted(set(ds.y_test.tolist())) == [0, 4]


# --------------------------------------------------------------------------- stored with the model


@pytest.fixture(scope="module")
def pets_run(tmp_path_factory):
    root = tmp_path_factory.mktemp("pets")
    folder = write_pets(root / "pets")
    return train_on(folder, root / "pets.keras"), root


def test_training_stores_the_class_names_with_the_model(pets_run):
    result, root = pets_run
    assert result.class_names == ["cat", "dog"]
    assert read_classes(root / "pets.keras") == ModelClasses(("cat", "dog"), "pets")
    assert remembered_classes(result.model) == ModelClasses(("cat", "dog"), "pets")
    with zipfile.ZipFile(root / "pets.keras") as zf:
        assert sorted(zf.namelist()) == ["config.json", "metadata.json", "model.weights.h5"]  # no extra member
        meta = json.loads(zf.read(METADATA_MEMBER))
    assert meta["neuralstudio"] == {"class_names": ["cat", "dog"], "data": "pets"} and "keras_version" in meta
    loaded = load_keras_model(root / "pets.keras")  # Keras and the safety checks still open it
    np.testing.assert_allclose(loaded.get_weights()[0], result.model.get_weights()[0])
    assert result.summary()["class_names"] == ["cat", "dog"]


def test_the_run_folder_model_has_them_too(tmp_path):
    from neuralstudio.core.runs import RunsStore
    from neuralstudio.ml.trainer import Trainer

    store = RunsStore(tmp_path / "runs")
    result = Trainer(classifier_design(2, epochs=1), dataset=str(write_pets(tmp_path / "pets", 4)),
                     runs_store=store, out_path=str(tmp_path / "m.h5")).run()
    assert result.ok, result.message
    run_model = store.model_file(store.get(result.run_id))
    assert read_classes(run_model).names == ("cat", "dog")
    assert read_classes(tmp_path / "m.h5") == ModelClasses(("cat", "dog"), "pets")  # legacy HDF5 too
    assert load_model(tmp_path / "m.h5") is not None


def test_save_as_from_the_train_window_keeps_the_names(pets_run, tmp_path):
    from neuralstudio.ui.train.workspace import _save_keras_model

    result, _ = pets_run
    _save_keras_model(result.model, str(tmp_path / "copy.keras"))
    _save_keras_model(result.model, str(tmp_path / "copy.h5"))
    assert read_classes(tmp_path / "copy.keras").names == ("cat", "dog")
    assert read_classes(tmp_path / "copy.h5").names == ("cat", "dog")
    reopened = load_model(tmp_path / "copy.keras")
    assert remembered_classes(reopened).names == ("cat", "dog")
    save_model(reopened, tmp_path / "again.keras")  # a reopened model saved again keeps them as well
    assert read_classes(tmp_path / "again.keras").names == ("cat", "dog")


def test_a_model_without_names_reads_as_none(tmp_path):
    from support import dense_model

    dense_model().save(tmp_path / "plain.keras")
    assert read_classes(tmp_path / "plain.keras") is None
    dense_model().save(tmp_path / "plain.h5")
    assert read_classes(tmp_path / "plain.h5") is None


# --------------------------------------------------------------------------- hostile files


def _with_metadata(path, tmp_path, raw: bytes, name="h.keras"):
    """A copy of the model file ``path`` whose metadata.json is ``raw``."""
    out = tmp_path / name
    with zipfile.ZipFile(path) as src, zipfile.ZipFile(out, "w") as dst:
        for info in src.infolist():
            dst.writestr(info.filename, raw if info.filename == METADATA_MEMBER else src.read(info))
    return out


@pytest.mark.parametrize("meta", [
    {"neuralstudio": {"class_names": "cat"}},
    {"neuralstudio": {"class_names": [1, 2]}},
    {"neuralstudio": {"class_names": ["cat", {"__class__": "os.system"}]}},
    {"neuralstudio": {"class_names": ["x" * 10_000]}},
    {"neuralstudio": {"class_names": ["a"] * (MAX_CLASS_NAMES + 1)}},
    {"neuralstudio": {"class_names": ["ok"], "data": ["not", "text"]}},
    {"neuralstudio": ["cat", "dog"]},
])
def test_damaged_names_read_as_no_names(pets_run, tmp_path, meta):
    _, root = pets_run
    path = _with_metadata(root / "pets.keras", tmp_path, json.dumps(meta).encode())
    assert read_classes(path) is None
    assert load_keras_model(path) is not None  # the model itself still opens


@pytest.mark.parametrize("raw", [
    b"[" * 100_000 + b"]" * 100_000,  # nested too deeply
    b'{"neuralstudio": ' + b"[{}," * 200_000 + b"{}]}",  # a few bytes a container, a hundred once parsed
    b"\xff\xfe not utf-8",
    b'{"neuralstudio": {"class_names": ["a", ' + b"9" * 5_000 + b"]}}",  # an integer Python will not parse
    b" " * (9 * 2**20),  # larger than any real metadata
])
def test_oversized_or_odd_metadata_is_not_parsed(pets_run, tmp_path, raw):
    _, root = pets_run
    assert read_classes(_with_metadata(root / "pets.keras", tmp_path, raw)) is None


def test_an_archive_with_a_huge_directory_is_not_opened(tmp_path):
    path = tmp_path / "many.keras"
    with zipfile.ZipFile(path, "w") as zf:
        zf.writestr(METADATA_MEMBER, json.dumps({"neuralstudio": {"class_names": ["a", "b"]}}))
        for i in range(1_500):
            zf.writestr(f"x{i}", b"")
    assert read_classes(path) is None
    for junk in (b"", b"PK\x03\x04 truncated", b"not a model at all"):
        (tmp_path / "j.keras").write_bytes(junk)
        assert read_classes(tmp_path / "j.keras") is None
    assert read_classes(tmp_path / "missing.keras") is None


def test_names_are_never_code(pets_run, tmp_path):
    """A name that looks like code stays text: nothing read from the file is evaluated."""
    _, root = pets_run
    evil = ["__import__('os').system('touch pwned')", "{{7*7}}"]
    path = _with_metadata(root / "pets.keras", tmp_path,
                          json.dumps({"neuralstudio": {"class_names": evil, "data": "x"}}).encode())
    assert read_classes(path).names == tuple(evil)
    assert not (tmp_path / "pwned").exists()


def test_pets_are_named_in_training_order():
    assert list(PETS) == sorted(PETS)  # the folder order is the label order the tests rely on


def test_an_exported_keras_or_h5_model_keeps_its_class_names(tmp_path):
    """The export wrote the model without the names it was trained with: Predict then showed 0..K-1."""
    import keras

    from neuralstudio.ml.export import export_model
    from neuralstudio.ml.model_metadata import ModelClasses, read_classes, save_model

    model = keras.Sequential([keras.Input((4,)), keras.layers.Dense(2, activation="softmax")])
    src = tmp_path / "pets.keras"
    save_model(model, src, ModelClasses(("cat", "dog"), "pets"))
    from neuralstudio.ml.model_metadata import load_model

    loaded = load_model(src)
    for fmt, name in (("keras", "out.keras"), ("h5", "out.h5")):
        export_model(loaded, tmp_path / name, fmt, verify=False)
        assert read_classes(tmp_path / name).names == ("cat", "dog")
