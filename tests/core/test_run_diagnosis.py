"""How a run went, from synthetic histories: each common outcome said in one sentence with the next step."""

from __future__ import annotations

import math
from types import SimpleNamespace

from support import image_mlp

from neuralstudio.core.run_outcome import (
    diagnose,
    diagnose_record,
    diagnose_result,
    end_message,
    output_layer,
    record_accuracy,
)
from neuralstudio.core.runs import RunRecord

NEXT = "Next: draw digits in the Predict workspace"


def one_sentence(text: str) -> bool:
    """One sentence: a single full stop, at the end (numbers such as 2.29 have no space after their dot)."""
    return text.endswith(".") and ". " not in text


def history(loss, accuracy, val_loss=None, val_accuracy=None):
    h = {"loss": list(loss), "accuracy": list(accuracy)}
    if val_loss is not None:
        h["val_loss"] = list(val_loss)
    if val_accuracy is not None:
        h["val_accuracy"] = list(val_accuracy)
    return h


# What SGD at learning rate 100 did to the tiny MNIST MLP (measured): the running-average loss of the first
# epoch went from 2.29 to 74,449, and every accuracy stayed at about 10%.
LR100 = history([16399.6, 45.1, 44.6], [0.096, 0.104, 0.092], [58.4, 53.8, 41.9], [0.092, 0.117, 0.108])
LR100_BATCHES = [2.29, 607.2, 74448.9, 55844.9, 44684.2, 44.6]
# A good run: both accuracies high, validation loss no longer falling.
GOOD = history([0.9, 0.35, 0.25, 0.2], [0.75, 0.9, 0.93, 0.95], [0.40, 0.30, 0.26, 0.26], [0.88, 0.92, 0.94, 0.94])


def test_a_blown_up_loss_is_diverged_and_names_a_10x_smaller_learning_rate():
    d = diagnose(LR100, batch_losses=LR100_BATCHES, num_classes=10, learning_rate=100.0, test_accuracy=0.1)
    assert d.kinds == ["diverged", "chance"]
    assert d.bad and not d.went_well
    diverged, chance = d.sentences
    assert "rose from 2.29 to 74,449" in diverged
    assert "learning rate 100 is too high; try 10 (10x smaller)" in diverged
    assert chance.startswith("Test accuracy 10.0% is chance level: 10% is what guessing gets with 10 classes")
    assert all(one_sentence(s) for s in d.sentences)


def test_the_end_message_of_a_diverged_run_does_not_send_the_learner_to_predict():
    res = SimpleNamespace(status="finished", message="Trained 3 epoch(s).", history=LR100, test_accuracy=0.1)
    d = diagnose_result(res, learning_rate=100.0, num_classes=10)
    msg = end_message(res, diagnosis=d)
    assert msg.startswith("Trained 3 epoch(s). The training loss rose from 2.3 to 16,400 (and ended at 44.6)")
    assert "10% is what guessing gets with 10 classes" in msg and "try 10 (10x smaller)" in msg
    assert msg.count("10.0%") == 1  # the chance sentence states the test accuracy: not repeated
    assert NEXT not in msg


def test_a_nan_loss_is_diverged_even_without_a_rise_first():
    d = diagnose({"loss": [2.3, math.nan], "accuracy": [0.1, 0.1]}, learning_rate=1.0)
    assert d.kinds == ["diverged"] and d.bad
    assert d.sentences[0] == ("A loss that becomes NaN or infinite means training diverged: the learning rate 1 is "
                              "too high; try 0.1 (10x smaller).")
    assert diagnose({"loss": [2.3], "accuracy": [0.1]}, status="nan").bad


def test_noise_in_small_losses_is_not_divergence():
    """A run continued from a good model starts near 0, where one batch can be several times the first."""
    d = diagnose(history([0.06, 0.05], [0.98, 0.985], [0.07, 0.065], [0.978, 0.98]),
                 batch_losses=[0.04, 0.06, 0.21, 0.05, 0.3, 0.05], num_classes=10, test_accuracy=0.979)
    assert "diverged" not in d.kinds and d.went_well


