"""Apply a problem's one-click :class:`~neuralstudio.core.problems.Fix` to the graph.

A fix is carried out only through the graph's own methods (``add_node``,
``connect``, ``disconnect``, ``set_param``...), so the scene hears about it
through graph events like any other edit.  :func:`apply_fix` returns an
:class:`AppliedFix` that can undo exactly what was done, so the editor wraps
one fix in one undo command::

    applied = apply_fix(graph, problem)   # redo(): apply again from the Problem
    applied.undo()

Pure Python: no Keras, no Qt.
"""

from __future__ import annotations

import copy
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from neuralstudio.core.arity import input_arity
from neuralstudio.core.errors import UserError
from neuralstudio.core.graph import INPUT_CLASS, Edge, Graph
from neuralstudio.core.problems import Fix, Problem

_MISSING = object()
_GAP = 90.0  # distance of a new node from its neighbour when only one position is known


class FixError(UserError, ValueError):
    """The fix no longer applies (the graph changed since the problem was found)."""


@dataclass
class AppliedFix:
    """What one fix did, and how to take it back.

    Args:
        changes: one line per change, for the status bar or the undo text.
        new_node_id: the node the fix added, if any.
    """

    changes: list[str] = field(default_factory=list)
    new_node_id: str | None = None
    _undo: list[Callable[[], None]] = field(default_factory=list, repr=False)

    def undo(self) -> None:
        """Reverse every change, last first."""
        while self._undo:
            self._undo.pop()()


def apply_fix(graph: Graph, problem: Problem | Fix, node_id: str | None = None) -> AppliedFix:
    """Carry out a problem's fix on ``graph``.

    Args:
        graph: the graph to change.
        problem: the :class:`Problem` (its ``node_id`` says where), or a bare
            :class:`Fix` together with ``node_id``.
        node_id: the node the fix applies to, when ``problem`` is a bare Fix.

    Raises:
        FixError: when there is no fix or it no longer fits the graph; nothing is changed then.
    """
    if isinstance(problem, Problem):
        fix, node_id = problem.fix, problem.node_id if node_id is None else node_id
    else:
        fix = problem
    if fix is None:
        raise FixError("This problem has no automatic fix: change the design by hand.")
    applied = AppliedFix()
    if fix.kind == "add_input":
        _add_input(graph, fix, node_id, applied)
        return applied
    if node_id is None or node_id not in graph.nodes:
        raise FixError("The layer this fix was for is gone: check the design again.")
    try:
        if fix.kind == "insert_before":
            _insert_before(graph, fix, node_id, applied)
        elif fix.kind == "set_params":
            _set_params(graph, fix, node_id, applied)
        else:
            raise FixError(f"Unknown kind of fix {fix.kind!r}.")
    except Exception:
        applied.undo()  # leave the graph as it was
        raise
    return applied


def _between(a: tuple[float, float] | None, b: tuple[float, float] | None) -> tuple[float, float] | None:
    if a is not None and b is not None:
        return ((a[0] + b[0]) / 2, (a[1] + b[1]) / 2)
    if b is not None:
        return (b[0], b[1] - _GAP)
    if a is not None:
        return (a[0], a[1] + _GAP)
    return None


def _insert_before(graph: Graph, fix: Fix, node_id: str, applied: AppliedFix) -> None:
    node = graph.node(node_id)
    if not fix.class_name:
        raise FixError("The fix does not say which layer to insert.")
    old = next((e for e in graph.in_edges(node_id) if e.slot == fix.slot), None)
    src_pos = graph.position(old.src) if old else None
    new = graph.add_node(fix.class_name, fix.config, pos=_between(src_pos, graph.position(node_id)))
    applied.new_node_id = new.id
    applied._undo.append(lambda: graph.remove_node(new.id))
    if old is not None:
        graph.disconnect(old)
        applied._undo.append(lambda: graph.connect(old.src, old.dst, old.slot, src_port=old.src_port))
        e1 = graph.connect(old.src, new.id, 0, src_port=old.src_port)
        applied._undo.append(lambda: graph.disconnect(e1))
    e2 = graph.connect(new.id, node_id, fix.slot)
    applied._undo.append(lambda: graph.disconnect(e2))
    where = f"between {graph.node(old.src).name} and {node.name}" if old else f"before {node.name}"
    applied.changes.append(f"Inserted {new.name} ({fix.class_name}) {where}.")


def _set_params(graph: Graph, fix: Fix, node_id: str, applied: AppliedFix) -> None:
    node = graph.node(node_id)
    for key, value in fix.config.items():
        if key == "name":
            old_name = node.name
            graph.rename(node_id, value)
            applied._undo.append(lambda n=old_name: graph.rename(node_id, n))
            continue
        before = copy.deepcopy(node.config[key]) if key in node.config else _MISSING
        graph.set_param(node_id, key, value)
        applied._undo.append(lambda k=key, b=before: _restore_param(graph, node_id, k, b))
        applied.changes.append(f"Set {key} of {node.name} to {_show(value)}.")


def _restore_param(graph: Graph, node_id: str, key: str, before: Any) -> None:
    if before is _MISSING:
        cfg = dict(graph.node(node_id).config)
        cfg.pop(key, None)
        graph.set_config(node_id, cfg)
    else:
        graph.set_param(node_id, key, before)


def _show(value: Any) -> str:
    if isinstance(value, list):
        return "(" + ", ".join("None" if v is None else str(v) for v in value) + ")"
    return str(value)


def _add_input(graph: Graph, fix: Fix, node_id: str | None, applied: AppliedFix) -> None:
    """Add an InputLayer and feed it to the layer that lacks one."""
    target = None
    candidates = [node_id] if node_id in graph.nodes else []
    candidates += [n for n in _roots(graph) if n != node_id]
    for cand in candidates:
        if graph.nodes[cand].class_name != INPUT_CLASS and _has_free_slot(graph, cand):
            target = cand
            break
    pos = None
    if target is not None and graph.position(target) is not None:
        x, y = graph.position(target)  # type: ignore[misc]
        pos = (x, y - _GAP)
    new = graph.add_node(fix.class_name or INPUT_CLASS, fix.config, pos=pos)
    applied.new_node_id = new.id
    applied._undo.append(lambda: graph.remove_node(new.id))
    if target is not None:
        edge: Edge = graph.connect(new.id, target)
        applied._undo.append(lambda: graph.disconnect(edge))
        applied.changes.append(f"Added {new.name} and connected it to {graph.node(target).name}.")
    else:
        applied.changes.append(f"Added {new.name}: connect it to the first layer.")


def _has_free_slot(graph: Graph, node_id: str) -> bool:
    _lo, hi = input_arity(graph.nodes[node_id].class_name)
    return hi is None or len(graph.in_edges(node_id)) < hi


def _roots(graph: Graph) -> list[str]:
    try:
        order = graph.topological_order()
    except UserError:
        order = list(graph.nodes)
    return [n for n in order if not graph.in_edges(n)]
