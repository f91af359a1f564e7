"""Time-per-epoch estimates, from a measured speed or the last run."""

from __future__ import annotations

import math

from neuralstudio.core.epoch_estimate import NO_ESTIMATE, epoch_seconds, estimate_from_runs, measured_estimate
from neuralstudio.core.progress import fit_examples
from neuralstudio.core.runs import RunRecord


def record(run_id: str, timing=None, data=None) -> RunRecord:
    return RunRecord(id=run_id, created="2024-01-01T00:00:00Z", timing=timing or {}, data=data or {})


def test_an_epoch_of_full_mnist_takes_7_5_times_the_sample():
    sample = epoch_seconds(fit_examples(8_000, 0.1), 900.0)
    mnist = epoch_seconds(fit_examples(60_000, 0.1), 900.0)
    assert sample == 8.0 and mnist == 60.0 and mnist / sample == 7.5


def test_unknown_speed_or_size_gives_no_time():
    assert math.isnan(epoch_seconds(0, 900.0)) and math.isnan(epoch_seconds(7_200, 0.0))


def test_measured_estimate_text():
    assert measured_estimate(900.0, 54_000) == "About 60 s per epoch (measured 900 samples/s on this machine)."


def test_the_newest_run_with_a_speed_gives_the_estimate():
    runs = [record("new"), record("mid", {"samples_per_second": 1200.0, "train_samples": 7_200}),
            record("old", {"samples_per_second": 10.0, "train_samples": 7_200})]
    assert estimate_from_runs(runs) == "About 6.0 s per epoch (1,200 samples/s in the last run)."


def test_older_records_give_their_data_size():
    runs = [record("r", {"samples_per_second": 100.0}, {"train_size": 1_000})]
    assert estimate_from_runs(runs) == "About 10 s per epoch (100 samples/s in the last run)."


def test_no_usable_run_gives_no_estimate():
    assert estimate_from_runs([]) == ""
    assert estimate_from_runs([record("r", {"samples_per_second": 100.0})]) == ""  # no size
    assert estimate_from_runs([record("r", {"samples_per_second": "fast", "train_samples": 10})]) == ""
    assert estimate_from_runs([record("r", {"samples_per_second": -5.0, "train_samples": 10})]) == ""
    assert "Measure speed" in NO_ESTIMATE
