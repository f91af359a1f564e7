"""Benchmark: NeuralStudio on each Keras backend (TensorFlow, JAX, PyTorch) against plain Keras on the same backend.

Not collected by pytest.  Usage (from the repository root)::

    python tests/benchmarks/bench_backends.py [--backends tensorflow jax torch] [--templates ...]
        [--epochs N] [--reps 2] [--startup-runs 2] [--plain-spe 8 32 128] [--json] [--out results.json]
    python tests/benchmarks/bench_backends.py --table-from results.json

Keras fixes its backend per process, so every measurement runs in a child process with ``KERAS_BACKEND`` set:
one child per (rep, backend), the backends taking turns rep by rep (reversed every other rep), so that a busy
moment of this shared 2-core machine does not land on one backend only.

**Training** (per template, on the 8,000 training images of ``mnist-sample``, no validation split, no test
split: the same examples and the same work for both sides):

- *Trainer*: ``neuralstudio.ml.trainer.Trainer`` as the command line runs it (``free_memory=True``) with
  ``tune_steps_per_execution`` on, as the app trains, and a reporter that does what the GUI's does (buffers).
- *plain*: ``model.fit`` on the NumPy arrays, same model, optimizer, loss, batch and epochs, with
  ``steps_per_execution=1`` and then (where the backend allows more than one step per execution and the first rep's
  plain steps were shorter than the Trainer's own threshold, ``callbacks.RETUNE_BELOW_S``) with each of
  ``--plain-spe``; the best of those is "plain best".
- Both run on a fresh plain Python thread (the Trainer always does; plain fit too unless ``--plain-thread main``:
  see :func:`_on_thread` for why). In one child the runs go plain spe=1, Trainer, plain with more steps per execution;
  from the second rep on, every other rep in the reverse order.
- Timed: **warm epochs only**, each epoch from Keras's ``on_epoch_begin`` to ``on_epoch_end`` (the Trainer's
  own per-epoch ``seconds``; the same hooks in a timing callback on the plain side, which has no batch hooks so that
  the plain fit stays plain). The first epoch traces and compiles: it is reported apart ("1st epoch s"). When the
  Trainer switched ``steps_per_execution`` at the end of its first epoch, its second epoch re-traces the
  training step, so it is left out too (and shown as "switch epoch s"); that is why nielsen-784-30-10 runs 3 epochs
  by default. With ``--epochs 2`` such a Trainer has no warm epoch: its second epoch is then used and flagged.
- Reported: the median over the reps of warm samples/s, the ratio Trainer/plain per rep (the pairs) and its median.

**Prediction**: one 28x28 image through the trained model, 200 calls each of NeuralStudio's ``Predictor``
(``predict_batch``, the Predict workspace's path) and of plain ``model.predict_on_batch``, after 10 warm-up calls,
the two alternating call by call; p50 and p95 in ms (median over the reps).

**Start-up**: ``neuralstudio --backend NAME gui`` in an offscreen child with a fresh settings folder, timed from
before the process is started to: the first paint of the window, Keras loaded (the window's ``KerasLoader`` says
so), the Train button enabled, and both (a usable Train button). The child watches the window with a 5 ms timer
installed by wrapping ``MainWindow.__init__``: nothing in the app is changed for it.
"""

from __future__ import annotations

import argparse
import functools
import gc
import json
import os
import platform
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[2]
HERE = Path(__file__).resolve().parent

TEMPLATES = ("nielsen-784-30-10", "mnist-cnn", "lstm-rows")
BACKENDS = ("tensorflow", "jax", "torch")
#: 3 for the model whose Trainer switches steps_per_execution (epoch 2 re-traces), else one compile + one warm epoch
DEFAULT_EPOCHS = {"nielsen-784-30-10": 3}
#: the issue's baseline trains mnist-cnn at batch 128 (the template says 64); the others keep their template's
DEFAULT_BATCH = {"mnist-cnn": 128}
PLAIN_SPE = (8, 32, 128)
PREDICT_CALLS = 200
PREDICT_WARM_UP = 10
STARTUP_LIMIT_S = 240.0


