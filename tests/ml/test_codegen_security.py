"""A design file never runs code: not through `neuralstudio code`, not through a Python export's verification.

The three holes found by the hostile-input review (an Input's batch size as text, config keys written as
keyword names, an object's ``module`` string written into a call) each have a regression test; a property
test then throws hostile text at every field the code generator reads and parses what comes out.
"""

from __future__ import annotations

import ast
import copy
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

keras = pytest.importorskip("keras")

from neuralstudio.cli import main  # noqa: E402
from neuralstudio.core.design import Design, DesignError, design_from_dict  # noqa: E402
from neuralstudio.core.errors import UserError  # noqa: E402
from neuralstudio.core.graph import Graph  # noqa: E402
from neuralstudio.ml.code_check import UnsafeCodeError, check_generated_code  # noqa: E402
from neuralstudio.ml.codegen import CodegenError, generate_code  # noqa: E402

pytestmark = pytest.mark.backend_neutral  # what is refused is decided before Keras runs


MARKER = "PWNED"
PAYLOADS = [
    f"__import__('os').system('touch {MARKER}')",
    f"keras.initializers.__dict__.get('x') or __import__('os').system('touch {MARKER}') or keras.initializers",
    f"x=__import__('os').system('touch {MARKER}'),y",
    f"'); __import__('os').system('touch {MARKER}'); ('",
    f'"); __import__("os").system("touch {MARKER}"); ("',
    f'"""\nimport os\nos.system("touch {MARKER}")\n"""',
    f"\\\"\nimport os; os.system('touch {MARKER}')#",
    "1)\nopen('PWNED', 'w')\n(",
    "keras.src.utils.file_utils",
    "__class__",
]


def base_design() -> dict:
    """A small valid design whose every code-generated field the tests can overwrite."""
    return {
        "format": "neuralstudio-design", "version": 1, "name": "net", "description": "a net",
        "graph": {
            "nodes": [
                {"id": "n1", "class_name": "InputLayer", "name": "image",
                 "config": {"batch_shape": [None, 28, 28], "name": "image"}},
                {"id": "n2", "class_name": "Flatten", "name": "flatten", "config": {"name": "flatten"}},
                {"id": "n3", "class_name": "Dense", "name": "hidden", "config": {
                    "name": "hidden", "units": 16, "activation": "relu",
                    "kernel_initializer": {"module": "keras.initializers", "class_name": "HeNormal",
                                           "config": {"seed": 3}, "registered_name": None},
                    "kernel_regularizer": {"module": "keras.regularizers", "class_name": "L2",
                                           "config": {"l2": 0.001}, "registered_name": None}}},
                {"id": "n4", "class_name": "Dense", "name": "out",
                 "config": {"name": "out", "units": 10, "activation": "softmax"}},
            ],
            "edges": [{"src": "n1", "dst": "n2", "slot": 0}, {"src": "n2", "dst": "n3", "slot": 0},
                      {"src": "n3", "dst": "n4", "slot": 0}],
        },
        "training": {"epochs": 1},
        "data": {"source": "mnist-sample"},
        "layout": {},
    }


def _hidden(d: dict) -> dict:
    return d["graph"]["nodes"][2]["config"]


# ----------------------------------------------------------------- the three holes of the review
@pytest.mark.parametrize("where", ["batch_size", "config_key", "module"])
def test_the_reviewed_payloads_are_refused_when_the_design_is_opened(where, tmp_path):
    d = base_design()
    payload = f"__import__('os').system('touch {tmp_path / MARKER}')"
    if where == "batch_size":
        d["graph"]["nodes"][0]["config"]["batch_shape"] = [payload, 28, 28]
    elif where == "config_key":
        _hidden(d)[f"x={payload},y"] = 1
    else:
        _hidden(d)["kernel_initializer"]["module"] = f"keras.initializers.__dict__.get('x') or {payload} or keras"
    path = tmp_path / "evil.nsd"
    path.write_text(json.dumps(d), encoding="utf-8")
    with pytest.raises(DesignError) as info:
        design_from_dict(json.loads(path.read_text()), "evil.nsd")
    assert "evil.nsd" in str(info.value)
    # the CLI: one plain line, nothing written, nothing run
    out = tmp_path / "net.py"
    assert main(["code", str(path), "-o", str(out)]) == 1
    assert main(["check", str(path)]) == 1
    assert not out.exists() and not (tmp_path / MARKER).exists()


def _design_bypassing_the_loader(mutate) -> Design:
    """A Design built in memory (as the editor or the importer would), skipping the file checks."""
    d = base_design()
    mutate(d)
    g = Graph()
    for nd in d["graph"]["nodes"]:
        g.add_node(nd["class_name"], nd["config"], name=nd["name"], node_id=nd["id"])
    for e in d["graph"]["edges"]:
        g.connect(e["src"], e["dst"], e["slot"])
    return Design(graph=g, name=d["name"], description=d["description"])


