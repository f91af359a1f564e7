"""Design files: round trip, atomic save, older versions, and untrusted input that never crashes."""

import json
import os

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from neuralstudio.core.design import Design, DesignError, design_from_dict, load_design, loads_design, new_design_id
from neuralstudio.core.graph import Graph


def small_design() -> Design:
    g = Graph()
    i = g.add_node("InputLayer", {"batch_shape": [None, 784]}, pos=(0, 0)).id
    d = g.add_node("Dense", {"units": 10, "activation": "softmax"}, pos=(0, 100)).id
    g.connect(i, d)
    return Design(graph=g, name="tiny", description="A test network.")


def test_round_trip_is_exact_and_sorted(tmp_path):
    d = small_design()
    d.id = new_design_id()
    path = tmp_path / "net.nsd"
    d.save(path)
    text = path.read_text("utf-8")
    assert text == json.dumps(json.loads(text), indent=2, sort_keys=True, ensure_ascii=False) + "\n"
    again = load_design(path)
    assert again.to_dict() == d.to_dict()


def test_a_file_without_an_id_is_the_same_design_at_every_open(tmp_path):
    """Files from before designs had ids: their runs must still be found when they are opened again."""
    a, b = tmp_path / "a.nsd", tmp_path / "b.nsd"
    small_design().save(a)
    small_design().save(b)
    assert "id" not in json.loads(a.read_text("utf-8"))
    assert load_design(a).id == load_design(a).id != load_design(b).id


def test_a_hostile_id_is_refused(tmp_path):
    d = small_design().to_dict()
    d["id"] = "../../etc/passwd"
    with pytest.raises(DesignError, match="'id' must be up to 64 letters"):
        design_from_dict(d, "evil.nsd")


def test_version_0_files_keep_loading():
    d = small_design().to_dict()
    d["version"] = 0
    layout = d.pop("layout")
    for nd in d["graph"]["nodes"]:
        nd["pos"] = layout[nd["id"]]
    loaded = loads_design(json.dumps(d))
    assert loaded.graph.positions == {k: tuple(v) for k, v in layout.items()}


def test_a_failed_save_keeps_the_old_file(tmp_path, monkeypatch):
    path = tmp_path / "net.nsd"
    small_design().save(path)
    before = path.read_bytes()

    def boom(*a, **k):
        raise OSError("disk full")

    monkeypatch.setattr(os, "fsync", boom)
    with pytest.raises(OSError):
        small_design().save(path)
    assert path.read_bytes() == before
    assert [p.name for p in tmp_path.iterdir()] == ["net.nsd"]


@pytest.mark.parametrize(
    "text, message",
    [
        ("{not json", "not valid JSON"),
        ("[1, 2]", "must hold a JSON object"),
        ('{"format": "x"}', "not a NeuralStudio design"),
        ('{"format": "neuralstudio-design", "version": 99, "graph": {}}', "newer NeuralStudio"),
        ('{"format": "neuralstudio-design", "version": 1}', "no 'graph'"),
        ('{"format": "neuralstudio-design", "version": 1, "graph": {"nodes": [{"id": "a"}]}}', "class_name"),
        ('{"format": "neuralstudio-design", "version": 1, "graph": {"nodes": [], "edges": [{"src": "a", "dst": "b"}]}}',
         "does not exist"),
        ('{"format": "neuralstudio-design", "version": 1, "graph": {}, "training": {"epochs": -3}}', "epochs"),
        ('{"format": "neuralstudio-design", "version": 1, "graph": {}, "training": {"learning_rate": NaN}}',
         "unusable value"),
        ("[" * 100000 + "]" * 100000, "nested too deeply"),
        ('{"format": "neuralstudio-design", "version": 1, "graph": {}, "x": ' + "1" * 5000 + "}", "unusable value"),
    ],
)
def test_bad_files_give_one_clear_error(text, message):
    with pytest.raises(DesignError, match=message):
        loads_design(text)


def test_cycle_in_file_is_refused():
    d = small_design().to_dict()
    ids = [n["id"] for n in d["graph"]["nodes"]]
    d["graph"]["nodes"].append({"id": "z", "class_name": "Dense", "config": {}})
    d["graph"]["edges"] += [{"src": ids[1], "dst": "z", "slot": 0}, {"src": "z", "dst": ids[1], "slot": 1}]
    with pytest.raises(DesignError):
        loads_design(json.dumps(d))


def test_missing_and_binary_files(tmp_path):
    with pytest.raises(DesignError, match="does not exist"):
        load_design(tmp_path / "nope.nsd")
    p = tmp_path / "img.nsd"
    p.write_bytes(b"\x89PNG\r\n\x1a\n\xff\xfe")
    with pytest.raises(DesignError, match="not a text file"):
        load_design(p)


json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=8),
    lambda kids: st.lists(kids, max_size=4) | st.dictionaries(st.text(max_size=6), kids, max_size=4),
    max_leaves=30,
)


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(graph=json_values, training=json_values, layout=json_values, data=json_values)
def test_fuzzed_designs_never_crash(graph, training, layout, data):
    doc = {"format": "neuralstudio-design", "version": 1, "graph": graph, "training": training,
           "layout": layout, "data": data}
    try:
        loads_design(json.dumps(doc))
    except DesignError:
        pass


@settings(max_examples=200, deadline=None)
@given(st.binary(max_size=200))
def test_fuzzed_bytes_never_crash(blob):
    try:
        loads_design(blob)
    except DesignError:
        pass


node = st.fixed_dictionaries({
    "id": st.sampled_from(["a", "b", "c", "d"]),
    "class_name": st.sampled_from(["Dense", "InputLayer", "Add", "bad name", ""]),
    "config": st.dictionaries(st.sampled_from(["units", "name"]), st.integers() | st.text(max_size=3), max_size=2),
})
edge = st.fixed_dictionaries({"src": st.sampled_from(["a", "b", "c", "x"]), "dst": st.sampled_from(["a", "b", "d"]),
                              "slot": st.integers(-2, 3)})


@settings(max_examples=300, deadline=None)
@given(st.lists(node, max_size=5), st.lists(edge, max_size=6))
def test_fuzzed_graph_structures_never_crash(nodes, edges):
    doc = {"format": "neuralstudio-design", "version": 1, "graph": {"nodes": nodes, "edges": edges}}
    try:
        d = loads_design(json.dumps(doc))
    except DesignError:
        return
    d.graph.topological_order()  # whatever loads is a DAG
