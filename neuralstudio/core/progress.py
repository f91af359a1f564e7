"""Where a training run is, how fast it goes and how long it has left, from the trainer's batch reports.

The trainer reports every batch (``ml/callbacks.py``) with its 0-based epoch and batch, ``samples`` (examples
seen since the start) and ``seconds`` (training time so far, pauses excluded). The Train page turns them
into its two progress bars and its speed label 15 times a second; the arithmetic is here, without Qt, so
it is tested without a display.

**Position** is in epochs, as on the plots' x axis: batch ``i`` (1-based) of epoch ``e`` (0-based) sits at
``e + i / steps``. Once the number of training examples per epoch is known, it is exact:
``samples / examples_per_epoch`` (the last batch of an epoch is often short).

**Speed** is the examples per second between reports over the last :data:`SPEED_WINDOW_S` seconds of
training, not the trainer's running average since the start: the trainer's clock starts before the network
is built and traced, so its first reports claim a few examples per second and most of an hour left, and a
run paused then (a pause asked for while Keras traces acts after the first batch) showed that figure for
the whole pause. The reports' ``seconds`` exclude pauses, so a pause neither lowers the speed nor adds to
the time left.
"""

from __future__ import annotations

import math
from collections import deque
from collections.abc import Mapping
from typing import Any

from neuralstudio.core.formatting import format_duration
from neuralstudio.core.numbers import as_number
from neuralstudio.core.training_settings import TrainingSettings

#: the speed is measured over this much training time (seconds): long enough to smooth the steps' jitter,
#: short enough to follow a change (a switch to several steps per execution, a busy computer)
SPEED_WINDOW_S = 10.0


def fit_examples(train_examples: int, validation_split: float) -> int:
    """Training examples per epoch once the validation examples are held out.

    Rounded as ``ml.data.stratified_split`` rounds (the validation part is ``round(split * n)``), so that
    the estimate and the progress bars count what the trainer will train on.
    """
    return train_examples - int(round(train_examples * validation_split))


def steps_per_epoch(examples: int, batch_size: int) -> int:
    """Batches in an epoch of ``examples`` (the last one may be short); at least one."""
    return max(1, math.ceil(examples / max(1, batch_size)))


class SpeedMeter:
    """Examples per second over a sliding window of training time.

    Args:
        window_s: how much training time the speed is measured over; the two newest reports are kept
            even when they lie further apart (a slow network reports rarely).
    """

    def __init__(self, window_s: float = SPEED_WINDOW_S) -> None:
        self.window_s = window_s
        self._points: deque[tuple[float, float]] = deque()

    def add(self, seconds: float, samples: float) -> None:
        """One report: ``samples`` examples seen after ``seconds`` of training (both since the start)."""
        points = self._points
        if points and (seconds < points[-1][0] or samples < points[-1][1]):  # a new clock: start over
            points.clear()
        points.append((seconds, samples))
        while len(points) > 2 and seconds - points[1][0] >= self.window_s:
            points.popleft()

    @property
    def samples_per_second(self) -> float:
        """The speed over the window; 0.0 until two reports are apart in time (one report tells no speed)."""
        if len(self._points) < 2:
            return 0.0
        (t0, s0), (t1, s1) = self._points[0], self._points[-1]
        return (s1 - s0) / (t1 - t0) if t1 > t0 else 0.0


