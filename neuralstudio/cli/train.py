"""``neuralstudio train net.nsd``: train a design headless, with its stored hyperparameters or overrides.

A progress bar (loss, accuracy, samples/s, time left) goes to stderr when it is
a terminal; the final train/validation/test metrics go to stdout; with
``--json`` the last line of stdout is one JSON object for scripts.  ``--layer-stats`` prints a table of
per-layer training signals (gradient per unit and gradient norm, update/weight ratio, dead or saturated
units) after each epoch, on stdout (stderr with ``--json``) and adds them to the JSON as ``layer_stats``.  Every run is
recorded in the runs store (``neuralstudio runs``).  The first Ctrl+C stops
training gracefully (the model trained so far is saved); a second one aborts.
"""

from __future__ import annotations

import argparse
import json
import math
import sys
import time
from typing import Any, TextIO

from neuralstudio.cli.terminal import StatusLine, stop_on_first_interrupt

ORDER = 45


def register(sub: argparse._SubParsersAction) -> None:
    from neuralstudio.core.training_settings import LOSSES, OPTIMIZERS

    p = sub.add_parser(
        "train",
        help="train a design (.nsd) with its stored hyperparameters or command-line overrides",
        description="Train a design on a data set and record the run. Hyperparameters come from the design and "
        "can be overridden here. Data: mnist-sample (bundled, offline), mnist, fashion-mnist (downloaded by Keras), "
        "or a path: a folder of IDX files, a folder with one sub-folder of images per class, a .csv with a label "
        "column, or an .npz with x_train, y_train (and x_test, y_test).",
    )
    p.add_argument("design", help="the .nsd design file")
    p.add_argument("--data", help="data set name or path (default: the design's own, usually mnist-sample)")
    p.add_argument("--epochs", type=int)
    p.add_argument("--batch-size", type=int)
    p.add_argument("--learning-rate", type=float)
    p.add_argument("--optimizer", choices=OPTIMIZERS)
    p.add_argument("--momentum", type=float, help="momentum for --optimizer sgd-momentum")
    p.add_argument("--loss", choices=LOSSES)
    p.add_argument("--validation-split", type=float, help="share of the training data held out for validation")
    p.add_argument("--seed", type=int, help="random seed (runs with the same seed repeat exactly on the CPU)")
    p.add_argument("--early-stopping", type=int, metavar="PATIENCE",
                   help="stop after PATIENCE epochs without a better validation loss and keep the best weights")
    p.add_argument("--device", default="auto", help="auto (default), cpu, gpu, gpu:N or all-gpus")
    p.add_argument("--mixed-precision", action="store_true",
                   help="compute in float16 on a GPU (faster on recent GPUs; the output layer stays float32)")
    p.add_argument("--out", metavar="MODEL.keras",
                   help="also save the trained model here (.keras, or .h5 for Keras's legacy HDF5 format)")
    p.add_argument("--history", metavar="HISTORY.json", help="write the per-epoch metrics here")
    p.add_argument("--runs", metavar="DIR", help="the runs folder (default: the user data folder)")
    p.add_argument("--json", action="store_true", help="print one JSON object as the last line of stdout")
    p.add_argument("--layer-stats", action="store_true",
                   help="after each epoch, print per-layer gradients (per unit: the bias gradient's root mean "
                   "square, Nielsen's delta; and the kernel gradient's norm), update/weight ratios and dead or "
                   "saturated units (on stderr with --json, which then includes them as layer_stats)")
    p.set_defaults(func=run)


class ProgressBar:
    """A one-line progress display on a terminal, redrawn at most 10 times a second."""

    def __init__(self, stream: TextIO, epochs: int, enabled: bool) -> None:
        self.stream = stream
        self.epochs = epochs
        self.enabled = enabled
        self._last = 0.0
        self._line = StatusLine(stream, enabled)

    def _write(self, text: str) -> None:
        self._line.write(text)

    def _clear(self) -> None:
        self._line.clear()

    def on_batch(self, epoch: int, batch: int, logs: dict[str, float]) -> None:
        now = time.monotonic()
        if not self.enabled or now - self._last < 0.1:
            return
        self._last = now
        frac = float(logs.get("progress", 0.0))
        rate = logs.get("samples_per_second", 0.0)
        bar = "#" * int(frac * 20)
        secs = logs.get("seconds", 0.0)
        left = secs * (1 - frac) / frac if frac > 0 else math.nan
        self._write(f"epoch {epoch + 1}/{self.epochs} [{bar:<20}] {frac:4.0%}  loss {logs.get('loss', math.nan):.4f}"
                    f"  accuracy {logs.get('accuracy', math.nan):.4f}  {rate:,.0f} samples/s  left {_clock(left)}")

    def on_epoch(self, epoch: int, logs: dict[str, float]) -> None:
        if not self.enabled:
            return
        self._clear()
        parts = [f"{k} {logs[k]:.4f}" for k in ("loss", "accuracy", "val_loss", "val_accuracy") if k in logs]
        note = " (stopped early in the epoch)" if logs.get("partial") else ""
        self.stream.write(f"epoch {epoch + 1}/{self.epochs}: {'  '.join(parts)}  ({logs.get('seconds', 0):.1f} s)"
                          f"{note}\n")
        self.stream.flush()

    def on_log(self, message: str) -> None:
        if self.enabled:
            self._clear()
            self.stream.write(message + "\n")
            self.stream.flush()

    def on_finished(self, result: Any) -> None:
        if self.enabled:
            self._clear()

    def on_failed(self, message: str) -> None:
        if self.enabled:
            self._clear()


