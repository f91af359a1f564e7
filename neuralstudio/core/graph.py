"""The network graph: the single source of truth for a design.

A node is one Keras layer *call*: it stores the layer's ``class_name`` and its
``get_config()`` dict, so Keras stays the authority on what a layer is.  Edges
feed a node's ordered input slots.  A node may ``share`` the layer of another
node (a layer called twice, as in siamese networks); its own config is then
ignored.

The graph is pure Python so that it can be tested in milliseconds, used by the
CLI, and mirrored by a Qt scene that only listens to its events.  Every
mutating method validates first and changes nothing when it raises, so undo
commands can call them blindly.
"""

from __future__ import annotations

import copy
import itertools
import keyword
import re
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from typing import Any

from neuralstudio.core.arity import input_arity
from neuralstudio.core.errors import UserError
from neuralstudio.core.events import EventEmitter, GraphEvent

INPUT_CLASS = "InputLayer"
_NAME_RE = re.compile(r"^[A-Za-z_][A-Za-z0-9_.\-]*$")


class GraphError(UserError, ValueError):
    """A graph edit that would make the graph invalid; the message is for people."""


@dataclass
class Node:
    """One layer call in the graph.

    Args:
        id: stable identifier, never shown to users, unique in the graph.
        class_name: the Keras layer class, e.g. ``"Dense"``.
        name: the layer name shown to users and given to Keras.
        config: the layer's ``get_config()`` dict (``name`` is kept in sync).
        shares: id of another node whose layer object this node calls again.
    """

    id: str
    class_name: str
    name: str
    config: dict[str, Any] = field(default_factory=dict)
    shares: str | None = None

    def to_dict(self) -> dict[str, Any]:
        data: dict[str, Any] = {
            "id": self.id,
            "class_name": self.class_name,
            "name": self.name,
            "config": copy.deepcopy(self.config),
        }
        if self.shares:
            data["shares"] = self.shares
        return data


@dataclass(frozen=True)
class Edge:
    """Output ``src_port`` of node ``src`` feeds input ``slot`` of node ``dst``."""

    src: str
    dst: str
    slot: int = 0
    src_port: int = 0

    def to_dict(self) -> dict[str, Any]:
        data: dict[str, Any] = {"src": self.src, "dst": self.dst, "slot": self.slot}
        if self.src_port:
            data["src_port"] = self.src_port
        return data


def default_name(class_name: str) -> str:
    """Keras's own naming scheme: ``Conv2D`` -> ``conv2d``, ``BatchNormalization`` -> ``batch_normalization``."""
    s = re.sub(r"\W+", "", class_name)
    s = re.sub(r"(.)([A-Z][a-z]+)", r"\1_\2", s)
    return re.sub(r"([a-z])([A-Z])", r"\1_\2", s).lower()


