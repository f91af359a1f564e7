"""The graph against hostile or huge designs: load time near-linear, only GraphError escapes, names bounded."""

from __future__ import annotations

import random
import time

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from neuralstudio.core.graph import MAX_CONFIG_DEPTH, MAX_NAME_LENGTH, Edge, Graph, GraphError


def chain_dict(n: int, *, reverse: bool = False) -> dict:
    """A design graph of an Input and ``n - 1`` Dense layers in a row, edges optionally listed last-to-first."""
    nodes = [{"id": "n0", "class_name": "InputLayer", "name": "inp", "config": {"batch_shape": [None, 4]}}]
    nodes += [{"id": f"n{i}", "class_name": "Dense", "name": f"d{i}", "config": {"units": 4}} for i in range(1, n)]
    edges = [{"src": f"n{i - 1}", "dst": f"n{i}", "slot": 0} for i in range(1, n)]
    return {"nodes": nodes, "edges": edges[::-1] if reverse else edges}


def incremental_error(data: dict) -> str | None:
    """The error of loading ``data`` edge by edge through ``connect`` (the reference behaviour), or None."""
    g = Graph()
    for nd in data["nodes"]:
        g.add_node(nd["class_name"], nd.get("config"), name=nd["name"], node_id=nd["id"])
    try:
        for ed in data["edges"]:
            g.connect(ed["src"], ed["dst"], ed["slot"])
    except GraphError as exc:
        return str(exc)
    return None


@pytest.mark.parametrize("reverse", [False, True])
def test_long_chains_load_in_near_linear_time_in_either_edge_order(reverse):
    times = {}
    for n in (1000, 4000):
        data = chain_dict(n, reverse=reverse)
        t0 = time.perf_counter()
        g = Graph.from_dict(data)
        times[n] = time.perf_counter() - t0
        assert len(g) == n and len(g.edges) == n - 1
    # a reachability search per edge took 11.6 s for 1,000 reversed edges and grew with the cube
    assert times[4000] < 5, times
    assert Graph.from_dict(chain_dict(300, reverse=True)).to_dict() == Graph.from_dict(chain_dict(300)).to_dict()


def test_bulk_loading_refuses_the_same_edge_as_connecting_one_by_one():
    rng = random.Random(7)
    seen = set()
    for trial in range(200):
        n = rng.randint(3, 12)
        classes = ["InputLayer"] + [rng.choice(["Dense", "Add", "Concatenate", "Add"]) for _ in range(n - 1)]
        nodes = [{"id": f"n{i}", "class_name": c, "name": f"l{i}", "config": {}} for i, c in enumerate(classes)]
        next_slot = [0] * n
        edges = []
        for _ in range(rng.randint(1, 2 * n)):
            src, dst = rng.randrange(n), rng.randrange(1, n)
            slot = next_slot[dst] if rng.random() < 0.9 else rng.choice([0, 1, 5])
            next_slot[dst] += 1
            edges.append({"src": f"n{src}", "dst": f"n{dst}", "slot": slot})
        data = {"nodes": nodes, "edges": edges}
        want = incremental_error(data)
        if want is None:
            assert Graph.from_dict(data).to_dict() == Graph.from_dict(Graph.from_dict(data).to_dict()).to_dict()
            seen.add("ok")
            continue
        seen.add("cycle" if "cycle" in want else "other")
        with pytest.raises(GraphError) as got:
            Graph.from_dict(data)
        assert str(got.value) == want, (trial, data)
    assert seen == {"ok", "cycle", "other"}  # the trials exercised every path


def test_indexes_stay_in_step_through_every_edit():
    rng = random.Random(3)
    g = Graph()
    ids = [g.add_node("InputLayer").id] + [g.add_node(rng.choice(["Dense", "Add"])).id for _ in range(15)]

    def brute_check():
        edges = g.edges
        for nid in g.nodes:
            assert g.in_edges(nid) == sorted((e for e in edges if e.dst == nid), key=lambda e: e.slot)
            assert sorted(g.successors(nid)) == sorted(e.dst for e in edges if e.src == nid)
            assert g.free_slot(nid) == min(set(range(len(edges) + 1)) - {e.slot for e in edges if e.dst == nid})
            assert g.node_by_name(g.nodes[nid].name).id == nid
        used = {e.src for e in edges}
        assert g.outputs() == [n for n in g.nodes if n not in used and g.nodes[n].class_name != "InputLayer"]

    for step in range(300):
        live = list(g.nodes)
        action = rng.random()
        if action < 0.5 and len(live) > 1:
            with_edge = rng.sample(live, 2)
            if g.can_connect(*with_edge) is None:
                g.connect(*with_edge)
        elif action < 0.65 and g.edges:
            g.disconnect(rng.choice(g.edges))
        elif action < 0.8 and len(live) > 2:
            before = g.to_dict()
            saved = g.remove_node(rng.choice(live[1:]))
            brute_check()
            if rng.random() < 0.6:  # undo it, as the editor does
                g.restore_node(*saved)
                assert g.to_dict() == before
        elif action < 0.9:
            nid = rng.choice(live)
            g.rename(nid, f"renamed_{step}")
        brute_check()
    g.clear()
    assert g.edges == [] and g.node_by_name("renamed_1") is None and g.outputs() == []
    assert ids  # the graph was really built


