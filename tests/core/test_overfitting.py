"""Overfitting detection: validation loss rising while training loss falls, reported once."""

from __future__ import annotations

import math

from neuralstudio.core.overfitting import OVERFIT_EPOCHS, OverfittingWatch, overfitting_message, overfitting_start


def test_overfitting_rule():
    assert overfitting_start([1.0, 0.8, 0.6, 0.5], [0.9, 0.7, 0.75, 0.8]) == 2
    assert overfitting_start([1.0, 0.8, 0.6], [0.9, 0.7, 0.75]) is None  # one rise only
    assert overfitting_start([1.0, 0.8, 0.9, 1.0], [0.9, 0.7, 0.75, 0.8]) is None  # train loss rose too
    assert overfitting_start([1.0, 0.8, 0.6, 0.5], [0.9, 0.7, 0.75, 0.8], n=3) is None


def test_missing_or_nan_losses_are_no_evidence():
    assert overfitting_start([1.0, 0.8, 0.6, 0.5], [0.9, 0.7, math.nan, 0.8]) is None
    assert overfitting_start([1.0, 0.8, None, 0.5], [0.9, 0.7, 0.75, 0.8]) is None


def test_the_watch_reports_the_start_once():
    watch = OverfittingWatch()
    found = [watch.add_epoch({"loss": tl, "val_loss": vl})
             for tl, vl in [(1.0, 0.9), (0.8, 0.7), (0.6, 0.75), (0.5, 0.8), (0.4, 0.9)]]
    assert found == [None, None, None, 2, None]
    assert watch.start == 2


def test_a_run_without_validation_never_overfits():
    watch = OverfittingWatch()
    assert all(watch.add_epoch({"loss": tl}) is None for tl in (1.0, 0.8, 0.6, 0.5))
    late = OverfittingWatch()  # validation loss missing once, even at the start: no conclusion
    logs = [{"loss": 1.0}, {"loss": 0.8, "val_loss": 0.7}, {"loss": 0.6, "val_loss": 0.75},
            {"loss": 0.5, "val_loss": 0.8}]
    assert [late.add_epoch(e) for e in logs] == [None, None, None, None]


def test_the_message_explains_and_advises():
    msg = overfitting_message(2)
    assert msg.startswith("Overfitting since epoch 2:")
    assert f"risen for {OVERFIT_EPOCHS} epochs" in msg and "Dropout" in msg and "early stopping" in msg