def test_chance_level_says_what_guessing_gets_and_the_likely_cause():
    flat = history([2.302, 2.301, 2.301], [0.11, 0.1, 0.11], [2.302, 2.302, 2.301], [0.1, 0.1, 0.1])
    # the loss hardly moved: learning rate too low
    d = diagnose(flat, num_classes=10, learning_rate=1e-6, test_accuracy=0.098, batch_losses=[2.303, 2.302, 2.301])
    assert d.kinds == ["chance"] and d.bad
    assert d.sentences[0] == (
        "Test accuracy 9.8% is chance level: 10% is what guessing gets with 10 classes, so the network learned "
        "nothing: the loss hardly changed (2.3 to 2.3), so the learning rate 1e-06 is likely too low: try 1e-05 "
        "(10x larger).")
    # a loss that expects probabilities after a linear output layer
    d = diagnose(flat, num_classes=10, learning_rate=0.001, loss="sparse_categorical_crossentropy",
                 output_activation="linear", test_accuracy=0.1)
    assert "expects probabilities, but the output layer's activation is linear: use softmax" in d.sentences[0]
    # nothing tells which: every likely cause
    d = diagnose({"loss": [2.3], "accuracy": [0.1]}, num_classes=10, test_accuracy=0.1)
    assert "learning rate too high or too low" in d.sentences[0] and "does not fit the output" in d.sentences[0]
    assert all(one_sentence(s) for s in d.sentences)


# Nielsen's 784-30-10 network at learning rate 30 on his quadratic cost, batches of 10 (measured): the first
# steps pushed every sigmoid output to 0, the loss fell from 1.42 to 0.5 (what all-zero outputs cost) within the
# first epoch and then stayed there, at chance accuracy.
SATURATED = history([0.5062, 0.5042, 0.5003], [0.1001, 0.1018, 0.1007], [0.49999, 0.49999, 0.5],
                    [0.1025, 0.1013, 0.0975])
SATURATED_BATCHES = [1.417, 0.959, 0.805, 0.728, 0.683, 0.5062, 0.5042, 0.5003]


def test_a_loss_that_fell_in_its_first_steps_then_froze_at_chance_is_diverged_by_saturation():
    d = diagnose(SATURATED, num_classes=10, learning_rate=30.0, loss="quadratic", output_activation="sigmoid",
                 test_accuracy=0.0975, batch_losses=SATURATED_BATCHES)
    assert d.kinds == ["diverged", "chance"] and d.bad
    assert d.sentences[0] == (
        "The training loss went from 1.42 to 0.5 within the first epoch and then hardly changed, so the first "
        "steps likely saturated the units (their gradients are almost zero, so nothing learns any more) and "
        "training diverged: the learning rate 30 is likely too high; try 3 (10x smaller).")
    assert d.sentences[1].endswith("so the network learned nothing.")  # the cause is in the first sentence
    assert all(one_sentence(s) for s in d.sentences)


def test_a_loss_still_falling_slowly_at_chance_is_a_learning_rate_too_low_not_saturation():
    # the loss fell steadily over the epochs, not in the first steps: not saturated
    slow = history([1.2, 1.1, 1.0, 0.9], [0.1, 0.1, 0.11, 0.11])
    d = diagnose(slow, num_classes=10, learning_rate=0.001, test_accuracy=0.11,
                 batch_losses=[1.25, 1.2, 1.1, 1.0, 0.9])
    assert "diverged" not in d.kinds and d.kinds == ["chance"]
    # one epoch cannot tell a frozen loss from a falling one
    one = history([0.5062], [0.1001])
    assert "diverged" not in diagnose(one, num_classes=10, learning_rate=30.0, test_accuracy=0.1,
                                      batch_losses=SATURATED_BATCHES[:6]).kinds
    # above chance the same curve is a network that learned quickly
    assert "diverged" not in diagnose(SATURATED, num_classes=10, learning_rate=3.0, test_accuracy=0.9,
                                      batch_losses=SATURATED_BATCHES).kinds