class LayerStatsBar(ProgressBar):
    """The progress bar that also prints each epoch's per-layer table (``--layer-stats``) to ``table_stream``.

    Only the end-of-epoch snapshots are printed (``batch`` None); the ones taken during a long epoch are for
    the Train window's live panel.
    """

    def __init__(self, stream: TextIO, epochs: int, enabled: bool, table_stream: TextIO) -> None:
        super().__init__(stream, epochs, enabled)
        self.table_stream = table_stream

    def on_layer_stats(self, epoch: int, stats: list[dict[str, Any]]) -> None:
        from neuralstudio.ml.layer_stats import format_table

        if not stats or stats[0].get("batch") is not None:
            return
        if self.enabled:
            self._clear()
        self.table_stream.write(format_table(stats) + "\n")
        self.table_stream.flush()


def _clock(seconds: float) -> str:
    if not math.isfinite(seconds):
        return "?"
    s = int(round(seconds))
    return f"{s // 3600}:{s // 60 % 60:02d}:{s % 60:02d}" if s >= 3600 else f"{s // 60}:{s % 60:02d}"


def _fmt(v: float | None, pct: bool = False) -> str:
    if v is None:
        return "-"
    return f"{v:.2%}" if pct else f"{v:.4f}"


def run(args: argparse.Namespace) -> int:
    from neuralstudio.core.atomic import atomic_write_text
    from neuralstudio.core.design import load_design
    from neuralstudio.core.errors import UserError
    from neuralstudio.core.runs import RunsStore
    from neuralstudio.ml.trainer import TrainControl, Trainer

    design = load_design(args.design)
    if not len(design.graph):
        raise UserError(f"{args.design} has no layers: add an Input and some layers first.")
    settings = design.training.updated(
        epochs=args.epochs, batch_size=args.batch_size, learning_rate=args.learning_rate,
        optimizer=args.optimizer, momentum=args.momentum, loss=args.loss,
        validation_split=args.validation_split, seed=args.seed, early_stopping=args.early_stopping)
    if args.out and not str(args.out).lower().endswith((".keras", ".h5")):
        raise UserError(f"--out {args.out}: the model file name must end in .keras (or .h5 for Keras's legacy "
                        "HDF5 format).")

    bar_on = sys.stderr.isatty() and not args.json
    bar = (LayerStatsBar(sys.stderr, settings.epochs, bar_on, sys.stderr if args.json else sys.stdout)
           if args.layer_stats else ProgressBar(sys.stderr, settings.epochs, enabled=bar_on))

    control = TrainControl()
    trainer = Trainer(design, dataset=args.data, settings=settings, device=args.device,
                      mixed_precision=args.mixed_precision, runs_store=RunsStore(args.runs), reporter=bar,
                      control=control, out_path=args.out, layer_stats=args.layer_stats)

    with stop_on_first_interrupt(control, "Stopping after this batch (Ctrl+C again to abort)..."):
        result = trainer.run()

    if result.status == "failed":
        raise UserError(result.message)
    summary = result.summary()
    if args.history:
        atomic_write_text(args.history, json.dumps({"history": result.history, "settings": settings.to_dict(),
                                                    **{k: v for k, v in summary.items() if k != "history"}},
                                                   indent=2, sort_keys=True) + "\n")
    if args.json:
        summary.pop("history", None)
        print(json.dumps(summary, sort_keys=True))
    else:
        if not bar.enabled:  # the bar already showed it on stderr
            print(result.message)
        print(f"train       loss {_fmt(result.train_loss)}  accuracy {_fmt(result.train_accuracy, True)}")
        if result.validation_samples:
            print(f"validation  loss {_fmt(result.val_loss)}  accuracy {_fmt(result.val_accuracy, True)}")
        print(f"test        loss {_fmt(result.test_loss)}  accuracy {_fmt(result.test_accuracy, True)}")
        print(f"{result.epochs_run} epoch(s), {result.train_samples:,} training examples, batch {result.batch_size}, "
              f"{result.samples_per_second:,.0f} samples/s, {result.seconds:.1f} s on {result.device}")
        if result.model_path:
            print(f"model: {result.model_path}")
        if result.run_id:
            print(f"run: {result.run_id}")
        verdict = _verdict(result, trainer.record, settings)
        if verdict:
            print(verdict)
    return 1 if result.status == "nan" else 0


def _verdict(result: Any, record: Any, settings: Any) -> str:
    """What went wrong, if anything, and the next step, on one line: the same sentences as the Train window's."""
    from neuralstudio.core.run_outcome import diagnose_result, output_layer

    design = getattr(record, "design", None) or {}
    return diagnose_result(result, record, learning_rate=settings.learning_rate, loss=settings.loss,
                           output_activation=output_layer(design)[0]).line()
