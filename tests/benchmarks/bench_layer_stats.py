"""Benchmark: training speed with the per-layer statistics (``Trainer(layer_stats=True)``) off and on.

Not collected by pytest.  Usage (from the repository root)::

    python tests/benchmarks/bench_layer_stats.py [--templates mnist-cnn nielsen-784-30-10 nielsen-deep-sigmoid]
        [--epochs 2] [--repeats 2]

For each template, the same design, data (the mnist-sample training split, no validation, no test set) and
number of epochs, trained by the Trainer in one process with the statistics off and on, interleaved (off, on,
on, off, ...) because the CPU is shared and noisy. Printed as a markdown table: the best samples/s of ``fit``
of each (the Trainer's own figure, which includes the snapshots' time), the ratio on/off (goal >= 0.95), the
median ratio of samples per CPU-second (steadier on a shared CPU), and the share of the run's fit time that the
snapshots themselves took, timed inside the recorder: that share does not depend on what else the machine runs.
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

from bench_trainer import BufferReporter as TrainerBufferReporter  # noqa: E402 - a sibling script

#: a convnet, Nielsen's small net, and chapter 5's deep sigmoid net (the lesson the statistics are made for)
TEMPLATES = ("mnist-cnn", "nielsen-784-30-10", "nielsen-deep-sigmoid")


class BufferReporter(TrainerBufferReporter):
    """What the GUI reporter does on the training thread: append to a buffer (the statistics too)."""

    def on_layer_stats(self, epoch, stats):
        self.buffer.append((epoch, stats))


def _run(design, ds, epochs: int, on: bool) -> tuple[float, float, float, int]:
    """Samples/s of fit, samples per CPU-second of the whole run, the snapshots' share of fit time, and the
    final steps_per_execution."""
    from neuralstudio.ml.trainer import Trainer

    settings = design.training.updated(epochs=epochs)
    settings.validation_split = 0.0
    trainer = Trainer(design, dataset=ds, settings=settings, reporter=BufferReporter(), layer_stats=on)
    recorders = []
    make = trainer._layer_stats_recorder

    def keep(*args):  # the recorder times its own snapshots: keep it to read that time
        rec = make(*args)
        recorders.append(rec)
        return rec

    trainer._layer_stats_recorder = keep
    c0 = time.process_time()
    r = trainer.run()
    cpu = time.process_time() - c0
    if r.status != "finished":
        raise SystemExit(f"trainer failed: {r.message}")
    if on and len(r.layer_stats) != epochs:
        raise SystemExit(f"{len(r.layer_stats)} snapshots for {epochs} epochs")
    share = recorders[0].seconds / r.fit_seconds if on and recorders and recorders[0] else 0.0
    return r.samples_per_second, epochs * r.train_samples / cpu, share, r.steps_per_execution


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--templates", nargs="+", default=list(TEMPLATES))
    p.add_argument("--epochs", type=int, default=2)
    p.add_argument("--repeats", type=int, default=2)
    args = p.parse_args()

    from neuralstudio.core.templates import load_template
    from neuralstudio.ml.data import Dataset, load_dataset

    full = load_dataset("mnist-sample")
    ds = Dataset(full.name, full.x_train, full.y_train, None, None, list(full.class_names), full.source)
    rows = []
    for name in args.templates:
        design = load_template(name)
        got: dict[bool, list[tuple[float, float, float, int]]] = {False: [], True: []}
        for i in range(args.repeats):
            for on in ((False, True) if i % 2 == 0 else (True, False)):
                gc.collect()
                got[on].append(_run(design, ds, args.epochs, on))
                w, c, share, spe = got[on][-1]
                print(f"  {name} repeat {i + 1} stats {'on ' if on else 'off'}: {w:,.0f} samples/s (cpu {c:,.0f}/s), "
                      f"snapshots {share:.2%} of fit, steps_per_execution {spe}", file=sys.stderr, flush=True)
        off_best, on_best = max(g[0] for g in got[False]), max(g[0] for g in got[True])
        cpu_ratio = statistics.median(a[1] / b[1] for a, b in zip(got[True], got[False], strict=True))
        share = statistics.median(g[2] for g in got[True])
        spes = "/".join(str(g[3]) for g in got[False] + got[True])
        rows.append((name, design.training.batch_size, args.epochs, off_best, on_best, on_best / off_best, cpu_ratio,
                     share, spes))
    print()
    print(f"samples/s of fit, best of {args.repeats} interleaved runs each; ratio(cpu): median ratio of samples per "
          "CPU-second; snapshots: their own time as a share of fit (median)")
    print()
    print("| template | batch | epochs | stats off samples/s | stats on samples/s | ratio (wall) | ratio (cpu) "
          "| snapshots' share of fit | steps/execution (off runs, on runs) |")
    print("|---|---:|---:|---:|---:|---:|---:|---:|---|")
    for name, b, e, off, on, r, rc, share, spes in rows:
        print(f"| {name} | {b} | {e} | {off:,.0f} | {on:,.0f} | {r:.2f} | {rc:.2f} | {share:.2%} | {spes} |")


if __name__ == "__main__":
    main()
