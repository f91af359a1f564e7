"""Experiments: many trainings of one design over a search space, searched, pruned and stored by Optuna.

Why Optuna (and not KerasTuner or Ray Tune): its define-by-run trials fit a trainer that already exists
(each trial is one :class:`~neuralstudio.ml.trainer.Trainer` run, so a trial is an ordinary run in the
runs store); it has grid, random and TPE samplers, median and successive-halving pruners and parameter
importances; and its storages (a journal file on one machine, any SQLAlchemy database for many) let
workers in several processes or on several machines share one study with nothing but a URL. KerasTuner
owns the training loop and keeps its state in a folder; Ray Tune brings a cluster runtime a learner's
laptop does not need.

A study records everything needed to run its trials again (the design, the search space, the data
source, the seed, the software versions) in its user attributes, so that ``sweep --study NAME`` joins
it from another process or machine, and ``sweep show NAME`` reads it back without the design file.
Each trial records its run id, status, metrics and per-epoch curves in the trial's user attributes:
the results view needs no runs folder, which another machine's trials would not be in.
"""

from __future__ import annotations

import math
import os
import platform
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

from neuralstudio.core.design import Design, design_from_dict
from neuralstudio.core.errors import UserError
from neuralstudio.core.numbers import finite_number
from neuralstudio.core.paths import user_data_dir
from neuralstudio.core.run_outcome import diagnose_result
from neuralstudio.core.runs import RunsStore
from neuralstudio.core.search_space import (
    DEFAULT_GRID_POINTS,
    ParamSpec,
    SearchSpaceError,
    apply_values,
    check_params,
    grid_size,
    parse_param,
)
from neuralstudio.ml.trainer import RunResult, TrainControl, Trainer

__all__ = ["ATTR", "PRUNERS", "STRATEGIES", "SweepControl", "SweepError", "SweepReporter", "SweepSpec",
           "TrialOutcome", "default_storage", "load_study", "new_study", "open_storage", "run_sweep",
           "study_names", "trial_values"]

STRATEGIES = ("grid", "random", "tpe")
PRUNERS = ("none", "median", "halving")
ATTR = "neuralstudio"  # the study's user attribute that holds the experiment's definition
DEFAULT_TRIALS = 20  # random and TPE searches with neither a trial count nor a time limit
_TRIAL_FIELDS = ("status", "message", "run_id", "epochs_run", "seconds", "samples_per_second", "val_accuracy",
                 "val_loss", "test_accuracy", "train_loss", "train_accuracy", "batch_size")


class SweepError(UserError, ValueError):
    """An experiment that cannot be set up: a bad storage URL, an unknown study, a bad definition."""


class _StoppedError(Exception):
    """The user stopped the experiment during a trial: Optuna marks that trial failed and returns."""


class _TrialFailedError(Exception):
    """A trial's training failed (its message is in the trial's attributes): the next trial runs."""


