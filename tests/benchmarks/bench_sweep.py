"""Benchmark: experiments (``neuralstudio sweep``'s engine on Optuna) against plain Keras, pruning, workers, memory.

Not collected by pytest.  Usage (from the repository root)::

    python tests/benchmarks/bench_sweep.py overhead [--repeats 2] [--epochs 2]
    python tests/benchmarks/bench_sweep.py pruning [--train-examples 8000] [--epochs 4]
    python tests/benchmarks/bench_sweep.py workers [--trials 8]
    python tests/benchmarks/bench_sweep.py memory [--trials 50]
    python tests/benchmarks/bench_sweep.py nielsen [--epochs 3]

``overhead``: a 6-trial grid of nielsen-784-30-10 (learning rate 0.3, 1, 3 x batch size 10, 100) run by the
sweep engine (Optuna study in a journal file, every trial a recorded run, validated each epoch and tested at
the end), against the same six trainings as plain back-to-back ``model.fit`` calls in the same process (same
split, validation data and a test ``evaluate``), after one untimed warm-up fit. Interleaved (sweep, plain,
plain, sweep...) because the CPU is shared; samples/s = training examples x epochs over the wall time of all
six. Goal: >= 0.95x.

``pruning``: a 16-trial grid of mnist-cnn (learning rate 0.0003, 0.001, 0.003, 0.01 x batch size 32, 64, 128,
256; adam; 4 epochs each) with and without median pruning. Goal: pruned time <= 60% of unpruned, best within
0.5 percentage points.

``workers``: the same grid run by 1 and by 2 worker processes (``sweep --workers``), trials per minute.

``memory``: 50 one-epoch trials of nielsen-784-30-10 in one process; resident memory every 10 trials.

``nielsen``: learning rate {0.03, 0.3, 3, 30} x batch size {10, 100}, Nielsen's network, the ranking and
which trials the experiment marks diverged (chapter 1 of his book).
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
os.environ.setdefault("KERAS_BACKEND", "tensorflow")
os.environ.setdefault("NEURALSTUDIO_HOME", tempfile.mkdtemp(prefix="bench-sweep-"))

from bench_trainer import _rss_mb  # noqa: E402 - a sibling script: resident memory, read the same way


def _template(name: str):
    from neuralstudio.core.templates import load_template

    return load_template(name)


def _data(n: int | None = None):
    from neuralstudio.ml.data import Dataset, load_dataset

    ds = load_dataset("mnist-sample")
    if n is None or n >= len(ds.y_train):
        return ds
    return Dataset("mnist-sample", ds.x_train[:n], ds.y_train[:n], ds.x_test, ds.y_test, ds.class_names)


def _sweep(design, params: list[str], ds, *, prune: str = "none", study: str = "", strategy: str = "grid"):
    """Run a study in this process; (wall seconds, training samples, results)."""
    from neuralstudio.core.runs import RunsStore
    from neuralstudio.core.search_space import parse_param
    from neuralstudio.ml.sweep import SweepSpec, new_study, run_sweep
    from neuralstudio.ml.sweep_results import results_of

    folder = Path(tempfile.mkdtemp(prefix="sweep-"))
    spec = SweepSpec(design, [parse_param(p) for p in params], strategy=strategy, prune=prune,
                     study=study or f"bench-{time.time_ns()}", storage=str(folder / "s.journal"))
    t0 = time.perf_counter()
    study_obj = new_study(spec)
    outcomes = run_sweep(study_obj, spec, runs_store=RunsStore(folder / "runs"), dataset=ds)
    wall = time.perf_counter() - t0
    res = results_of(study_obj)
    n_train = int(len(ds.y_train) * (1 - design.training.validation_split))
    samples = sum(o.epochs_run for o in outcomes) * n_train
    return wall, samples, res


def _plain(design, values: list[dict], ds) -> tuple[float, float]:
    """The same trainings as plain fit calls: (wall seconds, training samples)."""
    import keras
    import numpy as np
    from plain_keras import compile_by_hand  # a sibling script: the plain side, compiled as the trainer does

    from neuralstudio.core.search_space import apply_values
    from neuralstudio.ml.builder import build_model
    from neuralstudio.ml.data import adapt_inputs, stratified_split

    t0 = time.perf_counter()
    samples = 0
    for v in values:
        d = apply_values(design, v)
        s = d.training
        keras.utils.set_random_seed(s.seed or 0)
        model = build_model(d.graph)
        shape = tuple(model.input_shape[1:])
        x, y, xv, yv = stratified_split(adapt_inputs(ds.x_train, shape), np.asarray(ds.y_train),
                                        s.validation_split, s.seed or 0)
        xt, yt = adapt_inputs(ds.x_test, shape), np.asarray(ds.y_test)
        encode = compile_by_hand(model, s)
        y, yv, yt = encode(y), encode(yv), encode(yt)
        model.fit(x, y, batch_size=s.batch_size, epochs=s.epochs, verbose=0, shuffle=True, validation_data=(xv, yv))
        model.evaluate(xt, yt, batch_size=256, verbose=0)
        samples += s.epochs * len(x)
        del model
        keras.backend.clear_session()
    return time.perf_counter() - t0, samples


def overhead(args: argparse.Namespace) -> None:
    import itertools

    design = _template("nielsen-784-30-10")
    design.training.epochs = args.epochs
    ds = _data()
    lrs, batches = (0.3, 1.0, 3.0), (10, 100)
    params = ["learning_rate=" + ",".join(map(str, lrs)), "batch_size=" + ",".join(map(str, batches))]
    values = [{"learning_rate": lr, "batch_size": b} for lr, b in itertools.product(lrs, batches)]
    _plain(design, values[:1], _data(500))  # the process's first TensorFlow trace is charged to neither side
    rows = []
    for rep in range(args.repeats):
        order = ("sweep", "plain") if rep % 2 == 0 else ("plain", "sweep")
        for kind in order:
            if kind == "sweep":
                wall, samples, _ = _sweep(design, params, ds)
            else:
                wall, samples = _plain(design, values, ds)
            rows.append((kind, wall, samples / wall))
            print(f"  {kind:<5} {wall:7.1f} s  {samples / wall:8,.0f} samples/s", flush=True)
    best = {k: max(r[2] for r in rows if r[0] == k) for k in ("sweep", "plain")}
    print(f"\n| 6-trial grid of nielsen-784-30-10, {args.epochs} epoch(s) | samples/s (best of {args.repeats}) |")
    print("|---|---|")
    print(f"| sweep (Optuna, runs recorded) | {best['sweep']:,.0f} |")
    print(f"| plain back-to-back fit | {best['plain']:,.0f} |")
    print(f"| ratio | {best['sweep'] / best['plain']:.2f}x (goal >= 0.95) |")


def pruning(args: argparse.Namespace) -> None:
    design = _template("mnist-cnn")
    design.training.epochs = args.epochs
    design.training.optimizer = "adam"
    ds = _data(args.train_examples)
    params = ["learning_rate=0.0003,0.001,0.003,0.01", "batch_size=32,64,128,256"]
    out = {}
    for prune in ("none", "median"):
        wall, _samples, res = _sweep(design, params, ds, prune=prune)
        best = res.best
        out[prune] = (wall, best.value, res.counts(), best.values)
        print(f"  {prune:<6} {wall:7.1f} s  best {best.value:.2%} {best.values}  {res.counts()}", flush=True)
    ratio = out["median"][0] / out["none"][0]
    gap = (out["none"][1] - out["median"][1]) * 100
    print(f"\n| 16-trial grid of mnist-cnn, {args.epochs} epochs, {len(ds.y_train):,} examples | time "
          "| best val accuracy | trials |")
    print("|---|---|---|---|")
    for k in ("none", "median"):
        wall, best, counts, _ = out[k]
        print(f"| {'no pruning' if k == 'none' else 'median pruning'} | {wall:.0f} s | {best:.2%} | {counts} |")
    print(f"| pruned / unpruned | {ratio:.0%} (goal <= 60%) | {gap:+.2f} points (goal within 0.5) | |")


def workers(args: argparse.Namespace) -> None:
    folder = Path(tempfile.mkdtemp(prefix="sweep-workers-"))
    design = _template("nielsen-784-30-10")
    design.training.epochs = 1
    design.save(folder / "net.nsd")
    lrs = ",".join(str(0.5 + 0.25 * i) for i in range(args.trials))
    print("| workers | trials | wall | trials per minute |")
    print("|---|---|---|---|")
    for n in (1, 2):
        cmd = [sys.executable, "-m", "neuralstudio", "sweep", str(folder / "net.nsd"), "--param",
               f"learning_rate={lrs}", "--strategy", "grid", "--study", f"w{n}", "--storage",
               str(folder / "s.journal"), "--workers", str(n), "--json"]
        t0 = time.perf_counter()
        proc = subprocess.run(cmd, capture_output=True, text=True, check=False)  # noqa: S603
        wall = time.perf_counter() - t0
        if proc.returncode:
            raise SystemExit(proc.stderr[-2000:])
        trials = len(json.loads(proc.stdout.strip().splitlines()[-1])["trials"])
        print(f"| {n} | {trials} | {wall:.0f} s | {trials / wall * 60:.1f} |", flush=True)


def memory(args: argparse.Namespace) -> None:
    from neuralstudio.core.runs import RunsStore
    from neuralstudio.core.search_space import parse_param
    from neuralstudio.ml.sweep import SweepSpec, new_study, run_sweep

    design = _template("nielsen-784-30-10")
    design.training.epochs = 1
    ds = _data(2000)
    folder = Path(tempfile.mkdtemp(prefix="sweep-mem-"))
    spec = SweepSpec(design, [parse_param("learning_rate=log:0.1:10")], strategy="random", trials=args.trials,
                     study="memory", storage=str(folder / "s.journal"))
    rss = []

    class Every:
        def on_trial_started(self, number, values):
            pass

        def on_batch(self, *a):
            pass

        def on_epoch(self, *a):
            pass

        def on_log(self, m):
            pass

        def on_trial_finished(self, outcome):
            if (outcome.number + 1) % 10 == 0 or outcome.number == 0:
                rss.append((outcome.number + 1, _rss_mb()))
                print(f"  after {outcome.number + 1:>3} trials: {rss[-1][1]:7.0f} MB", flush=True)

    run_sweep(new_study(spec), spec, reporter=Every(), runs_store=RunsStore(folder / "runs"), dataset=ds)
    print("\n| trials | resident memory |")
    print("|---|---|")
    for n, mb in rss:
        print(f"| {n} | {mb:.0f} MB |")


def nielsen(args: argparse.Namespace) -> None:
    design = _template("nielsen-784-30-10")
    design.training.epochs = args.epochs
    wall, _s, res = _sweep(design, ["learning_rate=0.03,0.3,3,30", "batch_size=10,100"], _data())
    print(f"| learning rate | batch | val accuracy | result |  ({args.epochs} epochs, {wall:.0f} s)")
    print("|---|---|---|---|")
    for r in sorted(res.rows, key=lambda r: -(r.value or 0)):
        print(f"| {r.values['learning_rate']} | {r.values['batch_size']} | {r.value:.2%} | {r.status} |")
    print(f"\n{res.sentence}")


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    sub = p.add_subparsers(dest="what", required=True)
    o = sub.add_parser("overhead")
    o.add_argument("--repeats", type=int, default=2)
    o.add_argument("--epochs", type=int, default=2)
    pr = sub.add_parser("pruning")
    pr.add_argument("--train-examples", type=int, default=8000)
    pr.add_argument("--epochs", type=int, default=4)
    w = sub.add_parser("workers")
    w.add_argument("--trials", type=int, default=8)
    m = sub.add_parser("memory")
    m.add_argument("--trials", type=int, default=50)
    n = sub.add_parser("nielsen")
    n.add_argument("--epochs", type=int, default=3)
    args = p.parse_args()
    run = {"overhead": overhead, "pruning": pruning, "workers": workers, "memory": memory, "nielsen": nielsen}
    run[args.what](args)


if __name__ == "__main__":
    main()
