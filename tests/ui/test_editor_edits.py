"""The editor owns its edits: a refused compound edit leaves no history, and nothing replaces edits silently."""

from __future__ import annotations

import copy
import time

import keras
import pytest
from window_helpers import open_file

from neuralstudio.core.design import Design
from neuralstudio.core.graph import Graph
from neuralstudio.ui import commands as cmd


def canon(graph: Graph) -> dict:
    return copy.deepcopy(graph.to_dict())


def chain_design() -> Design:
    g = Graph()
    a = g.add_node("InputLayer", {"batch_shape": [None, 8]}, name="a", pos=(0, 0))
    b = g.add_node("Dense", {"units": 4}, name="b", pos=(0, 100))
    c = g.add_node("Dense", {"units": 4}, name="c", pos=(0, 200))
    g.connect(a.id, b.id)
    g.connect(b.id, c.id)
    return Design(graph=g, name="chain")


@pytest.fixture
def editor(ready_window):
    ready_window.editor.set_design(chain_design(), None)
    return ready_window.editor


def _stack_state(editor) -> tuple:
    s = editor.doc.undo_stack
    return s.count(), s.index(), s.canRedo()


def test_a_refused_reconnect_leaves_no_history_and_redo_cannot_disconnect(editor):
    """Dropping c's output onto b's used input would close a cycle (b -> c -> b): refused, nothing kept."""
    g = editor.graph
    a, b, c = (g.node_by_name(n).id for n in "abc")
    before, stack = canon(g), _stack_state(editor)
    editor._on_connect_requested(c, b, 0)
    assert canon(g) == before
    assert _stack_state(editor) == stack
    assert not editor.doc.undo_stack.canRedo()
    assert "cycle" in editor.last_error
    editor.doc.undo_stack.redo()  # nothing to redo: the input stays connected
    assert [e.src for e in g.in_edges(b)] == [a]


def test_a_refused_insert_or_append_leaves_no_history(editor):
    g = editor.graph
    a, b = (g.node_by_name(n).id for n in "ab")
    before, stack = canon(g), _stack_state(editor)
    edge = g.in_edges(b)[0]
    assert not editor.push(cmd.InsertCommand(g, "InputLayer", {"batch_shape": [None, 8]}, (50.0, 50.0), edge))
    assert canon(g) == before and _stack_state(editor) == stack
    assert not editor.push(cmd.AppendCommand(g, "InputLayer", {"batch_shape": [None, 8]}, (50.0, 50.0), a))
    assert canon(g) == before and _stack_state(editor) == stack
    assert "takes no inputs" in editor.last_error


def test_an_accepted_insert_is_one_step_that_undoes_and_redoes_exactly(editor):
    g = editor.graph
    b = g.node_by_name("b").id
    before = canon(g)
    new = editor.add_layer("Dropout", (10.0, 50.0), g.in_edges(b)[0])
    after = canon(g)
    assert new and g.predecessors(b) == [new] and editor.doc.undo_stack.count() == 1
    editor.doc.undo_stack.undo()
    assert canon(g) == before
    editor.doc.undo_stack.redo()
    assert canon(g) == after


@pytest.mark.parametrize("shared_first", [True, False])
def test_deleting_a_shared_layer_with_the_layer_that_reuses_it(editor, shared_first):
    g = editor.graph
    a, b, c = (g.node_by_name(n).id for n in "abc")
    reuse = g.add_node("Dense", {"units": 4}, name="b_again", shares=b, pos=(100, 100))
    g.connect(a, reuse.id)
    editor.doc.undo_stack.clear()
    before = canon(g)
    editor.scene.select_nodes([b, reuse.id] if shared_first else [reuse.id, b])
    order = editor.scene.selected_node_ids()
    assert set(order) == {b, reuse.id}
    editor.push(cmd.DeleteCommand(g, [b, reuse.id] if shared_first else [reuse.id, b], []))
    assert b not in g.nodes and reuse.id not in g.nodes
    assert editor.doc.undo_stack.count() == 1
    editor.doc.undo_stack.undo()
    assert canon(g) == before
    assert c in g.nodes


