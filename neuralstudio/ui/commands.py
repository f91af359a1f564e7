"""One QUndoCommand per graph change; commands call only core Graph methods.

The scene redraws itself from the graph's events, so a command never touches an
item.  Composite gestures (delete a selection, paste, insert into a connection)
are pushed as undo-stack macros so that each gesture is one undo step.
"""

from __future__ import annotations

import copy
from typing import Any

from PySide6.QtGui import QUndoCommand

from neuralstudio.core.graph import Edge, Graph, Node


class GraphCommand(QUndoCommand):
    """Base: the editor runs a command once before pushing it (so a refused edit never reaches
    the stack); ``QUndoStack.push`` then skips that first redo."""

    executed = False

    def redo(self) -> None:
        if self.executed:
            self.executed = False
            return
        self._redo()

    def execute(self) -> None:
        """Apply now; raises :class:`~neuralstudio.core.errors.UserError` and changes nothing if refused."""
        self._redo()
        self.executed = True

    def _redo(self) -> None:
        raise NotImplementedError


class AddNodeCommand(GraphCommand):
    """Add one layer; undo removes it again (the id is kept so redo is exact)."""

    def __init__(self, graph: Graph, class_name: str, config: dict[str, Any] | None = None, *,
                 pos: tuple[float, float] | None = None, name: str | None = None,
                 node_id: str | None = None) -> None:
        super().__init__(f"Add {class_name}")
        self.graph = graph
        self.class_name = class_name
        self.config = copy.deepcopy(config) if config else {}
        self.pos = pos
        self.name = name
        self.node_id = node_id

    def _redo(self) -> None:
        node = self.graph.add_node(self.class_name, self.config, name=self.name, node_id=self.node_id,
                                   pos=self.pos)
        self.node_id, self.name = node.id, node.name

    def undo(self) -> None:
        self.graph.remove_node(self.node_id)


class RemoveNodeCommand(GraphCommand):
    """Remove one layer with its connections; undo restores both."""

    def __init__(self, graph: Graph, node_id: str) -> None:
        super().__init__(f"Delete {graph.node(node_id).name}")
        self.graph = graph
        self.node_id = node_id
        self._saved: tuple[Node, list[Edge], tuple[float, float] | None, int | None, int] | None = None

    def _redo(self) -> None:
        self._saved = self.graph.remove_node(self.node_id)

    def undo(self) -> None:
        assert self._saved is not None
        self.graph.restore_node(*self._saved)


class ConnectCommand(GraphCommand):
    """Feed ``src`` into input ``slot`` of ``dst``."""

    def __init__(self, graph: Graph, src: str, dst: str, slot: int | None = None, src_port: int = 0) -> None:
        super().__init__(f"Connect {graph.node(src).name} to {graph.node(dst).name}")
        self.graph = graph
        self.src, self.dst, self.slot, self.src_port = src, dst, slot, src_port
        self.edge: Edge | None = None

    def _redo(self) -> None:
        self.edge = self.graph.connect(self.src, self.dst, self.slot, src_port=self.src_port)
        self.slot = self.edge.slot

    def undo(self) -> None:
        assert self.edge is not None
        self.graph.disconnect(self.edge)


class DisconnectCommand(GraphCommand):
    """Remove one connection."""

    def __init__(self, graph: Graph, edge: Edge) -> None:
        super().__init__("Disconnect")
        self.graph = graph
        self.edge = edge

    def _redo(self) -> None:
        self.graph.disconnect(self.edge)

    def undo(self) -> None:
        self.graph.connect(self.edge.src, self.edge.dst, self.edge.slot, src_port=self.edge.src_port)


class RenameCommand(GraphCommand):
    def __init__(self, graph: Graph, node_id: str, name: str) -> None:
        self.old = graph.node(node_id).name
        super().__init__(f"Rename {self.old} to {name}")
        self.graph, self.node_id, self.new = graph, node_id, name

    def _redo(self) -> None:
        self.graph.rename(self.node_id, self.new)

    def undo(self) -> None:
        self.graph.rename(self.node_id, self.old)