# ============================================================================ child: training and prediction
def _epoch_timer() -> Any:
    """A Keras callback timing each epoch with the same hooks as the Trainer's ``EngineCallback`` (and no batch
    hooks, which would make Keras call into Python after every step of the plain fit)."""
    import keras

    class EpochTimer(keras.callbacks.Callback):
        def __init__(self) -> None:
            super().__init__()
            self.seconds: list[float] = []
            self._t0 = 0.0

        def on_epoch_begin(self, epoch: int, logs: dict | None = None) -> None:
            self._t0 = time.perf_counter()

        def on_epoch_end(self, epoch: int, logs: dict | None = None) -> None:
            self.seconds.append(time.perf_counter() - self._t0)

    return EpochTimer()


def _plain_run(design: Any, ds: Any, settings: Any, spe: int) -> dict[str, Any]:
    """A plain ``model.fit`` on NumPy arrays: build, compile (``steps_per_execution=spe``), fit; epoch times."""
    import keras
    from plain_keras import compile_by_hand  # a sibling script: the plain side, compiled as the trainer does

    from neuralstudio.ml.builder import build_model
    from neuralstudio.ml.data import adapt_inputs

    keras.backend.clear_session()
    keras.utils.set_random_seed(settings.seed or 0)
    model = build_model(design.graph)
    x = adapt_inputs(ds.x_train, tuple(model.input_shape[1:]))
    y = compile_by_hand(model, settings, steps_per_execution=spe)(ds.y_train)
    timer = _epoch_timer()
    t0 = time.perf_counter()
    model.fit(x, y, batch_size=settings.batch_size, epochs=settings.epochs, verbose=0, shuffle=True,
              callbacks=[timer])
    fit_s = time.perf_counter() - t0
    n = len(x)
    return {"epoch_seconds": timer.seconds, "samples": n, "spe": spe, "fit_seconds": fit_s,
            "whole_fit_sps": n * settings.epochs / fit_s, "warm_from": 1}


def _trainer_run(design: Any, ds: Any, settings: Any) -> tuple[dict[str, Any], Any]:
    """NeuralStudio's Trainer as the CLI runs it (free_memory) with steps-per-execution tuning, as the app trains."""
    from bench_trainer import BufferReporter

    from neuralstudio.ml.trainer import Trainer

    class EpochClock(BufferReporter):
        def __init__(self) -> None:
            super().__init__()
            self.seconds: list[float] = []

        def on_epoch(self, epoch: int, logs: dict) -> None:
            super().on_epoch(epoch, logs)
            self.seconds.append(float(logs.get("seconds", float("nan"))))

    clock = EpochClock()
    t0 = time.perf_counter()
    r = Trainer(design, dataset=ds, settings=settings, reporter=clock, free_memory=True,
                tune_steps_per_execution=True).run()
    wall = time.perf_counter() - t0
    if r.status != "finished":
        raise SystemExit(f"Trainer failed ({r.status}): {r.message}")
    # switched at the end of epoch 1: epoch 2 traces the new step function, so warm epochs start at epoch 3
    warm_from = 2 if r.steps_per_execution > 1 else 1
    return ({"epoch_seconds": clock.seconds, "samples": r.train_samples, "spe": r.steps_per_execution,
             "fit_seconds": r.fit_seconds, "whole_fit_sps": r.samples_per_second,
             "run_seconds": wall, "warm_from": warm_from, "device": r.device}, r.model)


def warm_rate(run: dict[str, Any]) -> tuple[float, bool]:
    """Samples/s over the warm epochs of ``run``, and whether a compile epoch had to be counted (too few epochs)."""
    secs = run["epoch_seconds"]
    warm = secs[run["warm_from"]:]
    flagged = False
    if not warm:  # e.g. --epochs 2 with a Trainer that switched: use its last epoch, and say so
        warm, flagged = secs[-1:], True
    return run["samples"] * len(warm) / sum(warm), flagged


def _predict_latency(model: Any, image: Any) -> dict[str, Any]:
    """p50/p95 ms of one image through ``Predictor.predict_batch`` and ``model.predict_on_batch``, alternating."""
    from bench_predict import pct, time_calls

    from neuralstudio.ml.data import adapt_inputs
    from neuralstudio.ml.inference import Predictor

    predictor = Predictor(model)
    x_model = adapt_inputs(image, tuple(model.input_shape[1:]))
    calls = (("predictor", lambda: predictor.predict_batch(image)), ("predict_on_batch",
                                                                      lambda: model.predict_on_batch(x_model)))
    for _, fn in calls:
        time_calls(fn, PREDICT_WARM_UP)
    samples: dict[str, list[float]] = {name: [] for name, _ in calls}
    for i in range(PREDICT_CALLS):
        for name, fn in (calls if i % 2 == 0 else calls[::-1]):
            samples[name] += time_calls(fn, 1)
    return {name: {"p50_ms": pct(xs, 50), "p95_ms": pct(xs, 95)} for name, xs in samples.items()}