@dataclass
class SweepSpec:
    """What an experiment trains and how it searches.

    Args:
        design: the design each trial starts from.
        params: what varies (:mod:`neuralstudio.core.search_space`).
        strategy: ``grid`` (every combination; ranges at ``grid_points`` values), ``random`` or ``tpe``
            (Bayesian: Optuna's tree-structured Parzen estimator).
        trials: how many trials at most (all of the grid when None for a grid).
        timeout_s: stop starting trials after this many seconds (None: no time limit).
        prune: ``none``, ``median`` (stop a trial whose validation metric is below the median of the
            earlier trials at the same epoch) or ``halving`` (successive halving).
        data: the data spec every trial trains on (None: the design's own).
        study: the study's name (made from the design's name and the time when empty).
        storage: an Optuna storage URL (None: :func:`default_storage`).
        seed: the sampler's seed (the trainings use the design's own seed, so a trial reproduces).
        device: where each trial trains (``auto``, ``cpu``, ``gpu``...).
    """

    design: Design
    params: list[ParamSpec]
    strategy: str = "tpe"
    trials: int | None = None
    timeout_s: float | None = None
    prune: str = "none"
    data: str | None = None
    study: str = ""
    storage: str | None = None
    seed: int = 0
    grid_points: int = DEFAULT_GRID_POINTS
    device: str = "auto"

    def validate(self) -> None:
        if self.strategy not in STRATEGIES:
            raise SweepError(f"Unknown strategy {self.strategy!r}: choose grid, random or tpe.")
        if self.prune not in PRUNERS:
            raise SweepError(f"Unknown pruning {self.prune!r}: choose none, median or halving.")
        if not self.params:
            raise SweepError("Nothing varies: give at least one hyperparameter to vary (--param NAME=VALUES).")
        if self.trials is not None and self.trials < 1:
            raise SweepError("An experiment needs at least 1 trial.")
        if self.timeout_s is not None and self.timeout_s <= 0:
            raise SweepError("The time limit must be positive.")
        check_params(self.design, self.params)

    def planned_trials(self) -> int | None:
        """How many trials will run (None: as many as fit in the time limit)."""
        if self.strategy == "grid":
            n = grid_size(self.params, self.grid_points)
            return min(n, self.trials) if self.trials else n
        if self.trials is None and self.timeout_s is not None:
            return None
        return self.trials or DEFAULT_TRIALS

    def definition(self) -> dict[str, Any]:
        """What the study stores about itself (enough to run more trials or read it elsewhere)."""
        import keras
        import numpy as np
        import optuna

        from neuralstudio import __version__

        return {
            "design": self.design.to_dict(), "params": [p.to_text() for p in self.params],
            "strategy": self.strategy, "prune": self.prune, "grid_points": self.grid_points,
            "data": self.data or str(self.design.data.get("source") or "mnist-sample"),
            "trials": self.planned_trials(), "timeout_s": self.timeout_s, "seed": self.seed,
            "metric": metric_name(self.design), "device": self.device,
            "versions": {"neuralstudio": __version__, "keras": keras.__version__, "backend": keras.backend.backend(),
                         "numpy": np.__version__, "optuna": optuna.__version__, "python": platform.python_version()},
            "created": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        }


@dataclass
class TrialOutcome:
    """One finished trial, as the reporter hears of it."""

    number: int
    values: dict[str, Any]
    state: str  # complete, pruned, failed
    value: float | None
    status: str  # the run's: finished, early_stopped, diverged, pruned, stopped, failed
    message: str = ""
    run_id: str | None = None
    epochs_run: int = 0
    seconds: float = 0.0


class SweepReporter(Protocol):
    """Receives an experiment's progress, on the training thread (a GUI queues it to its own thread)."""

    def on_trial_started(self, number: int, values: dict[str, Any]) -> None: ...
    def on_batch(self, epoch: int, batch: int, logs: dict[str, float]) -> None: ...
    def on_epoch(self, epoch: int, logs: dict[str, float]) -> None: ...
    def on_log(self, message: str) -> None: ...
    def on_trial_finished(self, outcome: TrialOutcome) -> None: ...


class SweepControl(TrainControl):
    """Stop and pause for a whole experiment: they act on the running trial and on the trials to come."""

    def __init__(self) -> None:
        super().__init__()
        self._lock = threading.Lock()
        self._trial: TrainControl | None = None

    def trial_control(self) -> TrainControl:
        """A control for the next trial, paused or stopped already if the experiment is."""
        ctl = TrainControl()
        with self._lock:
            self._trial = ctl
            if self.is_paused:
                ctl.pause()
            if self.stop_requested:
                ctl.request_stop()
        return ctl

    def request_stop(self) -> None:
        super().request_stop()
        with self._lock:
            if self._trial is not None:
                self._trial.request_stop()

    def pause(self) -> None:
        super().pause()
        with self._lock:
            if self._trial is not None:
                self._trial.pause()

    def resume(self) -> None:
        super().resume()
        with self._lock:
            if self._trial is not None:
                self._trial.resume()


# ----------------------------------------------------------------------------- storage and studies
def default_storage() -> str:
    """The storage of experiments on this computer: a journal file in the user data folder (nothing to set up).

    A journal file, not SQLite, because several worker processes append to it safely (Optuna's advice for
    one machine); a database URL shares a study between machines.
    """
    return str(user_data_dir() / "experiments" / "studies.journal")


