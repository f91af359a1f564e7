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
from neuralstudio.core.formatting import shorten

INPUT_CLASS = "InputLayer"
_NAME_RE = re.compile(r"^[A-Za-z_][A-Za-z0-9_.\-]*$")
#: Longest layer name, class name and id accepted: names are printed in tables and messages, and a
#: design file is untrusted input (a 1 MB name once made ``check`` print 500 MB).
MAX_NAME_LENGTH = 100
#: Deepest nesting accepted in a layer config.  Keras configs nest a few levels (initializers,
#: nested models); copying a config thousands of levels deep would exhaust Python's stack.
MAX_CONFIG_DEPTH = 100
#: Highest input slot a file may name (a merge layer with a million inputs is a damaged file).
MAX_SLOT = 1_000_000


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


def config_depth(value: Any, limit: int = MAX_CONFIG_DEPTH) -> int:
    """How deeply ``value`` nests lists and dicts, counted without recursion and stopping past ``limit``.

    Iterative on purpose: the value comes from a file, and a recursive walk would itself
    overflow the stack on the hostile inputs this guards against.
    """
    deepest, stack = 0, [(value, 1)]
    while stack:
        v, depth = stack.pop()
        if not isinstance(v, (dict, list, tuple)):
            continue
        deepest = max(deepest, depth)
        if deepest > limit:
            return deepest
        children = v.values() if isinstance(v, dict) else v
        stack.extend((c, depth + 1) for c in children)
    return deepest


def _acyclic(nodes: list[str], edges: list[Edge]) -> bool:
    """Kahn's algorithm: True when ``edges`` between ``nodes`` form no cycle, in O(nodes + edges)."""
    indeg = dict.fromkeys(nodes, 0)
    out: dict[str, list[str]] = {n: [] for n in nodes}
    for e in edges:
        indeg[e.dst] += 1
        out[e.src].append(e.dst)
    ready = [n for n, d in indeg.items() if d == 0]
    done = 0
    while ready:
        n = ready.pop()
        done += 1
        for m in out[n]:
            indeg[m] -= 1
            if indeg[m] == 0:
                ready.append(m)
    return done == len(nodes)


