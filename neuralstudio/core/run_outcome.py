"""How a training run ended, in plain words: the end-of-run message of the Train page and the CLI.

The trainer's result says what happened (``finished``, ``early_stopped``, ``stopped``, ``nan``,
``failed``) and often how, in its own message; this module turns it into one message that also says
what went wrong, if anything, and what to do next. It reads the result by attribute name only
(``status``, ``message``, ``epochs_run``, ``history``, ``test_accuracy``, ``val_accuracy``, ``seconds``),
so it needs neither Keras nor the trainer and accepts a result with any of them missing.

A learner's first runs often go wrong in a handful of recognisable ways: the loss blows up (learning
rate too high), the accuracy stays at what guessing gets, the network underfits or overfits, or it was
still improving when the epochs ran out. :func:`diagnose` recognises each from the per-epoch history
(and the per-batch losses, which show a blow-up inside the first epoch) and says it in one sentence with
the next step, so that "10% accuracy" is never followed by "Next: draw digits". A run that went wrong
(:attr:`Diagnosis.bad`) does not replace a better current model in the app.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from neuralstudio.core.formatting import format_duration
from neuralstudio.core.numbers import as_number
from neuralstudio.core.overfitting import OverfittingWatch

#: outcomes shown as errors (in red): nothing usable came out, or the loss blew up
ERROR_STATUSES = frozenset({"nan", "failed"})
#: outcomes after which every planned (or useful) epoch has run: the progress bars are full
COMPLETE_STATUSES = frozenset({"finished", "early_stopped"})

_KEEP_HINT = " The network keeps what it learned: press Save model… to keep it as a .keras file."
_NEXT_HINT = " Next: draw digits in the Predict workspace, or change a setting and train again to compare."
_NAN_WHY = ("A loss that becomes NaN or infinite means training diverged: the learning rate is too high for "
            "this network.")


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
                learning_rate: float | None = None, diagnosis: Diagnosis | None = None) -> str:
    """The end-of-run message: what happened, what went wrong if anything, and the next step.

    Args:
        result: the trainer's ``RunResult`` (or anything with some of its attributes).
        epochs_done: epochs the Train page saw complete, for a result that does not say.
        last_batch: the 0-based ``(epoch, batch)`` last reported: where a stopped or NaN run ended.
        learning_rate: the run's learning rate, for the advice after a NaN loss.
        diagnosis: what :func:`diagnose_result` found; worked out from the result alone when None (then
            without the number of classes, so a chance-level accuracy is not recognised).
    """
    status = run_status(result)
    given = str(getattr(result, "message", "") or "").strip()
    if diagnosis is None:
        diagnosis = diagnose_result(result, learning_rate=learning_rate)
    if status == "finished":
        epochs = getattr(result, "epochs_run", epochs_done)
        secs = as_number(getattr(result, "seconds", None)) or 0.0
        head = given or f"Training finished: {epochs} epochs in {format_duration(secs)}."
        return _with_findings(head, result, diagnosis, next_hint=diagnosis.went_well)
    if status == "early_stopped":
        epochs = getattr(result, "epochs_run", epochs_done)
        head = given or (f"Early stopping ended training after {epochs} epochs: validation loss stopped improving, "
                         "so more epochs would not help.")
        return _with_findings(head, result, diagnosis, next_hint=diagnosis.went_well)
    if status == "stopped":
        e, b = last_batch
        head = given or f"Stopped at epoch {e + 1}, batch {b + 1}."
        return _with_findings(head, result, diagnosis, next_hint=False) + _KEEP_HINT
    if status == "nan":  # the head says where and what to try: the diverged finding only adds why
        findings = tuple(Finding(f.kind, _NAN_WHY) if f.kind == "diverged" else f for f in diagnosis.findings)
        return _with_findings(given or _nan(last_batch, learning_rate), None,
                              Diagnosis(diagnosis.status, findings, diagnosis.accuracy, diagnosis.accuracy_name),
                              next_hint=False)
    return given or "Training failed: the event log has details."


def _with_findings(head: str, result: Any, diagnosis: Diagnosis, *, next_hint: bool) -> str:
    """``head``, the test accuracy (unless a finding states it), the findings, and the next step if any."""
    told = " ".join(diagnosis.sentences)
    states_score = "chance" in diagnosis.kinds  # the chance sentence names the accuracy
    text = head + (_score(result, head + told) if result is not None and not states_score else "")
    if told:
        text += " " + told
    return text + (_NEXT_HINT if next_hint else "")


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


# ------------------------------------------------------------------ diagnosis of a finished run

#: the training loss rising this many times above where it started means training diverged
DIVERGE_FACTOR = 5.0
#: below this starting loss, growth is measured from here: a run continued from a good model starts near 0,
#: where one batch's loss (the first of each epoch is not averaged) can be several times the start
DIVERGE_FLOOR = 0.5
#: an accuracy within this of 1/classes is chance level, at most (for many classes) half of 1/classes
CHANCE_MARGIN = 0.05
#: a loss that changed by at most this share of its start hardly moved: a learning rate too low, not saturation
HARDLY_MOVED = 0.05
#: a loss whose first epoch's average and whose last epoch's change are both within this share of its whole
#: change made that change in its first steps and then stopped changing
SETTLED_SHARE = 0.05
#: a training accuracy below this is low: the network has not even learned its training examples
UNDERFIT_ACCURACY = 0.9
#: an accuracy gaining more than this in the last epoch is still rising
RISING = 0.005
#: a validation loss this much (relatively) below every earlier epoch's is still improving
STILL_IMPROVING = 0.01
#: validation accuracy this far above training accuracy is worth explaining
VAL_ABOVE_TRAIN = 0.01
#: losses that expect probabilities from the output layer (the trainer compiles them with from_logits=False)
_PROBABILITY_LOSSES = frozenset({"sparse_categorical_crossentropy", "categorical_crossentropy"})
#: findings that mean the run did not go well (the others explain or suggest)
PROBLEM_KINDS = frozenset({"diverged", "chance", "underfitting", "overfitting"})
#: findings that mean the model is no better than guessing: it must not silently replace a better model
BAD_KINDS = frozenset({"diverged", "chance"})


@dataclass(frozen=True)
class Finding:
    """One thing a run's history shows, said in one sentence with the next step.

    ``kind`` is ``diverged``, ``chance``, ``underfitting``, ``overfitting``, ``still_improving`` or
    ``validation_better``.
    """

    kind: str
    sentence: str


@dataclass(frozen=True)
class Diagnosis:
    """What went wrong in a run, if anything, and the accuracy that judges it.

    ``accuracy`` is the test accuracy, else the validation accuracy, else the last training accuracy:
    the figure a learner compares runs by, and the app compares current models by.
    """

    status: str = "finished"
    findings: tuple[Finding, ...] = ()
    accuracy: float | None = None
    accuracy_name: str = ""

    @property
    def kinds(self) -> list[str]:
        return [f.kind for f in self.findings]

    @property
    def sentences(self) -> list[str]:
        return [f.sentence for f in self.findings]

    @property
    def bad(self) -> bool:
        """The run diverged or ended at chance level: its model is no better than guessing."""
        return self.status == "nan" or any(f.kind in BAD_KINDS for f in self.findings)

    @property
    def went_well(self) -> bool:
        """The run trained all it was going to and shows no problem: only then is Predict the next step."""
        return self.status in COMPLETE_STATUSES and not any(f.kind in PROBLEM_KINDS for f in self.findings)

    def line(self) -> str:
        """Every finding and, when the run went well, the next step, on one line (what the CLI prints last)."""
        return " ".join([*self.sentences, *([_NEXT_HINT.strip()] if self.went_well else [])])


def diagnose(history: Mapping[str, Sequence[Any]], *, status: str = "finished", batch_losses: Iterable[Any] = (),
             num_classes: int | None = None, learning_rate: float | None = None, loss: str | None = None,
             output_activation: str | None = None, test_accuracy: float | None = None,
             val_accuracy: float | None = None) -> Diagnosis:
    """Recognise how a run went from its per-epoch ``history`` (Keras-style lists: ``loss``, ``val_loss``...).

    Args:
        history: per-epoch metrics of the run.
        status: the run's status (``finished``, ``early_stopped``, ``stopped``, ``nan``); ``failed`` finds nothing.
        batch_losses: the per-batch (running-average) training losses in order: the first is the untrained
            network's loss, and a blow-up inside the first epoch shows only here.
        num_classes: classes of the data set, for the chance level (unknown: not judged).
        learning_rate, loss, output_activation: the run's settings, named in the advice.
        test_accuracy, val_accuracy: the final scores of the weights kept (the trainer's result).
    """
    if status not in (*COMPLETE_STATUSES, "stopped", "nan"):
        return Diagnosis(status=status)
    train_loss = _numbers(history.get("loss", ()))
    val_loss = _numbers(history.get("val_loss", ()))
    train_acc = _numbers(history.get("accuracy", ()))
    val_acc = _numbers(history.get("val_accuracy", ()))
    accuracy, name = _judging_accuracy(test_accuracy, val_accuracy, val_acc, train_acc)
    findings: list[Finding] = []
    batches = _numbers(batch_losses)
    diverged = _diverged(status, train_loss, batches, learning_rate, num_classes, loss)
    if not diverged and _at_chance(accuracy, num_classes):
        diverged = _saturated(train_loss, batches, learning_rate, loss, output_activation)
    if diverged:
        findings.append(Finding("diverged", diverged))
    chance = _chance(accuracy, name, num_classes, status, bool(diverged), train_loss, batches,
                     learning_rate, loss, output_activation)
    if chance:
        findings.append(Finding("chance", chance))
    if diverged or chance or status == "nan":
        return Diagnosis(status, tuple(findings), accuracy, name)
    fit = _overfitting(status, train_loss, val_loss) or _underfitting(status, train_acc, val_acc, learning_rate)
    if fit:
        findings.append(fit)
    else:  # an underfitting network is still improving too: its sentence already asks for more epochs
        improving = _still_improving(status, val_loss, val_acc)
        if improving:
            findings.append(Finding("still_improving", improving))
    better = _validation_better(train_acc, val_acc)
    if better:
        findings.append(Finding("validation_better", better))
    return Diagnosis(status, tuple(findings), accuracy, name)


def diagnose_result(result: Any, record: Any = None, *, learning_rate: float | None = None, loss: str | None = None,
                    output_activation: str | None = None, num_classes: int | None = None) -> Diagnosis:
    """:func:`diagnose` for a trainer's result, with what its run record adds (batch losses, classes, design).

    ``record`` is the run's :class:`~neuralstudio.core.runs.RunRecord` (None: the result alone); the
    keyword arguments win over what the record says. Read by attribute name: a record from an older
    version, with fields missing, diagnoses what it can.
    """
    history = getattr(result, "history", None)
    if not isinstance(history, Mapping) or not history:
        history = record.history() if record is not None else {}
    hyper = getattr(record, "hyperparameters", None) or {}
    data = getattr(record, "data", None) or {}
    design = getattr(record, "design", None) or {}
    out_activation, out_units = output_layer(design)
    classes = num_classes or _whole(data.get("num_classes")) or out_units
    return diagnose(
        history, status=run_status(result),
        batch_losses=[p.get("loss") for p in getattr(record, "batches", None) or [] if isinstance(p, Mapping)],
        num_classes=classes,
        learning_rate=learning_rate if learning_rate is not None else as_number(hyper.get("learning_rate")),
        loss=loss or (hyper.get("loss") if isinstance(hyper.get("loss"), str) else None),
        output_activation=output_activation or out_activation,
        test_accuracy=as_number(getattr(result, "test_accuracy", None)),
        val_accuracy=as_number(getattr(result, "val_accuracy", None)))


def diagnose_record(record: Any) -> Diagnosis:
    """:func:`diagnose_result` for a run read back from the store (its ``final`` figures are the result's)."""
    final = getattr(record, "final", None) or {}

    class _Result:
        status = getattr(record, "status", "failed")
        test_accuracy = final.get("test_accuracy")
        val_accuracy = final.get("val_accuracy")
        history: dict[str, Any] = {}

    return diagnose_result(_Result(), record)


def record_accuracy(record: Any) -> float | None:
    """The accuracy that judges a recorded run: test, else validation, else training (None: none recorded)."""
    final = getattr(record, "final", None) or {}
    for key in ("test_accuracy", "val_accuracy", "train_accuracy"):
        v = as_number(final.get(key))
        if v is not None and math.isfinite(v):
            return v
    return None


def output_layer(design: Mapping[str, Any]) -> tuple[str | None, int | None]:
    """The activation and units of a design's (first) output layer, from ``Design.to_dict()``; None when unknown.

    Read defensively: the design may come from a run record, which is an untrusted file.
    """
    graph = design.get("graph") if isinstance(design, Mapping) else None
    nodes = graph.get("nodes") if isinstance(graph, Mapping) else None
    if not isinstance(nodes, list):
        return None, None
    by_id = {n.get("id"): n for n in nodes if isinstance(n, Mapping) and isinstance(n.get("id"), str)}
    edges = graph.get("edges")
    sources = {e.get("src") for e in edges if isinstance(e, Mapping)} if isinstance(edges, list) else set()
    explicit = graph.get("outputs")
    ids = [o for o in explicit if o in by_id] if isinstance(explicit, list) else []
    ids = ids or [i for i, n in by_id.items() if i not in sources and n.get("class_name") != "InputLayer"]
    if not ids:
        return None, None
    config = by_id[ids[0]].get("config")
    if not isinstance(config, Mapping):
        return None, None
    activation = config.get("activation")
    return (activation if isinstance(activation, str) else None), _whole(config.get("units"))


def _whole(v: Any) -> int | None:
    n = as_number(v)
    return int(n) if n is not None and math.isfinite(n) and n.is_integer() and 0 < n < 1e9 else None


def _numbers(values: Iterable[Any]) -> list[float]:
    """The values as floats, in order; missing ones dropped, NaN and infinities kept (they are evidence)."""
    out = []
    for v in values:
        n = as_number(v)
        if n is not None:
            out.append(n)
    return out


def _finite(values: Sequence[float]) -> list[float]:
    return [v for v in values if math.isfinite(v)]


def _pct(v: float) -> str:
    """``9.8%``, ``97.8%``: one decimal is enough to compare runs in a sentence."""
    return f"{v:.1%}"


def _loss_text(v: float) -> str:
    return f"{v:,.0f}" if abs(v) >= 1000 else f"{v:.3g}"


def _judging_accuracy(test: float | None, val: float | None, val_hist: list[float],
                      train_hist: list[float]) -> tuple[float | None, str]:
    for value, name in ((test, "Test"), (val, "Validation"), (val_hist[-1] if val_hist else None, "Validation"),
                        (train_hist[-1] if train_hist else None, "Training")):
        if value is not None and math.isfinite(value):
            return value, name
    return None, ""


def _smaller(learning_rate: float | None, how: str = "is too high") -> str:
    """``the learning rate 100 is too high; try 10 (10x smaller)``."""
    if learning_rate is None or not learning_rate > 0:
        return f"the learning rate {how}; try one 10x smaller"
    return f"the learning rate {learning_rate:g} {how}; try {learning_rate / 10:g} (10x smaller)"


def _diverged(status: str, train_loss: list[float], batch_losses: list[float], learning_rate: float | None,
              num_classes: int | None, loss: str | None) -> str:
    """The diverged sentence when the loss became NaN/infinite or grew far above where it started.

    The first batch's loss is the untrained network's. Without batch losses the first epoch's average may
    already hold the blow-up; for a cross-entropy loss, ln(classes) (what uniform guessing scores) is then
    where it started.
    """
    if status == "nan" or any(not math.isfinite(v) for v in [*train_loss, *batch_losses]):
        return f"A loss that becomes NaN or infinite means training diverged: {_smaller(learning_rate)}."
    points = batch_losses or train_loss
    if not points:
        return ""
    start, peak = points[0], max(points)
    if not batch_losses and num_classes and num_classes >= 2 and (loss is None or loss in _PROBABILITY_LOSSES):
        start = min(start, math.log(num_classes))
    elif len(points) < 2:
        return ""
    if peak <= DIVERGE_FACTOR * max(start, DIVERGE_FLOOR):
        return ""
    end = train_loss[-1] if train_loss else points[-1]
    where = (f"rose from {_loss_text(start)} to {_loss_text(peak)}" if end >= peak * 0.99 else
             f"rose from {_loss_text(start)} to {_loss_text(peak)} (and ended at {_loss_text(end)})")
    return f"The training loss {where} instead of falling, so training diverged: {_smaller(learning_rate)}."


def _chance(accuracy: float | None, name: str, num_classes: int | None, status: str, diverged: bool,
            train_loss: list[float], batch_losses: list[float], learning_rate: float | None, loss: str | None,
            activation: str | None) -> str:
    """The chance-level sentence when the judging accuracy is about what guessing gets, with the likely cause."""
    if not _at_chance(accuracy, num_classes):
        return ""
    chance = 1.0 / num_classes
    head = (f"{name} accuracy {_pct(accuracy)} is chance level: {chance:.0%} is what guessing gets with "
            f"{num_classes} classes")
    if diverged:  # the diverged sentence names the cause and the fix
        return head + ", so the network learned nothing."
    if status == "stopped":
        return head + ", so the network has learned nothing yet."
    cause = _chance_cause(train_loss, batch_losses, learning_rate, loss, activation)
    return f"{head}, so the network learned nothing: {cause}."


def _at_chance(accuracy: float | None, num_classes: int | None) -> bool:
    """Whether ``accuracy`` is about what guessing gets among ``num_classes`` classes (unknown: no)."""
    if accuracy is None or not num_classes or num_classes < 2:
        return False
    chance = 1.0 / num_classes
    return accuracy <= chance + min(CHANCE_MARGIN, chance / 2)


def _saturated(train_loss: list[float], batch_losses: list[float], learning_rate: float | None,
               loss: str | None, activation: str | None) -> str:
    """The diverged sentence for a run at chance level whose loss moved, then froze: the units saturated.

    What Nielsen's chapter 1 network does at a learning rate ten times his 3.0: the first steps throw the
    weights so far that every sigmoid sits at 0 or 1, where its gradient is almost zero, and nothing learns any
    more (a ReLU network dies the same way). The loss need not rise for that, so :func:`_diverged` misses it;
    it only stops changing. A loss that hardly moved from its start is a learning rate too low instead
    (:func:`_chance_cause`), and a loss that does not fit the output is said there too.
    """
    if _misfits_output(loss, activation):
        return ""
    losses, points = _finite(train_loss), _finite(batch_losses or train_loss)
    if len(losses) < 2 or not points:
        return ""
    start, last = points[0], losses[-1]
    total = abs(last - start)
    if _hardly_moved(start, last):
        return ""
    settled = SETTLED_SHARE * total  # the first epoch's average and the last epoch's change: both already there
    if abs(losses[0] - last) > settled or abs(losses[-2] - last) > settled:
        return ""
    return (f"The training loss went from {_loss_text(start)} to {_loss_text(last)} within the first epoch and "
            "then hardly changed, so the first steps likely saturated the units (their gradients are almost "
            f"zero, so nothing learns any more) and training diverged: "
            f"{_smaller(learning_rate, 'is likely too high')}.")


def _misfits_output(loss: str | None, activation: str | None) -> bool:
    """A loss that expects probabilities after an output layer that does not give them."""
    return loss in _PROBABILITY_LOSSES and (activation or "linear").lower() not in ("softmax", "sigmoid")


def _hardly_moved(start: float, end: float) -> bool:
    """A loss that changed by at most :data:`HARDLY_MOVED` of where it started."""
    return abs(end - start) <= HARDLY_MOVED * abs(start)


def _chance_cause(train_loss: list[float], batch_losses: list[float], learning_rate: float | None,
                  loss: str | None, activation: str | None) -> str:
    """The likeliest reason a run learned nothing: a loss that does not fit the output, a learning rate too low
    (the loss hardly moved) or too high (it moved but not down), or, when nothing tells, all three."""
    act = (activation or "linear").lower()
    if _misfits_output(loss, activation):
        return (f"the loss {loss} expects probabilities, but the output layer's activation is {act}: "
                "use softmax on the output layer")
    points = _finite(batch_losses or train_loss)
    if len(points) >= 2 and learning_rate and learning_rate > 0:
        start, end = points[0], points[-1]
        if _hardly_moved(start, end):
            return (f"the loss hardly changed ({_loss_text(start)} to {_loss_text(end)}), so the learning rate "
                    f"{learning_rate:g} is likely too low: try {learning_rate * 10:g} (10x larger)")
        if end > start * 0.9:
            return f"the loss did not fall, so {_smaller(learning_rate, 'is likely too high')}"
    return ("the likely causes are a learning rate too high or too low (try 10x smaller or larger), or a loss "
            "that does not fit the output layer's activation (use softmax with sparse_categorical_crossentropy)")


def _overfitting(status: str, train_loss: list[float], val_loss: list[float]) -> Finding | None:
    """Validation loss rising while training loss falls (core/overfitting.py's rule), unless early stopping
    already acted on it."""
    if status not in ("finished", "stopped") or not val_loss:
        return None
    watch = OverfittingWatch()
    start = None
    for tl, vl in zip(train_loss, val_loss):
        start = watch.add_epoch({"loss": tl, "val_loss": vl}) or start
    if start is None:
        return None
    return Finding("overfitting", f"Validation loss rose from epoch {start} on while training loss kept falling, "
                                  "so the network is memorising its training examples (overfitting): train fewer "
                                  "epochs or turn on early stopping, add Dropout, or use more data.")


def _underfitting(status: str, train_acc: list[float], val_acc: list[float],
                  learning_rate: float | None) -> Finding | None:
    """A low training accuracy: the network has not learned even the examples it trains on."""
    acc = _finite(train_acc)
    if status not in COMPLETE_STATUSES or not acc or acc[-1] >= UNDERFIT_ACCURACY:
        return None
    higher = f" (try {learning_rate * 3:g})" if learning_rate and learning_rate > 0 else ""
    if len(acc) < 2 or acc[-1] - acc[-2] > RISING:
        return Finding("underfitting", f"Training accuracy is only {_pct(acc[-1])} and was still rising at the end "
                                       f"(underfitting): train more epochs, or raise the learning rate{higher}.")
    val = _finite(val_acc)
    both = (f"Training and validation accuracy are both low ({_pct(acc[-1])} and {_pct(val[-1])})" if val else
            f"Training accuracy is low ({_pct(acc[-1])})")
    return Finding("underfitting", f"{both} and no longer rising (underfitting): make the network bigger (more "
                                   f"units or layers), or raise the learning rate{higher}.")


def _still_improving(status: str, val_loss: list[float], val_acc: list[float]) -> str:
    """Validation still improving in the last epoch of a run that ran out of epochs (or was stopped)."""
    if status not in ("finished", "stopped"):
        return ""
    vl = _finite(val_loss)
    if len(vl) >= 2 and len(vl) == len(val_loss):
        if vl[-1] < min(vl[:-1]) * (1 - STILL_IMPROVING):
            return (f"Validation loss was still falling in the last epoch ({_loss_text(vl[-2])} to "
                    f"{_loss_text(vl[-1])}): more epochs would help.")
        return ""
    va = _finite(val_acc)
    if len(va) >= 2 and va[-1] > max(va[:-1]) + RISING:
        return (f"Validation accuracy was still rising in the last epoch ({_pct(va[-2])} to {_pct(va[-1])}): "
                "more epochs would help.")
    return ""


def _validation_better(train_acc: list[float], val_acc: list[float]) -> str:
    """Explain a validation accuracy above the training accuracy, which surprises learners but is normal."""
    if not train_acc or not val_acc or not (math.isfinite(train_acc[-1]) and math.isfinite(val_acc[-1])):
        return ""
    if val_acc[-1] <= train_acc[-1] + VAL_ABOVE_TRAIN:
        return ""
    return (f"Validation accuracy ({_pct(val_acc[-1])}) is above training accuracy ({_pct(train_acc[-1])}), which "
            "is normal: the training figure is averaged over the epoch while the weights were still improving, "
            "and Dropout and augmentation are active only in training.")