def open_storage(url: str | None = None) -> Any:
    """An Optuna storage for ``url``: a database URL (``postgresql://``, ``sqlite:///``...) or a journal file path."""
    import optuna
    from optuna.storages.journal import JournalFileBackend, JournalFileOpenLock

    target = url or default_storage()
    if "://" in target:
        try:
            return _rdb_storage(target)
        except Exception as exc:  # noqa: BLE001 - SQLAlchemy and the drivers raise many kinds
            raise SweepError(f"Cannot open the experiment storage {_safe_url(target)}: {_first_line(exc)}. Check "
                             "the URL, that the server runs and that its driver is installed "
                             "(pip install \"neuralstudio[postgres]\" for PostgreSQL).") from exc
    path = Path(target.removeprefix("journal:")).expanduser()
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        backend = JournalFileBackend(str(path), lock_obj=JournalFileOpenLock(str(path)))
        return optuna.storages.JournalStorage(backend)
    except OSError as exc:
        raise SweepError(f"Cannot use {path} for experiments: {exc.strerror or exc}.") from exc


def _rdb_storage(url: str, tries: int = 5) -> Any:
    """Optuna's database storage, retried when another worker is creating its tables at the same moment.

    Two workers that open a new PostgreSQL database together race in Optuna's table set-up, and the loser
    gets a duplicate-key or already-exists error (reproduced in 7 of 8 starts of three workers); a retry
    finds the tables made.
    """
    import optuna
    import sqlalchemy.exc

    for attempt in range(tries):
        try:
            return optuna.storages.RDBStorage(url, engine_kwargs={"pool_pre_ping": True})
        except (sqlalchemy.exc.IntegrityError, sqlalchemy.exc.ProgrammingError):
            if attempt == tries - 1:
                raise
            time.sleep(0.2 * (attempt + 1))
    raise AssertionError("unreachable")


def study_names(storage: str | None = None) -> list[dict[str, Any]]:
    """The studies in a storage, newest first: name, trials, best value, created."""
    import optuna

    out = []
    for summary in optuna.get_all_study_summaries(open_storage(storage), include_best_trial=True):
        attrs = summary.user_attrs.get(ATTR, {})
        best = summary.best_trial.value if summary.best_trial is not None else None
        out.append({"name": summary.study_name, "trials": summary.n_trials, "best": best,
                    "created": attrs.get("created", ""), "design": attrs.get("design", {}).get("name", ""),
                    "params": attrs.get("params", [])})
    return sorted(out, key=lambda s: s["created"], reverse=True)


def new_study(spec: SweepSpec) -> Any:
    """Create the study for ``spec`` (or join it when a study of that name exists with the same definition)."""
    import optuna

    spec.validate()
    storage = open_storage(spec.storage)
    name = spec.study or _default_study_name(spec.design)
    spec.study = name
    definition = spec.definition()
    existing = _existing(storage, name)
    if existing is not None:
        old = existing.user_attrs.get(ATTR, {})
        same_design = old.get("design", {}).get("graph") == definition["design"]["graph"]
        if old.get("params") != definition["params"] or not same_design:
            raise SweepError(f"An experiment called {name!r} already exists with another design or search space: "
                             "choose another name (--study) or leave the name out.")
        return _configured(existing, spec)
    study = optuna.create_study(study_name=name, storage=storage, direction="maximize",
                                sampler=_sampler(spec), pruner=_pruner(spec))
    study.set_user_attr(ATTR, definition)
    return study


def load_study(name: str, storage: str | None = None) -> tuple[Any, SweepSpec]:
    """An existing study and the experiment it records (to run more trials of it, or to read its results)."""
    st = open_storage(storage)
    study = _existing(st, name)
    if study is None:
        known = [s.study_name for s in _summaries(st)]
        hint = f" Experiments there: {', '.join(known[-8:])}." if known else " There are no experiments there yet."
        raise SweepError(f"No experiment called {name!r} in {_safe_url(storage or default_storage())}.{hint}")
    attrs = study.user_attrs.get(ATTR)
    if not isinstance(attrs, dict) or "design" not in attrs:
        raise SweepError(f"The study {name!r} was not made by NeuralStudio: it records no design to train.")
    design = design_from_dict(attrs["design"], source=f"experiment {name}")
    try:
        params = [parse_param(p) for p in attrs.get("params", [])]
    except SearchSpaceError as exc:
        raise SweepError(f"The experiment {name!r} records a search space this version cannot read: {exc}") from exc
    spec = SweepSpec(design, params, strategy=attrs.get("strategy", "tpe"), trials=attrs.get("trials"),
                     timeout_s=attrs.get("timeout_s"), prune=attrs.get("prune", "none"), data=attrs.get("data"),
                     study=name, storage=storage, seed=int(attrs.get("seed", 0)),
                     grid_points=int(attrs.get("grid_points", DEFAULT_GRID_POINTS)), device=attrs.get("device", "auto"))
    return _configured(study, spec), spec


