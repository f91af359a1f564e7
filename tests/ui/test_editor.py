"""The Design workspace driven through its real widgets (palette drops, port drags, inspector, fixes)."""

from __future__ import annotations

import copy

import pytest
from PySide6.QtCore import QMimeData, QPoint, QPointF, Qt
from PySide6.QtGui import QDragEnterEvent, QDragMoveEvent, QDropEvent
from PySide6.QtWidgets import QApplication, QPushButton, QSpinBox
from window_helpers import open_file  # noqa: E402

from neuralstudio.core.design import Design, load_design
from neuralstudio.core.graph import Graph
from neuralstudio.ui.editor.layout import auto_layout
from neuralstudio.ui.editor.view import LAYER_MIME


def canon(graph: Graph) -> dict:
    """graph.to_dict() exactly, order included: undo must give back the very same graph."""
    return copy.deepcopy(graph.to_dict())


def drop_layer(window, class_name: str, scene_pos: QPointF) -> None:
    """Deliver the palette's own drag payload to the canvas as drag-enter, drag-move and drop events."""
    item = window.palette.item_for(class_name)
    assert item is not None, f"{class_name} is not in the palette"
    mime: QMimeData = window.palette.tree.mimeData([item])
    assert mime.hasFormat(LAYER_MIME)
    vp = window.view.viewport()
    pt = window.view.mapFromScene(scene_pos)
    action = Qt.DropAction.CopyAction
    for ev in (QDragEnterEvent(pt, action, mime, Qt.MouseButton.LeftButton, Qt.KeyboardModifier.NoModifier),
               QDragMoveEvent(pt, action, mime, Qt.MouseButton.LeftButton, Qt.KeyboardModifier.NoModifier)):
        QApplication.sendEvent(vp, ev)
        assert ev.isAccepted()
    drop = QDropEvent(QPointF(pt), action, mime, Qt.MouseButton.LeftButton, Qt.KeyboardModifier.NoModifier)
    QApplication.sendEvent(vp, drop)
    assert drop.isAccepted()


def node_by_class(graph: Graph, class_name: str):
    return next(n for n in graph if n.class_name == class_name)


def check_undo_redo(window, before: dict, after: dict) -> None:
    g = window.doc.graph
    window.doc.undo_stack.undo()
    assert canon(g) == before
    window.doc.undo_stack.redo()
    assert canon(g) == after


def test_window_shows_default_template_and_named_widgets(ready_window):
    w = ready_window
    for name in ("layerPalette", "graphView", "inspector", "problemsList", "codeView"):
        widget = w.findChild(object, name)
        assert widget is not None, name
        assert widget.accessibleName() == name
    g = w.doc.graph
    assert len(g) >= 5 and "InputLayer" in {n.class_name for n in g}
    assert set(w.scene.nodes) == set(g.nodes)
    assert len(w.scene.edges) == len(g.edges)
    assert w.editor.last_analysis.total_params > 0
    assert f"{w.editor.last_analysis.total_params:,}" in w.params_label.text()
    conv = node_by_class(g, "Conv2D")
    item = w.scene.nodes[conv.id]
    assert item.summary.startswith("Conv2D 32 3x3")
    assert item.shape_text == "(None, 26, 26, 32)" and item.params == 320
    assert "keras" in w.editor.code_view.code().lower()
    assert not w.doc.modified
    assert [w.tabs.tabText(i) for i in range(3)] == ["Design", "Train", "Predict"]


def test_drop_from_palette_adds_layer_at_drop_point(ready_window, qtbot):
    w = ready_window
    g = w.doc.graph
    before = canon(g)
    target = QPointF(900.0, 120.0)
    drop_layer(w, "Dense", target)
    new = [n for n in g if n.id not in {nd["id"] for nd in before["nodes"]}]
    assert len(new) == 1 and new[0].class_name == "Dense"
    x, y = g.position(new[0].id)
    item = w.scene.nodes[new[0].id]
    assert item.sceneBoundingRect().contains(target)  # dropped where the mouse was
    assert new[0].config.get("units") == 32  # the catalog's starting config
    assert w.doc.modified
    after = canon(g)
    check_undo_redo(w, before, after)
    w.doc.undo_stack.undo()
    assert not w.doc.modified  # back at the saved state


