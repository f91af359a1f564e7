"""``neuralstudio predict``: images in, digits out (table and JSON), errors as one line."""

import json

import numpy as np
import pytest
from PIL import Image

from neuralstudio.cli import main
from neuralstudio.core.paths import bundled_models_dir


def one(path, dark_on_light=False):
    img = np.zeros((120, 120), np.uint8)
    img[15:105, 55:66] = 255  # a "1"
    Image.fromarray(255 - img if dark_on_light else img).save(path)
    return path


def seven(path):
    img = np.zeros((200, 200), np.uint8)
    img[30:46, 40:160] = 255
    for y in range(30, 180):
        x = int(160 - (y - 30) * 0.45)
        img[y, x - 16 : x] = 255
    Image.fromarray(img).convert("RGB").save(path, quality=92)
    return path


def test_predict_table_and_json(tmp_path, capsys):
    model = bundled_models_dir() / "digits.keras"
    a = one(tmp_path / "one.png", dark_on_light=True)
    b = seven(tmp_path / "seven.jpg")
    assert main(["predict", str(model), str(a), str(b), "--json"]) == 0
    out = json.loads(capsys.readouterr().out)
    got = [(r["image"], r["predicted"]) for r in out["results"]]
    assert got == [(str(a), 1), (str(b), 7)]
    for r in out["results"]:
        assert len(r["probabilities"]) == 10 and sum(r["probabilities"]) == pytest.approx(1.0, abs=1e-4)
        assert r["confidence"] == max(r["probabilities"])
    assert main(["predict", "bundled", str(a)]) == 0
    lines = capsys.readouterr().out.strip().splitlines()
    assert lines[0].startswith("image") and lines[1].split()[:2] == [str(a), "1"]


def test_predict_errors_are_one_line(tmp_path, capsys):
    img = one(tmp_path / "one.png")
    bad_image = tmp_path / "bad.png"
    bad_image.write_text("not a picture")
    assert main(["predict", "bundled", str(bad_image)]) == 1
    err = capsys.readouterr().err
    assert err.startswith("error: ") and "bad.png" in err and "Traceback" not in err

    bad_model = tmp_path / "model.keras"
    bad_model.write_bytes(b"junk")
    assert main(["predict", str(bad_model), str(img)]) == 1
    err = capsys.readouterr().err
    assert err.startswith("error: ") and "model.keras" in err and "Traceback" not in err

    import keras

    inp = keras.Input((32, 32, 3))
    keras.Model(inp, keras.layers.Dense(10)(keras.layers.Flatten()(inp))).save(tmp_path / "rgb.keras")
    assert main(["predict", str(tmp_path / "rgb.keras"), str(img)]) == 1
    err = capsys.readouterr().err
    assert "28x28" in err and "(32, 32, 3)" in err
