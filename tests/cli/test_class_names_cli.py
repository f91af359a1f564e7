"""The command line names classes as the model was trained on them, reads outputs as they are, and warns about data.

`predict` and `evaluate` on a model trained on an image folder of "cat" and "dog"; `predict` on a sigmoid network
(activations, not probabilities); `check` on an imported MobileNetV2 (1,000 outputs: a warning naming the data
set, exit status 0).
"""

import json

import numpy as np
import pytest
from named_data import classifier_design, pet_picture, train_on, write_pets
from PIL import Image

from neuralstudio.cli import main

pytestmark = pytest.mark.backend_neutral  # class names files


keras = pytest.importorskip("keras")


@pytest.fixture(scope="module")
def pets(tmp_path_factory):
    root = tmp_path_factory.mktemp("pets")
    folder = write_pets(root / "pets")
    train_on(folder, root / "pets.keras")
    return root, folder


def test_predict_names_the_classes_the_model_was_trained_on(pets, tmp_path, capsys):
    root, _ = pets
    cat, dog = pet_picture(tmp_path / "cat.png", "cat"), pet_picture(tmp_path / "dog.png", "dog")
    assert main(["predict", str(root / "pets.keras"), str(cat), str(dog), "--json"]) == 0
    out = json.loads(capsys.readouterr().out)
    assert out["class_names"] == ["cat", "dog"] and out["trained_on"] == "pets" and out["output"] == "probabilities"
    assert [(r["label"], r["predicted"]) for r in out["results"]] == [("cat", 0), ("dog", 1)]
    for r in out["results"]:
        assert len(r["probabilities"]) == 2 and sum(r["probabilities"]) == pytest.approx(1.0, abs=1e-4)
    assert main(["predict", str(root / "pets.keras"), str(cat)]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert lines[0].split()[:3] == ["image", "class", "confidence"] and "cat dog" in lines[0]
    assert lines[1].split()[:2] == [str(cat), "cat"]
    assert any(line.startswith("Classes of pets: cat, dog") for line in lines)


def test_evaluate_shows_the_stored_names(pets, capsys):
    root, folder = pets
    assert main(["evaluate", str(root / "pets.keras"), "--data", str(folder), "--json"]) == 0
    out = json.loads(capsys.readouterr().out)
    assert out["model_class_names"] == ["cat", "dog"] == out["class_names"] and out["trained_on"] == "pets"
    assert out["class_names_note"] == "" and out["accuracy"] > 0.9
    assert main(["evaluate", str(root / "pets.keras"), "--data", str(folder)]) == 0
    text = capsys.readouterr().out
    assert "cat" in text.splitlines()[-2] and "dog" in text.splitlines()[-1]


def test_evaluate_says_when_the_model_knows_other_classes(pets, tmp_path, capsys):
    root, _ = pets
    digits = tmp_path / "digits.npz"
    from neuralstudio.ml.data import load_dataset

    ds = load_dataset("mnist-sample")
    keep = np.isin(ds.y_test, [0, 1])
    np.savez(digits, x_train=ds.x_test[keep][:40], y_train=ds.y_test[keep][:40])
    assert main(["evaluate", str(root / "pets.keras"), "--data", str(digits), "--split", "train"]) == 0
    text = capsys.readouterr().out
    assert "note: the model was trained on other classes (pets): cat, dog; the data's are 0, 1" in text
    assert "cat dog" in " ".join(text.split())  # the predicted columns carry the model's names


def test_predict_prints_a_sigmoid_networks_activations(tmp_path, capsys):
    keras.utils.set_random_seed(2)
    inp = keras.Input((784,))
    model = keras.Model(inp, keras.layers.Dense(10, activation="sigmoid")(
        keras.layers.Dense(30, activation="sigmoid")(inp)))
    model.save(tmp_path / "nielsen.keras")
    img = np.zeros((28, 28), np.uint8)
    img[4:24, 13:16] = 255
    Image.fromarray(img).save(tmp_path / "one.png")
    assert main(["predict", str(tmp_path / "nielsen.keras"), str(tmp_path / "one.png"), "--json"]) == 0
    out = json.loads(capsys.readouterr().out)
    r = out["results"][0]
    assert out["output"] == "activations" and out["value_label"] == "output activation (sigmoid)"
    assert "probabilities" not in r and "confidence" not in r
    from neuralstudio.ml.preprocess import prepare_image_file

    x = prepare_image_file(tmp_path / "one.png").reshape(1, 784)
    np.testing.assert_allclose(r["activations"], np.asarray(model(x))[0], atol=1e-5)
    assert out["class_names"] == [str(i) for i in range(10)] and out["trained_on"] is None
    assert main(["predict", str(tmp_path / "nielsen.keras"), str(tmp_path / "one.png")]) == 0
    text = capsys.readouterr().out
    assert text.splitlines()[0].split()[2] == "activation" and "not probabilities" in text
    assert "stores no class names" in text


@pytest.fixture(scope="module")
def mobilenet(tmp_path_factory):
    path = tmp_path_factory.mktemp("mnv2") / "mobilenet_v2.keras"
    keras.applications.MobileNetV2(weights=None).save(path)  # no download: random weights
    return path


def test_check_an_imported_mobilenet_warns_about_the_data_set_and_exits_0(mobilenet, capsys):
    assert main(["check", str(mobilenet)]) == 0
    out = capsys.readouterr().out
    assert "warning: The output layer has 1000 units but MNIST sample (the default data set" in out
    assert "0 errors, 1 warning" in out and "is OK" in out
    assert main(["check", str(mobilenet), "--data", "fashion-mnist", "--json"]) == 0
    data = json.loads(capsys.readouterr().out)
    assert data["ok"] is True and data["class_names"] is None
    assert [p["severity"] for p in data["problems"]] == ["warning"]
    assert data["problems"][0]["message"].startswith("The output layer has 1000 units but Fashion-MNIST has 10 "
                                                     "classes: give predictions (Dense) 10 units")
    design = mobilenet.with_suffix(".nsd")
    assert main(["import", str(mobilenet), "-o", str(design)]) == 0
    capsys.readouterr()
    assert main(["check", str(design)]) == 0  # imported as a design (data: the MNIST sample), still valid
    out = capsys.readouterr().out
    assert "warning: The output layer has 1000 units but MNIST sample has 10 classes" in out
    assert "[fix: Set units to 10 and activation to softmax]" in out


def test_check_a_model_against_the_data_it_was_trained_on(pets, tmp_path, capsys):
    root, folder = pets
    assert main(["check", str(root / "pets.keras")]) == 0
    out = capsys.readouterr().out
    assert "Classes:              cat, dog (trained on pets)" in out and "warning" not in out
    assert main(["check", str(root / "pets.keras"), "--data", "mnist-sample"]) == 0
    assert "has 2 units but MNIST sample has 10 classes" in capsys.readouterr().out
    ten = tmp_path / "ten.keras"
    from neuralstudio.ml.trainer import Trainer

    Trainer(classifier_design(10, epochs=1), dataset=str(folder), out_path=str(ten)).run()
    assert main(["check", str(ten)]) == 0
    assert "has 10 units but its training data (pets) has 2 classes" in capsys.readouterr().out
