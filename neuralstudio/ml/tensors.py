"""NumPy arrays to TensorFlow tensors without holding the GIL for long.

``model.fit`` on NumPy arrays copies each array into a tensor in one call that holds the
GIL for the whole copy.  For the MNIST sample (27 MB of images) that is 40-60 ms the first
time in a process, while fresh memory is faulted in: long enough to freeze the window,
whose event loop needs the GIL to run.  Copying in slices of a megabyte or so gives the
GIL back between slices; the slices are then joined by a TensorFlow op, which runs
without the GIL.  Handing ``fit`` tensors also means the copy happens once per run, not
once per ``fit`` call (the trainer calls it again when it retunes its steps per execution).
"""

from __future__ import annotations

from typing import Any

#: bytes copied per slice: about 1 ms of GIL each, so a waiting GUI thread gets it back quickly
SLICE_BYTES = 1 << 20


def to_tensor(array: Any, *, slice_bytes: int = SLICE_BYTES) -> Any:
    """``array`` as an eager tensor in host memory (None stays None); copied slice by slice.

    Host memory, as ``fit`` keeps NumPy data: a data set need not fit in GPU memory, and
    ``tf.data`` moves each batch to the device anyway.
    """
    if array is None:
        return None
    import numpy as np
    import tensorflow as tf

    array = np.asarray(array)
    rows = max(1, slice_bytes // max(1, array[:1].nbytes)) if array.ndim else 1
    with tf.device("/cpu:0"):
        if array.ndim == 0 or len(array) <= rows:
            return tf.convert_to_tensor(array)
        parts = [tf.convert_to_tensor(array[i:i + rows]) for i in range(0, len(array), rows)]
        return tf.concat(parts, axis=0)


def to_tensors(*arrays: Any, slice_bytes: int = SLICE_BYTES) -> tuple[Any, ...]:
    """:func:`to_tensor` of each array, in order."""
    return tuple(to_tensor(a, slice_bytes=slice_bytes) for a in arrays)