class Graph:
    """A directed acyclic graph of layer calls with ordered input slots."""

    def __init__(self) -> None:
        self._nodes: dict[str, Node] = {}
        self._edges: list[Edge] = []
        self._outputs: list[str] = []
        self._positions: dict[str, tuple[float, float]] = {}
        self._ids = itertools.count(1)
        self.events = EventEmitter()

    # ------------------------------------------------------------------ queries
    @property
    def nodes(self) -> dict[str, Node]:
        return self._nodes

    @property
    def edges(self) -> list[Edge]:
        """All edges in a canonical order (by destination layer, then slot).

        The order depends only on the graph, not on the order of edits, so an
        undone edit gives back exactly the same serialised graph.
        """
        index = {nid: i for i, nid in enumerate(self._nodes)}
        return sorted(self._edges, key=lambda e: (index[e.dst], e.slot, index[e.src], e.src_port))

    def node(self, node_id: str) -> Node:
        try:
            return self._nodes[node_id]
        except KeyError:
            raise GraphError(f"There is no layer with id {node_id!r}.") from None

    def node_by_name(self, name: str) -> Node | None:
        return next((n for n in self._nodes.values() if n.name == name), None)

    def __len__(self) -> int:
        return len(self._nodes)

    def __iter__(self) -> Iterator[Node]:
        return iter(self._nodes.values())

    def inputs(self) -> list[str]:
        """Ids of the model inputs (``InputLayer`` nodes), in insertion order."""
        return [n.id for n in self._nodes.values() if n.class_name == INPUT_CLASS]

    def outputs(self) -> list[str]:
        """The model outputs: the explicit list if set, else every node nothing reads."""
        if self._outputs:
            return [o for o in self._outputs if o in self._nodes]
        used = {e.src for e in self._edges}
        return [n for n in self._nodes if n not in used and self._nodes[n].class_name != INPUT_CLASS]

    @property
    def explicit_outputs(self) -> list[str]:
        return list(self._outputs)

    def in_edges(self, node_id: str) -> list[Edge]:
        """Edges into ``node_id``, ordered by slot."""
        return sorted((e for e in self._edges if e.dst == node_id), key=lambda e: e.slot)

    def out_edges(self, node_id: str) -> list[Edge]:
        return [e for e in self._edges if e.src == node_id]

    def predecessors(self, node_id: str) -> list[str]:
        return [e.src for e in self.in_edges(node_id)]

    def successors(self, node_id: str) -> list[str]:
        return [e.dst for e in self.out_edges(node_id)]

    def position(self, node_id: str) -> tuple[float, float] | None:
        return self._positions.get(node_id)

    @property
    def positions(self) -> dict[str, tuple[float, float]]:
        return dict(self._positions)

    def topological_order(self) -> list[str]:
        """Kahn's algorithm, stable in insertion order; raises on a cycle.

        A node that ``shares`` another's layer comes after that node, since the
        layer is created by its first call.
        """
        deps = [(e.src, e.dst) for e in self._edges]
        deps += [(n.shares, n.id) for n in self._nodes.values() if n.shares in self._nodes]
        indeg = {n: 0 for n in self._nodes}
        out: dict[str, list[str]] = {n: [] for n in self._nodes}
        for src, dst in deps:
            indeg[dst] += 1
            out[src].append(dst)
        ready = [n for n in self._nodes if indeg[n] == 0]
        order: list[str] = []
        i = 0
        while i < len(ready):
            n = ready[i]
            i += 1
            order.append(n)
            for m in out[n]:
                indeg[m] -= 1
                if indeg[m] == 0:
                    ready.append(m)
        if len(order) != len(self._nodes):
            stuck = [self._nodes[n].name for n in self._nodes if n not in set(order)]
            raise GraphError("The graph has a cycle through: " + ", ".join(stuck[:5]))
        return order

    def reaches(self, start: str, target: str) -> bool:
        """True when a path of edges leads from ``start`` to ``target``."""
        seen, stack = set(), [start]
        while stack:
            n = stack.pop()
            if n == target:
                return True
            if n in seen:
                continue
            seen.add(n)
            stack.extend(self.successors(n))
        return False

    def unique_name(self, base: str) -> str:
        """``base`` if free, else ``base_1``, ``base_2``... as Keras names layers."""
        taken = {n.name for n in self._nodes.values()}
        if base not in taken:
            return base
        for i in itertools.count(1):
            cand = f"{base}_{i}"
            if cand not in taken:
                return cand
        raise AssertionError("unreachable")

    def new_id(self) -> str:
        while True:
            cand = f"n{next(self._ids)}"
            if cand not in self._nodes:
                return cand

    # ---------------------------------------------------------------- mutations
    def add_node(
        self,
        class_name: str,
        config: dict[str, Any] | None = None,
        *,
        name: str | None = None,
        node_id: str | None = None,
        pos: tuple[float, float] | None = None,
        shares: str | None = None,
    ) -> Node:
        """Add a layer call; the name defaults to Keras's style, made unique."""
        if not isinstance(class_name, str) or not class_name.isidentifier():
            raise GraphError(f"{class_name!r} is not a layer class name.")
        if node_id is not None and node_id in self._nodes:
            raise GraphError(f"A layer with id {node_id!r} already exists.")
        if shares is not None:
            target = self.node(shares)
            if target.class_name != class_name:
                raise GraphError("A shared layer must have the same class as the layer it shares.")
        config = copy.deepcopy(config) if config else {}
        if name is None:
            name = self.unique_name(config.get("name") or default_name(class_name))
        self._check_name(name, None)
        node = Node(node_id or self.new_id(), class_name, name, config, shares)
        node.config["name"] = name
        self._nodes[node.id] = node
        if pos is not None:
            self._positions[node.id] = (float(pos[0]), float(pos[1]))
        self.events.emit(GraphEvent("node_added", node.id))
        return node

    def restore_node(self, node: Node, edges: Iterable[Edge], pos: tuple[float, float] | None,
                     output_index: int | None = None, index: int | None = None) -> None:
        """Put back a node removed by :meth:`remove_node` (for undo), at its old place in the order."""
        if node.id in self._nodes:
            raise GraphError(f"A layer with id {node.id!r} already exists.")
        self._check_name(node.name, None)
        self._nodes[node.id] = copy.deepcopy(node)
        if index is not None and index < len(self._nodes) - 1:
            order = [n for n in self._nodes if n != node.id]
            order.insert(index, node.id)
            self.reorder_nodes(order)
        if pos is not None:
            self._positions[node.id] = pos
        if output_index is not None:
            self._outputs.insert(min(output_index, len(self._outputs)), node.id)
        self.events.emit(GraphEvent("node_added", node.id))
        for e in edges:
            self.connect(e.src, e.dst, e.slot, src_port=e.src_port)

    def remove_node(
        self, node_id: str
    ) -> tuple[Node, list[Edge], tuple[float, float] | None, int | None, int]:
        """Remove a node and its edges; returns what :meth:`restore_node` needs, in its argument order."""
        node = self.node(node_id)
        sharers = [n.name for n in self._nodes.values() if n.shares == node_id]
        if sharers:
            raise GraphError(f"{node.name} is reused by {', '.join(sharers)}: remove those first.")
        edges = [e for e in self._edges if node_id in (e.src, e.dst)]
        for e in edges:
            self.disconnect(e)
        pos = self._positions.pop(node_id, None)
        out_index = self._outputs.index(node_id) if node_id in self._outputs else None
        if out_index is not None:
            self._outputs.remove(node_id)
        index = list(self._nodes).index(node_id)
        del self._nodes[node_id]
        self.events.emit(GraphEvent("node_removed", node_id))
        return node, edges, pos, out_index, index

    def reorder_nodes(self, order: list[str]) -> None:
        """Put the nodes in ``order`` (a permutation of their ids).

        The order matters: it is the order of the model's inputs and of the
        layers in the saved file.  Views need no event, nothing they show changes.
        """
        if sorted(order) != sorted(self._nodes):
            raise GraphError("A new layer order must list every layer exactly once.")
        self._nodes = {nid: self._nodes[nid] for nid in order}

    def free_slot(self, dst: str) -> int:
        """The first input slot of ``dst`` not yet fed by an edge."""
        used = {e.slot for e in self._edges if e.dst == dst}
        slot = 0
        while slot in used:
            slot += 1
        return slot

    def can_connect(self, src: str, dst: str, slot: int | None = None) -> str | None:
        """Why ``src -> dst`` is refused, or ``None`` when it is allowed."""
        if src not in self._nodes or dst not in self._nodes:
            return "Both ends of a connection must be layers of this network."
        if src == dst:
            return "A layer cannot feed itself."
        d = self._nodes[dst]
        lo, hi = input_arity(d.class_name)
        if hi == 0:
            return f"{d.name} ({d.class_name}) is a model input and takes no inputs."
        if slot is None:
            slot = self.free_slot(dst)
        if slot < 0:
            return "Input slots are numbered from 0."
        if hi is not None and slot >= hi:
            return f"{d.name} ({d.class_name}) takes at most {hi} input{'s' if hi > 1 else ''}."
        if any(e.dst == dst and e.slot == slot for e in self._edges):
            return f"Input {slot + 1} of {d.name} is already connected: disconnect it first."
        if self.reaches(dst, src):
            return f"Connecting {self._nodes[src].name} to {d.name} would create a cycle."
        return None

    def connect(self, src: str, dst: str, slot: int | None = None, *, src_port: int = 0) -> Edge:
        """Feed ``src`` into ``dst`` (the first free slot unless given)."""
        why = self.can_connect(src, dst, slot)
        if why:
            raise GraphError(why)
        edge = Edge(src, dst, self.free_slot(dst) if slot is None else slot, src_port)
        self._edges.append(edge)
        self.events.emit(GraphEvent("edge_added", edge))
        return edge

    def disconnect(self, edge: Edge) -> None:
        try:
            self._edges.remove(edge)
        except ValueError:
            raise GraphError("That connection does not exist.") from None
        self.events.emit(GraphEvent("edge_removed", edge))

    def rename(self, node_id: str, name: str) -> None:
        node = self.node(node_id)
        if name == node.name:
            return
        self._check_name(name, node_id)
        node.name = name
        node.config["name"] = name
        self.events.emit(GraphEvent("node_changed", node_id))

    def set_config(self, node_id: str, config: dict[str, Any]) -> None:
        """Replace a node's whole config (the name is kept)."""
        node = self.node(node_id)
        if not isinstance(config, dict):
            raise GraphError("A layer config must be a dictionary.")
        node.config = copy.deepcopy(config)
        node.config["name"] = node.name
        self.events.emit(GraphEvent("node_changed", node_id))

    def set_param(self, node_id: str, key: str, value: Any) -> None:
        if key == "name":
            self.rename(node_id, value)
            return
        node = self.node(node_id)
        node.config[key] = copy.deepcopy(value)
        self.events.emit(GraphEvent("node_changed", node_id))

    def move_node(self, node_id: str, pos: tuple[float, float]) -> None:
        self.node(node_id)
        self._positions[node_id] = (float(pos[0]), float(pos[1]))
        self.events.emit(GraphEvent("node_moved", node_id))

    def set_outputs(self, outputs: list[str]) -> None:
        for o in outputs:
            self.node(o)
        self._outputs = list(outputs)
        self.events.emit(GraphEvent("outputs_changed", None))

    def clear(self) -> None:
        self._nodes.clear()
        self._edges.clear()
        self._outputs.clear()
        self._positions.clear()
        self.events.emit(GraphEvent("reset", None))

    def _check_name(self, name: str, node_id: str | None) -> None:
        if not isinstance(name, str) or not _NAME_RE.match(name) or keyword.iskeyword(name):
            raise GraphError(
                f"{name!r} is not a valid layer name: use letters, digits and underscores, "
                "starting with a letter."
            )
        other = self.node_by_name(name)
        if other is not None and other.id != node_id:
            raise GraphError(f"Another layer is already called {name!r}: choose a different name.")

    # ------------------------------------------------------------ serialisation
    def to_dict(self) -> dict[str, Any]:
        data: dict[str, Any] = {
            "nodes": [n.to_dict() for n in self._nodes.values()],
            "edges": [e.to_dict() for e in self.edges],
        }
        if self._outputs:
            data["outputs"] = list(self._outputs)
        return data

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Graph:
        """Rebuild a graph; raises :class:`GraphError` on anything inconsistent."""
        g = cls()
        if not isinstance(data, dict):
            raise GraphError("The graph must be an object with 'nodes' and 'edges'.")
        nodes, edges = data.get("nodes", []), data.get("edges", [])
        if not isinstance(nodes, list) or not isinstance(edges, list):
            raise GraphError("'nodes' and 'edges' must be lists.")
        for i, nd in enumerate(nodes):
            if not isinstance(nd, dict):
                raise GraphError(f"Layer #{i + 1} must be an object.")
            nid, cn, name = nd.get("id"), nd.get("class_name"), nd.get("name")
            cfg = nd.get("config", {})
            if not isinstance(nid, str) or not nid:
                raise GraphError(f"Layer #{i + 1} has no id.")
            if not isinstance(cn, str):
                raise GraphError(f"Layer {nid!r} has no class_name.")
            if not isinstance(cfg, dict):
                raise GraphError(f"The config of layer {nid!r} must be an object.")
            if name is not None and not isinstance(name, str):
                raise GraphError(f"The name of layer {nid!r} must be text.")
            shares = nd.get("shares")
            if shares is not None and not isinstance(shares, str):
                raise GraphError(f"'shares' of layer {nid!r} must be a layer id.")
            g.add_node(cn, cfg, name=name or g.unique_name(cfg.get("name") or default_name(cn)),
                       node_id=nid)
            g._nodes[nid].shares = shares
        for n in g._nodes.values():
            if n.shares is not None and n.shares not in g._nodes:
                raise GraphError(f"Layer {n.name} shares an unknown layer {n.shares!r}.")
        for i, ed in enumerate(edges):
            if not isinstance(ed, dict):
                raise GraphError(f"Connection #{i + 1} must be an object.")
            src, dst, slot, port = ed.get("src"), ed.get("dst"), ed.get("slot", 0), ed.get("src_port", 0)
            if not isinstance(src, str) or not isinstance(dst, str):
                raise GraphError(f"Connection #{i + 1} needs 'src' and 'dst' layer ids.")
            if type(slot) is not int or type(port) is not int or port < 0 or port > 1000:
                raise GraphError(f"Connection #{i + 1} has an invalid slot.")
            if src not in g._nodes or dst not in g._nodes:
                raise GraphError(f"Connection #{i + 1} refers to a layer that does not exist.")
            g.connect(src, dst, slot, src_port=port)
        outputs = data.get("outputs", [])
        if not isinstance(outputs, list) or not all(isinstance(o, str) and o in g._nodes for o in outputs):
            raise GraphError("'outputs' must list ids of layers in the graph.")
        g._outputs = list(outputs)
        return g

    def copy(self) -> Graph:
        g = Graph.from_dict(self.to_dict())
        g._positions = dict(self._positions)
        return g

    def subscribe(self, listener: Callable[[GraphEvent], None]) -> None:
        self.events.connect(listener)