def _plain_spe_after(plain1: dict[str, Any], settings: Any, wanted: list[int]) -> list[int]:
    """The ``steps_per_execution`` values worth trying on plain fit besides 1: none on PyTorch (one step per
    execution), nor where plain fit's own warm steps are as long as the Trainer's threshold for switching
    (``callbacks.RETUNE_BELOW_S``), where Python's per-step overhead hardly matters.

    Decided from the plain run itself: a few ``train_on_batch`` calls (``ml/speed.py``) are no measure of it, since
    each such call costs more than a step inside ``fit`` (on JAX a 784-30-10 step read 8 ms that way, 1.2 in fit).
    """
    from neuralstudio.ml.backends import max_steps_per_execution
    from neuralstudio.ml.callbacks import RETUNE_BELOW_S

    if not wanted or max_steps_per_execution() == 1:
        return []
    step_s = settings.batch_size / warm_rate(plain1)[0]
    return list(wanted) if step_s < RETUNE_BELOW_S else []


def child_train(args: argparse.Namespace) -> dict[str, Any]:
    """One backend, one rep: every template's runs (alternating), then prediction latency with the trained model."""
    sys.path.insert(0, str(HERE))
    import keras
    import numpy as np

    from neuralstudio.core.templates import load_template
    from neuralstudio.ml.backends import active
    from neuralstudio.ml.data import Dataset, load_dataset

    backend = active()
    full = load_dataset("mnist-sample")
    ds = Dataset(full.name, full.x_train, full.y_train, None, None, list(full.class_names), full.source)
    image = np.random.default_rng(0).random((1, 28, 28), dtype=np.float32)
    known = {k: [int(x) for x in v] for k, v in json.loads(args.known_spe or "{}").items()}
    out: dict[str, Any] = {"backend": backend, "rep": args.rep, "keras": keras.__version__,
                           "backend_version": _backend_version(backend), "templates": {}}
    for name in args.templates:
        design = load_template(name)
        settings = design.training.updated(epochs=args.epochs or DEFAULT_EPOCHS.get(name, 2),
                                           batch_size=args.batch_size or DEFAULT_BATCH.get(name), validation_split=0.0)
        # plain fit with spe=1, the Trainer, and plain fit with more steps per execution where that can help
        # (decided after the first plain run, or by the parent from rep 1): reversed on odd reps when known
        order = ["plain", "trainer", "more"]
        if args.rep % 2 and name in known:
            order.reverse()
        entry: dict[str, Any] = {"batch_size": settings.batch_size, "epochs": settings.epochs, "plain": {}}
        for job in order:
            if job == "trainer":
                gc.collect()
                entry["trainer"], model = _trainer_run(design, ds, settings)
                _say(backend, args.rep, name, f"Trainer (spe {entry['trainer']['spe']})", entry["trainer"])
                continue
            spes = [1] if job == "plain" else known.get(name, []) if name in known else _plain_spe_after(
                entry["plain"]["1"], settings, args.plain_spe)
            for spe in spes if order[0] == "plain" else spes[::-1]:
                gc.collect()
                job_fn = functools.partial(_plain_run, design, ds, settings, spe)
                entry["plain"][str(spe)] = run = _on_thread(args.plain_thread, job_fn)
                _say(backend, args.rep, name, f"plain spe={spe}", run)
        entry["predict"] = _predict_latency(model, image)
        del model
        out["templates"][name] = entry
    return out


def _say(backend: str, rep: int, name: str, what: str, run: dict[str, Any]) -> None:
    print(f"  [{backend} rep {rep + 1}] {name}: {what} {warm_rate(run)[0]:,.0f} samples/s warm", file=sys.stderr,
          flush=True)


