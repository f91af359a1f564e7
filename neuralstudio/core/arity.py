"""How many inputs a layer call takes.

This is the one piece of Keras knowledge that ``core`` needs to validate
connections without importing Keras: which layers merge several tensors.
Keep it in step with ``keras.layers`` merging and attention layers.
"""

from __future__ import annotations

MERGE_LAYERS = frozenset(
    {"Add", "Subtract", "Multiply", "Average", "Maximum", "Minimum", "Concatenate", "Dot"}
)
# (minimum, maximum) inputs; None = unbounded
_SPECIAL: dict[str, tuple[int, int | None]] = {
    "InputLayer": (0, 0),
    "Subtract": (2, 2),
    "Dot": (2, 2),
    "MultiHeadAttention": (2, 3),  # query, value[, key]
    "GroupedQueryAttention": (2, 3),
    "Attention": (2, 3),
    "AdditiveAttention": (2, 3),
}


def input_arity(class_name: str) -> tuple[int, int | None]:
    """``(min, max)`` number of input tensors; ``max`` None means any number."""
    if class_name in _SPECIAL:
        return _SPECIAL[class_name]
    if class_name in MERGE_LAYERS:
        return (2, None)
    return (1, 1)
