"""Measure speed: the examples an epoch of the chosen data trains on, and the timed steps."""

from __future__ import annotations

import numpy as np
import pytest

from neuralstudio.core.design import Design
from neuralstudio.core.graph import Graph
from neuralstudio.core.progress import fit_examples
from neuralstudio.core.training_settings import TrainingSettings
from neuralstudio.ml import data as data_mod
from neuralstudio.ml import speed
from neuralstudio.ml.data import DataError, Dataset, load_dataset, stratified_split


def tiny_design() -> Design:
    g = Graph()
    a = g.add_node("InputLayer", {"batch_shape": [None, 28, 28]}, name="image")
    b = g.add_node("Flatten", {}, name="flat")
    c = g.add_node("Dense", {"units": 10, "activation": "softmax"}, name="digit")
    g.connect(a.id, b.id)
    g.connect(b.id, c.id)
    return Design(graph=g, training=TrainingSettings(batch_size=16), name="tiny")


def test_named_data_sets_are_counted_without_loading(monkeypatch):
    def no_loading(*_args, **_kwargs):
        raise AssertionError("counting a named data set must not load (or download) it")

    monkeypatch.setattr(data_mod, "load_dataset", no_loading)
    assert speed.train_examples("mnist") == 60_000
    assert speed.train_examples("fashion-mnist") == 60_000
    assert speed.train_examples(" MNIST-Sample ") == 8_000


def test_the_samples_count_is_the_loaded_one():
    assert speed.train_examples("mnist-sample") == len(load_dataset("mnist-sample").x_train)
    for name in data_mod.DATA_SOURCES:
        assert name in speed.NAMED_TRAIN_EXAMPLES


def test_an_epoch_of_full_mnist_is_7_5_times_the_sample():
    settings = TrainingSettings(validation_split=0.1)
    assert speed.epoch_examples("mnist", settings) == 54_000
    assert speed.epoch_examples("mnist-sample", settings) == 7_200


def test_an_in_memory_data_set_and_a_file_count_their_own_examples(tmp_path):
    x = np.zeros((30, 6, 6), dtype=np.uint8)
    y = np.arange(30) % 3
    ds = Dataset("mine", x, y, None, None, ["a", "b", "c"])
    assert speed.train_examples(ds) == 30
    np.savez(tmp_path / "train.npz", x_train=x, y_train=y, x_test=x[:5], y_test=y[:5])
    assert speed.train_examples(str(tmp_path / "train.npz")) == 30


def test_a_missing_file_is_a_readable_error(tmp_path):
    with pytest.raises(DataError, match="neither a known data set"):
        speed.train_examples(str(tmp_path / "nowhere.csv"))


@pytest.mark.parametrize(("n", "split"), [(1_001, 0.25), (1_001, 0.5), (8_000, 0.1), (37, 0.3)])
def test_the_held_out_part_is_rounded_as_the_trainer_splits(n, split):
    x = np.zeros((n, 1), dtype=np.float32)
    y = np.arange(n) % 7
    kept = stratified_split(x, y, split, 0)[0]
    assert fit_examples(n, split) == len(kept)


def test_measure_times_real_steps():
    sps = speed.measure_samples_per_second(tiny_design(), TrainingSettings(batch_size=16), steps=2)
    assert sps > 0
