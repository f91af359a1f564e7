"""What fit reads: arrays copied into tensors slice by slice, and batched without tf.data autotuning."""

from __future__ import annotations

import numpy as np
import pytest

from neuralstudio.ml.input_pipeline import batches, to_tensor, to_tensors

pytestmark = pytest.mark.backend_neutral  # the trainer's tf.data pipeline is used on TensorFlow only


tf = pytest.importorskip("tensorflow")


def test_sliced_copy_equals_the_array_in_host_memory():
    x = np.random.default_rng(0).random((1001, 28, 28, 1), dtype=np.float32)
    t = to_tensor(x, slice_bytes=28 * 28 * 4 * 64)  # 64 rows a slice: 16 slices, the last one short
    assert t.dtype == tf.float32 and tuple(t.shape) == x.shape
    np.testing.assert_array_equal(t.numpy(), x)
    assert "CPU" in t.device


def test_labels_small_arrays_and_none():
    y = np.arange(10, dtype=np.int64)
    x, ty, none = to_tensors(np.ones((3, 4), np.float32), y, None)
    assert none is None
    assert ty.dtype == tf.int64 and ty.numpy().tolist() == list(range(10))
    assert x.numpy().sum() == 12
    assert float(to_tensor(np.float32(2.5))) == 2.5


def test_a_copy_not_a_view():
    """fit must train on what the array held when the run started, whatever the caller does to it later."""
    x = np.zeros((100, 5), np.float32)
    t = to_tensor(x, slice_bytes=80)
    x[:] = 7
    assert float(tf.reduce_sum(t)) == 0.0


def test_repeated_batches_cover_every_example_once_per_epoch_in_a_new_order():
    import keras

    from neuralstudio.ml.input_pipeline import steps_per_epoch

    keras.utils.set_random_seed(1)
    x = np.arange(70, dtype=np.float32).reshape(70, 1)
    steps = steps_per_epoch(70, 32)
    assert steps == 3  # two full batches and a short one, as fit makes them
    ds = batches(*to_tensors(x, np.arange(70)), 32, shuffle=True, repeat=True)
    got = [(bx.numpy().ravel(), by.numpy()) for bx, by in ds.take(3 * steps)]
    assert [len(b) for b, _ in got] == [32, 32, 6] * 3
    epochs = []
    for e in range(3):
        part = got[e * steps:(e + 1) * steps]
        xs = np.concatenate([b for b, _ in part])
        np.testing.assert_array_equal(xs, np.concatenate([b for _, b in part]))  # x and y stay paired
        assert sorted(xs.tolist()) == list(range(70))
        epochs.append(xs)
    assert not np.array_equal(epochs[0], epochs[1]) and not np.array_equal(epochs[1], epochs[2])
    assert not ds.options().autotune.enabled

    # a later fit call of the same run (after retuning) goes on with the order due, not epoch 1's again
    keras.utils.set_random_seed(1)
    again = batches(*to_tensors(x, np.arange(70)), 32, shuffle=True, repeat=True, skip_epochs=2)
    third = np.concatenate([bx.numpy().ravel() for bx, _ in again.take(steps)])
    np.testing.assert_array_equal(third, epochs[2])


def test_unshuffled_batches_keep_the_order():
    ds = batches(*to_tensors(np.arange(10, dtype=np.float32), np.arange(10)), 4, shuffle=False)
    assert [b.numpy().tolist() for b, _ in ds] == [[0, 1, 2, 3], [4, 5, 6, 7], [8, 9]]
