"""A minimal observer so that views can mirror the model without the model knowing them."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any


@dataclass(frozen=True)
class GraphEvent:
    """What changed: ``kind`` is one of node_added, node_removed, node_changed,
    node_moved, edge_added, edge_removed, outputs_changed, reset; ``subject`` is
    the node id or the :class:`~neuralstudio.core.graph.Edge`."""

    kind: str
    subject: Any


class EventEmitter:
    """Calls every connected listener with each event, in connection order."""

    def __init__(self) -> None:
        self._listeners: list[Callable[[Any], None]] = []

    def connect(self, listener: Callable[[Any], None]) -> None:
        self._listeners.append(listener)

    def disconnect(self, listener: Callable[[Any], None]) -> None:
        if listener in self._listeners:
            self._listeners.remove(listener)

    def emit(self, event: Any) -> None:
        for listener in list(self._listeners):
            listener(event)
