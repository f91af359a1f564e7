"""Releases what ``tf.custom_gradient`` keeps of each training run (a TensorFlow leak).

Every time Keras traces a train step, ``ReplicaContext.all_reduce`` (called by
the optimizer, even with the default strategy) goes through
``tf.custom_gradient``, which in graph mode registers a gradient function in
TensorFlow's global gradient registry under a fresh ``CustomGradient-N`` name.
That function's closure holds the traced forward tensors, hence the whole
traced graph, forever (tensorflow/tensorflow#97697; the fix, PR #109334, is not
in TensorFlow 2.21).  Measured: 6 MB more per run, run after run, in one window.

The registered function is only looked up while that same trace computes its
gradients, so once a run has finished tracing its functions the entries it added
are dead weight: :func:`released_custom_gradients` drops them after the block.
A later trace (a new run, or a retrace) registers fresh ones of its own.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from typing import Any

PREFIX = "CustomGradient-"


def _registry() -> dict[str, Any] | None:
    """TensorFlow's gradient registry (private API: None if it has moved, and then nothing is dropped)."""
    import keras

    if keras.backend.backend() != "tensorflow":  # only TensorFlow has the registry (and the leak)
        return None
    try:
        from tensorflow.python.framework import ops

        reg = ops._gradient_registry._registry  # noqa: SLF001 - the only handle on the leak
    except (ImportError, AttributeError):
        return None
    return reg if isinstance(reg, dict) else None


def custom_gradient_count() -> int:
    """How many ``tf.custom_gradient`` functions TensorFlow holds (0 if the registry cannot be read)."""
    reg = _registry()
    return sum(1 for k in list(reg) if k.startswith(PREFIX)) if reg is not None else 0


@contextlib.contextmanager
def released_custom_gradients() -> Iterator[None]:
    """Drop the ``tf.custom_gradient`` functions registered while the block ran, when it ends."""
    reg = _registry()
    before = set(reg) if reg is not None else set()
    try:
        yield
    finally:
        if reg is not None:
            for key in [k for k in list(reg) if k.startswith(PREFIX) and k not in before]:
                reg.pop(key, None)
