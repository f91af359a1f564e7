"""The learning-rate range test (Leslie Smith, "Cyclical Learning Rates for Training Neural Networks", 2017).

A learner rarely knows which learning rate suits a network: too low and the loss barely falls, too high
and it jumps around or grows. The range test answers it in a few seconds: train the design briefly, one
mini-batch per step, with a learning rate that grows exponentially from ``min_lr`` to ``max_lr``, and
watch the loss. It first hardly moves (the rate is too small to matter), then falls (the useful range),
then rises sharply (too large: the steps overshoot). :func:`find_learning_rate` runs that sweep and
suggests the rate where the loss fell fastest (:func:`suggest_learning_rate` says why that one).

The model is built, compiled and fed exactly as :class:`~neuralstudio.ml.trainer.Trainer` would for a run
(the same data loading, checks, validation split, target encoding, optimizer and loss: the trainer's own
helpers are called, not copied), so the suggestion is for the run the learner is about to start. Nothing
global is changed or restored: the sweep runs on a fresh plain Python thread of its own, like a training
run (docs/ARCHITECTURE.md, "Threads"), and the design is only read. The model trained by the sweep is
thrown away; only its loss curve is kept.

Like the trainer, the search never raises for anything the user can fix: a bad range, a design that does
not fit the data, running out of memory all come back as a ``failed`` result whose ``message`` says what to
do. This module imports neither Qt nor, until a sweep starts, Keras.
"""

from __future__ import annotations

import math
import re
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from neuralstudio.core.design import Design
from neuralstudio.core.errors import UserError
from neuralstudio.ml import backends

#: the name of the sweep's own thread (docs/ARCHITECTURE.md, "Threads")
LR_FIND_THREAD = "neuralstudio-lr-find"
#: weight of the past in the exponential moving average of the loss (fastai's and Smith's choice): about the
#: last 50 steps count, enough to see through mini-batch noise without hiding where the loss turns
SMOOTHING = 0.98
#: the sweep stops once the smoothed loss exceeds this multiple of the best one: the rate is far too high,
#: and training further only wastes time and spreads the plot's y range
DIVERGENCE_FACTOR = 4.0
#: the sweep also stops when this many batch losses in a row agree to within :data:`FROZEN_SPREAD` (relative)
#: after the loss had fallen: different batches always give different losses while a network learns, so the
#: same value batch after batch means its units saturated and it learns nothing any more. That is how
#: Nielsen's sigmoid network with the quadratic cost breaks down at high rates: its outputs all go to 0, the
#: loss freezes at 0.5 (0.1 on Keras's mean squared error) and never grows, let alone to 4x its best or to NaN
#: (measured: from about 120-170)
FROZEN_STEPS = 8
FROZEN_SPREAD = 1e-3
#: first steps left out of the searches for the minimum and the steepest descent (at most a quarter of them):
#: the bias-corrected average of the first few losses is the mean of a handful of batches, and as one lucky or
#: unlucky batch is averaged away the curve falls or rises steeply though nothing was learned (fastai skips 10)
SKIP_START = 10
#: fewest recorded steps a suggestion is made from: fewer cannot show a slope through the smoothing
MIN_POINTS = 5
#: accepted sweep parameters: learning rates outside these are mistakes, not experiments
LR_RANGE = (1e-10, 1e4)
STEPS_RANGE = (MIN_POINTS, 10_000)
#: the largest rate the design's settings accept (TrainingSettings.validate): a suggestion never exceeds it
MAX_SUGGESTION = 100.0
STATUSES = ("finished", "diverged", "stopped", "failed")

#: ``on_step(step, learning_rate, loss, smoothed_loss)``, called on the sweep's thread after every step
StepCallback = Callable[[int, float, float, float], None]


class LrFindError(UserError, ValueError):
    """The sweep cannot be run as asked; the message says how to fix it."""