class RunProgress:
    """The progress of one run: position, bars, speed and time left.

    Args:
        epochs: the epochs the run is to train.
        batch_size: examples per batch.
        validation_split: the fraction of the training examples held out for validation.
    """

    def __init__(self, epochs: int, batch_size: int, validation_split: float = 0.0) -> None:
        self.epochs = max(1, int(epochs))
        self.batch_size = max(1, int(batch_size))
        self.validation_split = float(validation_split)
        #: training examples per epoch (after the validation split); 0 until known
        self.fit_samples = 0
        #: epochs completed (an epoch cut short by a stop does not count)
        self.epochs_done = 0
        #: the 0-based (epoch, batch) of the last report; batch -1 before the first
        self.last_batch: tuple[int, int] = (0, -1)
        #: where the run is, in epochs (the plots' x axis)
        self.position = 0.0
        self._steps: dict[int, int] = {}  # batches seen per epoch
        self._steps_guess = 0  # batches per epoch, once known
        self._speed = SpeedMeter()

    @classmethod
    def for_settings(cls, settings: TrainingSettings) -> RunProgress:
        """The progress of a run with these settings."""
        return cls(settings.epochs, settings.batch_size, settings.validation_split)

    # ------------------------------------------------------------------ reports
    def set_train_samples(self, train_examples: int) -> None:
        """The data set's training examples (before the validation split), known once the data is loaded."""
        self.fit_samples = fit_examples(train_examples, self.validation_split)
        self._steps_guess = steps_per_epoch(self.fit_samples, self.batch_size)

    def add_batch(self, epoch: int, batch: int, logs: Mapping[str, Any]) -> float:
        """One batch report; returns its position in epochs."""
        self._steps[epoch] = max(self._steps.get(epoch, 0), batch + 1)
        samples = as_number(logs.get("samples"))
        if self.fit_samples and samples is not None:
            x = samples / self.fit_samples  # exact: the trainer counts the examples seen since the start
        else:
            steps = self._steps_guess or self._steps[epoch]
            x = epoch + (batch + 1) / max(steps, batch + 1)
        seconds = as_number(logs.get("seconds"))
        if samples is not None and seconds is not None:
            self._speed.add(seconds, samples)
        self.last_batch = (epoch, batch)
        self.position = x
        return x

    def end_epoch(self, epoch: int) -> None:
        """Epoch ``epoch`` (0-based) completed; its batch count stands for the next ones if the size is unknown."""
        self.epochs_done = epoch + 1
        if epoch in self._steps and not self.fit_samples:
            self._steps_guess = self._steps[epoch]

    # ------------------------------------------------------------------ what is shown
    @property
    def samples_per_second(self) -> float:
        """The current speed (pauses excluded); 0.0 while unknown."""
        return self._speed.samples_per_second

    @property
    def seconds_left(self) -> float:
        """Training time left at the current speed (pauses excluded); NaN while unknown."""
        sps = self.samples_per_second
        if not self.fit_samples or sps <= 0:
            return math.nan
        return max(0.0, (self.epochs - self.position) * self.fit_samples / sps)

    @property
    def steps_in_epoch(self) -> int:
        """Batches in the current epoch: known once the data is, else the most seen so far."""
        epoch, batch = self.last_batch
        return self._steps_guess or self._steps.get(epoch, batch + 1)

    def epoch_percent(self) -> int:
        """How much of the current epoch is done, 0 to 100."""
        epoch = self.last_batch[0]
        x = self.position
        return int(round(100 * min(1.0, x - epoch))) if x > epoch else 0

    def run_percent(self) -> int:
        """How much of the run is done, 0 to 100."""
        return int(round(100 * min(1.0, self.position / self.epochs)))

    def epoch_text(self) -> str:
        """``epoch 2/5 · batch 40/225``."""
        epoch, batch = self.last_batch
        return f"epoch {epoch + 1}/{self.epochs} · batch {batch + 1}/{self.steps_in_epoch}"

    def run_text(self) -> str:
        """``epoch 2 of 5``."""
        return f"epoch {self.last_batch[0] + 1} of {self.epochs}"

    def speed_text(self) -> str:
        """``1,234 samples/s · 2.5 min left``; empty while the speed is unknown (before the second report)."""
        sps = self.samples_per_second
        if sps <= 0:
            return ""
        return f"{sps:,.0f} samples/s · {format_duration(self.seconds_left)} left"


def final_speed_text(samples_per_second: float | None) -> str:
    """The speed of a whole finished run (nothing is left any more); empty when unknown."""
    return f"{samples_per_second:,.0f} samples/s" if samples_per_second else ""
