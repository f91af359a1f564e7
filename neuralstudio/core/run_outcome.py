"""How a training run ended, in plain words: the end-of-run message of the Train page.

The trainer's result says what happened (``finished``, ``early_stopped``, ``stopped``, ``nan``,
``failed``) and often how, in its own message; this module turns it into one message that also says
what to do next. It reads the result by attribute name only (``status``, ``message``, ``epochs_run``,
``test_accuracy``, ``val_accuracy``, ``seconds``), so it needs neither Keras nor the trainer and accepts
a result with any of them missing.
"""

from __future__ import annotations

from typing import Any

from neuralstudio.core.formatting import format_duration
from neuralstudio.core.numbers import as_number

#: outcomes shown as errors (in red): nothing usable came out, or the loss blew up
ERROR_STATUSES = frozenset({"nan", "failed"})
#: outcomes after which every planned (or useful) epoch has run: the progress bars are full
COMPLETE_STATUSES = frozenset({"finished", "early_stopped"})

_KEEP_HINT = " The network keeps what it learned: press Save model… to keep it as a .keras file."
_NEXT_HINT = " Next: draw digits in the Predict workspace, or change a setting and train again to compare."


def run_status(result: Any) -> str:
    """The result's status; a result without one counts as failed."""
    return str(getattr(result, "status", "failed"))


def is_error(result: Any) -> bool:
    """True when the run's end is shown as an error."""
    return run_status(result) in ERROR_STATUSES


def is_complete(result: Any) -> bool:
    """True when the run trained all it was going to (finished, or stopped early by early stopping)."""
    return run_status(result) in COMPLETE_STATUSES


def end_message(result: Any, *, epochs_done: int = 0, last_batch: tuple[int, int] = (0, -1),
                learning_rate: float | None = None) -> str:
    """The end-of-run message, with the next step where there is one.

    Args:
        result: the trainer's ``RunResult`` (or anything with some of its attributes).
        epochs_done: epochs the Train page saw complete, for a result that does not say.
        last_batch: the 0-based ``(epoch, batch)`` last reported: where a stopped or NaN run ended.
        learning_rate: the run's learning rate, for the advice after a NaN loss.
    """
    status = run_status(result)
    given = str(getattr(result, "message", "") or "").strip()
    if status == "finished":
        return _finished(result, given, epochs_done)
    if status == "early_stopped":
        return _early_stopped(result, given, epochs_done)
    if status == "stopped":
        e, b = last_batch
        return (given or f"Stopped at epoch {e + 1}, batch {b + 1}.") + _KEEP_HINT
    if status == "nan":
        return given or _nan(last_batch, learning_rate)
    return given or "Training failed: the event log has details."


def _finished(result: Any, given: str, epochs_done: int) -> str:
    epochs = getattr(result, "epochs_run", epochs_done)
    secs = as_number(getattr(result, "seconds", None)) or 0.0
    head = given or f"Training finished: {epochs} epochs in {format_duration(secs)}."
    return head + _score(result, head) + _NEXT_HINT


def _early_stopped(result: Any, given: str, epochs_done: int) -> str:
    epochs = getattr(result, "epochs_run", epochs_done)
    head = given or (f"Early stopping ended training after {epochs} epochs: validation loss stopped improving, "
                     "so more epochs would not help.")
    return head + _score(result, head)


def _score(result: Any, head: str) -> str:
    """The sentence giving the test accuracy, unless there is none or the head already says it.

    Only the test accuracy is added: the validation accuracy chose the weights that were kept (best epoch,
    early stopping), so it flatters them; the plots show it.
    """
    acc = as_number(getattr(result, "test_accuracy", None))
    if acc is None or f"{acc:.2%}" in head:
        return ""
    return f" Test accuracy {acc:.2%}."


def _nan(last_batch: tuple[int, int], learning_rate: float | None) -> str:
    e, b = last_batch
    tip = f" with learning rate {learning_rate:g}: try {learning_rate / 10:g}" if learning_rate else \
        ": try a smaller learning rate"
    return f"The loss became NaN at epoch {e + 1}, batch {b + 1}{tip}."
