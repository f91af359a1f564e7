"""The canvas: a QGraphicsScene that only mirrors the core Graph through its events.

The scene never edits the graph.  User gestures become request signals
(``connect_requested``, ``move_requested``, ``drop_requested``...) that the
main window turns into undo commands; the commands change the graph, the graph
emits events, and the scene follows.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from PySide6.QtCore import QPointF, Signal
from PySide6.QtWidgets import QGraphicsScene, QGraphicsSceneMouseEvent

from neuralstudio.core.arity import input_arity
from neuralstudio.core.events import GraphEvent
from neuralstudio.core.graph import Edge, Graph
from neuralstudio.ui.editor.edge_item import EdgeItem
from neuralstudio.ui.editor.node_item import NodeItem, category_color


class GraphScene(QGraphicsScene):
    """Mirror of one :class:`Graph`."""

    connect_requested = Signal(str, str, int)  # src, dst, slot
    move_requested = Signal(object)  # {node_id: (x, y)}
    drop_requested = Signal(str, QPointF, object)  # class_name, scene pos, Edge or None
    connect_refused = Signal(str)

    def __init__(self, parent=None) -> None:  # noqa: ANN001
        super().__init__(parent)
        self.graph: Graph | None = None
        self.nodes: dict[str, NodeItem] = {}
        self.edges: dict[Edge, EdgeItem] = {}
        self.spec_of: Callable[[str], Any] = lambda _cn: None
        self.summary_of: Callable[[str, dict], str] | None = None
        self._infos: dict[str, Any] = {}
        self._problems: dict[str, list[Any]] = {}
        self._press_positions: dict[str, QPointF] = {}
        self.setItemIndexMethod(QGraphicsScene.ItemIndexMethod.BspTreeIndex)

    # ---------------------------------------------------------------- mirroring
    def set_graph(self, graph: Graph) -> None:
        if self.graph is not None:
            self.graph.events.disconnect(self._on_graph_event)
        self.graph = graph
        graph.subscribe(self._on_graph_event)
        self._rebuild()

    def set_catalog(self, spec_of: Callable[[str], Any], summary_of: Callable[[str, dict], str] | None) -> None:
        """Once Keras is loaded, nodes can show categories and parameter summaries."""
        self.spec_of, self.summary_of = spec_of, summary_of
        for nid in self.nodes:
            self._refresh_node(nid)

    def _rebuild(self) -> None:
        self.clear()
        self.nodes.clear()
        self.edges.clear()
        assert self.graph is not None
        for nid in self.graph.nodes:
            self._add_node(nid)
        for e in self.graph.edges:
            self._add_edge(e)
        for nid in self.nodes:
            self._refresh_ports(nid)
        self.setSceneRect(self.itemsBoundingRect().adjusted(-400, -300, 400, 300))

    def _on_graph_event(self, ev: GraphEvent) -> None:
        g = self.graph
        assert g is not None
        if ev.kind == "node_added":
            self._add_node(ev.subject)
        elif ev.kind == "node_removed":
            item = self.nodes.pop(ev.subject, None)
            if item is not None:
                self.removeItem(item)
        elif ev.kind == "node_changed":
            self._refresh_node(ev.subject)
        elif ev.kind == "node_moved":
            item = self.nodes.get(ev.subject)
            pos = g.position(ev.subject)
            if item is not None and pos is not None and (item.pos().x(), item.pos().y()) != pos:
                item.setPos(*pos)
            self._grow_rect(item)
        elif ev.kind == "edge_added":
            self._add_edge(ev.subject)
            for nid in (ev.subject.src, ev.subject.dst):  # both ends: the source's output port fills too
                if nid in self.nodes:
                    self._refresh_ports(nid)
        elif ev.kind == "edge_removed":
            item = self.edges.pop(ev.subject, None)
            if item is not None:
                for n in (item.src_item, item.dst_item):
                    if item in n.edges:
                        n.edges.remove(item)
                self.removeItem(item)
            for nid in (ev.subject.src, ev.subject.dst):
                if nid in self.nodes:
                    self._refresh_ports(nid)
        elif ev.kind == "reset":
            self._rebuild()

    def _add_node(self, nid: str) -> None:
        g = self.graph
        assert g is not None
        node = g.node(nid)
        item = NodeItem(nid, node.class_name)
        pos = g.position(nid)
        if pos is None:
            pos = self._free_spot()
        item.setPos(*pos)
        self.nodes[nid] = item
        self.addItem(item)
        self._refresh_node(nid)
        self._grow_rect(item)

    def _free_spot(self) -> tuple[float, float]:
        if not self.nodes:
            return (0.0, 0.0)
        r = self.itemsBoundingRect()
        return (r.left(), r.bottom() + 40)

    def _grow_rect(self, item: NodeItem | None) -> None:
        if item is None:
            return
        r = item.sceneBoundingRect().adjusted(-400, -300, 400, 300)
        if not self.sceneRect().contains(r):
            self.setSceneRect(self.sceneRect().united(r))

    def _add_edge(self, e: Edge) -> None:
        src, dst = self.nodes.get(e.src), self.nodes.get(e.dst)
        if src is None or dst is None:
            return
        if e.src_port >= len(src.out_ports):
            src.set_port_counts(len(src.in_ports), e.src_port + 1)
        item = EdgeItem(e, src, dst)
        src.edges.append(item)
        dst.edges.append(item)
        self.edges[e] = item
        self.addItem(item)

    def _refresh_ports(self, nid: str) -> None:
        item = self.nodes[nid]
        g = self.graph
        assert g is not None
        lo, hi = input_arity(item.class_name)
        slots = [e.slot for e in g.in_edges(nid)]
        if hi == 0:
            n_in = 0
        elif hi == 1:
            n_in = 1
        else:
            n_in = max(lo, (max(slots) + 1) if slots else 0, len(slots) + 1)
            if hi is not None:
                n_in = min(n_in, hi)
        item.set_port_counts(n_in, len(item.out_ports) or 1)
        used = set(slots)
        for p in item.in_ports:
            p.connected = p.index in used
            p.update()
        srcs = {e.src_port for e in g.out_edges(nid)}
        for p in item.out_ports:
            p.connected = p.index in srcs
            p.update()
        for e in item.edges:
            e.update_path()

    def _refresh_node(self, nid: str) -> None:
        item = self.nodes.get(nid)
        g = self.graph
        if item is None or g is None:
            return
        node = g.node(nid)
        spec = self.spec_of(node.class_name)
        summary = node.class_name
        if self.summary_of is not None:
            try:
                summary = self.summary_of(node.class_name, node.config) or node.class_name
            except Exception:  # noqa: BLE001 - a half-edited config must still draw
                summary = node.class_name
        color = category_color("input" if node.class_name == "InputLayer" else getattr(spec, "category", None))
        item.set_display(name=node.name, summary=summary, color=color)
        self._apply_info(nid)

    # ------------------------------------------------------------- analysis
    def set_analysis(self, infos: dict[str, Any], problems: list[Any]) -> None:
        """Show output shapes, parameter counts and problem badges from an analysis."""
        self._infos = infos
        by_node: dict[str, list[Any]] = {}
        for p in problems:
            if p.node_id is not None:
                by_node.setdefault(p.node_id, []).append(p)
        self._problems = by_node
        for nid in self.nodes:
            self._apply_info(nid)

    def _apply_info(self, nid: str) -> None:
        info = self._infos.get(nid)
        probs = self._problems.get(nid, [])
        self.nodes[nid].set_info(
            info.shape_text if info is not None else "",
            info.params if info is not None else None,
            [p.message for p in probs],
            bool(probs) and all(p.severity != "error" for p in probs),
        )

    # --------------------------------------------------------------- requests
    def selected_node_ids(self) -> list[str]:
        return [i.node_id for i in self.selectedItems() if isinstance(i, NodeItem)]

    def selected_edges(self) -> list[Edge]:
        return [i.edge for i in self.selectedItems() if isinstance(i, EdgeItem)]

    def select_nodes(self, ids: list[str]) -> None:
        self.clearSelection()
        for nid in ids:
            if nid in self.nodes:
                self.nodes[nid].setSelected(True)

    def edge_at(self, pos: QPointF) -> Edge | None:
        for item in self.items(pos):
            if isinstance(item, EdgeItem):
                return item.edge
            if isinstance(item, NodeItem):
                return None
        return None

    def mousePressEvent(self, event: QGraphicsSceneMouseEvent) -> None:
        super().mousePressEvent(event)
        self._press_positions = {i.node_id: i.pos() for i in self.selectedItems() if isinstance(i, NodeItem)}

    def mouseReleaseEvent(self, event: QGraphicsSceneMouseEvent) -> None:
        super().mouseReleaseEvent(event)
        moved = {}
        for nid, before in self._press_positions.items():
            item = self.nodes.get(nid)
            if item is not None and item.pos() != before:
                moved[nid] = (round(item.pos().x(), 1), round(item.pos().y(), 1))
        self._press_positions = {}
        if moved:
            self.move_requested.emit(moved)