# ----------------------------------------------------------------------------- running
def run_sweep(study: Any, spec: SweepSpec, *, reporter: SweepReporter | None = None,
              control: SweepControl | None = None, runs_store: RunsStore | None = None, dataset: Any = None,
              trials: int | None = None, free_memory: bool = True) -> list[TrialOutcome]:
    """Run trials of ``study`` in this process until its budget is spent, the grid is done or ``control`` stops it.

    ``trials`` caps the trials of the whole study (all workers together); by default the spec's planned count.
    Returns this process's trials. Stopping keeps every finished trial; the interrupted one is marked failed.
    ``free_memory`` is the trainer's: a GUI passes False, since a collection on a worker thread that frees a
    Qt object deadlocks (docs/ARCHITECTURE.md, Threads), and collects on its own thread instead.
    """
    import optuna

    from neuralstudio.ml import data as data_mod

    control = control or SweepControl()
    ds = dataset if dataset is not None else data_mod.load_dataset(spec.data or str(spec.design.data.get("source")
                                                                                    or data_mod.DEFAULT_SOURCE))
    total = trials or spec.planned_trials()
    done: list[TrialOutcome] = []
    metric = metric_name(spec.design)

    def objective(trial: optuna.Trial) -> float:
        values = {p.name: _suggest(trial, p, spec) for p in spec.params}
        trial.set_user_attr("values", values)
        trial.set_user_attr("worker", f"{platform.node()}:{os.getpid()}")  # which machine and process ran it
        if control.stop_requested:  # stopped between two trials: this one never starts
            trial.set_user_attr("status", "stopped")
            raise _StoppedError
        if reporter is not None:
            reporter.on_trial_started(trial.number, values)
        outcome = _train_trial(trial, spec, values, ds, metric, control, reporter, runs_store, free_memory)
        done.append(outcome)
        if reporter is not None:
            reporter.on_trial_finished(outcome)
        if outcome.status == "stopped" and control.stop_requested:
            raise _StoppedError
        if outcome.state == "pruned":
            raise optuna.TrialPruned
        if outcome.state == "failed":
            raise _TrialFailedError(outcome.message)
        return float(outcome.value)  # type: ignore[arg-type]

    _requeue_interrupted(study)
    left = _trials_left(study, total)
    if left is not None and left <= 0:  # another worker (or an earlier run) spent the budget
        return done
    callbacks = [_stop_when(control)]
    if total is not None:
        callbacks.append(_stop_at(total))
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    try:
        study.optimize(objective, n_trials=left, timeout=spec.timeout_s, catch=(_TrialFailedError,),
                       callbacks=callbacks, gc_after_trial=False)
    except _StoppedError:
        pass
    return done


def metric_name(design: Design) -> str:
    """What the experiment maximises: validation accuracy, or training accuracy when nothing is held out."""
    return "val_accuracy" if design.training.validation_split > 0 else "accuracy"


def trial_values(trial: Any) -> dict[str, Any]:
    """A stored trial's hyperparameter values, by path (its ``params``, which Optuna may name differently)."""
    values = trial.user_attrs.get("values")
    return dict(values) if isinstance(values, dict) else dict(trial.params)


# ----------------------------------------------------------------------------- one trial
class _TrialReporter:
    """Passes a trial's progress on and reports each epoch's metric to Optuna, which may prune the trial."""

    def __init__(self, trial: Any, metric: str, control: TrainControl, outer: SweepReporter | None) -> None:
        self.trial, self.metric, self.control, self.outer = trial, metric, control, outer
        self.pruned_at: int | None = None

    def on_batch(self, epoch: int, batch: int, logs: dict[str, float]) -> None:
        if self.outer is not None:
            self.outer.on_batch(epoch, batch, logs)

    def on_epoch(self, epoch: int, logs: dict[str, float]) -> None:
        if self.outer is not None:
            self.outer.on_epoch(epoch, logs)
        value = logs.get(self.metric, logs.get("accuracy"))
        if logs.get("partial") or value is None or not math.isfinite(float(value)):
            return  # an epoch cut short by a stop scores what it saw so far, not what the epoch would have
        self.trial.report(float(value), epoch)
        if self.pruned_at is None and self.trial.should_prune():
            self.pruned_at = epoch + 1
            self.control.request_stop()

    def on_log(self, message: str) -> None:
        if self.outer is not None:
            self.outer.on_log(message)

    def on_finished(self, result: RunResult) -> None:
        pass

    def on_failed(self, message: str) -> None:
        if self.outer is not None:
            self.outer.on_log(message)


