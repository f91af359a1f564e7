"""A finished run's traced TensorFlow graphs, taken apart on the run's own thread so that no collection has to.

Every run traces new graphs: Keras's train, test and predict steps (``one_step_on_data`` inside
``multi_step_on_iterator``; again after a recompile to more steps per execution), the trainer's test pass and
the ``tf.data`` functions of its input pipeline. A traced ``FuncGraph`` is a knot of reference cycles (graph,
operations, tensors, their shapes and tracebacks), so dropping the functions frees nothing: the app's next full
garbage collection does, on the GUI thread (``ui/garbage_collection.py``), with the GIL held throughout.
Measured on ``mnist-cnn``: 20,000 cyclic objects, a 25-54 ms pass at the end of every run (51-70 ms beside a
busy program), the last GUI stall over 50 ms in ``tests/benchmarks/bench_train_window.py``.

Collecting on the training thread instead is no way out: a pass holds the GIL just the same, and one that
meets a PySide object destroys it from the wrong thread (the deadlock ``ui/garbage_collection.py`` tells of).
TensorFlow's own cure is ``dismantle_func_graph``, which breaks a graph's cycles so that reference counting
frees it; its tests use it to assert that tracing leaves no garbage. :func:`release_traced` finds the graphs
behind the objects the trainer is about to drop and dismantles them one by one: each graph is freed at once,
in pieces the GUI thread can interleave with (the GIL changes hands between them), and the GUI thread's pass
at the run's end finds a few thousand objects instead.

The walk from those objects stays inside what is dropped: it never enters a Keras layer, model, optimizer or
variable (the model lives on in Predict), nor a module or a class, and follows a Python function only into its
closure and defaults, never its globals. A graph reached that way belongs to a step nobody can call again.
"""

from __future__ import annotations

import gc
import types
from collections.abc import Iterable
from typing import Any

#: the walk gives up after this many objects: a root that leads into the wider heap would cost more than the
#: collection it saves (a run of mnist-cnn reaches about 23,000)
MAX_OBJECTS = 200_000


def release_traced(roots: Iterable[Any]) -> int:
    """Dismantle every traced TensorFlow graph behind ``roots``, which the caller is about to drop.

    ``roots``: compiled steps (``model.train_function`` ...), ``tf.function`` objects, ``tf.data`` datasets.
    Returns how many graphs were dismantled; 0 on the other backends, which trace no ``FuncGraph``. None of the
    functions or datasets may be called after this.
    """
    roots = [r for r in roots if r is not None]
    if not roots:
        return 0
    import keras

    if keras.backend.backend() != "tensorflow":
        return 0
    from tensorflow.python.framework.func_graph import dismantle_func_graph

    graphs = _graphs_behind(roots)
    for graph in graphs:
        dismantle_func_graph(graph)
    return len(graphs)


def _graphs_behind(roots: list[Any]) -> list[Any]:
    """The ``FuncGraph`` objects reachable from ``roots`` without entering anything that outlives them."""
    import keras
    import numpy as np
    import tensorflow as tf
    from keras.src.saving.keras_saveable import KerasSaveable
    from tensorflow.python.framework.func_graph import FuncGraph

    kept = (types.ModuleType, type, KerasSaveable, keras.Variable, tf.Variable, np.ndarray, str, bytes)
    seen: set[int] = set()
    stack = list(roots)
    found: list[Any] = []
    while stack:
        obj = stack.pop()
        if id(obj) in seen:
            continue
        seen.add(id(obj))
        if len(seen) > MAX_OBJECTS:
            return []  # not a run's leftovers: take nothing apart rather than something still in use
        if isinstance(obj, kept):
            continue
        if isinstance(obj, FuncGraph):
            found.append(obj)
        if isinstance(obj, types.FunctionType):  # its closure, not its module's globals
            stack.extend(_cell_contents(obj))
            stack.extend(obj.__defaults__ or ())
        elif isinstance(obj, types.MethodType):
            stack.extend((obj.__self__, obj.__func__))
        else:
            stack.extend(gc.get_referents(obj))
    return found


def _cell_contents(function: types.FunctionType) -> list[Any]:
    out = []
    for cell in function.__closure__ or ():
        try:
            out.append(cell.cell_contents)
        except ValueError:  # an empty cell: a name the function assigns later
            pass
    return out