def test_edits_made_while_a_model_opens_are_not_replaced_silently(ready_window, qtbot, tmp_path, monkeypatch):
    w = ready_window
    path = tmp_path / "slow.keras"
    keras.Sequential([keras.Input((3,)), keras.layers.Dense(2, name="only")]).save(path)
    asked: list[str] = []
    monkeypatch.setattr(w, "_ask_replace_edits", lambda name: asked.append(name) or False)
    w.runner.submit(lambda: time.sleep(1.0))  # a slow task ahead of the import, as a slow disk would be
    request = w.open_path(path, confirm=False)
    assert not request.done  # the window is live meanwhile
    added = w.editor.add_layer("Dense", (300.0, 300.0))
    assert added
    qtbot.waitUntil(lambda: request.done, timeout=60_000)
    assert asked == ["slow.keras"] and request.ok is False
    assert added in w.doc.graph.nodes  # the edit is kept
    monkeypatch.setattr(w, "_ask_replace_edits", lambda name: True)
    w.runner.submit(lambda: time.sleep(0.5))
    request = w.open_path(path, confirm=False)
    w.editor.add_layer("Dense", (400.0, 300.0))
    qtbot.waitUntil(lambda: request.done, timeout=60_000)
    names = sorted(n.name for n in w.doc.graph)  # Keras numbers the input's name per process: input_layer_N
    assert request.ok and len(names) == 2 and names[1] == "only" and names[0].startswith("input_layer")


def test_an_open_without_edits_meanwhile_asks_nothing(ready_window, qtbot, tmp_path, monkeypatch):
    w = ready_window
    path = tmp_path / "m.keras"
    keras.Sequential([keras.Input((3,)), keras.layers.Dense(2, name="only")]).save(path)
    monkeypatch.setattr(w, "_ask_replace_edits", lambda name: pytest.fail("asked although nothing changed"))
    assert open_file(qtbot, w, path, confirm=False)


def test_analysis_state_is_not_read_from_a_label(ready_window, qtbot):
    """The status label is only a view: changing its text says nothing about whether the analysis is current."""
    w = ready_window
    assert w.editor.analysis_current
    w.check_label.setText("Checking…")
    assert w.editor.analysis_current
    w.editor.add_layer("Dense", (500.0, 500.0))
    assert not w.editor.analysis_current
    qtbot.waitUntil(lambda: w.editor.analysis_current, timeout=30_000)


def test_ports_show_their_connections_after_delete_and_undo(editor):
    """Undoing a delete reconnects the layers: both ends of each connection are drawn connected again."""
    g = editor.graph
    ids = list(g.nodes)

    def connected_outs() -> dict:
        return {n: [p.connected for p in editor.scene.nodes[n].out_ports] for n in ids}

    before = connected_outs()
    assert before[ids[0]] == [True]
    editor.scene.select_nodes(ids)
    editor.delete_selection()
    editor.doc.undo_stack.undo()
    assert connected_outs() == before


def test_a_layer_inserted_into_a_connection_gets_room_of_its_own(ready_window, qtbot):
    """Dropped onto a connection, the new layer overlapped its neighbours: the layers below move down a row."""
    from neuralstudio.ui.editor.layout import NODE_H, NODE_W

    w = ready_window
    g = w.doc.graph
    edge = next(iter(g.edges))
    before = {nid: g.position(nid) for nid in g.nodes}
    src = g.position(edge.src)
    new_id = w.editor.add_layer("Dense", (src[0] + 5, src[1] + 20), edge)
    assert new_id is not None

    def overlaps(a, b) -> bool:
        (ax, ay), (bx, by) = g.position(a), g.position(b)
        return abs(ax - bx) < NODE_W and abs(ay - by) < NODE_H

    assert not [n for n in g.nodes if n != new_id and overlaps(n, new_id)]
    assert g.position(edge.dst)[1] > before[edge.dst][1]  # moved down to make room
    w.doc.undo_stack.undo()  # one step: the layer goes and the others come back
    assert new_id not in g.nodes
    assert {nid: g.position(nid) for nid in g.nodes} == before
