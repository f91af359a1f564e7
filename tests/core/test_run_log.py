"""The event-log lines of a run."""

from __future__ import annotations

from neuralstudio.core.run_log import epoch_line, run_start_line, stopped_epoch_line
from neuralstudio.core.training_settings import TrainingSettings


def test_run_start_line_names_the_settings_and_data():
    s = TrainingSettings(optimizer="adam", learning_rate=0.001, batch_size=32, epochs=2)
    assert run_start_line("tiny", s, "mnist-sample") == (
        "Training tiny: adam, learning rate 0.001, batch size 32, 2 epochs on mnist-sample.")


def test_epoch_line_shows_the_metrics_it_has():
    logs = {"loss": 0.21344, "accuracy": 0.9381, "val_loss": 0.251, "seconds": 3.2}
    assert epoch_line(2, logs) == "epoch 3: loss 0.2134 accuracy 0.9381 val_loss 0.2510"
    assert epoch_line(0, {"loss": None, "accuracy": "n/a"}) == "epoch 1:"


def test_stopped_epoch_line():
    assert stopped_epoch_line(1, {"loss": 0.5}) == "epoch 2 stopped early: loss 0.5000"
    assert stopped_epoch_line(1, {"loss": 0.0}) == "epoch 2 stopped early: loss 0.0000"
    assert stopped_epoch_line(1, {}) == "epoch 2 stopped early: loss nan"

