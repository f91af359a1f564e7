"""The pure graph model: edits validate, events fire, and nothing changes when an edit is refused."""

import pytest

from neuralstudio.core.graph import Graph, GraphError, default_name


def chain(*classes):
    g = Graph()
    ids = [g.add_node(c).id for c in classes]
    for a, b in zip(ids, ids[1:]):
        g.connect(a, b)
    return g, ids


def test_keras_style_default_names():
    assert default_name("Conv2D") == "conv2d"
    assert default_name("BatchNormalization") == "batch_normalization"
    assert default_name("MaxPooling2D") == "max_pooling2d"
    assert default_name("LSTM") == "lstm"
    g = Graph()
    assert [g.add_node("Dense").name for _ in range(3)] == ["dense", "dense_1", "dense_2"]


def test_cycles_self_loops_and_arity_are_refused_without_change():
    g, (i, a, b) = chain("InputLayer", "Dense", "Dense")
    add = g.add_node("Add").id
    g.connect(b, add)
    before = g.to_dict()
    with pytest.raises(GraphError, match="cycle"):
        c = g.add_node("Concatenate").id
        g.connect(add, c)
        g.connect(c, add)
    g.remove_node(c)
    assert g.to_dict() == before
    with pytest.raises(GraphError, match="itself"):
        g.connect(a, a)
    with pytest.raises(GraphError, match="takes no inputs"):
        g.connect(a, i)
    with pytest.raises(GraphError, match="at most 1 input"):
        g.connect(i, b, 1)
    with pytest.raises(GraphError, match="already connected"):
        g.connect(i, b, 0)
    assert g.to_dict() == before


def test_merge_layers_take_any_number_of_inputs():
    g, (i, a) = chain("InputLayer", "Dense")
    c = g.add_node("Dense").id
    g.connect(i, c)
    add = g.add_node("Add").id
    g.connect(a, add)
    g.connect(c, add)
    g.connect(i, add)
    assert g.predecessors(add) == [a, c, i]
    assert g.outputs() == [add]


def test_names_are_unique_and_valid():
    g, (i, a, b) = chain("InputLayer", "Dense", "Dense")
    with pytest.raises(GraphError, match="already called"):
        g.rename(b, "dense")
    with pytest.raises(GraphError, match="not a valid layer name"):
        g.rename(b, "my layer!")
    g.rename(b, "classifier")
    assert g.node(b).config["name"] == "classifier"


def test_remove_and_restore_round_trip_exactly():
    g, (i, a, b) = chain("InputLayer", "Dense", "Dense")
    g.move_node(a, (10, 20))
    g.set_outputs([b])
    before = g.to_dict()
    saved = g.remove_node(b)
    assert b not in g.nodes and g.outputs() == [a]
    g.restore_node(*saved)
    assert g.to_dict() == before
    # a layer in the middle comes back in its place, with its edges in the same order
    saved = g.remove_node(a)
    g.restore_node(*saved)
    assert g.to_dict() == before


def test_edge_order_does_not_depend_on_edit_history():
    g, (i, a, b) = chain("InputLayer", "Dense", "Dense")
    before = g.to_dict()
    e = g.in_edges(a)[0]
    g.disconnect(e)
    g.connect(e.src, e.dst, e.slot)
    assert g.to_dict() == before


def test_events_mirror_every_edit():
    g = Graph()
    seen = []
    g.subscribe(lambda ev: seen.append(ev.kind))
    a = g.add_node("InputLayer").id
    b = g.add_node("Dense").id
    e = g.connect(a, b)
    g.set_param(b, "units", 3)
    g.move_node(b, (1, 2))
    g.disconnect(e)
    g.remove_node(b)
    assert seen == ["node_added", "node_added", "edge_added", "node_changed", "node_moved",
                    "edge_removed", "node_removed"]


def test_shared_layer_and_serialisation_round_trip():
    g, (i, a) = chain("InputLayer", "Dense")
    j = g.add_node("InputLayer").id
    s = g.add_node("Dense", shares=a).id
    g.connect(j, s)
    with pytest.raises(GraphError, match="reused by"):
        g.remove_node(a)
    g2 = Graph.from_dict(g.to_dict())
    assert g2.to_dict() == g.to_dict()
    assert g2.node(s).shares == a
