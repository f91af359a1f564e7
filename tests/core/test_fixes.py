"""One-click fixes change the graph only through its methods and undo exactly."""

import pytest

from neuralstudio.core.fixes import FixError, apply_fix
from neuralstudio.core.graph import Graph
from neuralstudio.core.problems import Fix, Problem


def _chain():
    g = Graph()
    i = g.add_node("InputLayer", {"batch_shape": [None, 28, 28, 1]}, pos=(0, 0))
    c = g.add_node("Conv2D", {"filters": 8, "kernel_size": [3, 3]}, pos=(0, 100))
    d = g.add_node("Dense", {"units": 10}, pos=(0, 300))
    g.connect(i.id, c.id)
    g.connect(c.id, d.id)
    return g, i, c, d


def _snapshot(g):
    return g.to_dict(), g.positions


def test_insert_before_rewires_positions_between_and_undoes():
    g, _i, c, d = _chain()
    before = _snapshot(g)
    events = []
    g.subscribe(lambda e: events.append(e.kind))
    problem = Problem("dense (Dense) receives a 4-D tensor", d.id,
                      fix=Fix("insert_before", "Insert Flatten before it", "Flatten", {}, 0))
    applied = apply_fix(g, problem)
    new = g.node(applied.new_node_id)
    assert new.class_name == "Flatten" and new.name == "flatten"
    assert g.predecessors(new.id) == [c.id]
    assert g.predecessors(d.id) == [new.id]
    assert g.position(new.id) == (0.0, 200.0)
    assert "Inserted flatten (Flatten) between conv2d and dense." in applied.changes
    assert {"node_added", "edge_added", "edge_removed"} <= set(events)
    applied.undo()
    assert _snapshot(g) == before
    applied_again = apply_fix(g, problem)  # redo works from the Problem again
    assert g.predecessors(d.id) == [applied_again.new_node_id]


def test_insert_before_an_unconnected_slot_and_at_a_merge_slot():
    g = Graph()
    a = g.add_node("InputLayer", {"batch_shape": [None, 4]})
    b = g.add_node("InputLayer", {"batch_shape": [None, 2, 2]})
    cat = g.add_node("Concatenate", {})
    g.connect(a.id, cat.id, 0)
    g.connect(b.id, cat.id, 1)
    applied = apply_fix(g, Fix("insert_before", "Insert Flatten", "Flatten", {}, 1), cat.id)
    assert [e.src for e in g.in_edges(cat.id)] == [a.id, applied.new_node_id]
    assert g.predecessors(applied.new_node_id) == [b.id]
    lone = g.add_node("Dense", {"units": 3})
    applied2 = apply_fix(g, Fix("insert_before", "Insert Flatten", "Flatten", {}, 0), lone.id)
    assert g.predecessors(lone.id) == [applied2.new_node_id]


def test_set_params_and_undo_restores_missing_keys():
    g, _i, _c, d = _chain()
    before = _snapshot(g)
    applied = apply_fix(g, Problem("x", d.id, fix=Fix("set_params", "Set", config={"units": 10,
                                                                                 "activation": "softmax"})))
    assert g.node(d.id).config["activation"] == "softmax"
    assert any("activation" in c for c in applied.changes)
    applied.undo()
    assert _snapshot(g) == before
    assert "activation" not in g.node(d.id).config


def test_add_input_connects_the_first_layer_without_input():
    g = Graph()
    d = g.add_node("Dense", {"units": 10}, pos=(50, 200))
    o = g.add_node("Dense", {"units": 2})
    g.connect(d.id, o.id)
    problem = Problem("no input", o.id, fix=Fix("add_input", "Add an Input", "InputLayer",
                                                {"batch_shape": [None, 784]}))
    applied = apply_fix(g, problem)
    new = g.node(applied.new_node_id)
    assert new.class_name == "InputLayer" and new.config["batch_shape"] == [None, 784]
    assert g.successors(new.id) == [d.id]  # o already has its one input
    assert g.position(new.id) == (50.0, 110.0)
    applied.undo()
    assert len(g) == 2 and not g.inputs()


def test_fix_errors_change_nothing():
    g, _i, _c, d = _chain()
    before = _snapshot(g)
    with pytest.raises(FixError, match="no automatic fix"):
        apply_fix(g, Problem("x", d.id))
    with pytest.raises(FixError, match="gone"):
        apply_fix(g, Problem("x", "nope", fix=Fix("set_params", "s", config={"units": 1})))
    with pytest.raises(FixError, match="Unknown kind"):
        apply_fix(g, Problem("x", d.id, fix=Fix("teleport", "t")))
    # an insert whose new layer cannot be connected is rolled back
    with pytest.raises(Exception, match="valid layer name"):
        apply_fix(g, Problem("x", d.id, fix=Fix("insert_before", "i", "Flatten", {"name": "bad name"}, 0)))
    assert _snapshot(g) == before
