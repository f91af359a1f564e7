"""Run progress arithmetic: position in epochs, the bars, the speed and the time left, without a display."""

from __future__ import annotations

import math

import pytest

from neuralstudio.core.progress import (
    SPEED_WINDOW_S,
    RunProgress,
    SpeedMeter,
    final_speed_text,
    fit_examples,
    steps_per_epoch,
)
from neuralstudio.core.training_settings import TrainingSettings


def report(samples: float, seconds: float) -> dict[str, float]:
    return {"loss": 1.0, "samples": samples, "seconds": seconds}


def test_fit_examples_hold_out_the_rounded_validation_part():
    assert fit_examples(8_000, 0.1) == 7_200
    assert fit_examples(60_000, 0.1) == 54_000
    assert fit_examples(600, 0.0) == 600
    assert fit_examples(1_001, 0.25) == 751  # round(250.25) held out


def test_steps_per_epoch_counts_the_short_last_batch():
    assert steps_per_epoch(480, 32) == 15
    assert steps_per_epoch(481, 32) == 16
    assert steps_per_epoch(0, 32) == 1


def test_one_report_tells_no_speed():
    meter = SpeedMeter()
    assert meter.samples_per_second == 0.0
    meter.add(3.0, 32)  # the first batch, after 3 s of building and tracing
    assert meter.samples_per_second == 0.0


def test_speed_leaves_out_the_time_before_the_first_report():
    meter = SpeedMeter()
    meter.add(3.0, 32)
    meter.add(3.5, 532)
    assert meter.samples_per_second == pytest.approx(1000.0)  # not 532 / 3.5 = 152


def test_speed_follows_the_last_window_of_training_time():
    meter = SpeedMeter(window_s=2.0)
    for i in range(1, 11):  # 100 samples/s for 10 s
        meter.add(float(i), 100.0 * i)
    for i in range(1, 5):  # then 400 samples/s
        meter.add(10.0 + 0.5 * i, 1000.0 + 200.0 * i)
    assert meter.samples_per_second == pytest.approx(400.0)


def test_reports_far_apart_still_give_a_speed():
    meter = SpeedMeter(window_s=SPEED_WINDOW_S)
    meter.add(0.0, 0)
    meter.add(30.0, 60)
    meter.add(60.0, 120)
    assert meter.samples_per_second == pytest.approx(2.0)


def test_a_new_clock_starts_the_speed_over():
    meter = SpeedMeter()
    meter.add(5.0, 500)
    meter.add(6.0, 600)
    meter.add(0.5, 50)
    assert meter.samples_per_second == 0.0


def test_position_is_exact_once_the_examples_are_known():
    p = RunProgress(epochs=2, batch_size=32, validation_split=0.2)
    p.set_train_samples(600)  # 480 to train on: 15 batches
    assert p.fit_samples == 480 and p.steps_in_epoch == 15
    assert p.add_batch(0, 14, report(480, 1.0)) == pytest.approx(1.0)
    assert p.add_batch(1, 6, report(480 + 224, 1.5)) == pytest.approx(704 / 480)
    assert p.last_batch == (1, 6)
    assert p.epoch_percent() == 47 and p.run_percent() == 73
    assert p.epoch_text() == "epoch 2/2 · batch 7/15"
    assert p.run_text() == "epoch 2 of 2"


def test_position_from_batches_until_the_examples_are_known():
    p = RunProgress(epochs=3, batch_size=10)
    assert p.add_batch(0, 0, {"loss": 1.0}) == pytest.approx(1.0)  # the first epoch's size is unknown
    assert p.add_batch(0, 3, {"loss": 1.0}) == pytest.approx(1.0)
    p.end_epoch(0)  # 4 batches: the next epochs are counted in quarters
    assert p.epochs_done == 1
    assert p.add_batch(1, 0, {"loss": 1.0}) == pytest.approx(1.25)
    assert p.steps_in_epoch == 4


def test_time_left_at_the_current_speed():
    p = RunProgress.for_settings(TrainingSettings(epochs=3, batch_size=100, validation_split=0.1))
    p.set_train_samples(8_000)  # 7,200 an epoch, 21,600 in all
    p.add_batch(0, 0, report(100, 4.0))
    assert p.speed_text() == "" and math.isnan(p.seconds_left)
    p.add_batch(0, 9, report(1_000, 4.9))  # 900 examples in 0.9 s
    assert p.samples_per_second == pytest.approx(1_000.0)
    assert p.seconds_left == pytest.approx(20.6)
    assert p.speed_text() == "1,000 samples/s · 21 s left"


def test_a_pause_neither_lowers_the_speed_nor_adds_to_the_time_left():
    """The trainer's ``seconds`` stop while paused: a minute's pause between two reports changes nothing."""
    p = RunProgress(epochs=1, batch_size=8)
    p.set_train_samples(800)
    p.add_batch(0, 0, report(8, 2.0))  # paused right after the first batch (asked for while tracing)
    p.add_batch(0, 1, report(16, 2.1))  # resumed a minute later (wall time): 0.1 s of training
    assert p.samples_per_second == pytest.approx(80.0)
    assert p.seconds_left == pytest.approx((800 - 16) / 80.0)


def test_final_speed_text():
    assert final_speed_text(1234.4) == "1,234 samples/s"
    assert final_speed_text(0.0) == "" and final_speed_text(None) == ""