def _train_trial(trial: Any, spec: SweepSpec, values: dict[str, Any], ds: Any, metric: str, control: SweepControl,
                 reporter: SweepReporter | None, runs_store: RunsStore | None, free_memory: bool) -> TrialOutcome:
    """Train one trial's design and record what happened in the trial's attributes."""
    ctl = control.trial_control()
    try:
        design = apply_values(spec.design, values)
    except UserError as exc:
        return _record(trial, values, "failed", None, "failed", str(exc))
    design.name = f"{spec.design.name} · trial {trial.number}"
    tr = _TrialReporter(trial, metric, ctl, reporter)
    trainer = Trainer(design, dataset=ds, device=spec.device, runs_store=runs_store, reporter=tr, control=ctl,
                      test_stopped=False, free_memory=free_memory)
    result = trainer.run()
    if trainer.record is not None and runs_store is not None:
        trainer.record.hyperparameters.update(experiment=spec.study, trial=trial.number)
        try:
            runs_store.save(trainer.record)
        except (OSError, UserError):
            pass
    value = _metric_value(result, metric)
    for key in _TRIAL_FIELDS:
        v = getattr(result, key, None)
        trial.set_user_attr(key, v if not isinstance(v, float) or math.isfinite(v) else None)
    trial.set_user_attr("history", {k: [finite_number(x) for x in vs] for k, vs in result.history.items()})
    if tr.pruned_at is not None:
        return _record(trial, values, "pruned", value, "pruned", f"Pruned after epoch {tr.pruned_at}: its "
                       f"{metric.replace('_', ' ')} was below the median of the earlier trials.", result)
    if result.status == "failed":
        return _record(trial, values, "failed", None, "failed", result.message, result)
    if result.status == "stopped":
        return _record(trial, values, "failed", value, "stopped", "Stopped by the user.", result)
    diagnosis = diagnose_result(result, trainer.record, num_classes=getattr(ds, "num_classes", None),
                                learning_rate=design.training.learning_rate, loss=design.training.loss)
    trial.set_user_attr("findings", diagnosis.kinds)
    status = "diverged" if result.status == "nan" or "diverged" in diagnosis.kinds else result.status
    message = " ".join(diagnosis.sentences) or result.message
    return _record(trial, values, "complete", value if value is not None else 0.0, status, message, result)


def _record(trial: Any, values: dict[str, Any], state: str, value: float | None, status: str, message: str,
            result: RunResult | None = None) -> TrialOutcome:
    trial.set_user_attr("status", status)
    trial.set_user_attr("message", message)
    return TrialOutcome(trial.number, values, state, value, status, message,
                        result.run_id if result else None, result.epochs_run if result else 0,
                        result.seconds if result else 0.0)


def _metric_value(result: RunResult, metric: str) -> float | None:
    v = result.val_accuracy if metric == "val_accuracy" else result.train_accuracy
    if v is None and result.history.get(metric):
        v = result.history[metric][-1]
    return finite_number(v)


# ----------------------------------------------------------------------------- Optuna wiring
def _suggest(trial: Any, p: ParamSpec, spec: SweepSpec) -> Any:
    """The trial's value of one hyperparameter; a grid asks for listed values (Optuna's GridSampler needs them)."""
    if spec.strategy == "grid" or p.kind == "choice":
        return trial.suggest_categorical(p.name, p.grid(spec.grid_points))
    if p.kind == "int":
        return trial.suggest_int(p.name, int(p.low), int(p.high), step=p.step or 1)  # type: ignore[arg-type]
    return trial.suggest_float(p.name, float(p.low), float(p.high), log=p.kind == "log")  # type: ignore[arg-type]


