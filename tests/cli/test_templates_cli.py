"""``neuralstudio templates`` and ``neuralstudio new`` through the real CLI entry point."""

from __future__ import annotations

import pytest

from neuralstudio.cli import main
from neuralstudio.core.design import load_design
from neuralstudio.core.templates import load_template, template_names

pytestmark = pytest.mark.backend_neutral  # template files


def test_templates_lists_every_template_and_marks_the_default(capsys):
    assert main(["templates"]) == 0
    out = capsys.readouterr().out
    lines = out.splitlines()
    for name in template_names():
        assert any(line.startswith(name + " ") for line in lines), name
    default = [line for line in lines if "(default)" in line]
    assert len(default) == 1 and default[0].startswith("mnist-cnn ")
    assert "neuralstudio new" in out


def test_templates_verbose_prints_descriptions(capsys):
    assert main(["templates", "-v"]) == 0
    out = capsys.readouterr().out
    assert "Nielsen" in out and "quadratic cost" in out


def test_new_writes_the_template(tmp_path, capsys):
    out = tmp_path / "net.nsd"
    assert main(["new", "lenet5", "-o", str(out)]) == 0
    assert "Wrote" in capsys.readouterr().out
    written, fresh = load_design(out), load_template("lenet5")
    assert written.id and written.id != fresh.id  # a copy is a design of its own (its own runs)
    written.id = fresh.id
    assert written.dumps() == fresh.dumps()


def test_new_defaults_to_mnist_cnn_and_adds_the_suffix(tmp_path):
    assert main(["new", "-o", str(tmp_path / "first")]) == 0
    written, fresh = load_design(tmp_path / "first.nsd"), load_template("mnist-cnn")
    written.id = fresh.id
    assert written.dumps() == fresh.dumps()


def test_new_refuses_to_overwrite_without_force(tmp_path, capsys):
    out = tmp_path / "net.nsd"
    out.write_text("my precious work")
    assert main(["new", "mlp", "-o", str(out)]) == 1
    err = capsys.readouterr().err
    assert err.startswith("error: ") and "already exists" in err and "--force" in err
    assert out.read_text() == "my precious work"
    assert main(["new", "mlp", "-o", str(out), "--force"]) == 0
    assert load_design(out).name == load_template("mlp").name


def test_new_unknown_template_and_bad_output(tmp_path, capsys):
    assert main(["new", "alexnet", "-o", str(tmp_path / "a.nsd")]) == 1
    err = capsys.readouterr().err
    assert "no template called 'alexnet'" in err and "resnet-mini" in err
    assert not (tmp_path / "a.nsd").exists()
    assert main(["new", "mlp", "-o", str(tmp_path / "missing" / "a.nsd")]) == 1
    assert "does not exist" in capsys.readouterr().err
    assert main(["new", "mlp", "-o", str(tmp_path)]) == 1
    assert "is a folder" in capsys.readouterr().err
