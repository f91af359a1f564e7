"""Arrays copied into tensors slice by slice (so the GUI thread gets the GIL between slices)."""

from __future__ import annotations

import numpy as np
import pytest

from neuralstudio.ml.tensors import to_tensor, to_tensors

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