@dataclass
class LrFindResult:
    """What a learning-rate sweep found.

    ``lrs[i]`` is the learning rate of step ``i``, ``losses[i]`` that step's mini-batch loss and
    ``smoothed[i]`` its exponential moving average (bias-corrected). ``suggested_lr`` is the rate to try
    (one significant digit), ``min_loss_lr`` the rate at the lowest smoothed loss, ``diverged_at`` the rate
    at which training broke down (None when it did not within the range) and ``breakdown`` how: ``nan`` (the
    loss became NaN or infinite), ``rose`` (the smoothed loss passed 4x its best) or ``froze`` (the loss stuck
    at one value: the units saturated), ``""`` when it did not. ``status`` is ``finished`` (the
    whole range swept), ``diverged`` (stopped at ``diverged_at``), ``stopped`` (by a stop request) or
    ``failed`` (nothing swept: ``message`` says why). ``message`` is one sentence for the learner.
    """

    lrs: list[float] = field(default_factory=list)
    losses: list[float] = field(default_factory=list)
    smoothed: list[float] = field(default_factory=list)
    suggested_lr: float | None = None
    min_loss_lr: float | None = None
    diverged_at: float | None = None
    breakdown: str = ""
    steps_run: int = 0
    message: str = ""
    status: str = "finished"
    min_lr: float = 0.0
    max_lr: float = 0.0
    steps: int = 0
    batch_size: int = 0
    seconds: float = 0.0

    @property
    def ok(self) -> bool:
        """Something was swept (a stopped sweep too); False for a ``failed`` one."""
        return self.status != "failed"

    def to_dict(self) -> dict[str, Any]:
        """The JSON-able form (``lr-find --json``): NaN and infinity become null."""
        out: dict[str, Any] = {k: _json_safe(getattr(self, k)) for k in (
            "status", "message", "suggested_lr", "min_loss_lr", "diverged_at", "breakdown", "steps_run", "min_lr",
            "max_lr", "steps", "batch_size", "seconds")}
        for k in ("lrs", "losses", "smoothed"):
            out[k] = [_json_safe(v) for v in getattr(self, k)]
        return out


def find_learning_rate(design: Design, dataset: Any = None, *, min_lr: float = 1e-6, max_lr: float = 10.0,
                       steps: int = 100, batch_size: int | None = None, seed: int | None = None,
                       device: str = "auto", control: Any = None,
                       on_step: StepCallback | None = None) -> LrFindResult:
    """Sweep the learning rate from ``min_lr`` to ``max_lr`` over ``steps`` mini-batches; never raises for user errors.

    Args:
        design: the network and its training settings (optimizer, loss, batch size, validation split, seed);
            only read.
        dataset: a ``Dataset``, a data spec (``"mnist-sample"``, a path) or None for the design's own source,
            as :class:`~neuralstudio.ml.trainer.Trainer` takes it.
        min_lr, max_lr: the first and last learning rate; step ``i`` trains at
            ``min_lr * (max_lr / min_lr) ** (i / (steps - 1))``, evenly spaced on a log scale.
        steps: mini-batches to train (the data is repeated when it holds fewer).
        batch_size: None for the design's own: the best rate depends on it (larger batches, larger rates).
        seed: None for the design's own seed, so that the sweep starts from the weights a run would.
        device: as the trainer's ``device``.
        control: a :class:`~neuralstudio.ml.trainer.TrainControl`; a stop request ends the sweep after the
            current step, with what was found so far (a pause holds it between steps).
        on_step: called with ``(step, learning_rate, loss, smoothed_loss)`` after every step, on the sweep's
            thread: a GUI must only buffer what it gets there.

    The Keras work runs on a fresh plain Python thread, which this call waits for.
    """
    from neuralstudio.ml.keras_threads import run_on_python_thread
    from neuralstudio.ml.trainer import TrainControl

    control = control if control is not None else TrainControl()
    t0 = time.perf_counter()
    asked = {"min_lr": _as_float(min_lr), "max_lr": _as_float(max_lr), "steps": steps}
    try:
        _check_sweep(min_lr, max_lr, steps, batch_size)
    except LrFindError as exc:
        return _failed(str(exc), t0, asked)
    sweep = _Sweep(design, dataset, float(min_lr), float(max_lr), int(steps), batch_size, seed, device, control,
                   on_step)
    return run_on_python_thread(lambda: sweep.run_reporting_errors(t0), LR_FIND_THREAD)


