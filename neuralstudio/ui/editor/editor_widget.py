"""The Design workspace: the canvas and its docks, the open document, and every edit made to it.

The editor owns the :class:`Document` (design, undo stack, path) and is the only
place that turns a gesture into an undo command (orange-canvas-core's
``SchemeEditWidget`` is the model).  Items, the palette, the inspector and the
problems list only *request* edits; :meth:`EditorWidget.push` runs the command
once, reports a refusal as a message, and pushes it only when it succeeded, so a
refused edit leaves no history.  The scene follows the graph's events.

Analysis (shapes, parameter counts, problems, the generated code) runs on a copy
of the design on the background runner, debounced; a result is shown only if no
edit happened since it started (docs/ARCHITECTURE.md, "Edit -> analysis -> scene").
"""

from __future__ import annotations

import copy
import json
from typing import Any

from PySide6.QtCore import QMimeData, QPointF, Qt, QTimer, Signal
from PySide6.QtGui import QAction, QGuiApplication, QKeySequence
from PySide6.QtWidgets import QDockWidget, QLabel, QMainWindow, QWidget

from neuralstudio.core.design import DEFAULT_NAME, Design, new_design_id
from neuralstudio.core.errors import UserError
from neuralstudio.core.events import GraphEvent
from neuralstudio.core.graph import Edge, Graph
from neuralstudio.core.templates import is_template_title
from neuralstudio.ui import commands as cmd
from neuralstudio.ui.actions import make_action
from neuralstudio.ui.code_view import CodeView
from neuralstudio.ui.document import Document
from neuralstudio.ui.editor.layout import NODE_H, NODE_W, ROW_GAP, auto_layout
from neuralstudio.ui.editor.scene import GraphScene
from neuralstudio.ui.editor.view import GraphView
from neuralstudio.ui.inspector import Inspector
from neuralstudio.ui.palette import Palette
from neuralstudio.ui.problems_panel import ProblemsList
from neuralstudio.ui.tasks import TaskRunner

NODES_MIME = "application/x-neuralstudio-nodes"
ANALYSIS_DELAY_MS = 300


def lay_out_missing(graph: Graph) -> None:
    """Give every node a position (files without a layout, imported models)."""
    if any(graph.position(n) is None for n in graph.nodes):
        for nid, pos in auto_layout(graph).items():
            graph.move_node(nid, pos)


def _analysis_job(graph: Graph, design: Design) -> dict[str, Any]:
    """Runs in the worker thread on a private copy: problems, shapes, counts and the generated code."""
    from neuralstudio.core.class_names import data_classes
    from neuralstudio.ml.builder import analyze

    # The class count of the design's data set, when known without loading it: a mismatch is a warning that
    # names the data set (a design is valid or not on its own).
    known = data_classes(design.data)
    # Shape-only analysis: ~20 ms after an edit of a 200-layer graph instead of building the whole model.
    result = analyze(graph, build=False, loss=design.training.loss,
                     num_classes=known[1] if known else None, data_name=known[0] if known else None)
    code, code_error = "", ""
    try:
        from neuralstudio.ml.codegen import generate_code
    except ImportError:
        code_error = "The code generator is not installed in this build."
    else:
        try:
            code = generate_code(design)
        except Exception as exc:  # noqa: BLE001 - shown under the code view
            code_error = f"No code for this design yet: {exc}"
    return {"analysis": result, "code": code, "code_error": code_error}


def _apply_fix(graph: Graph, problem: Any) -> None:
    """Apply ``problem.fix`` to ``graph`` with core's fixer (run inside a SnapshotCommand)."""
    from neuralstudio.core.fixes import apply_fix as core_apply_fix

    core_apply_fix(graph, problem)