@pytest.mark.parametrize("mutate", [
    lambda d: d["graph"]["nodes"][0]["config"].__setitem__("batch_shape", [PAYLOADS[0], 28, 28]),
    lambda d: _hidden(d).__setitem__(PAYLOADS[2], 1),
    lambda d: _hidden(d)["kernel_initializer"].__setitem__("module", PAYLOADS[1]),
    lambda d: _hidden(d)["kernel_initializer"].__setitem__("class_name", "__class__"),
    lambda d: _hidden(d)["kernel_initializer"]["config"].__setitem__(PAYLOADS[2], 1),
], ids=["batch_size", "config_key", "module", "dunder_class", "object_key"])
def test_the_generator_itself_refuses_what_it_cannot_quote(mutate):
    """Defence in depth: even a design that never went through the file loader yields no payload."""
    design = _design_bypassing_the_loader(mutate)
    try:
        code = generate_code(design)
    except CodegenError:
        return
    assert_only_generator_vocabulary(code)


def test_the_module_string_never_reaches_the_code():
    """A module hint that is valid but odd does not change what is written: Keras's own path is."""
    d = base_design()
    _hidden(d)["kernel_initializer"]["module"] = "keras.src.initializers.random_initializers"
    code = generate_code(design_from_dict(d))
    assert "keras.initializers.HeNormal(seed=3)" in code
    assert "keras.src" not in code


# ----------------------------------------------------------------------- the property test
_CALLS = {"float", "print", "SystemExit", "load_data", "load_trained_model"}
_ROOTS = {"keras", "layers", "model", "os", "x_train", "x_test", "y_train", "y_test"}
_FORBIDDEN_IDS = {"__import__", "system", "eval", "exec", "open", "getattr", "__dict__", "__class__",
                  "subprocess", "globals", "locals", "__builtins__", MARKER}


def assert_only_generator_vocabulary(code: str) -> None:
    """An independent reading of the generated script: every call, name and attribute is one it writes."""
    tree = ast.parse(code)
    assigned = {n.id for n in ast.walk(tree) if isinstance(n, ast.Name) and isinstance(n.ctx, ast.Store)}
    assigned |= {n.name for n in ast.walk(tree) if isinstance(n, ast.FunctionDef)}
    for node in ast.walk(tree):
        assert not isinstance(node, (ast.Lambda, ast.ListComp, ast.DictComp, ast.SetComp, ast.GeneratorExp,
                                     ast.ClassDef, ast.With, ast.Try, ast.While, ast.For, ast.NamedExpr)), node
        ids = []
        if isinstance(node, ast.Name):
            ids.append(node.id)
            assert node.id in assigned | _CALLS | _ROOTS | {"__name__", "__file__"}, node.id
        elif isinstance(node, ast.Attribute):
            ids.append(node.attr)
            assert not node.attr.startswith("_"), node.attr
        elif isinstance(node, (ast.Import, ast.ImportFrom)):
            assert [a.name for a in node.names] in (["keras"], ["layers"], ["os"]), ast.dump(node)
        elif isinstance(node, ast.keyword):
            ids.append(node.arg)
        elif isinstance(node, ast.Call):
            f = node.func
            while isinstance(f, ast.Attribute):
                f = f.value
            if isinstance(f, ast.Name):
                assert f.id in _CALLS | _ROOTS | assigned, f.id
        assert not set(ids) & _FORBIDDEN_IDS, ids


hostile = st.one_of(st.sampled_from(PAYLOADS), st.text(min_size=1, max_size=40))
FIELDS = ["name", "description", "batch0", "batch1", "layer_name", "config_key", "config_value", "activation",
          "module", "class_name", "object_key", "object_value", "nested_dict_key", "list_value", "data_source"]


def inject(d: dict, field: str, text: str) -> None:
    hidden = _hidden(d)
    init = hidden["kernel_initializer"]
    if field in ("name", "description"):
        d[field] = text
    elif field == "batch0":
        d["graph"]["nodes"][0]["config"]["batch_shape"][0] = text
    elif field == "batch1":
        d["graph"]["nodes"][0]["config"]["batch_shape"][1] = text
    elif field == "layer_name":
        d["graph"]["nodes"][2]["name"] = text
        hidden["name"] = text
    elif field == "config_key":
        hidden[text] = 1
    elif field == "config_value":
        hidden["use_bias"] = text
    elif field == "activation":
        hidden["activation"] = text
    elif field == "module":
        init["module"] = text
    elif field == "class_name":
        init["class_name"] = text
    elif field == "object_key":
        init["config"][text] = 1
    elif field == "object_value":
        init["config"]["seed"] = text
    elif field == "nested_dict_key":
        hidden["bias_constraint"] = {text: text}
    elif field == "list_value":
        d["graph"]["nodes"][1]["config"]["data_format"] = [text, {text: [text]}]
    elif field == "data_source":
        d["data"]["source"] = text


