"""What an experiment found: its trials as table rows, the importance of each hyperparameter, and one sentence.

Read from the Optuna study alone (the trials' user attributes, ``ml/sweep.py``), so that a study another
machine filled reads the same here. Qt-free: ``sweep show`` prints it and the Experiment tab draws it.
Importances are Optuna's (fANOVA); with too few finished trials for them, the spread of the best score
per value stands in, which is also what the sentence reads.
"""

from __future__ import annotations

import math
from collections import defaultdict
from dataclasses import dataclass, field
from typing import Any

from neuralstudio.core.numbers import finite_number
from neuralstudio.ml.sweep import ATTR, trial_values

__all__ = ["SweepResults", "TrialRow", "WORKED_MARGIN", "results_of", "summary_sentence"]

#: a value "worked" when its best trial scored within this much of the experiment's best (5 points of accuracy)
WORKED_MARGIN = 0.05
#: below this share of the importance a hyperparameter "changed little"
LITTLE = 0.1
#: two importances closer than this are a tie
TIE = 0.1
_STATES = {"COMPLETE": "complete", "PRUNED": "pruned", "FAIL": "failed", "RUNNING": "running", "WAITING": "waiting"}


@dataclass
class TrialRow:
    """One trial as the results table shows it."""

    number: int
    values: dict[str, Any]
    state: str  # complete, pruned, failed, running
    status: str  # finished, early_stopped, diverged, pruned, stopped, failed, running
    value: float | None  # the metric maximised (validation accuracy)
    val_loss: float | None
    epochs: int
    seconds: float | None
    run_id: str | None
    message: str = ""
    history: dict[str, list[float | None]] = field(default_factory=dict)

    @property
    def finished(self) -> bool:
        return self.state == "complete"


@dataclass
class SweepResults:
    """A study read back: its definition, rows in trial order, the best row, importances and the sentence."""

    name: str
    definition: dict[str, Any]
    rows: list[TrialRow]
    importances: dict[str, float]
    sentence: str

    @property
    def params(self) -> list[str]:
        """The varied hyperparameters' paths (from the definition, in the order they were given)."""
        return [p.split("=", 1)[0] for p in self.definition.get("params", [])]

    @property
    def metric(self) -> str:
        return str(self.definition.get("metric", "val_accuracy"))

    @property
    def best(self) -> TrialRow | None:
        done = [r for r in self.rows if r.finished and r.value is not None and r.status != "diverged"]
        return max(done, key=lambda r: r.value) if done else None  # type: ignore[arg-type,return-value]

    def top(self, n: int = 5) -> list[TrialRow]:
        """The ``n`` best trials that ran to the end (their curves are overlaid)."""
        done = [r for r in self.rows if r.finished and r.value is not None]
        return sorted(done, key=lambda r: -r.value)[:n]  # type: ignore[operator]

    def counts(self) -> dict[str, int]:
        out: dict[str, int] = defaultdict(int)
        for r in self.rows:
            out[r.state] += 1
        return dict(out)


def results_of(study: Any) -> SweepResults:
    """Read a study (live or finished) into rows, importances and the summary sentence."""
    definition = study.user_attrs.get(ATTR, {}) if isinstance(study.user_attrs.get(ATTR), dict) else {}
    rows = [_row(t) for t in study.get_trials(deepcopy=False)]
    params = [p.split("=", 1)[0] for p in definition.get("params", [])]
    importances = _importances(study, rows, params)
    return SweepResults(study.study_name, definition, rows, importances, summary_sentence(rows, params, importances))


def summary_sentence(rows: list[TrialRow], params: list[str], importances: dict[str, float]) -> str:
    """What the experiment shows, in one sentence: which hyperparameter mattered, which values worked.

    E.g. "learning rate mattered most: 0.3 to 3 worked, 30 diverged; batch size changed little."
    """
    done = [r for r in rows if r.finished and r.value is not None]
    if not done:
        failed = [r for r in rows if r.state == "failed"]
        if failed and failed[-1].message:
            return f"No trial finished yet; the last one failed: {failed[-1].message}"
        return "No trial has finished yet."
    varied = [p for p in params if len({_key(r.values.get(p)) for r in rows if p in r.values}) > 1]
    if not varied:
        return f"Only one setting was tried: {_percent(max(r.value for r in done))} {_metric_words()}."  # type: ignore[type-var]
    ranked = sorted(varied, key=lambda p: -importances.get(p, 0.0))
    top = ranked[0]
    tied = [p for p in ranked[1:] if importances.get(top, 0.0) - importances.get(p, 0.0) < TIE]
    if tied:  # a near tie (few trials, or two settings that matter alike) is not a ranking
        names = " and ".join(_words(p) for p in [top, *tied])
        parts = [f"{names} mattered about equally; for {_words(top)}, {_worked(top, rows)}"]
    else:
        parts = [f"{_words(top)} mattered most: {_worked(top, rows)}"]
    rest = [p for p in ranked[1:] if p not in tied]
    little = [_words(p) for p in rest if importances.get(p, 0.0) < LITTLE]
    others = [p for p in rest if importances.get(p, 0.0) >= LITTLE]
    if others:
        parts.append(f"then {', '.join(_words(p) for p in others)}")
    if little:
        parts.append(f"{' and '.join(little)} changed little")
    sentence = "; ".join(parts) + "."
    return sentence[0].upper() + sentence[1:]