def _sampler(spec: SweepSpec) -> Any:
    import optuna

    if spec.strategy == "grid":
        space = {p.name: p.grid(spec.grid_points) for p in spec.params}
        return optuna.samplers.GridSampler(space, seed=spec.seed)
    if spec.strategy == "random":
        return optuna.samplers.RandomSampler(seed=spec.seed)
    return optuna.samplers.TPESampler(seed=spec.seed, n_startup_trials=min(10, max(3, (spec.trials or 20) // 4)))


def _pruner(spec: SweepSpec) -> Any:
    """Median pruning from the second epoch of a trial once a few trials have finished; or successive halving."""
    import optuna

    if spec.prune == "median":
        startup = min(5, max(2, (spec.planned_trials() or DEFAULT_TRIALS) // 5))
        return optuna.pruners.MedianPruner(n_startup_trials=startup, n_warmup_steps=0)
    if spec.prune == "halving":
        return optuna.pruners.SuccessiveHalvingPruner(min_resource=1, reduction_factor=2)
    return optuna.pruners.NopPruner()


def _configured(study: Any, spec: SweepSpec) -> Any:
    """A loaded study with the sampler and pruner of its definition (Optuna stores neither)."""
    import optuna

    return optuna.load_study(study_name=study.study_name, storage=study._storage, sampler=_sampler(spec),
                             pruner=_pruner(spec))


def _requeue_interrupted(study: Any) -> None:
    """Queue again the trials a stop interrupted, once: Optuna counts a failed grid point as visited."""
    import optuna

    trials = study.get_trials(deepcopy=False)
    fail = optuna.trial.TrialState.FAIL
    taken = {_params_key(t.params) for t in trials if t.state != fail}
    taken |= {_params_key(t.system_attrs.get("fixed_params") or {}) for t in trials
              if t.state == optuna.trial.TrialState.WAITING}
    for t in trials:
        if t.state == fail and t.user_attrs.get("status") == "stopped" and t.params:
            key = _params_key(t.params)
            if key not in taken:
                # enqueue_trial, plus the grid point it is: GridSampler's after_trial looks the point up
                grid = {k: t.system_attrs[k] for k in ("grid_id", "search_space") if k in t.system_attrs}
                study.add_trial(optuna.trial.create_trial(
                    state=optuna.trial.TrialState.WAITING, system_attrs={"fixed_params": dict(t.params), **grid},
                    user_attrs={"retry_of": t.number}))
                taken.add(key)


def _trials_left(study: Any, total: int | None, *, count_running: bool = False) -> int | None:
    """Trials still to start of a budget of ``total``: a trial that a stop interrupted does not count (it runs
    again); one that failed does (a failed grid point is not tried twice); with ``count_running``, neither
    does one another worker is running."""
    import optuna

    if total is None:
        return None
    running = optuna.trial.TrialState.RUNNING
    spent = sum(1 for t in study.get_trials(deepcopy=False)
                if (t.state.is_finished() and t.user_attrs.get("status") != "stopped")
                or (count_running and t.state == running))
    return total - spent


def _stop_at(total: int) -> Callable[[Any, Any], None]:
    """Stop this worker once the study's budget is spent or taken by all its workers together.

    Counting the trials other workers are running matters for a grid: with every point started, Optuna's
    GridSampler hands the next trial a point that is still running elsewhere, and it would be trained twice.
    """
    def check(study: Any, _trial: Any) -> None:
        left = _trials_left(study, total, count_running=True)
        if left is not None and left <= 0:
            study.stop()
    return check


def _params_key(params: dict[str, Any]) -> tuple[tuple[str, str], ...]:
    return tuple(sorted((k, repr(v)) for k, v in params.items()))


def _stop_when(control: TrainControl) -> Callable[[Any, Any], None]:
    def check(study: Any, _trial: Any) -> None:
        if control.stop_requested:
            study.stop()
    return check


def _existing(storage: Any, name: str) -> Any:
    import optuna

    try:
        return optuna.load_study(study_name=name, storage=storage)
    except KeyError:
        return None


def _summaries(storage: Any) -> list[Any]:
    import optuna

    return optuna.get_all_study_summaries(storage, include_best_trial=False)


def _default_study_name(design: Design) -> str:
    base = "".join(c if c.isalnum() else "-" for c in design.name.lower()).strip("-")[:40] or "experiment"
    while "--" in base:
        base = base.replace("--", "-")
    return f"{base}-{time.strftime('%Y%m%d-%H%M%S')}-{os.getpid() % 1000:03d}"


def _first_line(exc: BaseException) -> str:
    return (str(exc).strip().splitlines() or [type(exc).__name__])[0][:300]


def _safe_url(url: str) -> str:
    """A storage URL without its password, for messages."""
    if "://" in url and "@" in url:
        scheme, rest = url.split("://", 1)
        creds, host = rest.rsplit("@", 1)
        return f"{scheme}://{creds.split(':', 1)[0]}:***@{host}"
    return url
