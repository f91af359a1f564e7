"""One QUndoCommand per graph change; commands call only core Graph methods.

The scene redraws itself from the graph's events, so a command never touches an
item.  A gesture that changes several things (reconnect, insert into a
connection, append, delete a selection, paste) is a :class:`CompoundCommand`
subclass that builds its child commands up front, with the ids of the layers it
will add already chosen, and is run once before it is pushed: if any step is
refused, the steps already done are undone and nothing reaches the undo stack,
so a refused edit leaves no history (orange-canvas-core's ``document/commands``
is the model).
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
    """Feed ``src`` into input ``slot`` of ``dst`` (either may be a layer a compound edit adds first)."""

    def __init__(self, graph: Graph, src: str, dst: str, slot: int | None = None, src_port: int = 0) -> None:
        names = [graph.nodes[n].name if n in graph.nodes else "new layer" for n in (src, dst)]
        super().__init__(f"Connect {names[0]} to {names[1]}")
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


class CompoundCommand(GraphCommand):
    """Several graph edits as one undo step; all of them or none.

    Subclasses build ``self.children`` in ``__init__``.  The first run (``execute``) validates the whole
    gesture: a refused step undoes the steps before it and raises, and the editor then pushes nothing.
    """

    def __init__(self, graph: Graph, label: str, children: list[GraphCommand] | None = None) -> None:
        super().__init__(label)
        self.graph = graph
        self.children: list[GraphCommand] = list(children or [])

    def _redo(self) -> None:
        done: list[GraphCommand] = []
        try:
            for child in self.children:
                child._redo()
                done.append(child)
        except BaseException:
            for child in reversed(done):
                child.undo()
            raise

    def undo(self) -> None:
        for child in reversed(self.children):
            child.undo()


class ReconnectCommand(CompoundCommand):
    """Drop a connection onto an input that is already fed: the old connection is replaced."""

    def __init__(self, graph: Graph, existing: Edge, src: str, dst: str, slot: int) -> None:
        super().__init__(graph, "Reconnect",
                         [DisconnectCommand(graph, existing), ConnectCommand(graph, src, dst, slot)])


class InsertCommand(CompoundCommand):
    """Add a layer into a connection: ``src -> new -> dst``."""

    def __init__(self, graph: Graph, class_name: str, config: dict[str, Any], pos: tuple[float, float],
                 edge: Edge, moves: dict[str, tuple[float, float]] | None = None) -> None:
        """``moves``: new positions of the layers below, which make room for the new one (same undo step)."""
        self.node_id = graph.new_id()
        children: list[GraphCommand] = [MoveNodesCommand(graph, moves, "Make room")] if moves else []
        super().__init__(graph, f"Insert {class_name}", [
            *children,
            DisconnectCommand(graph, edge),
            AddNodeCommand(graph, class_name, config, pos=pos, node_id=self.node_id),
            ConnectCommand(graph, edge.src, self.node_id, 0, edge.src_port),
            ConnectCommand(graph, self.node_id, edge.dst, edge.slot),
        ])


class AppendCommand(CompoundCommand):
    """Add a layer after ``after``, taking over its outgoing connections."""

    def __init__(self, graph: Graph, class_name: str, config: dict[str, Any], pos: tuple[float, float],
                 after: str) -> None:
        self.node_id = graph.new_id()
        children: list[GraphCommand] = [AddNodeCommand(graph, class_name, config, pos=pos, node_id=self.node_id)]
        for e in graph.out_edges(after):
            children += [DisconnectCommand(graph, e), ConnectCommand(graph, self.node_id, e.dst, e.slot)]
        children.append(ConnectCommand(graph, after, self.node_id, 0))
        super().__init__(graph, f"Append {class_name}", children)


class DeleteCommand(CompoundCommand):
    """Delete layers and connections; a layer that reuses a shared one goes before the one it shares."""

    def __init__(self, graph: Graph, node_ids: list[str], edges: list[Edge]) -> None:
        chosen = set(node_ids)
        children: list[GraphCommand] = [DisconnectCommand(graph, e) for e in edges
                                        if e.src not in chosen and e.dst not in chosen]
        children += [RemoveNodeCommand(graph, n) for n in _sharers_first(graph, node_ids)]
        n = len(node_ids)
        super().__init__(graph, f"Delete {n} layer{'s' if n != 1 else ''}" if n else "Delete connection", children)


class RenameDesignCommand(GraphCommand):
    """The design's name and identity, changed as one step of an edit, and back on undo.

    Deleting every layer of a template's copy starts a design of its own: without this the MLP built
    next was still "MNIST convnet" in Train, in its runs, its code and its file name.
    """

    def __init__(self, design: Any, name: str, design_id: str, on_change: Any) -> None:
        super().__init__(f"Rename the design {name}")
        self.design = design
        self.new = (name, design_id)
        self.old = (design.name, design.id)
        self.on_change = on_change

    def _redo(self) -> None:
        self.design.name, self.design.id = self.new
        self.on_change()

    def undo(self) -> None:
        self.design.name, self.design.id = self.old
        self.on_change()


def _sharers_first(graph: Graph, node_ids: list[str]) -> list[str]:
    """``node_ids`` ordered so that no layer is removed while another in the list still reuses it."""
    remaining = list(node_ids)
    order: list[str] = []
    while remaining:
        users = {graph.nodes[n].shares for n in remaining if n in graph.nodes}
        free = [n for n in remaining if n not in users] or remaining[:1]
        order += free
        remaining = [n for n in remaining if n not in free]
    return order


class PasteCommand(CompoundCommand):
    """Add copies of copied layers (new ids and names, offset by 40 px) with the connections among them."""

    def __init__(self, graph: Graph, payload: dict[str, Any], label: str = "Paste") -> None:
        self.node_ids: list[str] = []
        children: list[GraphCommand] = []
        new_id: dict[Any, str] = {}
        taken: set[str] = set()
        positions = payload.get("positions") if isinstance(payload.get("positions"), dict) else {}
        for nd in payload.get("nodes", []) if isinstance(payload.get("nodes"), list) else []:
            if not isinstance(nd, dict) or not isinstance(nd.get("class_name"), str):
                continue
            base = str(nd.get("name") or "layer")
            name, i = graph.unique_name(base), 1
            while name in taken:
                name = graph.unique_name(f"{base}_{i}")
                i += 1
            taken.add(name)
            x, y = positions.get(nd.get("id"), (0.0, 0.0))
            cfg = dict(nd.get("config") or {})
            cfg.pop("name", None)
            nid = graph.new_id()  # a counter: each call gives a new id
            new_id[nd.get("id")] = nid
            self.node_ids.append(nid)
            children.append(AddNodeCommand(graph, nd["class_name"], cfg, pos=(x + 40.0, y + 40.0), name=name,
                                           node_id=nid))
        for e in payload.get("edges", []) if isinstance(payload.get("edges"), list) else []:
            if isinstance(e, dict) and e.get("src") in new_id and e.get("dst") in new_id:
                children.append(ConnectCommand(graph, new_id[e["src"]], new_id[e["dst"]], e.get("slot", 0),
                                               e.get("src_port", 0)))
        super().__init__(graph, label, children)


class ApplyDesignCommand(GraphCommand):
    """Bring the design's layers and its training settings to those of ``target``, as one undo step.

    What "Apply to design" in the Experiment tab does with the best trial's values: a trial may change
    layer parameters, add repeated layers and change training settings at once, and the learner takes it
    back with one Ctrl+Z. The layers move between the two recorded states with core methods only
    (:func:`restore_state`, so node ids and the scene's items are kept); the settings are swapped on the
    design, and ``on_change`` (the window's: refresh Train's form, check the design again) follows both ways.
    """

    def __init__(self, design: Any, target: Any, label: str = "Apply the experiment's best values",
                 on_change: Any = None) -> None:
        super().__init__(label)
        self.design = design
        self.graph = design.graph
        self.before = capture_state(design.graph)
        self.after = capture_state(target.graph)
        self.old_training = copy.deepcopy(design.training)
        self.new_training = copy.deepcopy(target.training)
        self.on_change = on_change

    def _redo(self) -> None:
        try:
            restore_state(self.graph, self.after)
        except BaseException:
            restore_state(self.graph, self.before)
            raise
        self.design.training = copy.deepcopy(self.new_training)
        if self.on_change is not None:
            self.on_change()

    def undo(self) -> None:
        restore_state(self.graph, self.before)
        self.design.training = copy.deepcopy(self.old_training)
        if self.on_change is not None:
            self.on_change()
