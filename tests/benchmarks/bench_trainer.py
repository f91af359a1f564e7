"""Benchmark: NeuralStudio's Trainer against a plain ``model.fit(verbose=0)``, and template accuracy.

Not collected by pytest.  Usage (from the repository root)::

    python tests/benchmarks/bench_trainer.py throughput [--repeats 2] [--epochs N]
    python tests/benchmarks/bench_trainer.py accuracy [--templates mnist-cnn cnn-augmented]
    python tests/benchmarks/bench_trainer.py memory [--runs 8]

``throughput``: for each template, the same model, data (the mnist-sample training split), batch size
and number of epochs, in one process; the two are interleaved (plain, trainer, trainer, plain, ...)
because the CPU is shared and noisy, and the best of the repeats is compared.  Both timings cover the
whole of ``fit`` including tracing (the trainer's also includes its step-time measurement and the
recompile that switches ``steps_per_execution``), from the design to the trained model (build, compile,
fit); the trainer reports every execution to a reporter that does what the GUI's does (append to a buffer).
Wall-clock and CPU-time throughput are both printed: on a shared CPU the CPU-time ratio is the steadier one.
The goal is a ratio >= 0.97 for every template and > 1 for nielsen-784-30-10.

``accuracy``: trains templates with their stored defaults on mnist-sample and prints test accuracy and
time (goal: mnist-cnn >= 98%, cnn-augmented at least as much).

``memory``: several runs in a row in one process; prints the resident memory after each.
"""

from __future__ import annotations

import argparse
import gc
import os
import statistics
import sys
import time

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
os.environ.setdefault("KERAS_BACKEND", "tensorflow")

THROUGHPUT_TEMPLATES = ("nielsen-784-30-10", "mnist-cnn", "lstm-rows")
DEFAULT_EPOCHS = {"nielsen-784-30-10": 4, "mnist-cnn": 2, "lstm-rows": 3}


class BufferReporter:
    """What the GUI reporter does on the training thread: append to a buffer."""

    def __init__(self) -> None:
        self.buffer: list = []

    def on_batch(self, epoch, batch, logs):
        self.buffer.append((epoch, batch, logs))

    def on_epoch(self, epoch, logs):
        self.buffer.append((epoch, logs))

    def on_log(self, message):
        self.buffer.append(message)

    def on_finished(self, result):
        pass

    def on_failed(self, message):
        print("FAILED:", message, file=sys.stderr)


def _template(name: str):
    from neuralstudio.core.templates import load_template

    return load_template(name)


def _plain_fit(design, ds, epochs: int) -> tuple[float, float]:
    """Samples/s (wall, CPU) of a plain model.fit(verbose=0): build, compile and fit the same model."""
    import keras
    from plain_keras import compile_by_hand  # a sibling script: the plain side, compiled as the trainer does

    from neuralstudio.ml.builder import build_model
    from neuralstudio.ml.data import adapt_inputs

    s = design.training
    t0, c0 = time.perf_counter(), time.process_time()
    keras.backend.clear_session()
    keras.utils.set_random_seed(s.seed or 0)
    model = build_model(design.graph)
    x = adapt_inputs(ds.x_train, tuple(model.input_shape[1:]))
    y = compile_by_hand(model, s)(ds.y_train)
    model.fit(x, y, batch_size=s.batch_size, epochs=epochs, verbose=0, shuffle=True)
    n = epochs * len(x)
    return n / (time.perf_counter() - t0), n / (time.process_time() - c0)


def _trainer_fit(design, ds, epochs: int) -> tuple[float, float, int]:
    """Samples/s (wall, CPU) of Trainer.run() from design to trained model (no test set, no runs store)."""
    from neuralstudio.ml.trainer import Trainer

    settings = design.training.updated(epochs=epochs)
    settings.validation_split = 0.0
    t0, c0 = time.perf_counter(), time.process_time()
    r = Trainer(design, dataset=ds, settings=settings, reporter=BufferReporter()).run()
    wall, cpu = time.perf_counter() - t0, time.process_time() - c0
    if r.status != "finished":
        raise SystemExit(f"trainer failed: {r.message}")
    n = epochs * r.train_samples
    return n / wall, n / cpu, r.steps_per_execution


