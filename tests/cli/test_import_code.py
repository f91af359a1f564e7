"""``neuralstudio import`` and ``neuralstudio code`` through the real CLI entry point, on real files."""

from __future__ import annotations

import ast

import pytest

keras = pytest.importorskip("keras")

from neuralstudio.cli import main  # noqa: E402
from neuralstudio.core.design import load_design  # noqa: E402
from neuralstudio.ml.builder import build_model  # noqa: E402

pytestmark = pytest.mark.backend_neutral  # refused before anything runs


def _model() -> keras.Model:
    inp = keras.Input((28, 28, 1), name="image")
    x = keras.layers.Conv2D(4, 3, activation="relu", name="conv")(inp)
    a = keras.layers.GlobalAveragePooling2D(name="gap")(x)
    b = keras.layers.GlobalMaxPooling2D(name="gmp")(x)
    x = keras.layers.Concatenate(name="cat")([a, b])
    return keras.Model(inp, keras.layers.Dense(10, activation="softmax", name="probs")(x), name="twin_pool")


def test_import_then_code(tmp_path, capsys):
    model = _model()
    model.save(tmp_path / "net.keras")
    design_path = tmp_path / "net.nsd"
    assert main(["import", str(tmp_path / "net.keras"), "-o", str(design_path)]) == 0
    out = capsys.readouterr().out
    assert "wrote" in out and "6 layers" in out
    design = load_design(design_path)
    assert build_model(design.graph).count_params() == model.count_params()
    assert sorted(p.name for p in tmp_path.iterdir()) == ["net.keras", "net.nsd"]  # no temp files left

    assert main(["code", str(design_path)]) == 0
    code = capsys.readouterr().out
    ast.parse(code)
    assert 'cat = layers.Concatenate(name="cat")([gap, gmp])' in code

    script = tmp_path / "train_net.py"
    assert main(["code", str(design_path), "-o", str(script)]) == 0
    assert script.read_text(encoding="utf-8") == code
    namespace = {"__name__": "train_net"}
    exec(compile(code, str(script), "exec"), namespace)  # noqa: S102 - our own generated code
    assert namespace["model"].count_params() == model.count_params()


def test_import_default_output_name(tmp_path, capsys):
    _model().save(tmp_path / "m.h5")
    assert main(["import", str(tmp_path / "m.h5")]) == 0
    assert (tmp_path / "m.nsd").exists()


def test_import_refuses_lambda_unless_trusted(tmp_path, capsys):
    inp = keras.Input((4,))
    model = keras.Model(inp, keras.layers.Dense(2)(keras.layers.Lambda(lambda t: t + 1, name="plus_one")(inp)))
    model.save(tmp_path / "lam.keras")
    assert main(["import", str(tmp_path / "lam.keras"), "-o", str(tmp_path / "lam.nsd")]) == 1
    err = capsys.readouterr().err
    assert err.startswith("error: ") and "Lambda" in err and "--trust" in err and "Traceback" not in err
    assert not (tmp_path / "lam.nsd").exists()
    # trusted, the file opens, and the importer then explains why a Lambda cannot be in a design
    assert main(["import", str(tmp_path / "lam.keras"), "-o", str(tmp_path / "lam.nsd"), "--trust"]) == 1
    assert "plus_one is a Lambda layer" in capsys.readouterr().err


@pytest.mark.parametrize("content,words", [
    (b"", "empty"),
    (b"\x89PNG\r\n\x1a\n" + bytes(30), "PNG image"),
])
def test_import_bad_files(tmp_path, capsys, content, words):
    (tmp_path / "model.keras").write_bytes(content)
    assert main(["import", str(tmp_path / "model.keras"), "-o", str(tmp_path / "x.nsd")]) == 1
    err = capsys.readouterr().err
    assert words in err and "Traceback" not in err


def test_import_missing_file_and_bad_output_name(tmp_path, capsys):
    assert main(["import", str(tmp_path / "missing.keras")]) == 1
    assert "does not exist" in capsys.readouterr().err
    _model().save(tmp_path / "m.keras")
    assert main(["import", str(tmp_path / "m.keras"), "-o", str(tmp_path / "m.json")]) == 1
    assert ".nsd" in capsys.readouterr().err


def test_code_errors(tmp_path, capsys):
    assert main(["code", str(tmp_path / "none.nsd")]) == 1
    assert "does not exist" in capsys.readouterr().err
    (tmp_path / "bad.nsd").write_text("{", encoding="utf-8")
    assert main(["code", str(tmp_path / "bad.nsd")]) == 1
    assert "not valid JSON" in capsys.readouterr().err
