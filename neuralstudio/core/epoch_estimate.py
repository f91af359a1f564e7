"""How long an epoch will take, in words, before training: from a speed measurement or the last run.

The Train page shows it under the settings so that a student sees what 30 epochs of full MNIST cost
before pressing Train. The time of an epoch is the number of examples it trains on (after the
validation split) divided by the speed; both the measurement (``ml/speed.py``) and the runs store give
the speed, and the examples come from the chosen data source or the run's record.
"""

from __future__ import annotations

import math
from collections.abc import Iterable

from neuralstudio.core.formatting import format_duration
from neuralstudio.core.numbers import as_number
from neuralstudio.core.runs import RunRecord

#: what the estimate says when there is neither a measurement nor a past run
NO_ESTIMATE = "Time per epoch: press Measure speed, or train once."


def epoch_seconds(examples: int | float, samples_per_second: float) -> float:
    """Seconds one epoch of ``examples`` takes at ``samples_per_second``; NaN when either is unknown."""
    if not examples or examples <= 0 or not samples_per_second or samples_per_second <= 0:
        return math.nan
    return float(examples) / float(samples_per_second)


def measured_estimate(samples_per_second: float, examples: int) -> str:
    """The estimate from a speed measured on this machine, for an epoch of ``examples``."""
    return (f"About {format_duration(epoch_seconds(examples, samples_per_second))} per epoch (measured "
            f"{samples_per_second:,.0f} samples/s on this machine).")


def estimate_from_runs(records: Iterable[RunRecord]) -> str:
    """The estimate from the newest run (of ``records``, newest first) that recorded its speed; "" if none.

    The run's own count of training examples is used (``timing.train_samples``, after its validation split;
    older records only have ``data.train_size``), so the estimate is that run's time per epoch.
    """
    rec = next((r for r in records if as_number(r.timing.get("samples_per_second"))), None)
    if rec is None:
        return ""
    sps = as_number(rec.timing.get("samples_per_second")) or 0.0
    n = as_number(rec.timing.get("train_samples")) or as_number(rec.data.get("train_size")) or 0.0
    seconds = epoch_seconds(n, sps)
    if math.isnan(seconds):
        return ""
    return f"About {format_duration(seconds)} per epoch ({sps:,.0f} samples/s in the last run)."