def _on_thread(where: str, fn: Any) -> Any:
    """``fn()`` on a fresh plain Python thread (as the Trainer runs), or on this main thread.

    Why not simply the main thread: on PyTorch (CPU) ops parallelise with OpenMP from the calling thread, and while
    other processes kept this 2-core machine busy (load average 5.7) a bare 784-30-10 step in torch took 33 ms on
    the main thread against 0.55 ms on a fresh thread (at load 0.8: 0.24 and 0.36 ms), and a main-thread plain fit
    ran at 93 samples/s against the Trainer's 977. That measures OpenMP under contention, not the Trainer's
    overhead; ``--plain-thread main`` measures it anyway.
    """
    if where == "main":
        return fn()
    from neuralstudio.ml.keras_threads import run_on_python_thread

    return run_on_python_thread(fn, "bench-plain-fit")


def _backend_version(backend: str) -> str:
    import importlib.metadata as md

    try:
        return md.version({"torch": "torch", "jax": "jax"}.get(backend, "tensorflow"))
    except md.PackageNotFoundError:
        return "?"


# ============================================================================ child: start-up
def child_startup(args: argparse.Namespace) -> None:
    """Start the app as ``neuralstudio --backend NAME gui`` does; write when the Train button became usable.

    The timestamps (``time.time()``, so that the parent can subtract its own start time) go to
    ``--child-out`` as JSON; then the process leaves at once instead of waiting for its window to close.
    """
    out = Path(args.child_out)
    stamps: dict[str, float | None] = {"first_paint": None, "keras_loaded": None, "train_enabled": None,
                                       "usable": None}

    def finish() -> None:
        out.write_text(json.dumps(stamps), encoding="utf-8")
        sys.stdout.flush()
        os._exit(0)

    from PySide6.QtCore import QEvent, QObject, QTimer

    from neuralstudio.ui import main_window

    class FirstPaint(QObject):
        def eventFilter(self, obj: Any, event: Any) -> bool:  # noqa: N802 - Qt's name
            if event.type() == QEvent.Type.Paint and stamps["first_paint"] is None:
                stamps["first_paint"] = time.time()
            return False

    def watch(window: Any) -> None:
        t_start = time.time()
        window._bench_paint = FirstPaint(window)
        window.tabs.installEventFilter(window._bench_paint)
        timer = QTimer(window)
        timer.setInterval(5)

        def poll() -> None:
            now = time.time()
            if stamps["keras_loaded"] is None and window.loader.is_loaded:
                stamps["keras_loaded"] = now
            page = window._train_page
            if stamps["train_enabled"] is None and page is not None and page.train_button.isEnabled():
                stamps["train_enabled"] = now
            if stamps["keras_loaded"] is not None and page is not None and page.train_button.isEnabled():
                stamps["usable"] = now
                finish()
            if window.loader.error or now - t_start > STARTUP_LIMIT_S:
                finish()

        timer.timeout.connect(poll)
        timer.start()
        window._bench_timer = timer

    original_init = main_window.MainWindow.__init__

    def init_and_watch(self: Any, *a: Any, **k: Any) -> None:
        original_init(self, *a, **k)
        watch(self)

    main_window.MainWindow.__init__ = init_and_watch
    from neuralstudio.cli import main

    main(["--backend", args.child_startup, "gui"])
    finish()  # the window closed before the Train button was usable