def smoothed_losses(losses: list[float], beta: float = SMOOTHING) -> list[float]:
    """The exponential moving average of ``losses`` with bias correction (Adam's), point by point.

    Without the correction the average starts at 0 and climbs for tens of steps, which would look like
    a loss that rises at the smallest rates; dividing by ``1 - beta ** (i + 1)`` removes that start-up bias.
    """
    out, avg = [], 0.0
    for i, loss in enumerate(losses):
        avg = beta * avg + (1 - beta) * float(loss)
        out.append(avg / (1 - beta ** (i + 1)))
    return out


def suggest_learning_rate(lrs: list[float], smoothed: list[float]) -> tuple[float | None, float | None, str]:
    """``(suggested_lr, min_loss_lr, how)`` from a sweep's rates and smoothed losses; ``how`` names the rule used.

    The suggestion is the rate where the smoothed loss falls fastest, i.e. the most negative slope of the loss
    against ``log10(lr)``: there the network learns the most per step while the rate is still well below the
    point where training breaks down. The rate at the minimum itself is too high to train with: the loss is
    about to rise there, and a full run (many more steps than the sweep, weights that move further) would
    diverge at it. Only the part before the minimum is searched, because beyond it the curve rises and its
    slopes describe divergence, not learning (and the noise there can make a steep false "descent").
    The first :data:`SKIP_START` points (at most a quarter) are left out of both searches: each is the average of only a
    handful of batches, so one lucky first batch would pass for the minimum, and the next ones for a slope.

    Fallback: one tenth of the rate at the minimum (the rule of thumb of Smith's paper and fastai, an order of
    magnitude below where the loss turns) when the loss before its minimum falls too little to have a steepest
    part: ``how == "rising"`` when the minimum is the first point searched (the loss only rose), ``"minimum"``
    when fewer than :data:`MIN_POINTS` points lead to it or no slope there is below zero. ``how == "none"``
    (and no suggestion) when there are fewer than :data:`MIN_POINTS` points in all.
    """
    import numpy as np

    n = min(len(lrs), len(smoothed))
    y = np.asarray(smoothed[:n], dtype=np.float64)
    lr_of = np.asarray(lrs[:n], dtype=np.float64)
    keep = np.isfinite(y) & np.isfinite(lr_of) & (lr_of > 0)
    y, lr_of = y[keep], lr_of[keep]
    x = np.log10(lr_of)
    if len(y) < MIN_POINTS:
        return None, None, "none"
    skip = min(SKIP_START, len(y) // 4)
    lowest = skip + int(np.argmin(y[skip:]))
    min_loss_lr = float(lr_of[lowest])
    if lowest == skip:
        return _rounded(min_loss_lr / 10), min_loss_lr, "rising"
    if lowest + 1 - skip >= MIN_POINTS:
        slopes = np.gradient(y[skip: lowest + 1], x[skip: lowest + 1])
        steepest = int(np.argmin(slopes))
        if slopes[steepest] < 0:
            return _rounded(float(lr_of[skip + steepest])), min_loss_lr, "steepest"
    return _rounded(min_loss_lr / 10), min_loss_lr, "minimum"


def format_lr(lr: float) -> str:
    """A learning rate as a learner reads it: two significant digits, ``460`` rather than ``4.6e+02`` and
    ``1e-6`` rather than ``1e-06`` (exponents only below 0.0001 and from a million)."""
    text = f"{float(f'{float(lr):.2g}'):g}"
    return re.sub(r"e([+-])0*(\d)", lambda m: f"e{'-' if m.group(1) == '-' else ''}{m.group(2)}", text)


# ---------------------------------------------------------------------------------------------- the sweep
class _Sweep:
    """One sweep's inputs and its progress, recorded step by step by the Keras callback."""

    def __init__(self, design: Design, dataset: Any, min_lr: float, max_lr: float, steps: int,
                 batch_size: int | None, seed: int | None, device: str, control: Any,
                 on_step: StepCallback | None) -> None:
        self.design, self.dataset, self.device, self.control, self.on_step = design, dataset, device, control, on_step
        self.min_lr, self.max_lr, self.steps = min_lr, max_lr, steps
        self.batch_size, self.seed = batch_size, seed
        ratio = max_lr / min_lr
        self.schedule = [min_lr * ratio ** (i / (steps - 1)) for i in range(steps)]
        self.lrs: list[float] = []
        self.losses: list[float] = []
        self.smoothed: list[float] = []
        self.diverged_at: float | None = None
        self.breakdown = ""
        self.used_batch = 0
        self._avg = 0.0
        self._best = math.inf

    def run_reporting_errors(self, t0: float) -> LrFindResult:
        """:meth:`run` with every exception turned into a ``failed`` result, as the trainer does (a worker
        thread must never die silently; the GUI only shows what went wrong)."""
        from neuralstudio.ml.custom_gradients import released_custom_gradients

        asked = {"min_lr": self.min_lr, "max_lr": self.max_lr, "steps": self.steps}
        try:
            with released_custom_gradients():  # else the sweep's traced graphs stay in memory
                return self.run(t0)
        except UserError as exc:
            return _failed(str(exc), t0, asked)
        except MemoryError:
            return _failed("Out of memory: use a smaller batch size or a smaller network.", t0, asked)
        except Exception as exc:  # noqa: BLE001 - a worker thread must never die silently
            from neuralstudio.ml.trainer import _short

            return _failed(f"The learning-rate search failed: {type(exc).__name__}: {_short(exc)}", t0, asked)

    def run(self, t0: float) -> LrFindResult:
        """Build and compile the model as a training run would, then train ``steps`` batches at growing rates.

        The trainer's own steps are called (``Trainer._load_data``, ``_build_model``, ``_prepare_data``,
        ``_compiler``): private to it, but the sweep must match a run exactly, and a copy would drift.
        """
        from neuralstudio.ml import devices
        from neuralstudio.ml.input_pipeline import batches, to_tensors
        from neuralstudio.ml.trainer import Trainer, _output_units

        if not len(self.design.graph):
            raise LrFindError("The design has no layers: add an Input and some layers first.")
        settings = self.design.training.updated(batch_size=self.batch_size, seed=self.seed)  # validated
        trainer = Trainer(self.design, dataset=self.dataset, settings=settings, device=self.device,
                          control=self.control, free_memory=False)
        ds = trainer._load_data()
        if settings.seed is not None:
            backends.set_random_seed(int(settings.seed))  # this thread's Keras seed: the weights a run starts from
        placement = devices.resolve(self.device)
        model = trainer._build_model(placement, False)
        units = _output_units(model)
        data = trainer._prepare_data(ds, model, settings, units, placement.replicas)
        self.used_batch = data.batch_size
        if not self.control.stop_requested:
            trainer._compiler(model, settings, placement, units, data.one_hot, False)(1)  # one step per execution:
            # the rate must change, and the stop flag be read, at every batch
            x, y = to_tensors(data.x_train, data.y_train)
            with placement.scope():
                train = batches(x, y, data.batch_size, shuffle=True, repeat=True)
                model.fit(train, steps_per_epoch=self.steps, epochs=1, shuffle=False, verbose=0,
                          callbacks=[_callback(self)])
        return self._result(t0)

    # ----------------------------------------------------------------- called by the callback, per step
    def rate(self, step: int) -> float:
        return self.schedule[min(step, self.steps - 1)]

    def record(self, step: int, loss: float) -> bool:
        """Note step ``step``'s batch loss; True when the sweep must stop (diverged, or a stop request)."""
        lr = self.rate(step)
        if not math.isfinite(loss):
            self.diverged_at, self.breakdown = lr, "nan"
            return True
        i = len(self.losses)
        self._avg = SMOOTHING * self._avg + (1 - SMOOTHING) * loss
        smooth = self._avg / (1 - SMOOTHING ** (i + 1))
        self.lrs.append(lr)
        self.losses.append(loss)
        self.smoothed.append(smooth)
        if self.on_step is not None:
            self.on_step(step, lr, loss, smooth)
        if i > 0 and smooth > DIVERGENCE_FACTOR * self._best:
            self.diverged_at, self.breakdown = lr, "rose"
            return True
        if self._frozen():
            self.diverged_at, self.breakdown = self.lrs[-FROZEN_STEPS], "froze"
            return True
        self._best = min(self._best, smooth)
        return self.control.stop_requested

    def _frozen(self) -> bool:
        """The last :data:`FROZEN_STEPS` batch losses are one value, and the loss had fallen before them."""
        if len(self.losses) < FROZEN_STEPS or not self._best < self.smoothed[0]:
            return False
        last = self.losses[-FROZEN_STEPS:]
        return max(last) - min(last) <= FROZEN_SPREAD * max(abs(max(last)), 1e-12)

    # ----------------------------------------------------------------- the outcome
    def _result(self, t0: float) -> LrFindResult:
        # a frozen loss is recorded (it is part of the curve) but not searched: its smoothed values still fall
        # for a while only because the average lags behind, and would pass for the minimum
        usable = len(self.lrs) - (FROZEN_STEPS if self.breakdown == "froze" else 0)
        suggested, min_loss_lr, how = suggest_learning_rate(self.lrs[:usable], self.smoothed[:usable])
        if suggested is not None:
            suggested = min(suggested, MAX_SUGGESTION)
        if self.diverged_at is not None:
            status = "diverged"
        elif len(self.lrs) < self.steps:
            status = "stopped"
        else:
            status = "finished"
        return LrFindResult(lrs=list(self.lrs), losses=list(self.losses), smoothed=list(self.smoothed),
                            suggested_lr=suggested, min_loss_lr=min_loss_lr, diverged_at=self.diverged_at,
                            breakdown=self.breakdown,
                            steps_run=len(self.lrs), message=self._message(status, suggested, min_loss_lr, how),
                            status=status, min_lr=self.min_lr, max_lr=self.max_lr, steps=self.steps,
                            batch_size=self.used_batch, seconds=time.perf_counter() - t0)

    def _message(self, status: str, suggested: float | None, min_loss_lr: float | None, how: str) -> str:
        """One sentence for the learner: what the loss did, where it broke, and the rate to try."""
        if self.breakdown == "nan" and not self.lrs:
            return (f"The loss was not a number from the first step (learning rate {format_lr(self.min_lr)}): "
                    "check the data and the network, or start the search lower.")
        if suggested is None:
            done = len(self.lrs)
            return (f"Stopped after {done} step(s): too few to suggest a learning rate; let the search run "
                    "longer." if status == "stopped" else
                    f"The loss diverged after {done} step(s), at learning rate {format_lr(self.diverged_at or 0)}: "
                    "start the search lower.")
        s = format_lr(suggested)
        if status == "diverged" and self.breakdown == "froze":
            broke = f"above {format_lr(self.diverged_at or 0)} it stopped learning (its units saturated)"
        elif status == "diverged":
            broke = f"it diverged above {format_lr(self.diverged_at or 0)}"
        elif status == "stopped":
            broke = f"the search stopped at {format_lr(self.lrs[-1])}"
        else:
            broke = f"it did not diverge up to {format_lr(self.max_lr)}"
        if how == "steepest":
            return f"Loss fell fastest near {s}; {broke}: try {s}."
        if how == "rising":
            return (f"The loss rose from the first steps, so even {format_lr(self.min_lr)} may be too high (start "
                    f"the search lower); {broke}: try {s}.")
        return (f"The loss hardly fell and was lowest near {format_lr(min_loss_lr or 0)}; {broke}: "
                f"try a tenth of that, {s}.")


def _callback(sweep: _Sweep) -> Any:
    """The Keras callback that sets each step's rate before the batch and records its loss after it.

    Keras reports running averages over the epoch in batch logs (docs/ARCHITECTURE.md, "Traps"): resetting the
    metrics before each batch makes the logs that batch's own loss. ``fit`` resets ``stop_training`` when it
    starts, so the stop is set from inside the batch hook.
    """
    import keras

    from neuralstudio.ml.backends import sync_variables

    control = sweep.control

    class LrSweepCallback(keras.callbacks.Callback):
        def on_train_batch_begin(self, batch: int, logs: dict[str, Any] | None = None) -> None:
            if control.is_paused:
                control.wait_while_paused()
            sync_variables(self.model)  # on JAX, else the new rate never reaches fit's own state
            self.model.optimizer.learning_rate = sweep.rate(batch)
            self.model.reset_metrics()

        def on_train_batch_end(self, batch: int, logs: dict[str, Any] | None = None) -> None:
            loss = float((logs or {}).get("loss", math.nan))
            if sweep.record(batch, loss) or control.stop_requested:
                self.model.stop_training = True

    return LrSweepCallback()


def _check_sweep(min_lr: Any, max_lr: Any, steps: Any, batch_size: Any) -> None:
    """Refuse a range the sweep cannot use, naming the value and what is accepted."""
    lo, hi = LR_RANGE
    for name, v in (("min_lr", min_lr), ("max_lr", max_lr)):
        if isinstance(v, bool) or not isinstance(v, (int, float)) or not math.isfinite(v) or not lo <= v <= hi:
            raise LrFindError(f"{name} must be a learning rate between {lo:g} and {hi:g}, not {v!r}.")
    if min_lr >= max_lr:
        raise LrFindError(f"The smallest learning rate ({min_lr:g}) must be below the largest ({max_lr:g}).")
    s_lo, s_hi = STEPS_RANGE
    if isinstance(steps, bool) or not isinstance(steps, int) or not s_lo <= steps <= s_hi:
        raise LrFindError(f"steps must be a whole number from {s_lo} to {s_hi}, not {steps!r}.")
    if batch_size is not None and (isinstance(batch_size, bool) or not isinstance(batch_size, int)
                                   or batch_size < 1):
        raise LrFindError(f"The batch size must be a whole number of at least 1, not {batch_size!r}.")


def _failed(message: str, t0: float, asked: dict[str, Any]) -> LrFindResult:
    steps = asked.get("steps")
    return LrFindResult(status="failed", message=message, seconds=time.perf_counter() - t0,
                        min_lr=asked.get("min_lr") or 0.0, max_lr=asked.get("max_lr") or 0.0,
                        steps=steps if isinstance(steps, int) and not isinstance(steps, bool) else 0)


def _rounded(lr: float) -> float:
    """One significant digit (0.3, not 0.2871): the test is approximate, and a learner types what is shown."""
    from neuralstudio.ml.trainer import _nicer

    return float(_nicer(lr))


def _as_float(v: Any) -> float:
    try:
        return float(v)
    except (TypeError, ValueError):
        return 0.0


def _json_safe(v: Any) -> Any:
    if isinstance(v, float) and not math.isfinite(v):
        return None
    return v