def test_drop_on_edge_inserts_into_the_connection(ready_window):
    w = ready_window
    g = w.doc.graph
    flatten = node_by_class(g, "Flatten")
    edge = g.in_edges(flatten.id)[0]
    src_item, dst_item = w.scene.nodes[edge.src], w.scene.nodes[edge.dst]
    mid = (src_item.out_port_pos(0) + dst_item.in_port_pos(0)) / 2
    before = canon(g)
    drop_layer(w, "BatchNormalization", mid)
    bn = node_by_class(g, "BatchNormalization")
    assert g.predecessors(bn.id) == [edge.src]
    assert g.predecessors(flatten.id) == [bn.id]
    assert w.doc.undo_stack.count() == 1  # one step
    check_undo_redo(w, before, canon(g))


def test_connect_two_ports_with_the_mouse(ready_window, qtbot):
    w = ready_window
    g = w.doc.graph
    dense = next(n for n in g if n.class_name == "Dense" and n.id in g.outputs())
    edge = g.in_edges(dense.id)[0]
    w.scene.clearSelection()
    w.scene.edges[edge].setSelected(True)
    w.editor.delete_selection()
    assert not g.in_edges(dense.id)
    before = canon(g)
    w.view.centerOn(w.scene.nodes[dense.id])
    qtbot.wait(10)
    vp = w.view.viewport()
    a = w.view.mapFromScene(w.scene.nodes[edge.src].out_port_pos(0))
    b = w.view.mapFromScene(w.scene.nodes[dense.id].in_port_pos(0))
    qtbot.mousePress(vp, Qt.MouseButton.LeftButton, pos=a)
    for t in (0.3, 0.6, 1.0):
        qtbot.mouseMove(vp, QPoint(int(a.x() + (b.x() - a.x()) * t), int(a.y() + (b.y() - a.y()) * t)))
    qtbot.mouseRelease(vp, Qt.MouseButton.LeftButton, pos=b)
    assert g.predecessors(dense.id) == [edge.src]
    check_undo_redo(w, before, canon(g))


def test_drag_node_is_one_undo_step(ready_window, qtbot):
    w = ready_window
    g = w.doc.graph
    flatten = node_by_class(g, "Flatten")
    before = canon(g), g.position(flatten.id)
    item = w.scene.nodes[flatten.id]
    w.view.centerOn(item)
    vp = w.view.viewport()
    start = w.view.mapFromScene(item.sceneBoundingRect().center())
    qtbot.mousePress(vp, Qt.MouseButton.LeftButton, pos=start)
    for dx in (10, 30, 60):
        qtbot.mouseMove(vp, start + QPoint(dx, 5))
    qtbot.mouseRelease(vp, Qt.MouseButton.LeftButton, pos=start + QPoint(60, 5))
    new_pos = g.position(flatten.id)
    assert new_pos != before[1]
    assert w.doc.undo_stack.count() == 1
    w.doc.undo_stack.undo()
    assert g.position(flatten.id) == before[1]
    assert item.pos().x() == before[1][0]


def test_inspector_edits_and_refuses_invalid_values(ready_window, qtbot):
    w = ready_window
    g = w.doc.graph
    conv = node_by_class(g, "Conv2D")
    w.scene.select_nodes([conv.id])
    assert w.inspector.node_id == conv.id
    spin = w.inspector.findChild(QSpinBox, "param_filters")
    assert spin is not None and spin.value() == 32
    before = canon(g)
    spin.setFocus()
    spin.selectAll()
    qtbot.keyClicks(spin, "16")
    qtbot.keyClick(spin, Qt.Key.Key_Return)
    assert g.node(conv.id).config["filters"] == 16
    after = canon(g)
    check_undo_redo(w, before, after)
    w.doc.undo_stack.undo()
    assert spin.value() == 32  # the editor follows the undo

    qtbot.waitUntil(lambda: w.editor.analysis_current, timeout=30_000)
    drop = node_by_class(g, "Dropout")
    w.scene.select_nodes([drop.id])
    rate = w.inspector.editors["rate"]
    rate.spin.setValue(1.0)  # the spin box allows 1.0; validate_param must refuse it
    assert g.node(drop.id).config["rate"] == 0.5
    assert "below 1" in w.inspector.error_text("rate")