def test_chance_level_depends_on_the_number_of_classes():
    h = history([0.69, 0.69], [0.5, 0.52])
    assert diagnose(h, num_classes=2, test_accuracy=0.52).kinds == ["chance"]
    assert "50% is what guessing gets with 2 classes" in diagnose(h, num_classes=2, test_accuracy=0.52).sentences[0]
    assert "chance" not in diagnose(h, num_classes=10, test_accuracy=0.52).kinds  # 52% of 10 classes is learning
    assert "chance" not in diagnose(h, test_accuracy=0.1).kinds  # classes unknown: not judged
    assert "chance" not in diagnose(h, num_classes=10, test_accuracy=0.16).kinds  # 0.15 and below is chance


def test_a_stopped_run_at_chance_has_learned_nothing_yet():
    d = diagnose({"loss": [2.3], "accuracy": [0.1]}, status="stopped", num_classes=10, test_accuracy=0.11)
    assert d.kinds == ["chance"] and d.bad
    assert d.sentences[0].endswith("so the network has learned nothing yet.")
    msg = end_message(SimpleNamespace(status="stopped", test_accuracy=0.11), diagnosis=d, last_batch=(0, 3))
    assert "learned nothing yet" in msg and "Save model" in msg and NEXT not in msg


def test_underfitting_still_rising_asks_for_more_epochs_or_a_higher_learning_rate():
    d = diagnose(history([1.9, 1.2, 0.9], [0.4, 0.62, 0.71], [1.3, 1.0, 0.85], [0.58, 0.68, 0.70]),
                 num_classes=10, learning_rate=0.001, test_accuracy=0.72)
    assert d.kinds == ["underfitting"] and not d.bad and not d.went_well
    assert d.sentences[0] == ("Training accuracy is only 71.0% and was still rising at the end (underfitting): "
                              "train more epochs, or raise the learning rate (try 0.003).")


def test_underfitting_that_stopped_rising_asks_for_a_bigger_network():
    d = diagnose(history([0.9, 0.85, 0.85], [0.70, 0.72, 0.722], [0.9, 0.88, 0.88], [0.70, 0.71, 0.71]),
                 num_classes=10, learning_rate=0.001)
    assert d.kinds == ["underfitting"]
    assert d.sentences[0].startswith("Training and validation accuracy are both low (72.2% and 71.0%) and no "
                                     "longer rising (underfitting): make the network bigger")
    assert "raise the learning rate" in d.sentences[0]


def test_overfitting_uses_the_overfitting_watch_and_suggests_fewer_epochs_dropout_more_data():
    d = diagnose(history([0.5, 0.3, 0.2, 0.1, 0.05], [0.9, 0.94, 0.96, 0.98, 0.99],
                         [0.35, 0.3, 0.32, 0.36, 0.4], [0.92, 0.93, 0.93, 0.92, 0.92]), num_classes=10)
    assert d.kinds == ["overfitting"] and not d.bad and not d.went_well
    s = d.sentences[0]
    assert s.startswith("Validation loss rose from epoch 2 on while training loss kept falling")
    assert "fewer epochs" in s and "Dropout" in s and "more data" in s and one_sentence(s)
    # early stopping already acted on it (and restored the best weights): nothing to say
    assert "overfitting" not in diagnose(history([0.5, 0.3, 0.2, 0.1], [0.9, 0.94, 0.96, 0.98],
                                                 [0.35, 0.3, 0.32, 0.36], [0.92, 0.93, 0.93, 0.92]),
                                         status="early_stopped").kinds


def test_still_improving_when_the_epochs_ran_out():
    d = diagnose(history([0.6, 0.3, 0.2], [0.85, 0.92, 0.95], [0.4, 0.3, 0.2], [0.9, 0.93, 0.95]),
                 num_classes=10, test_accuracy=0.95)
    assert d.kinds == ["still_improving"] and d.went_well  # a suggestion, not a problem
    assert d.sentences[0] == "Validation loss was still falling in the last epoch (0.3 to 0.2): more epochs would help."
    msg = end_message(SimpleNamespace(status="finished", message="Trained 3 epoch(s).", test_accuracy=0.95),
                      diagnosis=d)
    assert msg == ("Trained 3 epoch(s). Test accuracy 95.00%. Validation loss was still falling in the last epoch "
                   "(0.3 to 0.2): more epochs would help. " + NEXT + ", or change a setting and train again to "
                   "compare.")
    # without a validation loss, the validation accuracy tells
    d = diagnose({"loss": [0.6, 0.3], "accuracy": [0.9, 0.95], "val_accuracy": [0.9, 0.94]})
    assert d.kinds == ["still_improving"] and "90.0% to 94.0%" in d.sentences[0]
    # flat at the end: nothing to say
    assert diagnose(GOOD, num_classes=10).kinds == []