class EditorWidget(QMainWindow):
    """The Design page: canvas, Layers palette, Inspector, Code and Problems docks.

    A QMainWindow used as a widget, so that its docks can be moved and tabbed.

    Args:
        runner: the window's background runner (analysis queues behind the Keras import there).
    """

    message = Signal(str, int)  # text, milliseconds: for the status bar
    analysis_applied = Signal()
    design_loaded = Signal()
    design_renamed = Signal()  # the design's name or identity changed as part of an edit (and its undo)

    def __init__(self, runner: TaskRunner, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setObjectName("designWorkspace")
        self.setWindowFlags(Qt.WindowType.Widget)
        self.runner = runner
        self.doc = Document(self)
        self.last_analysis: Any = None
        self.last_error = ""
        self._catalog: dict[str, Any] = {}
        self._keras_ready = False
        self._closing = False
        self._generation = 0  # edits so far; an analysis shows only if none happened since it started
        self._shown_generation = -1
        self._analysing = False
        self._analysis_pending = False
        self._changes = 0  # every change to the design, moves included (see edit_count)
        self.changed_since_autosave = False  # the window's autosave clears it when it has written a copy

        self.scene = GraphScene(self)
        self.view = GraphView(self.scene)
        self.palette = Palette()
        self.inspector = Inspector()
        self.problems = ProblemsList()
        self.code_view = CodeView()
        self.setCentralWidget(self.view)
        self.setDockOptions(QMainWindow.DockOption.AnimatedDocks | QMainWindow.DockOption.AllowTabbedDocks)
        self.palette_dock = self._dock("Layers", "paletteDock", self.palette, Qt.DockWidgetArea.LeftDockWidgetArea)
        self.inspector_dock = self._dock("Inspector", "inspectorDock", self.inspector,
                                         Qt.DockWidgetArea.RightDockWidgetArea)
        self.code_dock = self._dock("Code", "codeDock", self.code_view, Qt.DockWidgetArea.RightDockWidgetArea)
        self.problems_dock = self._dock("Problems", "problemsDock", self.problems,
                                        Qt.DockWidgetArea.BottomDockWidgetArea)
        self.tabifyDockWidget(self.inspector_dock, self.code_dock)
        self.inspector_dock.raise_()
        self.default_dock_sizes()

        self.params_label = QLabel("Total params: –")
        self.params_label.setObjectName("totalParams")
        self.params_label.setAccessibleName("totalParams")
        self.params_label.setToolTip("Parameters of the whole model (trainable in brackets)")
        self.params_label.setMinimumWidth(self.params_label.fontMetrics().horizontalAdvance(
            "Total params: 000,000,000 (trainable 000,000,000)"))
        self.check_label = QLabel("")

        self._analysis_timer = QTimer(self)
        self._analysis_timer.setSingleShot(True)
        self._analysis_timer.setInterval(ANALYSIS_DELAY_MS)
        self._analysis_timer.timeout.connect(self._on_analysis_timer)
        self._make_actions()
        self._connect()
        self.scene.set_graph(self.doc.graph)

    def _dock(self, title: str, name: str, widget: QWidget, area: Qt.DockWidgetArea) -> QDockWidget:
        d = QDockWidget(title, self)
        d.setObjectName(name)
        d.setWidget(widget)
        d.setFeatures(QDockWidget.DockWidgetFeature.DockWidgetMovable
                      | QDockWidget.DockWidgetFeature.DockWidgetFloatable
                      | QDockWidget.DockWidgetFeature.DockWidgetClosable)
        self.addDockWidget(area, d)
        return d

    def default_dock_sizes(self) -> None:
        self.resizeDocks([self.palette_dock, self.inspector_dock], [270, 360], Qt.Orientation.Horizontal)
        self.resizeDocks([self.problems_dock], [110], Qt.Orientation.Vertical)

    @property
    def graph(self) -> Graph:
        return self.doc.graph

    # ================================================================ actions
    def _action(self, text: str, slot: Any, shortcut: Any = None, tip: str = "", *, name: str = "") -> QAction:
        """An editing action whose keys work on the canvas only (Ctrl+C in a text field stays the field's)."""
        a = make_action(self, text, slot, shortcut, tip, name=name)
        a.setShortcutContext(Qt.ShortcutContext.WidgetWithChildrenShortcut)
        self.view.addAction(a)
        return a

    def _make_actions(self) -> None:
        keys = QKeySequence.StandardKey
        self.act_undo = self.doc.undo_stack.createUndoAction(self, "&Undo")
        self.act_undo.setShortcut(QKeySequence(keys.Undo))
        self.act_undo.setObjectName("actionUndo")
        self.act_undo.setToolTip("Undo the last change (Ctrl+Z)")
        self.act_redo = self.doc.undo_stack.createRedoAction(self, "&Redo")
        self.act_redo.setShortcuts([QKeySequence(keys.Redo), QKeySequence("Ctrl+Y")])
        self.act_redo.setObjectName("actionRedo")
        self.act_redo.setToolTip("Redo the change undone last (Ctrl+Shift+Z)")
        self.act_delete = self._action("&Delete", self.delete_selection, keys.Delete, "Delete the selected layers")
        self.act_copy = self._action("&Copy", self.copy_selection, keys.Copy, "Copy the selected layers")
        self.act_paste = self._action("&Paste", self.paste, keys.Paste, "Paste layers")
        self.act_duplicate = self._action("D&uplicate", self.duplicate, "Ctrl+D", "Duplicate the selected layers")
        self.act_select_all = self._action("Select &All", self.select_all, keys.SelectAll, "Select every layer")

    def _connect(self) -> None:
        self.doc.graph_event.connect(self._on_graph_event)
        self.doc.design_replaced.connect(self._on_design_replaced)
        self.scene.selectionChanged.connect(self._on_selection_changed)
        self.scene.connect_requested.connect(self._on_connect_requested)
        self.scene.move_requested.connect(self._on_move_requested)
        self.scene.drop_requested.connect(self._on_drop_requested)
        self.palette.activated.connect(self.append_layer)
        self.inspector.param_edit_requested.connect(self._on_param_edit_requested)
        self.inspector.rename_requested.connect(self._on_rename_requested)
        self.problems.node_requested.connect(self._on_problem_node)
        self.problems.fix_requested.connect(self.apply_fix)
        self.view.zoom_changed.connect(lambda z: self.message.emit(f"Zoom {z:.0%}", 1500))

    # =============================================================== Keras
    def set_catalog(self, catalog: dict[str, Any]) -> None:
        """Keras is loaded: the palette, node summaries and inspector forms come from its layer catalog."""
        from neuralstudio.ml import catalog as cat

        self._catalog = catalog
        self._keras_ready = True
        self.palette.set_catalog(catalog, cat.categories())
        self.scene.set_catalog(catalog.get, cat.summary_text)
        self.inspector.set_catalog(catalog.get, cat.validate_param)
        self.problems.set_status("Checking the network…")
        self.schedule_analysis(now=True)

    def set_keras_failed(self, message: str) -> None:
        self.problems.set_status(message)

    # ============================================================ documents
    def set_design(self, design: Design, path: Any, *, modified: bool = False) -> None:
        """Show ``design`` (opened, new, recovered); its undo history starts empty."""
        lay_out_missing(design.graph)
        self.doc.set_design(design, path, modified=modified)
        self.design_loaded.emit()

    def _on_design_replaced(self) -> None:
        self._changes += 1
        self.scene.set_graph(self.doc.graph)
        self.inspector.show_node(self.doc.graph, None)
        self.last_analysis = None
        self.params_label.setText("Total params: –")
        self.changed_since_autosave = False
        self.schedule_analysis()
        QTimer.singleShot(0, self.view.show_network)

    # ============================================================= analysis
    def _on_graph_event(self, ev: GraphEvent) -> None:
        self._changes += 1
        self.changed_since_autosave = True
        if ev.kind == "node_changed" and ev.subject == self.inspector.node_id:
            self.inspector.refresh()
        elif ev.kind == "node_removed" and ev.subject == self.inspector.node_id:
            self.inspector.show_node(self.doc.graph, None)
        if ev.kind != "node_moved":
            self.schedule_analysis()

    def schedule_analysis(self, now: bool = False) -> None:
        """Check the design again soon (debounced); training settings changes call this too."""
        self._generation += 1
        self.check_label.setText("Checking…")
        self._analysis_timer.start(0 if now else ANALYSIS_DELAY_MS)

    def _on_analysis_timer(self) -> None:
        if not self._keras_ready or self._closing:
            return  # set_catalog schedules it again
        if self._analysing:
            self._analysis_pending = True
            return
        gen = self._generation
        design = self.doc.design
        graph = design.graph.copy()
        snap = Design(graph=graph, training=copy.deepcopy(design.training), data=dict(design.data),
                      name=design.name, description=design.description)
        self._analysing = True
        self.runner.submit(lambda: _analysis_job(graph, snap),
                           lambda res: self._on_analysis_done(gen, res),
                           lambda exc, tb: self._on_analysis_failed(gen, exc, tb))

    def _after_analysis(self) -> None:
        self._analysing = False
        if self._analysis_pending and not self._closing:
            self._analysis_pending = False
            self._on_analysis_timer()

    def _on_analysis_done(self, gen: int, res: dict[str, Any]) -> None:
        current = gen == self._generation
        if current:
            a = res["analysis"]
            self.last_analysis = a
            self._shown_generation = gen
            self.scene.set_analysis(a.infos, a.problems)
            names = {n.id: n.name for n in self.doc.graph}
            self.problems.set_problems(a.problems, names)
            self.params_label.setText(f"Total params: {a.total_params:,} (trainable {a.trainable_params:,})")
            n_err = len(a.errors)
            self.check_label.setText(f"{n_err} problem{'s' if n_err != 1 else ''}" if n_err else "Builds ✓")
            if res["code_error"]:
                self.code_view.set_error(res["code_error"])
            else:
                self.code_view.set_code(res["code"])
        self._after_analysis()
        if current:
            self.analysis_applied.emit()

    def _on_analysis_failed(self, gen: int, exc: BaseException, tb: str) -> None:
        if gen == self._generation:
            self.problems.set_status(f"The network could not be checked: {exc}")
            self.check_label.setText("Check failed")
        self._after_analysis()

    @property
    def analysis_current(self) -> bool:
        """True when the shown analysis is of the graph as it is now."""
        return self.last_analysis is not None and self._shown_generation == self._generation

    # ================================================================= edits
    @property
    def edit_count(self) -> int:
        """Grows with every change to the design (edits, moves, undo, redo, replacing it).

        Background work that will replace the design (opening a model) compares it before and after, so that
        edits made meanwhile are never replaced silently.
        """
        return self._changes

    def push(self, command: cmd.GraphCommand) -> bool:
        """Apply ``command`` and put it on the undo stack; a refused edit is reported, not raised, and not kept."""
        try:
            command.execute()
        except UserError as exc:
            self._refuse(str(exc))
            return False
        self.doc.undo_stack.push(command)
        return True

    def _refuse(self, why: str) -> None:
        self.last_error = why
        self.message.emit(why, 8000)

    def _on_connect_requested(self, src: str, dst: str, slot: int) -> None:
        g = self.doc.graph
        existing = next((e for e in g.in_edges(dst) if e.slot == slot), None)
        if existing is not None and existing.src == src:
            return
        if existing is not None:  # dropping onto a used input replaces that connection
            self.push(cmd.ReconnectCommand(g, existing, src, dst, slot))
            return
        why = g.can_connect(src, dst, slot)
        if why:
            self._refuse(why)
            return
        self.push(cmd.ConnectCommand(g, src, dst, slot))

    def _on_move_requested(self, moved: dict[str, tuple[float, float]]) -> None:
        self.push(cmd.MoveNodesCommand(self.doc.graph, moved, "Move" if len(moved) > 1 else "Move layer"))

    def _default_config(self, class_name: str) -> dict[str, Any]:
        spec = self._catalog.get(class_name)
        return spec.default_config() if spec is not None else {}

    def _on_drop_requested(self, class_name: str, pos: QPointF, edge: Edge | None) -> None:
        self.add_layer(class_name, (pos.x() - NODE_W / 2, pos.y() - NODE_H / 2), edge)

    def add_layer(self, class_name: str, pos: tuple[float, float], edge: Edge | None = None) -> str | None:
        """Add a layer at ``pos``; with ``edge``, insert it into that connection. One undo step."""
        if class_name not in self._catalog and self._keras_ready:
            self._refuse(f"{class_name} is not a layer NeuralStudio can add.")
            return None
        g = self.doc.graph
        at = (round(pos[0], 1), round(pos[1], 1))
        config = self._default_config(class_name)
        if edge is None:
            command: Any = cmd.AddNodeCommand(g, class_name, config, pos=at, node_id=g.new_id())
        else:
            at, moves = _room_in_connection(g, edge)
            command = cmd.InsertCommand(g, class_name, config, at, edge, moves)
        if not self.push(command):
            return None
        self.scene.select_nodes([command.node_id])
        return command.node_id

    def append_layer(self, class_name: str) -> str | None:
        """Add a layer after the selected one (or after the output), taking over its connections."""
        g = self.doc.graph
        sel = self.scene.selected_node_ids()
        after = sel[0] if len(sel) == 1 else (g.outputs()[0] if g.outputs() else None)
        if after is None:
            c = self.view.mapToScene(self.view.viewport().rect().center())
            return self.add_layer(class_name, (c.x() - NODE_W / 2, c.y() - NODE_H / 2))
        px, py = g.position(after) or (0.0, 0.0)
        pos = ((px, py + NODE_H + ROW_GAP) if not g.out_edges(after)
               else (px + NODE_W + 40, py + (NODE_H + ROW_GAP) / 2))
        command = cmd.AppendCommand(g, class_name, self._default_config(class_name), pos, after)
        if not self.push(command):
            return None
        self.scene.select_nodes([command.node_id])
        return command.node_id

    def _on_param_edit_requested(self, node_id: str, key: str, value: Any) -> None:
        self.push(cmd.SetParamCommand(self.doc.graph, node_id, key, value))

    def _on_rename_requested(self, node_id: str, name: str) -> None:
        self.push(cmd.RenameCommand(self.doc.graph, node_id, name))

    def apply_fix(self, problem: Any) -> bool:
        """One-click fix: one undo step."""
        if problem.fix is None:
            return False
        return self.push(cmd.SnapshotCommand(self.doc.graph, problem.fix.label, lambda g: _apply_fix(g, problem)))

    def delete_selection(self) -> None:
        nodes, edges = self.scene.selected_node_ids(), self.scene.selected_edges()
        if not (nodes or edges):
            return
        command = cmd.DeleteCommand(self.doc.graph, nodes, edges)
        design = self.doc.design
        if nodes and set(nodes) >= set(self.doc.graph.nodes) and is_template_title(design.name):
            # everything of a template's copy goes: what is built next is a design of its own
            command.children.append(cmd.RenameDesignCommand(design, DEFAULT_NAME, new_design_id(),
                                                            self.design_renamed.emit))
        self.push(command)

    def _selection_payload(self) -> dict[str, Any] | None:
        g = self.doc.graph
        chosen = set(self.scene.selected_node_ids())
        if not chosen:
            return None
        ids = [n for n in g.nodes if n in chosen]  # graph order, so pasting keeps it
        return {"nodes": [g.node(n).to_dict() for n in ids],
                "edges": [e.to_dict() for e in g.edges if e.src in chosen and e.dst in chosen],
                "positions": {n: list(g.position(n) or (0.0, 0.0)) for n in ids}}

    def copy_selection(self) -> None:
        payload = self._selection_payload()
        if payload is None:
            return
        mime = QMimeData()
        text = json.dumps(payload)
        mime.setData(NODES_MIME, text.encode("utf-8"))
        mime.setText(text)
        QGuiApplication.clipboard().setMimeData(mime)

    def paste(self) -> list[str]:
        mime = QGuiApplication.clipboard().mimeData()
        if mime is None or not mime.hasFormat(NODES_MIME):
            return []
        try:
            payload = json.loads(bytes(mime.data(NODES_MIME).data()).decode("utf-8"))
        except ValueError:
            return []
        return self._paste_payload(payload, "Paste") if isinstance(payload, dict) else []

    def duplicate(self) -> list[str]:
        payload = self._selection_payload()
        return self._paste_payload(payload, "Duplicate") if payload else []

    def _paste_payload(self, payload: dict[str, Any], label: str) -> list[str]:
        command = cmd.PasteCommand(self.doc.graph, payload, label)
        if not command.children or not self.push(command):
            return []
        self.scene.select_nodes(command.node_ids)
        return command.node_ids

    def select_all(self) -> None:
        self.scene.select_nodes(list(self.doc.graph.nodes))

    def auto_layout(self) -> None:
        positions = auto_layout(self.doc.graph)
        changed = {n: p for n, p in positions.items() if self.doc.graph.position(n) != p}
        if changed:
            self.push(cmd.MoveNodesCommand(self.doc.graph, changed, "Auto-layout"))
        self.view.zoom_to_fit()

    def focus_rename(self) -> None:
        self.inspector_dock.show()
        self.inspector_dock.raise_()
        self.inspector.focus_name()

    # ============================================================ selection
    def _on_selection_changed(self) -> None:
        ids = self.scene.selected_node_ids()
        self.inspector.show_node(self.doc.graph, ids[0] if len(ids) == 1 else None)

    def _on_problem_node(self, node_id: str) -> None:
        item = self.scene.nodes.get(node_id)
        if item is None:
            return
        self.scene.select_nodes([node_id])
        self.view.centerOn(item)

    def shutdown(self) -> None:
        """No more analyses: the window is closing."""
        self._closing = True
        self._analysis_timer.stop()


def _room_in_connection(graph: Graph, edge: Edge) -> tuple[tuple[float, float], dict[str, tuple[float, float]]]:
    """Where a layer inserted into ``edge`` goes (a row below its source), and the moves that make room.

    Dropped where the mouse was, it overlapped its neighbours: networks are laid out top to bottom, so
    the destination and everything below it that depends on it move down one row when the gap is short.
    """
    sx, sy = graph.position(edge.src) or (0.0, 0.0)
    dx, dy = graph.position(edge.dst) or (sx, sy + 2 * (NODE_H + ROW_GAP))
    row = NODE_H + ROW_GAP
    at = (round(dx if abs(dx - sx) < NODE_W else (sx + dx) / 2, 1), round(sy + row, 1))
    if dy - sy >= 2 * row - 1:
        return at, {}
    shift = 2 * row - (dy - sy)
    below: list[str] = []
    todo, seen = [edge.dst], {edge.src}
    while todo:
        nid = todo.pop()
        if nid in seen:
            continue
        seen.add(nid)
        below.append(nid)
        todo.extend(e.dst for e in graph.out_edges(nid))
    moves = {}
    for nid in below:
        x, y = graph.position(nid) or (0.0, 0.0)
        moves[nid] = (x, round(y + shift, 1))
    return at, moves