@settings(max_examples=150, deadline=None, derandomize=True,
          suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])
@given(fields=st.lists(st.sampled_from(FIELDS), min_size=1, max_size=3, unique=True), data=st.data())
def test_hostile_text_in_any_field_never_becomes_code(fields, data):
    d = base_design()
    for field in fields:
        inject(d, field, data.draw(hostile, label=field))
    try:
        design = design_from_dict(copy.deepcopy(d), "fuzz.nsd")
        code = generate_code(design)
    except UserError:
        return  # refused with a message: the outcome for anything that cannot be quoted
    assert_only_generator_vocabulary(code)
    check_generated_code(code)


@pytest.mark.parametrize("payload", PAYLOADS)
def test_hostile_text_in_values_is_quoted_not_refused(payload):
    """Text a design may hold (a name, a description, a string parameter) is written as a string literal."""
    d = base_design()
    d["description"] = payload
    d["name"] = payload
    _hidden(d)["activation"] = payload  # Keras will refuse it when building; the code still only quotes it
    code = generate_code(design_from_dict(d))
    assert_only_generator_vocabulary(code)
    assert repr(payload)[1:-1] in code or payload.replace('"', "'") in code or "activation=" in code


def test_checker_refuses_code_the_generator_never_writes():
    for bad in ["import subprocess", "x = (lambda: 1)()", "keras.utils.__dict__", "evil()",
                "from os import system", "keras.src.saving", "keras.nonexistent.Thing()",
                "[x for x in ()]", "layers.Dense(**{'units': 1})"]:
        with pytest.raises(UnsafeCodeError):
            check_generated_code(bad)
    check_generated_code("import keras\nfrom keras import layers\nm = layers.Dense(3, name=\"__import__\")\n")


# -------------------------------------------------------------- the Python export's verification
def test_python_export_refuses_a_hostile_design_from_a_run_folder(tmp_path):
    """`export --format python` next to a run.json whose design carries a payload: the design is refused and
    the code is rebuilt from the model itself; nothing from the run folder runs."""
    model = keras.Sequential([keras.Input((4,)), keras.layers.Dense(3, activation="softmax", name="out")])
    model_path = tmp_path / "model.keras"
    model.save(model_path)
    d = base_design()
    _hidden(d)[f"x=open('{tmp_path / MARKER}','w'),y"] = 1
    (tmp_path / "run.json").write_text(json.dumps({"design": d}), encoding="utf-8")
    (tmp_path / "keras.py").write_text(f"open({str(tmp_path / MARKER)!r}, 'w')\n", encoding="utf-8")
    out = tmp_path / "exported"
    assert main(["export", str(model_path), "--format", "python", "-o", str(out)]) == 0
    assert not (tmp_path / MARKER).exists()
    check_generated_code((out / "model.py").read_text(encoding="utf-8"))


def test_python_verification_does_not_run_a_tampered_script(tmp_path):
    """Verification checks the script it is about to run; a script that is not the generator's is refused."""
    from neuralstudio.ml import verify

    folder = tmp_path / "export"
    folder.mkdir()
    (folder / "model.py").write_text(f"open({str(tmp_path / MARKER)!r}, 'w')\n", encoding="utf-8")
    model = keras.Sequential([keras.Input((4,)), keras.layers.Dense(3, name="out")])
    with pytest.raises(UnsafeCodeError):
        verify._run_python(folder, [keras.ops.convert_to_numpy(keras.ops.zeros((2, 4)))])
    assert not (tmp_path / MARKER).exists()
    assert model is not None


def test_generated_script_runs_as_a_script_without_the_payload(tmp_path):
    """A quoted payload stays a string when the generated file is imported in a fresh interpreter."""
    d = base_design()
    d["description"] = PAYLOADS[5]
    d["name"] = PAYLOADS[3]
    script = tmp_path / "net.py"
    script.write_text(generate_code(design_from_dict(d)), encoding="utf-8")
    env = dict(os.environ, KERAS_BACKEND="tensorflow", TF_CPP_MIN_LOG_LEVEL="3")
    proc = subprocess.run([sys.executable, "-c", "import importlib.util as u, sys; s = u.spec_from_file_location("
                           "'net', sys.argv[1]); m = u.module_from_spec(s); s.loader.exec_module(m); "
                           "print(m.model.count_params())", str(script)],
                          cwd=tmp_path, env=env, capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert int(proc.stdout.strip().splitlines()[-1]) == 784 * 16 + 16 + 16 * 10 + 10
    assert not Path(tmp_path / MARKER).exists()