class SetParamCommand(GraphCommand):
    """Set one config key; undo puts the whole previous config back (exact, even for absent keys)."""

    def __init__(self, graph: Graph, node_id: str, key: str, value: Any) -> None:
        node = graph.node(node_id)
        super().__init__(f"Set {node.name}.{key}")
        self.graph, self.node_id, self.key = graph, node_id, key
        self.value = copy.deepcopy(value)
        self.old_config = copy.deepcopy(node.config)

    def _redo(self) -> None:
        self.graph.set_param(self.node_id, self.key, self.value)

    def undo(self) -> None:
        self.graph.set_config(self.node_id, self.old_config)


class SetConfigCommand(GraphCommand):
    def __init__(self, graph: Graph, node_id: str, config: dict[str, Any], label: str = "Change layer") -> None:
        super().__init__(label)
        self.graph, self.node_id = graph, node_id
        self.new = copy.deepcopy(config)
        self.old = copy.deepcopy(graph.node(node_id).config)

    def _redo(self) -> None:
        self.graph.set_config(self.node_id, self.new)

    def undo(self) -> None:
        self.graph.set_config(self.node_id, self.old)


class MoveNodesCommand(GraphCommand):
    """Move several layers at once (a drag, or auto-layout): one undo step."""

    def __init__(self, graph: Graph, new_positions: dict[str, tuple[float, float]], label: str = "Move") -> None:
        super().__init__(label)
        self.graph = graph
        self.new = dict(new_positions)
        self.old = {nid: graph.position(nid) for nid in self.new}

    def _redo(self) -> None:
        for nid, pos in self.new.items():
            self.graph.move_node(nid, pos)

    def undo(self) -> None:
        for nid, pos in self.old.items():
            if pos is not None:
                self.graph.move_node(nid, pos)


class SnapshotCommand(GraphCommand):
    """Run an arbitrary graph edit (e.g. a one-click fix) and undo it by restoring the state before.

    The edit is done by ``apply(graph)`` the first time; undo and redo then move
    the graph between the two recorded states with core methods only
    (:func:`restore_state`).
    """

    def __init__(self, graph: Graph, label: str, apply: Any) -> None:
        super().__init__(label)
        self.graph = graph
        self._apply = apply
        self.before = capture_state(graph)
        self.after: dict[str, Any] | None = None

    def _redo(self) -> None:
        if self.after is None:
            try:
                self._apply(self.graph)
            except BaseException:
                restore_state(self.graph, self.before)
                raise
            self.after = capture_state(self.graph)
        else:
            restore_state(self.graph, self.after)

    def undo(self) -> None:
        restore_state(self.graph, self.before)


def capture_state(graph: Graph) -> dict[str, Any]:
    """Everything :func:`restore_state` needs to put the graph back."""
    return {"graph": graph.to_dict(), "positions": graph.positions}


def restore_state(graph: Graph, state: dict[str, Any]) -> None:
    """Bring ``graph`` to a captured state through its public methods (diff, not rebuild).

    Node ids are kept, so the scene updates only what differs.
    """
    data = state["graph"]
    want_nodes = {nd["id"]: nd for nd in data["nodes"]}
    want_edges = [Edge(e["src"], e["dst"], e.get("slot", 0), e.get("src_port", 0)) for e in data["edges"]]
    want_set = set(want_edges)
    for e in graph.edges:
        if e not in want_set:
            graph.disconnect(e)
    for nid in [n for n in graph.nodes if n not in want_nodes]:
        graph.remove_node(nid)
    positions = state["positions"]
    for nid, nd in want_nodes.items():
        if nid not in graph.nodes:
            node = Node(nid, nd["class_name"], nd["name"], copy.deepcopy(nd["config"]), nd.get("shares"))
            graph.restore_node(node, [], positions.get(nid))
            continue
        cur = graph.node(nid)
        if cur.name != nd["name"]:
            graph.rename(nid, nd["name"])
        if cur.config != nd["config"]:
            graph.set_config(nid, nd["config"])
    have = set(graph.edges)
    for e in want_edges:
        if e not in have:
            graph.connect(e.src, e.dst, e.slot, src_port=e.src_port)
    for nid, pos in positions.items():
        if nid in graph.nodes and graph.position(nid) != pos:
            graph.move_node(nid, pos)
    order = [nid for nid in want_nodes if nid in graph.nodes]
    if list(graph.nodes) != order and sorted(order) == sorted(graph.nodes):
        graph.reorder_nodes(order)
    if graph.explicit_outputs != data.get("outputs", []):
        graph.set_outputs(list(data.get("outputs", [])))