def test_regularizer_editor_sets_l2_with_factor(ready_window, qtbot):
    w = ready_window
    g = w.doc.graph
    dense = node_by_class(g, "Dense")
    w.scene.select_nodes([dense.id])
    ed = w.inspector.editors["kernel_regularizer"]
    ed.factor.setText("0.001")
    ed.kind.setCurrentIndex(ed.kind.findData("l2"))
    ed.kind.activated.emit(ed.kind.currentIndex())
    assert g.node(dense.id).config["kernel_regularizer"] == {"class_name": "L2", "config": {"l2": 0.001}}
    qtbot.waitUntil(lambda: w.editor.analysis_current, timeout=30_000)
    assert not w.editor.last_analysis.errors  # Keras accepts what the editor wrote


def test_one_click_fix_from_problems_list(ready_window, qtbot):
    w = ready_window
    g = w.doc.graph
    flatten = node_by_class(g, "Flatten")
    w.scene.select_nodes([flatten.id])
    w.editor.delete_selection()  # conv/pool output feeds... nothing; reconnect pool -> dropout directly
    drop = node_by_class(g, "Dropout")
    pool = [n for n in g if n.class_name == "MaxPooling2D"][-1]
    w.editor._on_connect_requested(pool.id, drop.id, 0)
    qtbot.waitUntil(lambda: w.editor.analysis_current, timeout=30_000)
    assert w.editor.last_analysis.errors
    buttons = [b for b in w.editor.problems.findChildren(QPushButton, "fixButton") if "Flatten" in b.text()]
    assert buttons, [p.message for p in w.editor.last_analysis.problems]
    before = canon(g)
    steps = w.doc.undo_stack.count()
    qtbot.mouseClick(buttons[0], Qt.MouseButton.LeftButton)
    assert w.doc.undo_stack.count() == steps + 1
    qtbot.waitUntil(lambda: w.editor.analysis_current, timeout=30_000)
    assert not w.editor.last_analysis.errors
    check_undo_redo(w, before, canon(g))


def test_save_reopen_and_modified_state(ready_window, qtbot, tmp_path, monkeypatch):
    w = ready_window
    g = w.doc.graph
    w.editor.add_layer("Dense", (600.0, 600.0))
    assert w.doc.modified and w.isWindowModified()
    path = tmp_path / "net.nsd"
    assert w.save_to(path)
    assert not w.doc.modified
    saved = g.to_dict(), g.positions
    w.doc.undo_stack.undo()
    assert w.doc.modified  # the stack moved away from the saved state
    asked = []
    monkeypatch.setattr(w, "_ask_unsaved", lambda: asked.append(1) or "cancel")
    assert not open_file(qtbot, w, path)  # cancel keeps the current design
    assert asked
    monkeypatch.setattr(w, "_ask_unsaved", lambda: "discard")
    assert open_file(qtbot, w, path)
    assert w.doc.graph.to_dict() == saved[0]
    assert w.doc.graph.positions == saved[1]
    assert not w.doc.modified and w.doc.path == path
    assert str(path.resolve()) in w.recent_files()
    assert load_design(path).graph.to_dict() == saved[0]


def test_copy_paste_duplicate_delete(ready_window):
    w = ready_window
    g = w.doc.graph
    conv = node_by_class(g, "Conv2D")
    pool = g.successors(conv.id)[0]
    w.scene.select_nodes([conv.id, pool])
    w.editor.copy_selection()
    before = canon(g)
    pasted = w.editor.paste()
    assert len(pasted) == 2 and len(g) == len(before["nodes"]) + 2
    a, b = pasted
    assert g.successors(a) == [b]  # the internal connection came along
    assert {g.node(a).name, g.node(b).name}.isdisjoint({nd["name"] for nd in before["nodes"]})
    check_undo_redo(w, before, canon(g))
    w.scene.select_nodes([a, b])
    dup = w.editor.duplicate()
    assert len(dup) == 2
    w.scene.select_nodes(dup)
    mid = canon(g)
    w.editor.delete_selection()
    assert len(g) == len(mid["nodes"]) - 2
    check_undo_redo(w, mid, canon(g))


def test_auto_layout_one_step_and_layers_top_to_bottom(ready_window):
    w = ready_window
    g = w.doc.graph
    from neuralstudio.ui import commands as cmd

    w.editor.push(cmd.MoveNodesCommand(g, {nid: (float(i * 37 % 300), 0.0) for i, nid in enumerate(g.nodes)}))
    before = canon(g), g.positions
    w.editor.auto_layout()
    order = g.topological_order()
    ys = [g.position(n)[1] for n in order]
    assert ys == sorted(ys) and len(set(ys)) == len(ys)
    w.doc.undo_stack.undo()
    assert g.positions == before[1]


