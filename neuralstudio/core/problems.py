"""Problems found in a design, each with a plain-language message and maybe a fix.

The checker that finds them lives in ``ml`` (it needs Keras); the data they
carry and the fixes that edit the graph are pure, so the editor can show and
apply them and the CLI can print them.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any


@dataclass(frozen=True)
class Fix:
    """A one-click repair.

    Kinds:
        ``insert_before``: insert ``class_name`` with ``config`` between the
            node and its input ``slot`` (e.g. a Flatten before a Dense).
        ``set_params``: merge ``config`` into the node's config.
        ``add_input``: add an InputLayer with ``config`` and connect it to the
            node's free input.
    """

    kind: str
    label: str
    class_name: str | None = None
    config: dict[str, Any] = field(default_factory=dict)
    slot: int = 0


@dataclass(frozen=True)
class Problem:
    """Something wrong with a node (``node_id``) or with the whole graph (None)."""

    message: str
    node_id: str | None = None
    severity: str = "error"  # "error" stops building, "warning" does not
    fix: Fix | None = None

    def __str__(self) -> str:
        return self.message