class Graph:
    """A directed acyclic graph of layer calls with ordered input slots.

    Besides the nodes and edges, the graph keeps indexes (the edges into and out of
    each node, the node of each name) in step with every edit, so that the queries
    the editor, the builder and loading make per node cost the node's degree, not
    the size of the graph.
    """

    def __init__(self) -> None:
        self._nodes: dict[str, Node] = {}
        # every edge -> its insertion serial (a dict is an ordered set with O(1) removal)
        self._edges: dict[Edge, int] = {}
        self._serial = itertools.count()
        self._in: dict[str, list[Edge]] = {}
        self._out: dict[str, list[Edge]] = {}
        self._by_name: dict[str, str] = {}
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
        except (KeyError, TypeError):
            raise GraphError(f"There is no layer with id {shorten(node_id)}.") from None

    def node_by_name(self, name: str) -> Node | None:
        nid = self._by_name.get(name) if isinstance(name, str) else None
        return self._nodes[nid] if nid is not None else None

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
        return [n for n, node in self._nodes.items() if not self._out[n] and node.class_name != INPUT_CLASS]

    @property
    def explicit_outputs(self) -> list[str]:
        return list(self._outputs)

    def in_edges(self, node_id: str) -> list[Edge]:
        """Edges into ``node_id``, ordered by slot."""
        return sorted(self._in.get(node_id, ()), key=lambda e: e.slot)

    def out_edges(self, node_id: str) -> list[Edge]:
        """Edges out of ``node_id``, in the order they were made."""
        return list(self._out.get(node_id, ()))

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
        if base not in self._by_name:
            return base
        for i in itertools.count(1):
            cand = f"{base}_{i}"
            if cand not in self._by_name:
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
        if not isinstance(class_name, str) or not class_name.isidentifier() or len(class_name) > MAX_NAME_LENGTH:
            raise GraphError(f"{shorten(class_name)} is not a layer class name.")
        if node_id is not None and (not isinstance(node_id, str) or not node_id or len(node_id) > MAX_NAME_LENGTH):
            raise GraphError(f"A layer id must be text of 1 to {MAX_NAME_LENGTH} characters, not {shorten(node_id)}.")
        if node_id is not None and node_id in self._nodes:
            raise GraphError(f"A layer with id {shorten(node_id)} already exists.")
        if shares is not None:
            target = self.node(shares)
            if target.class_name != class_name:
                raise GraphError("A shared layer must have the same class as the layer it shares.")
        config = self._checked_config(config, node_id)
        if name is None:
            base = config.get("name")
            if base is not None and not isinstance(base, str):
                what = f"layer {shorten(node_id)}" if node_id else f"the new {class_name} layer"
                raise GraphError(f"The name of {what} must be text.")
            name = self.unique_name(base or default_name(class_name))
        self._check_name(name, None)
        node = Node(node_id or self.new_id(), class_name, name, config, shares)
        node.config["name"] = name
        self._insert_node(node)
        if pos is not None:
            self._positions[node.id] = (float(pos[0]), float(pos[1]))
        self.events.emit(GraphEvent("node_added", node.id))
        return node

    def restore_node(self, node: Node, edges: Iterable[Edge], pos: tuple[float, float] | None,
                     output_index: int | None = None, index: int | None = None) -> None:
        """Put back a node removed by :meth:`remove_node` (for undo), at its old place in the order."""
        if node.id in self._nodes:
            raise GraphError(f"A layer with id {shorten(node.id)} already exists.")
        self._check_name(node.name, None)
        self._insert_node(copy.deepcopy(node))
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
        # in the order they were made, as restore_node will make them again
        edges = sorted(self._in[node_id] + self._out[node_id], key=self._edges.__getitem__)
        for e in edges:
            self.disconnect(e)
        pos = self._positions.pop(node_id, None)
        out_index = self._outputs.index(node_id) if node_id in self._outputs else None
        if out_index is not None:
            self._outputs.remove(node_id)
        index = list(self._nodes).index(node_id)
        del self._nodes[node_id]
        del self._in[node_id], self._out[node_id]
        if self._by_name.get(node.name) == node_id:
            del self._by_name[node.name]
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
        used = {e.slot for e in self._in.get(dst, ())}
        slot = 0
        while slot in used:
            slot += 1
        return slot

    def can_connect(self, src: str, dst: str, slot: int | None = None) -> str | None:
        """Why ``src -> dst`` is refused, or ``None`` when it is allowed."""
        why = self._local_refusal(src, dst, slot)
        if why is None and self.reaches(dst, src):
            return f"Connecting {self._nodes[src].name} to {self._nodes[dst].name} would create a cycle."
        return why

    def _local_refusal(self, src: str, dst: str, slot: int | None) -> str | None:
        """Every reason to refuse ``src -> dst`` except a cycle: what only the two ends decide."""
        if not isinstance(src, str) or not isinstance(dst, str) or src not in self._nodes or dst not in self._nodes:
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
        if any(e.slot == slot for e in self._in[dst]):
            return f"Input {slot + 1} of {d.name} is already connected: disconnect it first."
        return None

    def connect(self, src: str, dst: str, slot: int | None = None, *, src_port: int = 0) -> Edge:
        """Feed ``src`` into ``dst`` (the first free slot unless given)."""
        why = self.can_connect(src, dst, slot)
        if why:
            raise GraphError(why)
        edge = Edge(src, dst, self.free_slot(dst) if slot is None else slot, src_port)
        self._insert_edge(edge)
        self.events.emit(GraphEvent("edge_added", edge))
        return edge

    def disconnect(self, edge: Edge) -> None:
        if self._edges.pop(edge, None) is None:
            raise GraphError("That connection does not exist.")
        self._in[edge.dst].remove(edge)
        self._out[edge.src].remove(edge)
        self.events.emit(GraphEvent("edge_removed", edge))

    def _insert_node(self, node: Node) -> None:
        """Add a checked node to the nodes and the indexes."""
        self._nodes[node.id] = node
        self._in[node.id] = []
        self._out[node.id] = []
        self._by_name[node.name] = node.id

    def _insert_edge(self, edge: Edge) -> None:
        """Add a checked edge to the edges and the indexes."""
        self._edges[edge] = next(self._serial)
        self._in[edge.dst].append(edge)
        self._out[edge.src].append(edge)

    def rename(self, node_id: str, name: str) -> None:
        node = self.node(node_id)
        if name == node.name:
            return
        self._check_name(name, node_id)
        del self._by_name[node.name]
        self._by_name[name] = node_id
        node.name = name
        node.config["name"] = name
        self.events.emit(GraphEvent("node_changed", node_id))

    def set_config(self, node_id: str, config: dict[str, Any]) -> None:
        """Replace a node's whole config (the name is kept)."""
        node = self.node(node_id)
        node.config = self._checked_config(config, node_id)
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
        self._in.clear()
        self._out.clear()
        self._by_name.clear()
        self._outputs.clear()
        self._positions.clear()
        self.events.emit(GraphEvent("reset", None))

    def _check_name(self, name: str, node_id: str | None) -> None:
        if isinstance(name, str) and len(name) > MAX_NAME_LENGTH:
            raise GraphError(f"The layer name {shorten(name)} has {len(name):,} characters: "
                             f"give it a name of at most {MAX_NAME_LENGTH}.")
        if not isinstance(name, str) or not _NAME_RE.match(name) or keyword.iskeyword(name):
            raise GraphError(
                f"{shorten(name)} is not a valid layer name: use letters, digits and underscores, "
                "starting with a letter."
            )
        other = self.node_by_name(name)
        if other is not None and other.id != node_id:
            raise GraphError(f"Another layer is already called {name!r}: choose a different name.")

    @staticmethod
    def _checked_config(config: Any, node_id: str | None) -> dict[str, Any]:
        """A private copy of a layer config, refused when it is not a dict or nests absurdly deep."""
        if config is None:
            return {}
        what = f"layer {shorten(node_id)}" if node_id else "a layer"
        if not isinstance(config, dict):
            raise GraphError(f"The config of {what} must be a dictionary.")
        if config_depth(config) > MAX_CONFIG_DEPTH:
            raise GraphError(f"The config of {what} is nested more than {MAX_CONFIG_DEPTH} levels deep: "
                             "the file is damaged.")
        return copy.deepcopy(config)

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
                raise GraphError(f"Layer {shorten(nid)} has no class_name.")
            if not isinstance(cfg, dict):
                raise GraphError(f"The config of layer {shorten(nid)} must be an object.")
            if name is not None and not isinstance(name, str):
                raise GraphError(f"The name of layer {shorten(nid)} must be text.")
            shares = nd.get("shares")
            if shares is not None and not isinstance(shares, str):
                raise GraphError(f"'shares' of layer {shorten(nid)} must be a layer id.")
            g.add_node(cn, cfg, name=name or None, node_id=nid)
            g._nodes[nid].shares = shares
        for n in g._nodes.values():
            if n.shares is not None and n.shares not in g._nodes:
                raise GraphError(f"Layer {n.name} shares an unknown layer {shorten(n.shares)}.")
        g._load_edges(edges)
        outputs = data.get("outputs", [])
        if not isinstance(outputs, list) or not all(isinstance(o, str) and o in g._nodes for o in outputs):
            raise GraphError("'outputs' must list ids of layers in the graph.")
        g._outputs = list(outputs)
        return g

    def _load_edges(self, edges: list[Any]) -> None:
        """Add a file's connections in bulk: each is checked on its own, then the whole graph once for cycles.

        Checking every edge for a cycle as it is added costs a search of the graph per edge: a
        file listing a 2,000-layer chain's edges last-to-first took 90 s to load.  The error raised
        is still the one adding the edges one by one raises: that of the first edge refused.
        """
        added: list[Edge] = []
        refusal = None
        for i, data in enumerate(edges):
            edge, refusal = self._parse_edge(i, data)
            if edge is None:
                break
            self._insert_edge(edge)
            added.append(edge)
        nodes = list(self._nodes)
        if not _acyclic(nodes, added):
            # the shortest prefix of the file's edges with a cycle ends with the edge that closed it
            lo, hi = 0, len(added)  # prefix lo is acyclic, prefix hi is not
            while hi - lo > 1:
                mid = (lo + hi) // 2
                lo, hi = (mid, hi) if _acyclic(nodes, added[:mid]) else (lo, mid)
            closing = added[hi - 1]
            raise GraphError(f"Connecting {self._nodes[closing.src].name} to {self._nodes[closing.dst].name} "
                             "would create a cycle.")
        if refusal is not None:
            raise GraphError(refusal)

    def _parse_edge(self, i: int, data: Any) -> tuple[Edge | None, str | None]:
        """Connection #``i + 1`` of a file as an edge, or why it is refused (all but a cycle)."""
        if not isinstance(data, dict):
            return None, f"Connection #{i + 1} must be an object."
        src, dst, slot, port = data.get("src"), data.get("dst"), data.get("slot", 0), data.get("src_port", 0)
        if not isinstance(src, str) or not isinstance(dst, str):
            return None, f"Connection #{i + 1} needs 'src' and 'dst' layer ids."
        if type(slot) is not int or type(port) is not int or port < 0 or port > 1000 or slot > MAX_SLOT:
            return None, f"Connection #{i + 1} has an invalid slot."
        if src not in self._nodes or dst not in self._nodes:
            return None, f"Connection #{i + 1} refers to a layer that does not exist."
        why = self._local_refusal(src, dst, slot)
        return (None, why) if why else (Edge(src, dst, slot, port), None)

    def copy(self) -> Graph:
        g = Graph.from_dict(self.to_dict())
        g._positions = dict(self._positions)
        return g

    def subscribe(self, listener: Callable[[GraphEvent], None]) -> None:
        self.events.connect(listener)
