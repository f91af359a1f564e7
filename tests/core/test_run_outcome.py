"""End-of-run messages in plain words, read from a result by attribute name (no Keras, no trainer)."""

from __future__ import annotations

from types import SimpleNamespace

from neuralstudio.core.run_outcome import end_message, is_complete, is_error, run_status


def result(**attrs):
    return SimpleNamespace(**attrs)


def test_finished_adds_the_test_accuracy_and_the_next_step():
    msg = end_message(result(status="finished", message="Trained 2 epoch(s).", test_accuracy=0.9123))
    assert msg.startswith("Trained 2 epoch(s). Test accuracy 91.23%.")
    assert "Predict workspace" in msg


def test_finished_without_a_message_says_how_long():
    msg = end_message(result(status="finished", epochs_run=3, seconds=42.0))
    assert msg.startswith("Training finished: 3 epochs in 42 s.")
    assert "accuracy" not in msg  # no test accuracy: the validation accuracy is left to the plots


def test_an_accuracy_already_given_is_not_repeated():
    msg = end_message(result(status="finished", message="Done: 91.23% on the test set.", test_accuracy=0.9123))
    assert msg.count("91.23%") == 1


def test_early_stopped():
    msg = end_message(result(status="early_stopped", epochs_run=7, test_accuracy=0.5))
    assert "after 7 epochs" in msg and "Test accuracy 50.00%." in msg
    assert end_message(result(status="early_stopped"), epochs_done=4).startswith(
        "Early stopping ended training after 4 epochs")


def test_stopped_says_where_and_that_the_model_is_kept():
    msg = end_message(result(status="stopped"), last_batch=(2, 9))
    assert msg.startswith("Stopped at epoch 3, batch 10.") and "Save model" in msg


def test_nan_names_the_batch_and_a_smaller_learning_rate():
    # where and what to try, then why (tests/core/test_run_diagnosis.py has the diagnosis itself)
    why = (" A loss that becomes NaN or infinite means training diverged: the learning rate is too high for this "
           "network.")
    assert end_message(result(status="nan"), last_batch=(0, 4), learning_rate=100.0) == (
        "The loss became NaN at epoch 1, batch 5 with learning rate 100: try 10." + why)
    assert end_message(result(status="nan"), last_batch=(0, 4)) == (
        "The loss became NaN at epoch 1, batch 5: try a smaller learning rate." + why)
    assert end_message(result(status="nan", message="loss became NaN: try 0.01.")) == "loss became NaN: try 0.01." + why


def test_failed_and_statusless_results():
    assert end_message(object()) == "Training failed: the event log has details."
    assert end_message(result(status="failed", message="No data.")) == "No data."


def test_outcome_kinds():
    assert run_status(object()) == "failed"
    assert is_error(result(status="nan")) and is_error(object()) and not is_error(result(status="stopped"))
    assert is_complete(result(status="finished")) and is_complete(result(status="early_stopped"))
    assert not is_complete(result(status="stopped"))