def measure_startup(backend: str) -> dict[str, float | None]:
    """Seconds from before starting a fresh offscreen app on ``backend`` to each of the child's timestamps."""
    env = {k: v for k, v in os.environ.items() if k not in ("KERAS_BACKEND", "NEURALSTUDIO_BENCH_FIRST_PAINT")}
    env.update(QT_QPA_PLATFORM=env.get("QT_QPA_PLATFORM", "offscreen"), TF_CPP_MIN_LOG_LEVEL="2")
    with tempfile.TemporaryDirectory() as tmp:
        result = Path(tmp) / "startup.json"
        env["NEURALSTUDIO_HOME"] = tmp  # no saved choice, no recent files, no autosave
        t0 = time.time()
        subprocess.run([sys.executable, str(Path(__file__).resolve()), "--child-startup", backend, "--child-out",
                        str(result)], env=env, cwd=ROOT, timeout=STARTUP_LIMIT_S + 60, check=False,
                       stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        stamps = json.loads(result.read_text(encoding="utf-8")) if result.is_file() else {}
    return {k: (v - t0 if v is not None else None) for k, v in stamps.items()}


# ============================================================================ parent
def _run_child(backend: str, rep: int, args: argparse.Namespace, known: dict[str, list[int]] | None = None
               ) -> dict[str, Any]:
    env = {**os.environ, "KERAS_BACKEND": backend, "TF_CPP_MIN_LOG_LEVEL": "2"}
    with tempfile.TemporaryDirectory() as tmp:
        out = Path(tmp) / "child.json"
        cmd = [sys.executable, str(Path(__file__).resolve()), "--child-train", "--rep", str(rep), "--child-out",
               str(out), "--plain-thread", args.plain_thread, "--templates", *args.templates, "--plain-spe",
               *map(str, args.plain_spe)]
        if known is not None:
            cmd += ["--known-spe", json.dumps(known)]
        if args.epochs:
            cmd += ["--epochs", str(args.epochs)]
        if args.batch_size:
            cmd += ["--batch-size", str(args.batch_size)]
        proc = subprocess.run(cmd, env=env, cwd=ROOT, check=False, stdout=sys.stderr)
        if proc.returncode != 0 or not out.is_file():
            raise SystemExit(f"the {backend} child failed (exit {proc.returncode})")
        return json.loads(out.read_text(encoding="utf-8"))


def _median(xs: list[float]) -> float | None:
    xs = [x for x in xs if x is not None]
    return statistics.median(xs) if xs else None


def summarize(runs: list[dict[str, Any]], startup: dict[str, list[dict[str, float | None]]]) -> dict[str, Any]:
    """The per-(template, backend) medians, pairs and ratios, the start-up medians, and the fastest backend."""
    rows = []
    templates = list(dict.fromkeys(t for r in runs for t in r["templates"]))
    backends = list(dict.fromkeys(r["backend"] for r in runs))
    for name in templates:
        for backend in backends:
            reps = [r["templates"][name] for r in runs if r["backend"] == backend and name in r["templates"]]
            if not reps:
                continue
            trainer = [warm_rate(e["trainer"]) for e in reps]
            plain1 = [warm_rate(e["plain"]["1"])[0] for e in reps]
            best = []
            for e in reps:
                rates = {int(s): warm_rate(run)[0] for s, run in e["plain"].items()}
                spe = max(rates, key=rates.get)
                best.append((rates[spe], spe))
            pairs = [(t[0], p) for t, p in zip(trainer, plain1)]
            best_pairs = [(t[0], b[0]) for t, b in zip(trainer, best)]
            rows.append({
                "template": name, "backend": backend, "batch_size": reps[0]["batch_size"],
                "epochs": reps[0]["epochs"], "trainer_spe": reps[-1]["trainer"]["spe"],
                "warm_flagged": any(t[1] for t in trainer),
                "trainer_sps": _median([t[0] for t in trainer]), "plain1_sps": _median(plain1),
                "plain_best_sps": _median([b[0] for b in best]), "plain_best_spe": statistics.mode(b[1] for b in best),
                "ratio_plain1": _median([t / p for t, p in pairs]),
                "ratio_plain_best": _median([t / b for t, b in best_pairs]),
                "pairs_plain1": pairs, "pairs_plain_best": best_pairs,
                "trainer_first_epoch_s": _median([e["trainer"]["epoch_seconds"][0] for e in reps]),
                "trainer_switch_epoch_s": _median([e["trainer"]["epoch_seconds"][1] for e in reps
                                                   if e["trainer"]["warm_from"] == 2 and
                                                   len(e["trainer"]["epoch_seconds"]) > 1]),
                "plain1_first_epoch_s": _median([e["plain"]["1"]["epoch_seconds"][0] for e in reps]),
                "trainer_whole_fit_sps": _median([e["trainer"]["whole_fit_sps"] for e in reps]),
                "plain1_whole_fit_sps": _median([e["plain"]["1"]["whole_fit_sps"] for e in reps]),
                "predictor_p50_ms": _median([e["predict"]["predictor"]["p50_ms"] for e in reps]),
                "predictor_p95_ms": _median([e["predict"]["predictor"]["p95_ms"] for e in reps]),
                "predict_on_batch_p50_ms": _median([e["predict"]["predict_on_batch"]["p50_ms"] for e in reps]),
                "predict_on_batch_p95_ms": _median([e["predict"]["predict_on_batch"]["p95_ms"] for e in reps]),
                "reps": len(reps),
            })
    fastest = {}
    for name in templates:
        mine = [r for r in rows if r["template"] == name]
        top = max(mine, key=lambda r: r["trainer_sps"])
        plain_top = max(mine, key=lambda r: r["plain_best_sps"])
        fastest[name] = {"trainer": top["backend"], "trainer_sps": top["trainer_sps"],
                         "plain": plain_top["backend"], "plain_sps": plain_top["plain_best_sps"]}
    start = {}
    for backend, launches in startup.items():
        start[backend] = {k: _median([s.get(k) for s in launches])
                          for k in ("first_paint", "keras_loaded", "train_enabled", "usable")}
        start[backend]["launches"] = launches
    return {"rows": rows, "fastest": fastest, "startup": start}


def _n(x: float | None, fmt: str = ",.0f") -> str:
    return "n/a" if x is None else format(x, fmt)


def _md(heads: list[str], lines: list[list[str]]) -> str:
    out = ["| " + " | ".join(heads) + " |", "|" + "|".join("---" for _ in heads) + "|"]
    return "\n".join(out + ["| " + " | ".join(cells) + " |" for cells in lines])


def format_tables(result: dict[str, Any]) -> str:
    """The markdown report: training, prediction, start-up, fastest backend per model."""
    s = result["summary"]
    heads = ["model", "batch", "backend", "Trainer spe", "1st epoch s (Trainer / plain)", "Trainer warm /s",
             "plain spe=1 warm /s", "plain best warm /s (spe)", "Trainer / plain spe=1", "Trainer / plain best",
             "pairs Trainer/plain spe=1 per rep"]
    lines = []
    for r in s["rows"]:
        first = f"{_n(r['trainer_first_epoch_s'], '.2f')} / {_n(r['plain1_first_epoch_s'], '.2f')}"
        if r["trainer_switch_epoch_s"] is not None:
            first += f" (switch epoch {r['trainer_switch_epoch_s']:.2f})"
        pairs = ", ".join(f"{t:,.0f}/{p:,.0f}" for t, p in r["pairs_plain1"])
        lines.append([r["template"], str(r["batch_size"]), r["backend"], str(r["trainer_spe"]), first,
                      _n(r["trainer_sps"]) + (" (incl. re-trace)" if r["warm_flagged"] else ""), _n(r["plain1_sps"]),
                      f"{_n(r['plain_best_sps'])} ({r['plain_best_spe']})", _n(r["ratio_plain1"], ".2f"),
                      _n(r["ratio_plain_best"], ".2f"), pairs])
    meta = result["meta"]
    text = [f"Training samples/s on {meta['machine']}, mnist-sample (8,000 training images), warm epochs only "
            f"(median of {meta['reps']} rep(s)); Keras {meta.get('keras', '?')}; 1-minute load average at start/end: "
            + " / ".join(f"{x:.1f}" for x in meta.get("load_average_start_end", [])), "", _md(heads, lines), ""]
    pheads = ["model", "backend", "Predictor p50 / p95 ms", "predict_on_batch p50 / p95 ms"]
    plines = [[r["template"], r["backend"], f"{_n(r['predictor_p50_ms'], '.3f')} / {_n(r['predictor_p95_ms'], '.3f')}",
               f"{_n(r['predict_on_batch_p50_ms'], '.3f')} / {_n(r['predict_on_batch_p95_ms'], '.3f')}"]
              for r in s["rows"]]
    text += [f"One-image prediction ({PREDICT_CALLS} calls each, alternating, after {PREDICT_WARM_UP} warm-up calls)",
             "", _md(pheads, plines), ""]
    if s["startup"]:
        sheads = ["backend", "first paint s", "Keras loaded s", "Train enabled s", "usable Train button s", "launches"]
        slines = [[b, _n(v["first_paint"], ".2f"), _n(v["keras_loaded"], ".2f"), _n(v["train_enabled"], ".2f"),
                   _n(v["usable"], ".2f"), str(len(v["launches"]))] for b, v in s["startup"].items()]
        text += ["Start-up, offscreen, from process start (median of the launches)", "", _md(sheads, slines), ""]
    text.append("Fastest backend per model (warm samples/s): " + "; ".join(
        f"{name}: {f['trainer']} with the Trainer ({f['trainer_sps']:,.0f}/s), {f['plain']} with plain fit "
        f"({f['plain_sps']:,.0f}/s)" for name, f in s["fastest"].items()))
    return "\n".join(text)


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--backends", nargs="+", default=list(BACKENDS))
    p.add_argument("--templates", nargs="+", default=list(TEMPLATES))
    p.add_argument("--epochs", type=int, help="epochs for every template (default: 3 for nielsen-784-30-10, else 2)")
    p.add_argument("--batch-size", type=int, help="batch size for every template (default: mnist-cnn 128, else the "
                                                  "template's)")
    p.add_argument("--reps", type=int, default=2)
    p.add_argument("--plain-spe", nargs="*", type=int, default=list(PLAIN_SPE),
                   help="steps_per_execution values tried on plain fit besides 1 (none: only 1)")
    p.add_argument("--plain-thread", choices=("worker", "main"), default="worker",
                   help="where plain fit runs: a fresh Python thread like the Trainer's (default), or the main thread")
    p.add_argument("--startup-runs", type=int, default=2, help="app launches per backend (0: none)")
    p.add_argument("--json", action="store_true", help="print the JSON result instead of the tables")
    p.add_argument("--out", help="also write the JSON result to this file")
    p.add_argument("--table-from", help="print the tables of a JSON result written by --out, and stop")
    p.add_argument("--child-train", action="store_true", help=argparse.SUPPRESS)
    p.add_argument("--child-startup", help=argparse.SUPPRESS)
    p.add_argument("--child-out", help=argparse.SUPPRESS)
    p.add_argument("--rep", type=int, default=0, help=argparse.SUPPRESS)
    p.add_argument("--known-spe", help=argparse.SUPPRESS)
    args = p.parse_args()
    if args.child_startup:
        child_startup(args)
        return 0
    if args.child_train:
        Path(args.child_out).write_text(json.dumps(child_train(args)), encoding="utf-8")
        return 0
    if args.table_from:
        print(format_tables(json.loads(Path(args.table_from).read_text(encoding="utf-8"))))
        return 0

    sys.path.insert(0, str(ROOT))
    from neuralstudio.ml.backends import installed, normalize

    backends = [normalize(b) for b in args.backends]
    missing = [b for b in backends if not installed(b)]
    if missing:
        print(f"not installed, skipped: {', '.join(missing)}", file=sys.stderr)
    backends = [b for b in backends if b not in missing]
    load_start = os.getloadavg()
    runs = []
    for rep in range(args.reps):
        for backend in backends if rep % 2 == 0 else backends[::-1]:
            print(f"rep {rep + 1}/{args.reps}: {backend}", file=sys.stderr, flush=True)
            first = next((r for r in runs if r["backend"] == backend), None)  # its plain spe values, for later reps
            known = None if first is None else {t: sorted(int(s) for s in e["plain"] if s != "1")
                                                for t, e in first["templates"].items()}
            runs.append(_run_child(backend, rep, args, known))
    startup: dict[str, list[dict[str, float | None]]] = {b: [] for b in backends} if args.startup_runs else {}
    for i in range(args.startup_runs):
        for backend in backends if i % 2 == 0 else backends[::-1]:
            startup[backend].append(measure_startup(backend))
            print(f"start-up {i + 1} {backend}: {startup[backend][-1]}", file=sys.stderr, flush=True)
    meta = {"machine": f"{platform.machine()} CPU, {os.cpu_count()} cores", "python": platform.python_version(),
            "load_average_start_end": [load_start[0], os.getloadavg()[0]], "reps": args.reps,
            "keras": runs[0]["keras"] if runs else None,
            "backend_versions": {r["backend"]: r["backend_version"] for r in runs},
            "args": {k: v for k, v in vars(args).items() if not k.startswith("child") and k != "rep"}}
    result = {"meta": meta, "runs": runs, "summary": summarize(runs, startup)}
    if args.out:
        Path(args.out).write_text(json.dumps(result, indent=1), encoding="utf-8")
    print(json.dumps(result, indent=1) if args.json else format_tables(result))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
