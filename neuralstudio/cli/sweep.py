"""``neuralstudio sweep net.nsd --param learning_rate=log:1e-4:1 ...``: an experiment headless, on Optuna.

``sweep DESIGN --param ...`` defines a study and runs it; ``sweep --study NAME --storage URL`` joins an
existing study as one more worker (on this or another machine); ``sweep show NAME`` and ``sweep list``
read studies back. ``--workers N`` runs N worker processes on this machine, which share the study through
its storage the way workers on several machines do. A progress line goes to stderr on a terminal; the
final table and the sentence go to stdout; with ``--json`` the last line of stdout is one JSON object.
The first Ctrl+C stops after the running trial's batch and keeps the finished trials.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import re
import signal
import subprocess
import sys
import time
from typing import Any, TextIO

from neuralstudio.cli.terminal import StatusLine, stop_on_first_interrupt
from neuralstudio.core.errors import UserError

ORDER = 47
_DURATION = re.compile(r"^\s*(?P<n>\d+(?:\.\d+)?)\s*(?P<unit>s|sec|m|min|h|hr)?\s*$", re.IGNORECASE)
_UNIT_S = {"s": 1, "sec": 1, "m": 60, "min": 60, "h": 3600, "hr": 3600}


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "sweep",
        help="an experiment: train a design over combinations of hyperparameters (grid, random or TPE, on Optuna)",
        description="Train a design many times over a search space and tell which hyperparameters mattered. "
        "PARAM is NAME=VALUES: NAME a training setting (learning_rate, batch_size, epochs, optimizer, momentum, loss, "
        "validation_split, seed), LAYER.PARAMETER (hidden.units), Class[hidden].PARAMETER (every hidden layer of a "
        "class: Dense[hidden].activation) or LAYER.repeat (how many times LAYER is stacked); VALUES log:LOW:HIGH, "
        "LOW:HIGH, LOW:HIGH:STEP or a,b,c. 'sweep show NAME' and 'sweep list' read experiments back; "
        "'sweep --study NAME --storage URL' joins an experiment as one more worker.",
    )
    p.add_argument("design", nargs="?", help="the .nsd design file, or 'show' / 'list'")
    p.add_argument("name", nargs="?", help="with 'show': the experiment's name")
    p.add_argument("--param", action="append", default=[], metavar="NAME=VALUES", help="a hyperparameter to vary")
    p.add_argument("--strategy", default="tpe", choices=("grid", "random", "tpe"),
                   help="grid: every combination; random; tpe: Bayesian (default)")
    p.add_argument("--trials", type=int, help="the most trials (default: the whole grid, or 20)")
    p.add_argument("--timeout", metavar="TIME", help="start no trial after this long: 90s, 20m, 1h")
    p.add_argument("--prune", default="none", choices=("none", "median", "halving"),
                   help="stop clearly worse trials early: median of earlier trials, or successive halving")
    p.add_argument("--grid-points", type=int, default=3, metavar="N", help="values a grid takes from a range (3)")
    p.add_argument("--workers", type=int, default=1, metavar="N", help="trials at once, in N processes (1)")
    p.add_argument("--study", metavar="NAME", help="the experiment's name (default: from the design and the time)")
    p.add_argument("--storage", metavar="URL",
                   help="where experiments are kept: a database URL (postgresql://user@host/db) shared by "
                        "workers on several machines, or a journal file (default: the user data folder)")
    p.add_argument("--data", help="data set name or path (default: the design's own)")
    p.add_argument("--device", default="auto", help="auto (default), cpu, gpu or gpu:N")
    p.add_argument("--seed", type=int, default=0, help="the sampler's seed (0)")
    p.add_argument("--runs", metavar="DIR", help="the runs folder (default: the user data folder)")
    p.add_argument("--json", action="store_true", help="print one JSON object as the last line of stdout")
    p.add_argument("--worker", action="store_true", help=argparse.SUPPRESS)  # a process started by --workers
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    if args.design == "list":
        return _list(args)
    if args.design == "show":
        if not args.name:
            raise UserError("sweep show needs the experiment's name: neuralstudio sweep show NAME (see sweep list).")
        return _show(args.name, args)
    if args.workers < 1 or args.workers > (os.cpu_count() or 1) * 4:
        raise UserError(f"--workers {args.workers}: give 1 to {(os.cpu_count() or 1) * 4} worker processes.")
    study, spec = _study(args)
    if args.workers > 1:
        return _run_workers(study, spec, args)
    return _run_here(study, spec, args)


# ----------------------------------------------------------------------------- define or join
def _study(args: argparse.Namespace) -> tuple[Any, Any]:
    from neuralstudio.core.design import load_design
    from neuralstudio.core.search_space import parse_param
    from neuralstudio.ml.sweep import SweepSpec, load_study, new_study

    if args.design is None:
        if not args.study:
            raise UserError("Give a design and --param NAME=VALUES to start an experiment, or --study NAME (and "
                            "--storage URL) to join one.")
        if args.param:
            raise UserError("--param defines a new experiment: give the design file too, or leave --param out to "
                            "join the experiment as it was defined.")
        return load_study(args.study, args.storage)
    design = load_design(args.design)
    if not len(design.graph):
        raise UserError(f"{args.design} has no layers: add an Input and some layers first.")
    if not args.param:
        raise UserError("Nothing varies: give at least one --param NAME=VALUES, e.g. --param learning_rate=log:1e-3:1.")
    spec = SweepSpec(design, [parse_param(p) for p in args.param], strategy=args.strategy, trials=args.trials,
                     timeout_s=parse_duration(args.timeout) if args.timeout else None, prune=args.prune,
                     data=args.data, study=args.study or "", storage=args.storage, seed=args.seed,
                     grid_points=args.grid_points, device=args.device)
    return new_study(spec), spec


def parse_duration(text: str) -> float:
    """``90s``, ``20m``, ``1.5h`` or plain seconds."""
    m = _DURATION.match(str(text))
    if not m:
        raise UserError(f"--timeout {text}: write a time like 90s, 20m or 1h.")
    seconds = float(m["n"]) * _UNIT_S[(m["unit"] or "s").lower()]
    if seconds <= 0:
        raise UserError("--timeout must be longer than 0.")
    return seconds


# ----------------------------------------------------------------------------- run
def _run_here(study: Any, spec: Any, args: argparse.Namespace) -> int:
    """Run trials in this process (one worker), with a progress line and, unless a worker, the final table."""
    from neuralstudio.core.runs import RunsStore
    from neuralstudio.ml.sweep import SweepControl, run_sweep

    show = sys.stderr.isatty() and not args.json and not args.worker
    progress = SweepProgress(sys.stderr, spec.planned_trials(), enabled=show)
    if not args.worker and not args.json:
        _print_estimate(spec, args)
    control = SweepControl()
    with stop_on_first_interrupt(control, "Stopping after this batch; finished trials are kept (Ctrl+C again "
                                          "to abort)..."):
        run_sweep(study, spec, reporter=progress, control=control, runs_store=RunsStore(args.runs))
    progress.clear()
    if args.worker:
        return 0
    return _show_study(study, args, stopped=control.stop_requested)


def _run_workers(study: Any, spec: Any, args: argparse.Namespace) -> int:
    """Start ``--workers`` processes that join the study, follow it through its storage, then show it."""
    from neuralstudio.ml.sweep import default_storage
    from neuralstudio.ml.sweep_results import results_of

    storage = spec.storage or default_storage()
    cmd = [sys.executable, "-m", "neuralstudio", "sweep", "--study", spec.study, "--storage", storage, "--worker"]
    if args.runs:
        cmd += ["--runs", args.runs]
    if not args.json:
        _print_estimate(spec, args)
    procs = [subprocess.Popen(cmd, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL)  # noqa: S603
             for _ in range(args.workers)]
    total = spec.planned_trials()
    show = sys.stderr.isatty() and not args.json
    stopping = False
    t0 = time.monotonic()
    try:
        while any(p.poll() is None for p in procs):
            time.sleep(1.0)
            if show:
                rows = results_of(_reload(study)).rows
                done = sum(r.state in ("complete", "pruned", "failed") for r in rows)
                running = sum(r.state == "running" for r in rows)
                sys.stderr.write(f"\r{done}/{total or '?'} trials done, {running} running, "
                                 f"{_clock(time.monotonic() - t0)} elapsed ")
                sys.stderr.flush()
    except KeyboardInterrupt:
        stopping = True
        print("\nStopping the workers after their running batch...", file=sys.stderr)
        for p in procs:
            if p.poll() is None:
                p.send_signal(signal.SIGINT)
        for p in procs:
            p.wait()
    if show:
        sys.stderr.write("\n")
    failed = [p.returncode for p in procs if p.returncode not in (0, None) and not stopping]
    if failed:
        print(f"warning: {len(failed)} worker(s) ended with an error (exit {failed[0]}); the finished trials are "
              "kept.", file=sys.stderr)
    return _show_study(_reload(study), args, stopped=stopping)


def _reload(study: Any) -> Any:
    import optuna

    return optuna.load_study(study_name=study.study_name, storage=study._storage)


class SweepProgress:
    """The progress line on a terminal: trial n of N, its epoch and score, the best so far, time left."""

    def __init__(self, stream: TextIO, trials: int | None, enabled: bool) -> None:
        self.stream, self.trials, self.enabled = stream, trials, enabled
        self._t0 = time.monotonic()
        self._done: list[float] = []
        self._best: tuple[float, int] | None = None
        self._number = 0
        self._epoch = ""
        self.line = StatusLine(stream, enabled)

    def on_trial_started(self, number: int, values: dict[str, Any]) -> None:
        self._number, self._epoch = number, ""
        self._trial_t0 = time.monotonic()
        if self.enabled:
            self.clear()
            shown = ", ".join(f"{k}={_text(v)}" for k, v in values.items())
            self.stream.write(f"trial {number}: {shown}\n")
            self._draw()

    def on_batch(self, epoch: int, batch: int, logs: dict[str, float]) -> None:
        pass

    def on_epoch(self, epoch: int, logs: dict[str, float]) -> None:
        acc = logs.get("val_accuracy", logs.get("accuracy"))
        self._epoch = f"epoch {epoch + 1}" + (f" {acc:.1%}" if isinstance(acc, float) else "")
        self._draw()

    def on_log(self, message: str) -> None:
        pass

    def on_trial_finished(self, outcome: Any) -> None:
        self._done.append(time.monotonic() - self._trial_t0)
        if outcome.value is not None and outcome.state == "complete" and outcome.status != "diverged" and (
                self._best is None or outcome.value > self._best[0]):
            self._best = (outcome.value, outcome.number)
        if self.enabled:
            self.clear()
            score = f"{outcome.value:.2%}" if outcome.value is not None else "-"
            self.stream.write(f"trial {outcome.number}: {outcome.status}, {score} after {outcome.epochs_run} "
                              f"epoch(s) in {outcome.seconds:.0f} s\n")
            self._draw()

    def _draw(self) -> None:
        if not self.enabled:
            return
        n = len(self._done)
        left = "?"
        if self.trials and n:
            left = _clock(sum(self._done) / n * max(0, self.trials - n))
        total = self.trials or "?"
        frac = n / self.trials if self.trials else 0.0
        bar = "#" * int(frac * 20)
        best = f"best {self._best[0]:.1%} (trial {self._best[1]})" if self._best else "best -"
        self._write(f"[{bar:<20}] {n}/{total} trials  trial {self._number} {self._epoch}  {best}  left {left}")

    def _write(self, text: str) -> None:
        self.line.write(text)

    def clear(self) -> None:
        self.line.clear()


# ----------------------------------------------------------------------------- read back
def _print_estimate(spec: Any, args: argparse.Namespace) -> None:
    """The plan before the first trial: the trials, the search space and the memory each trial needs."""
    from neuralstudio.ml import data as data_mod
    from neuralstudio.ml.sweep_budget import estimate_sweep

    print(f"experiment {spec.study}: {spec.strategy}"
          + (f", {spec.prune} pruning" if spec.prune != "none" else ""), file=sys.stderr)
    for p in spec.params:
        print(f"  {p.name}: {p.describe()}", file=sys.stderr)
    from neuralstudio.ml.keras_threads import run_on_python_thread
    from neuralstudio.ml.speed import measure_samples_per_second

    try:
        ds = data_mod.load_dataset(spec.data or str(spec.design.data.get("source") or data_mod.DEFAULT_SOURCE))
        speed = run_on_python_thread(lambda: measure_samples_per_second(spec.design, spec.design.training),
                                     "neuralstudio-measure")  # Keras state of its own, freed before the trials
        est = estimate_sweep(spec, train_examples=len(ds.y_train), samples_per_second=speed,
                             sample_shape=tuple(ds.x_train.shape[1:]))
        print("  " + est.text(), file=sys.stderr)
    except UserError as exc:
        print(f"  (no estimate: {exc})", file=sys.stderr)


def _show(name: str, args: argparse.Namespace) -> int:
    from neuralstudio.ml.sweep import load_study

    study, _spec = load_study(name, args.storage)
    return _show_study(study, args)


def _show_study(study: Any, args: argparse.Namespace, stopped: bool = False) -> int:
    from neuralstudio.ml.sweep_results import results_of

    res = results_of(study)
    if args.json:
        print(json.dumps(_as_json(res), sort_keys=True))
        return 0
    print(format_table(res))
    if stopped:
        print("Stopped: the finished trials are kept; run 'neuralstudio sweep --study "
              f"{res.name}' to continue.")
    best = res.best
    if best is not None:
        shown = ", ".join(f"{k}={_text(v)}" for k, v in best.values.items())
        print(f"best: trial {best.number} ({shown}): {res.metric.replace('_', ' ')} {best.value:.2%}"
              + (f", run {best.run_id}" if best.run_id else ""))
    if res.importances:
        print("importance: " + ", ".join(f"{k} {v:.0%}" for k, v in sorted(res.importances.items(),
                                                                              key=lambda kv: -kv[1])))
    print(res.sentence)
    return 0


def format_table(res: Any) -> str:
    """The trials as a text table: number, each varied value, the score, the loss, epochs, time, state."""
    head = ["trial", *res.params, res.metric.replace("_", " "), "val loss", "epochs run", "time", "result"]
    rows = []
    for r in res.rows:
        rows.append([str(r.number), *[_text(r.values.get(p, "")) for p in res.params],
                     f"{r.value:.2%}" if r.value is not None else "-",
                     f"{r.val_loss:.4f}" if r.val_loss is not None else "-", str(r.epochs),
                     f"{r.seconds:.0f} s" if r.seconds is not None else "-", r.status])
    widths = [max(len(h), *(len(row[i]) for row in rows)) if rows else len(h) for i, h in enumerate(head)]
    lines = ["  ".join(h.ljust(w) for h, w in zip(head, widths)), "  ".join("-" * w for w in widths)]
    lines += ["  ".join(c.ljust(w) for c, w in zip(row, widths)) for row in rows]
    return "\n".join(lines)


def _list(args: argparse.Namespace) -> int:
    from neuralstudio.ml.sweep import default_storage, study_names

    studies = study_names(args.storage)
    if args.json:
        print(json.dumps(studies, sort_keys=True))
        return 0
    if not studies:
        print(f"No experiments in {args.storage or default_storage()} yet: start one with "
              "neuralstudio sweep net.nsd --param learning_rate=log:1e-3:1")
        return 0
    for s in studies:
        best = f"{s['best']:.2%}" if isinstance(s["best"], float) and math.isfinite(s["best"]) else "-"
        print(f"{s['name']}  {s['trials']} trial(s)  best {best}  {s['design']}  {' '.join(s['params'])}")
    return 0


def _as_json(res: Any) -> dict[str, Any]:
    best = res.best
    return {"study": res.name, "metric": res.metric, "sentence": res.sentence, "importances": res.importances,
            "params": res.params, "counts": res.counts(), "best": _row_json(best) if best else None,
            "trials": [_row_json(r) for r in res.rows],
            "definition": {k: v for k, v in res.definition.items() if k != "design"}}


def _row_json(r: Any) -> dict[str, Any]:
    return {"number": r.number, "values": r.values, "state": r.state, "status": r.status, "value": r.value,
            "val_loss": r.val_loss, "epochs": r.epochs, "seconds": r.seconds, "run_id": r.run_id,
            "message": r.message}


def _clock(seconds: float) -> str:
    s = int(round(seconds))
    return f"{s // 3600}:{s // 60 % 60:02d}:{s % 60:02d}" if s >= 3600 else f"{s // 60}:{s % 60:02d}"


def _text(v: Any) -> str:
    return f"{v:g}" if isinstance(v, float) else str(v)