def test_layout_avoids_crossings_on_a_diamond():
    g = Graph()
    i = g.add_node("InputLayer", {"batch_shape": [None, 4]}).id
    a = g.add_node("Dense", {"units": 2}).id
    b = g.add_node("Dense", {"units": 2}).id
    a2 = g.add_node("Dense", {"units": 2}).id
    b2 = g.add_node("Dense", {"units": 2}).id
    m = g.add_node("Concatenate").id
    g.connect(i, a)
    g.connect(i, b)
    g.connect(b, b2)  # inserted so that insertion order alone would cross
    g.connect(a, a2)
    g.connect(b2, m)
    g.connect(a2, m)
    pos = auto_layout(g)
    assert pos[i][1] < pos[a][1] < pos[a2][1] < pos[m][1]
    # children keep the left/right order of their parents: no crossing
    assert (pos[a][0] < pos[b][0]) == (pos[a2][0] < pos[b2][0])


def test_open_keras_model_as_editable_graph(ready_window, qtbot, tmp_path):
    import keras

    inp = keras.Input((8,), name="x")
    h = keras.layers.Dense(4, activation="relu", name="hidden")(inp)
    s = keras.layers.Dense(4, name="skip")(inp)
    out = keras.layers.Add(name="merge")([h, s])
    path = tmp_path / "tiny.keras"
    keras.Model(inp, out).save(path)
    w = ready_window
    assert open_file(qtbot, w, path, confirm=False)
    g = w.doc.graph
    assert {n.name for n in g} == {"x", "hidden", "skip", "merge"}
    merge = g.node_by_name("merge")
    assert len(w.scene.nodes[merge.id].in_ports) == 3  # two used + one free
    assert all(g.position(n) is not None for n in g.nodes)


def test_autosave_is_offered_after_a_crash(qtbot, monkeypatch):
    from neuralstudio.ui.main_window import MainWindow, autosave_dir

    w1 = MainWindow(check_autosave=False)
    qtbot.addWidget(w1)
    w1.editor.add_layer("Dense", (500.0, 500.0)) if w1.loader.wait() else None
    assert w1.doc.modified
    assert w1.autosave()
    assert (autosave_dir() / "autosave.nsd").exists()
    saved = w1.doc.graph.to_dict()
    w1.shutdown(keep_autosave=True)  # as if the process died here

    monkeypatch.setattr(MainWindow, "_ask_restore_autosave", lambda self, when: True)
    w2 = MainWindow(check_autosave=True)
    qtbot.addWidget(w2)
    assert w2.doc.graph.to_dict() == saved
    assert w2.doc.modified
    w2.shutdown()
    assert not (autosave_dir() / "autosave.nsd").exists()


def test_settings_remember_recent_files_and_geometry(main_window, qtbot, tmp_path):
    from neuralstudio.ui.main_window import MainWindow

    path = tmp_path / "a.nsd"
    Design().save(path)
    main_window.resize(1000, 720)  # above the window minimum (the Train page sets it)
    assert open_file(qtbot, main_window, path, confirm=False)
    main_window.shutdown()
    w2 = MainWindow(check_autosave=False, load_default=False)
    try:
        assert w2.recent_files()[0] == str(path.resolve())
        assert (w2.width(), w2.height()) == (1000, 720)
    finally:
        w2.shutdown()


@pytest.mark.parametrize("name", ["lenet5", "resnet-mini"])
def test_templates_open_from_menu(ready_window, name):
    w = ready_window
    w._fill_templates_menu()
    titles = [a.text() for a in w.templates_menu.actions()]
    assert len(titles) >= 3
    assert w.new_from_template(name)
    assert set(w.scene.nodes) == set(w.doc.graph.nodes)
    assert not w.doc.modified


def test_palette_search_filters(ready_window):
    p = ready_window.palette
    p.search.setText("conv2d")
    shown = [p.item_for(n) for n in ("Conv2D", "Dense")]
    assert not shown[0].isHidden() and shown[1].isHidden()
    assert "Conv2D" in shown[0].toolTip(0)