def throughput(args: argparse.Namespace) -> None:
    from neuralstudio.ml.data import Dataset, load_dataset

    full = load_dataset("mnist-sample")
    # the test split is not used here: keep evaluation out of the trainer's timing
    ds = Dataset(full.name, full.x_train, full.y_train, None, None, list(full.class_names), full.source)
    rows = []
    for name in args.templates:
        design = _template(name)
        epochs = args.epochs or DEFAULT_EPOCHS.get(name, 2)
        plain, ours, plain_cpu, ours_cpu, spes = [], [], [], [], []
        for i in range(args.repeats):
            order = ("plain", "ours") if i % 2 == 0 else ("ours", "plain")
            for which in order:
                gc.collect()
                if which == "plain":
                    w, c = _plain_fit(design, ds, epochs)
                    plain.append(w)
                    plain_cpu.append(c)
                else:
                    w, c, spe = _trainer_fit(design, ds, epochs)
                    ours.append(w)
                    ours_cpu.append(c)
                    spes.append(spe)
            print(f"  {name} repeat {i + 1}: plain {plain[-1]:,.0f}/s (cpu {plain_cpu[-1]:,.0f}/s), trainer "
                  f"{ours[-1]:,.0f}/s (cpu {ours_cpu[-1]:,.0f}/s), steps_per_execution {spes[-1]}",
                  file=sys.stderr, flush=True)
        rows.append((name, design.training.batch_size, epochs, max(plain), max(ours), max(ours) / max(plain),
                     statistics.median(o / p for o, p in zip(ours_cpu, plain_cpu)), spes[-1]))
    print()
    print("samples/s from design to trained model (build, compile, fit); best of the repeats (wall clock);")
    print("ratio(cpu): median over repeats of the ratio of samples per CPU-second (robust to a shared CPU)")
    print(f"{'template':<20} {'batch':>5} {'epochs':>6} {'plain fit/s':>12} {'Trainer/s':>12} {'ratio(wall)':>11} "
          f"{'ratio(cpu)':>10} {'spe':>4}")
    for name, b, e, p, o, r, rc, spe in rows:
        print(f"{name:<20} {b:>5} {e:>6} {p:>12,.0f} {o:>12,.0f} {r:>11.2f} {rc:>10.2f} {spe:>4}")


def accuracy(args: argparse.Namespace) -> None:
    from neuralstudio.ml.trainer import Trainer

    rows = []
    for name in args.templates:
        design = _template(name)
        s = design.training
        if args.epochs:
            s = s.updated(epochs=args.epochs)
        if args.batch_size:
            s = s.updated(batch_size=args.batch_size)
        t0 = time.perf_counter()
        r = Trainer(design, dataset="mnist-sample", settings=s, reporter=_EpochPrinter(name)).run()
        rows.append((name, s.epochs, s.batch_size, r.status, r.val_accuracy, r.test_accuracy,
                     time.perf_counter() - t0, r.samples_per_second))
    print()
    print(f"{'template':<16} {'epochs':>6} {'batch':>5} {'status':<9} {'val acc':>8} {'test acc':>8} {'time s':>7} "
          f"{'samples/s':>9}")
    for name, e, b, st, va, ta, secs, sps in rows:
        print(f"{name:<16} {e:>6} {b:>5} {st:<9} {va or 0:>8.2%} {ta or 0:>8.2%} {secs:>7.0f} {sps:>9,.0f}")


class _EpochPrinter(BufferReporter):
    def __init__(self, name: str) -> None:
        super().__init__()
        self.name = name

    def on_epoch(self, epoch, logs):
        print(f"  {self.name} epoch {epoch + 1}: loss {logs.get('loss', 0):.4f} acc {logs.get('accuracy', 0):.4f} "
              f"val_acc {logs.get('val_accuracy', 0):.4f} ({logs.get('seconds', 0):.1f} s)", file=sys.stderr,
              flush=True)


def memory(args: argparse.Namespace) -> None:
    from neuralstudio.ml.data import Dataset, load_dataset
    from neuralstudio.ml.trainer import Trainer

    full = load_dataset("mnist-sample")
    ds = Dataset(full.name, full.x_train[:1000], full.y_train[:1000], full.x_test[:200], full.y_test[:200],
                 list(full.class_names))
    design = _template("mnist-cnn")
    settings = design.training.updated(epochs=1)
    print(f"{'run':>3} {'RSS MB':>7}")
    for i in range(args.runs):
        r = Trainer(design, dataset=ds, settings=settings).run()
        assert r.status == "finished", r.message
        del r
        gc.collect()
        print(f"{i + 1:>3} {_rss_mb():>7.0f}", flush=True)


def _rss_mb() -> float:
    with open("/proc/self/status") as fh:
        for line in fh:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    return float("nan")


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    sub = p.add_subparsers(dest="mode", required=True)
    t = sub.add_parser("throughput")
    t.add_argument("--templates", nargs="+", default=list(THROUGHPUT_TEMPLATES))
    t.add_argument("--repeats", type=int, default=2)
    t.add_argument("--epochs", type=int)
    a = sub.add_parser("accuracy")
    a.add_argument("--templates", nargs="+", default=["mnist-cnn", "cnn-augmented"])
    a.add_argument("--epochs", type=int)
    a.add_argument("--batch-size", type=int)
    m = sub.add_parser("memory")
    m.add_argument("--runs", type=int, default=8)
    args = p.parse_args()
    {"throughput": throughput, "accuracy": accuracy, "memory": memory}[args.mode](args)


if __name__ == "__main__":
    main()