def test_validation_better_than_training_is_explained_as_normal():
    d = diagnose(history([0.8, 0.4], [0.93, 0.95], [0.30, 0.30], [0.97, 0.975]), num_classes=10)
    assert d.kinds == ["validation_better"] and d.went_well
    s = d.sentences[0]
    assert s.startswith("Validation accuracy (97.5%) is above training accuracy (95.0%), which is normal")
    assert "averaged over the epoch" in s and "Dropout and augmentation are active only in training" in s
    assert one_sentence(s)


def test_a_good_run_goes_to_predict():
    d = diagnose(GOOD, num_classes=10, learning_rate=0.001, test_accuracy=0.94)
    assert d.kinds == [] and d.went_well and not d.bad
    assert d.accuracy == 0.94 and d.accuracy_name == "Test"
    assert d.line() == NEXT + ", or change a setting and train again to compare."
    msg = end_message(SimpleNamespace(status="finished", message="Trained 4 epoch(s).", test_accuracy=0.94),
                      diagnosis=d)
    assert msg.endswith(NEXT + ", or change a setting and train again to compare.")


def test_failed_runs_are_not_diagnosed():
    d = diagnose(LR100, status="failed", num_classes=10)
    assert d.kinds == [] and not d.went_well and d.line() == ""


def test_the_judging_accuracy_falls_back_from_test_to_validation_to_training():
    assert diagnose(GOOD, val_accuracy=0.93).accuracy_name == "Validation"
    assert diagnose({"loss": [1.0], "accuracy": [0.4]}).accuracy == 0.4
    assert diagnose({}).accuracy is None


def _record(**kw) -> RunRecord:
    design = image_mlp("tiny").to_dict()
    return RunRecord(id="20260101-120000-abcd", created="2026-01-01T12:00:00+00:00", design=design, **kw)


def test_a_record_read_back_is_diagnosed_from_its_epochs_batches_and_data():
    rec = _record(hyperparameters={"learning_rate": 100.0, "optimizer": "sgd",
                                   "loss": "sparse_categorical_crossentropy"},
                  data={"num_classes": 10}, status="finished",
                  epochs=[{"epoch": i, "loss": lo, "accuracy": a, "val_loss": vl, "val_accuracy": va}
                          for i, (lo, a, vl, va) in enumerate(zip(*LR100.values()))],
                  batches=[{"loss": v} for v in LR100_BATCHES], final={"test_accuracy": 0.1, "val_accuracy": 0.108})
    d = diagnose_record(rec)
    assert d.kinds == ["diverged", "chance"] and "learning rate 100 is too high" in d.sentences[0]
    assert record_accuracy(rec) == 0.1
    # without the data's classes, the output layer's units stand in for them
    rec.data = {}
    assert diagnose_record(rec).kinds == ["diverged", "chance"]


def test_records_that_hold_anything_are_read_defensively():
    assert output_layer(image_mlp("tiny").to_dict()) == ("softmax", 10)
    for design in ({}, {"graph": []}, {"graph": {"nodes": "x"}}, {"graph": {"nodes": [1, {"id": 3}]}},
                   {"graph": {"nodes": [{"id": "a", "class_name": "Dense", "config": []}], "edges": "?"}}):
        assert output_layer(design) in ((None, None),)
    rec = _record(status="finished", epochs=[{"loss": "many"}, {"accuracy": True}], final={"test_accuracy": "x"},
                  data={"num_classes": -3})
    assert diagnose_record(rec).kinds == []
    assert record_accuracy(rec) is None
    assert record_accuracy(_record(final={"val_accuracy": 0.5})) == 0.5
