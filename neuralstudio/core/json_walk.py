"""Walking untrusted JSON (model configs, run records) without recursion: a hostile file can nest deeply."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any


def json_objects(data: Any) -> Iterator[dict[str, Any]]:
    """Every JSON object in ``data``, nested ones included, with an explicit stack instead of recursion."""
    stack = [data]
    while stack:
        obj = stack.pop()
        if isinstance(obj, dict):
            yield obj
            stack.extend(obj.values())
        elif isinstance(obj, list):
            stack.extend(obj)