# ----------------------------------------------------------------------------- helpers
def _row(trial: Any) -> TrialRow:
    attrs = trial.user_attrs
    state = _STATES.get(trial.state.name, trial.state.name.lower())
    status = attrs.get("status") or ("running" if state == "running" else state)
    value = trial.value if trial.value is not None else attrs.get("val_accuracy")
    return TrialRow(number=trial.number, values=trial_values(trial), state=state, status=str(status),
                    value=finite_number(value), val_loss=finite_number(attrs.get("val_loss")),
                    epochs=int(attrs.get("epochs_run") or len(trial.intermediate_values)),
                    seconds=finite_number(attrs.get("seconds")), run_id=attrs.get("run_id"),
                    message=str(attrs.get("message") or ""), history=dict(attrs.get("history") or {}))


def _importances(study: Any, rows: list[TrialRow], params: list[str]) -> dict[str, float]:
    """Optuna's importances when it can compute them, else each value's best-score spread, normalised."""
    done = [r for r in rows if r.finished and r.value is not None]
    if len(done) >= 4:
        try:
            import optuna

            got = optuna.importance.get_param_importances(study)
            if got:
                return {k: float(v) for k, v in got.items()}
        except Exception:  # noqa: BLE001, S110 - too few distinct values, a single value...: use the spread
            pass
    spread = {}
    for p in params:
        best: dict[Any, float] = {}
        for r in done:
            k = _key(r.values.get(p))
            best[k] = max(best.get(k, -math.inf), r.value)  # type: ignore[arg-type]
        spread[p] = (max(best.values()) - min(best.values())) if len(best) > 1 else 0.0
    total = sum(spread.values())
    return {p: (v / total if total > 0 else 0.0) for p, v in spread.items()}


def _worked(param: str, rows: list[TrialRow]) -> str:
    """Which values of ``param`` worked (best trial within the margin of the best), and which diverged."""
    done = [r for r in rows if r.finished and r.value is not None]
    best_overall = max(r.value for r in done)  # type: ignore[type-var]
    by_value: dict[Any, list[TrialRow]] = defaultdict(list)
    for r in rows:
        if param in r.values:
            by_value[_key(r.values[param])].append(r)
    worked, diverged, pruned, lower = [], [], [], []
    for v, group in sorted(by_value.items(), key=lambda kv: _order(kv[0])):
        scores = [r.value for r in group if r.finished and r.value is not None and r.status != "diverged"]
        if scores and max(scores) >= best_overall - WORKED_MARGIN:  # type: ignore[operator]
            worked.append(v)
        elif group and all(r.status == "diverged" for r in group if r.finished):
            if any(r.finished for r in group):
                diverged.append(v)
        elif group and all(r.state == "pruned" for r in group):
            pruned.append(v)
        elif scores:
            lower.append(v)
    out = []
    if worked:
        out.append(f"{_span(worked)} worked")
    if diverged:
        out.append(f"{_span(diverged)} diverged")
    if lower:
        out.append(f"{_span(lower)} scored lower")
    if pruned:
        out.append(f"{_span(pruned)} stopped early as clearly worse")
    if not out:
        out.append("no value stood out")
    return ", ".join(out)


def _span(values: list[Any]) -> str:
    """``0.3 to 3`` for a run of numbers, else the values listed."""
    shown = [_text(v) for v in values]
    if len(values) > 2 and all(isinstance(v, (int, float)) for v in values):
        return f"{shown[0]} to {shown[-1]}"
    return " and ".join(shown) if len(shown) <= 2 else ", ".join(shown[:-1]) + " and " + shown[-1]


def _words(path: str) -> str:
    """``learning_rate`` -> ``learning rate``; ``hidden.units`` -> ``units of hidden``."""
    if "." in path:
        layer, key = path.rsplit(".", 1)
        what = "the number of layers" if key == "repeat" else key.replace("_", " ")
        if layer.endswith("[hidden]"):
            return f"{what} of every hidden {layer[:-8]} layer"
        if layer.endswith("[*]"):
            return f"{what} of every {layer[:-3]} layer"
        return f"{what} of {layer}" if key != "repeat" else f"{what} like {layer}"
    return path.replace("_", " ")


def _metric_words() -> str:
    return "validation accuracy"


def _percent(v: float) -> str:
    return f"{100 * v:.1f}%"


def _key(v: Any) -> Any:
    return tuple(v) if isinstance(v, list) else v


def _order(v: Any) -> tuple[int, Any]:
    return (0, v) if isinstance(v, (int, float)) and not isinstance(v, bool) else (1, str(v))


def _text(v: Any) -> str:
    return f"{v:g}" if isinstance(v, float) else str(v)