def test_remove_and_restore_keep_the_serialisation_exact_in_a_big_graph():
    g = Graph.from_dict(chain_dict(500, reverse=True))
    before = g.to_dict()
    saved = g.remove_node("n250")
    g.restore_node(*saved)
    assert g.to_dict() == before


def test_a_megabyte_name_is_refused_with_a_short_message():
    huge = "a" * 2**20
    with pytest.raises(GraphError) as err:
        Graph.from_dict({"nodes": [{"id": "n1", "class_name": "Dense", "name": huge}], "edges": []})
    assert len(str(err.value)) < 300 and f"at most {MAX_NAME_LENGTH}" in str(err.value)
    g = Graph()
    node = g.add_node("Dense")
    with pytest.raises(GraphError) as err:
        g.rename(node.id, huge)
    assert len(str(err.value)) < 300
    g.rename(node.id, "b" * MAX_NAME_LENGTH)  # the limit itself is fine
    for bad in ({"id": "x" * 2**20, "class_name": "Dense"}, {"id": "n1", "class_name": "D" * 2**20},
                {"id": "n1", "class_name": "Dense", "config": {"name": "c" * 2**20}}):
        with pytest.raises(GraphError) as err:
            Graph.from_dict({"nodes": [bad], "edges": []})
        assert len(str(err.value)) < 300


@pytest.mark.parametrize("name", [["a", "b"], {"x": 1}, 3, True])
def test_a_config_name_that_is_not_text_is_a_graph_error(name):
    with pytest.raises(GraphError, match="The name of layer 'n1' must be text"):
        Graph.from_dict({"nodes": [{"id": "n1", "class_name": "Dense", "config": {"name": name}}], "edges": []})
    with pytest.raises(GraphError, match="must be text"):
        Graph().add_node("Dense", {"name": name})


def test_a_config_nested_absurdly_deep_is_a_graph_error_not_a_recursion_error():
    deep: object = 1
    for _ in range(50_000):
        deep = [deep]
    with pytest.raises(GraphError, match="nested more than"):
        Graph.from_dict({"nodes": [{"id": "n1", "class_name": "Dense", "config": {"units": deep}}], "edges": []})
    ok: object = 1
    for _ in range(MAX_CONFIG_DEPTH - 1):
        ok = {"k": ok}
    assert Graph.from_dict({"nodes": [{"id": "n1", "class_name": "Dense", "config": ok}], "edges": []})


def test_huge_slots_and_odd_ids_are_graph_errors():
    nodes = [{"id": "a", "class_name": "InputLayer"}, {"id": "b", "class_name": "Add"}]
    for edge in ({"src": "a", "dst": "b", "slot": 10**400}, {"src": "a", "dst": "b", "slot": -1},
                 {"src": "a", "dst": "b", "slot": 0, "src_port": True}, {"src": ["a"], "dst": "b"}):
        with pytest.raises(GraphError):
            Graph.from_dict({"nodes": nodes, "edges": [edge]})
    with pytest.raises(GraphError):
        Graph().node(["not", "hashable"])  # type: ignore[arg-type]
    assert Graph().node_by_name({"x": 1}) is None  # type: ignore[arg-type]
    assert Edge("a", "b") in Graph.from_dict({"nodes": nodes, "edges": [{"src": "a", "dst": "b"}]}).edges


# ---------------------------------------------------------------- property test
_json = st.recursive(
    st.none() | st.booleans() | st.integers(-(2**70), 2**70) | st.floats(allow_nan=True) | st.text(max_size=8),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=6), inner, max_size=4),
    max_leaves=12,
)
_ids = st.sampled_from(["n1", "n2", "n3", "", "n1 "])
_node = st.one_of(
    _json,
    st.fixed_dictionaries({}, optional={
        "id": _ids | _json, "class_name": st.sampled_from(["InputLayer", "Dense", "Add", "Dense2", "1x"]) | _json,
        "name": st.sampled_from(["a", "b", "if", "a b", ""]) | _json,
        "config": st.fixed_dictionaries({}, optional={"name": _json, "units": _json}) | _json,
        "shares": _ids | _json,
    }),
)
_edge = st.one_of(
    _json,
    st.fixed_dictionaries({}, optional={"src": _ids | _json, "dst": _ids | _json,
                                        "slot": st.integers(-2, 3) | _json, "src_port": st.integers(-1, 2) | _json}),
)
_graph = st.one_of(
    _json,
    st.fixed_dictionaries({}, optional={"nodes": st.lists(_node, max_size=5) | _json,
                                        "edges": st.lists(_edge, max_size=6) | _json,
                                        "outputs": st.lists(_ids, max_size=3) | _json}),
)


@settings(max_examples=200, derandomize=True, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(_graph)
def test_from_dict_raises_only_graph_error_on_any_json(data):
    try:
        g = Graph.from_dict(data)
    except GraphError as exc:
        assert len(str(exc)) < 500
        return
    assert Graph.from_dict(g.to_dict()).to_dict() == g.to_dict()  # what loads, saves and loads again
