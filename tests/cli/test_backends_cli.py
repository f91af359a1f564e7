"""``neuralstudio backends``: the listing (no Keras import) and a design measured on every installed backend."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap

import pytest

from neuralstudio.cli import main
from neuralstudio.ml import backend_speed, backends

#: a stand-in for the measuring child: answers at once with a speed per backend (the real child is tested in
#: tests/ml/test_backend_speed.py); it reads the design from stdin as the real one does
FAKE_CHILD = textwrap.dedent("""
    import json, os, sys
    design = json.loads(sys.stdin.read())
    assert design["format"] and design["graph"]["nodes"]
    b = os.environ["KERAS_BACKEND"]
    print("chatter of the library", file=sys.stderr)
    if b == "torch":
        print("RuntimeError: the last line", file=sys.stderr)
        sys.exit(1)
    print(json.dumps({"samples_per_second": {"tensorflow": 1000.0, "jax": 4700.0}[b], "version": "9.9",
                      "device": "CPU"}))
""")


#: what the command concludes from the stand-in's figures, on the backend the tests run on (CI runs them on
#: TensorFlow and again on JAX)
SUGGESTION = {
    "tensorflow": ("JAX trains this design 4.7x faster than TensorFlow here (4,700 against 1,000 samples/s, "
                   "measured just now): use it with --backend jax (or the app's Settings > Keras Backend)."),
    "jax": ("JAX, the backend in use, is the fastest for this design here (4,700 samples/s; TensorFlow 1,000, "
            "PyTorch failed: RuntimeError: the last line)."),
}


@pytest.fixture
def fake_child(monkeypatch):
    if backends.current() not in SUGGESTION:
        pytest.skip("the stand-in measures TensorFlow and JAX only")
    monkeypatch.setattr(backend_speed, "child_command", lambda: [sys.executable, "-c", FAKE_CHILD])
    monkeypatch.setattr(backends, "installed", lambda name: True)


def test_the_listing_names_every_backend_the_one_in_use_and_how_to_install(capsys, monkeypatch):
    in_use = backends.label(backends.current())  # TensorFlow, or the backend CI runs this pass on
    monkeypatch.setattr(backends, "installed", lambda name: name != "torch")
    assert main(["backends"]) == 0
    out = capsys.readouterr().out
    lines = out.splitlines()
    assert lines[0].startswith(f"Keras backend in use: {in_use} (")
    assert any(ln.startswith(f"  * {in_use} ") and "installed" in ln for ln in lines)
    torch_line = next(ln for ln in lines if "PyTorch" in ln)
    assert f"not installed: {backends.INSTALL['torch']}" in torch_line
    jax_line = next(ln for ln in lines if ln[4:].startswith("JAX"))
    assert "no LiteRT/ONNX export" in jax_line
    assert "Settings > Keras Backend" in out


def test_the_listing_as_json_says_where_the_choice_was_made(capsys):
    backends.save_choice("jax")
    assert main(["backends", "--json"]) == 0
    info = json.loads(capsys.readouterr().out)
    assert info["saved"] == "jax"
    assert [r["name"] for r in info["backends"]] == list(backends.BACKENDS)
    in_use = [r for r in info["backends"] if r["in_use"]]
    assert len(in_use) == 1 and in_use[0]["name"] == info["backend"]
    torch = info["backends"][2]
    assert "one step per execution" in torch["notes"] and torch["install"] == backends.INSTALL["torch"]


def test_the_listing_imports_no_keras_and_follows_the_backend_flag(tmp_path):
    code = ("import sys; from neuralstudio.cli import main; code = main(['backends', '--backend', 'jax']); "
            "assert 'keras' not in sys.modules, 'the listing imported Keras'; sys.exit(code)")
    env = dict(os.environ, NEURALSTUDIO_HOME=str(tmp_path))
    env.pop("KERAS_BACKEND", None)
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env, timeout=120)
    assert proc.returncode == 0, proc.stderr
    if backends.installed("jax"):
        assert proc.stdout.startswith("Keras backend in use: JAX (chosen with --backend).")


def test_a_template_is_measured_on_each_backend_with_a_table_and_the_sentence(capsys, fake_child):
    assert main(["backends", "nielsen-784-30-10"]) == 0
    out = capsys.readouterr().out
    table = out[out.index("Training speed of"):].splitlines()
    assert "batch" in table[0]
    tf_row = next(ln for ln in table if ln.startswith("TensorFlow 9.9"))
    jax_row = next(ln for ln in table if ln.startswith("JAX 9.9"))
    assert "1,000" in tf_row and "4,700" in jax_row
    assert "(in use)" in {"tensorflow": tf_row, "jax": jax_row}[backends.current()]
    assert "RuntimeError: the last line" in next(ln for ln in table if ln.startswith("PyTorch"))
    assert "chatter" not in out
    assert table[-1] == SUGGESTION[backends.current()]


def test_a_design_file_is_measured_and_reported_as_json(tmp_path, capsys, fake_child):
    path = tmp_path / "net.nsd"
    assert main(["new", "mlp", "-o", str(path)]) == 0
    capsys.readouterr()
    assert main(["backends", str(path), "--json"]) == 0
    info = json.loads(capsys.readouterr().out)
    speeds = {s["backend"]: s for s in info["speeds"]}
    assert speeds["jax"]["samples_per_second"] == 4700.0 and speeds["torch"]["samples_per_second"] is None
    assert speeds["torch"]["error"] == "RuntimeError: the last line"
    assert info["suggestion"] == SUGGESTION[backends.current()]


def test_an_unknown_template_or_missing_file_is_one_error_line(tmp_path, capsys):
    assert main(["backends", "no-such-net"]) == 1
    err = capsys.readouterr().err
    assert err.startswith("error: There is no template called 'no-such-net'") and "mnist-cnn" in err
    assert main(["backends", str(tmp_path / "gone.nsd")]) == 1
    assert capsys.readouterr().err.strip() == f"error: {tmp_path / 'gone.nsd'} does not exist."


def test_the_hidden_child_command_measures_for_a_frozen_app(tmp_path):
    """A frozen app runs no ``-m``: its measuring child is ``NeuralStudio backends --measure-child``."""
    env = dict(os.environ, NEURALSTUDIO_HOME=str(tmp_path), KERAS_BACKEND="tensorflow")
    proc = subprocess.run([sys.executable, "-m", "neuralstudio", "backends", "--measure-child"], input='{"x": 1}',
                          capture_output=True, text=True, env=env, timeout=120)
    assert proc.returncode == 1
    assert "is not a NeuralStudio design" in json.loads(proc.stdout.strip().splitlines()[-1])["error"]
