"""What ``fit`` reads: the data as tensors, cut into batches, without stalling the window.

Two things in Keras's own handling of NumPy arrays cost a GUI that shares the process:

- ``fit`` copies each array into a tensor in one call that holds the GIL for the whole copy:
  for the MNIST sample (27 MB of images), 40-60 ms the first time in a process, while fresh
  memory is faulted in. Copying in slices of a megabyte gives the GIL back between slices;
  the slices are joined by a TensorFlow op, which runs without the GIL. The copy also
  happens once per run, not once per ``fit`` call.
- Keras batches arrays with a ``tf.data`` pipeline that tf.data autotunes. Autotuning runs
  a model thread that sleeps for its optimisation period, which grows to seconds. When an
  epoch's iterator is destroyed while that thread sleeps, the destructor waits for it to
  wake: the run stood still for 5 s at an epoch boundary in 3 of 4 runs from the window
  (gdb: ``~LogicalThreadWrapper`` waiting on ``Model::OptimizeLoop``). :func:`batches`
  builds the same vectorised pipeline (shuffled indices, one gather per batch) with
  autotuning off and fixed parallelism, so no such thread exists.
"""

from __future__ import annotations

from typing import Any

#: bytes copied per slice: about 1 ms of GIL each, so a waiting GUI thread gets it back quickly
SLICE_BYTES = 1 << 20
#: batches gathered at once, and batches kept ready ahead of the training step (fixed: no autotuning)
PARALLEL_BATCHES = 2
PREFETCH_BATCHES = 8


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


def steps_per_epoch(examples: int, batch_size: int) -> int:
    """Batches in one epoch; the last one is short when ``batch_size`` does not divide the examples."""
    return -(-int(examples) // int(batch_size))


def batches(x: Any, y: Any, batch_size: int, *, shuffle: bool, repeat: bool = False, skip_epochs: int = 0) -> Any:
    """``(x, y)`` batches from tensors: one epoch, or epoch after epoch with ``repeat``.

    With ``repeat``, ``fit`` keeps one iterator for the whole run (it needs ``steps_per_epoch``):
    no iterator is torn down at each epoch, and each epoch is shuffled anew by the same stateful
    op (the global seed, ``keras.utils.set_random_seed``, makes the sequence reproducible).
    ``skip_epochs`` continues that sequence where an earlier ``fit`` call of the run left it.
    """
    import tensorflow as tf

    n = int(x.shape[0])
    full, rest = divmod(n, batch_size)

    def order(_: Any) -> Any:
        i = tf.range(n, dtype=tf.int64)
        return tf.random.shuffle(i) if shuffle else i

    def cut(i: Any) -> Any:
        ds = tf.data.Dataset.from_tensor_slices(tf.reshape(i[: full * batch_size], [full, batch_size]))
        if rest:
            ds = ds.concatenate(tf.data.Dataset.from_tensors(i[full * batch_size:]))
        return ds

    epochs = tf.data.Dataset.range(1)
    if repeat:
        epochs = epochs.repeat()
    epochs = epochs.map(order)
    if skip_epochs:
        epochs = epochs.skip(skip_epochs)  # runs the skipped shuffles: the next order is the one due
    index = epochs.flat_map(cut)
    # the data rides along as one element (not captured by the map function), as in Keras
    data = tf.data.Dataset.zip((index, tf.data.Dataset.from_tensors((x, y)).repeat()))
    ds = data.map(lambda i, xy: (tf.gather(xy[0], i), tf.gather(xy[1], i)), num_parallel_calls=PARALLEL_BATCHES)
    ds = ds.prefetch(PREFETCH_BATCHES)
    options = tf.data.Options()
    options.autotune.enabled = False
    options.experimental_optimization.apply_default_optimizations = False
    options.experimental_distribute.auto_shard_policy = tf.data.experimental.AutoShardPolicy.DATA
    if shuffle:
        options.experimental_external_state_policy = tf.data.experimental.ExternalStatePolicy.IGNORE
    ds = ds.with_options(options)
    if repeat:
        return ds
    return ds.apply(tf.data.experimental.assert_cardinality(full + (1 if rest else 0)))


def to_tensors(*arrays: Any, slice_bytes: int = SLICE_BYTES) -> tuple[Any, ...]:
    """:func:`to_tensor` of each array, in order."""
    return tuple(to_tensor(a, slice_bytes=slice_bytes) for a in arrays)
