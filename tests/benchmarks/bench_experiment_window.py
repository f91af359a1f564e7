"""How long the GUI stalls while an experiment runs from the Experiment tab, idle or under load.

Issue 19 promises an experiment "the same guarantees as a single run": the GUI never stalls over 50 ms.
This measures it the way ``bench_train_window.py`` measures a single run, with that script's probe, waits and
busy loops (imported, not copied):

1. the real main window opens offscreen (``--workspace``: a bare Train workspace, as ``bench_train_window``
   builds it, with the bundled MNIST sample given in memory), loads Keras in the background as the app does,
   and a template is opened (``nielsen-784-30-10``; ``--templates`` adds ``mnist-cnn``); the Train form's
   Epochs box gets ``--epochs``, the data source stays the bundled MNIST sample;
2. the experiment is defined in the Experiment tab as a user does: each hyperparameter chosen in the Add menu
   and its values typed into its field (learning rate and batch size, a grid: 4 trials by default);
3. once the window is settled (the estimate computed, no background work), a 5 ms GUI timer runs 2 s with
   nothing to do: its longest gap is what the machine itself costs (other programs, a CI run beside it);
4. Start is clicked and the same probe measures from the click (its handling included) until the experiment
   has finished, all trials, then on until the results view has filled in (one table row per trial).

It prints, per template, the trials done, the wall time, each trial's samples/s as the study recorded it, the
worst stall to the end and after it, the idle worst, whether the results view filled in, how much of a core
the GUI thread used, and the 1-minute load average (``os.getloadavg``) when the experiment started and ended.
A second table splits the worst stall by phase (before the first trial, a trial's set-up until its first
batch is drawn, its training, the GUI's handling of the end, which counts in the worst stall to the end, and
after that until the results are shown) and gives the longest call of the GUI's own work that the
benchmark can time from outside (the results view's redraw, the plots' refresh, the runs table's reload, the
garbage collector's passes by generation), with a full collection timed just before Start for comparison.

``BENCH_VERBOSE=1`` prints every stall over 50 ms as it happens, with where the GUI thread's time went
meanwhile (``bench_train_window.Probe``: running, waiting for a core, or blocked, which is mostly waiting for
the GIL) and the status line, and every trial event with its time from the click (the stalls after the end are
timed from the end). ``BENCH_VERBOSE=2`` adds a sampler thread (:class:`Sampler`) and, after the experiment,
each stall with the GUI thread's most frequent Python stacks during it and the threads that used the CPU
meanwhile; the sampler perturbs what it watches a little, so take the figures from runs without it.

``--load N`` starts N busy-loop processes beside it (``bench_train_window.busy_loops``; ``--load-session``
and ``--load-cpu`` as there). It waits with event loops (``QEventLoop`` + ``QTimer.singleShot``), never
``QTest.qWait``, which holds the GIL and starves the training threads (docs/ARCHITECTURE.md, Traps).

    QT_QPA_PLATFORM=offscreen python tests/benchmarks/bench_experiment_window.py [--epochs 2] [--load 1]
        [--templates nielsen-784-30-10 mnist-cnn] [--workspace] [--reps 1]

Goal: worst stall <= 50 ms from the Start click to the end of the experiment. Not collected by pytest
(``tests/benchmarks`` holds scripts).
"""

from __future__ import annotations

import argparse
import functools
import os
import statistics
import sys
import tempfile
import threading
import time
from collections import Counter, deque
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

# a sibling script (tests/benchmarks is on sys.path when this one runs): the single run's probe, waits,
# busy loops and load figure, so that both benchmarks measure and report alike
from bench_train_window import (  # noqa: E402
    PROBE_MS,
    Probe,
    _loadavg,
    busy_loops,
    load_keras_as_the_app_does,
    settle,
    wait_ms,
    wait_until,
)

#: what varies, per template: values a course would try (Nielsen's chapter 1: learning rate 3 and batch 10)
GRIDS = {"nielsen-784-30-10": {"learning_rate": "0.3,3", "batch_size": "10,100"},
         "mnist-cnn": {"learning_rate": "0.0003,0.003", "batch_size": "32,128"}}
STALL_GOAL_MS = 50.0
IDLE_S = 2.0
RESULTS_TIMEOUT_S = 120.0
PHASES = ("before the first trial", "trial set-up", "trial training", "the end's handling", "after the end")


class Sampler(threading.Thread):
    """``BENCH_VERBOSE=2``: what the GUI thread was doing during each stall, and who had the cores.

    Every ``SAMPLE_MS`` it notes the GUI thread's innermost Python frames (``sys._current_frames``: the line
    that runs, or that called into Qt or Keras and waits there), and every ``CPU_SAMPLE_MS`` each thread's time
    run and time waited for a core so far (``/proc/self/task/*/schedstat``) and the whole machine's busy time
    (``/proc/stat``, in 10 ms ticks). :meth:`explain` turns a stall's window into the GUI thread's most
    frequent stacks, the threads that ran or waited for a core most meanwhile, and the CPU time other
    processes took. It costs a few percent of a core and takes the GIL at each sample (at most
    ``sys.getswitchinterval()`` away from the GUI thread): for diagnosis, not for the figures.
    """

    SAMPLE_MS = 2.0
    CPU_SAMPLE_MS = 10.0
    KEEP_S = 300.0

    def __init__(self) -> None:
        super().__init__(name="bench-sampler", daemon=True)
        self.gui = threading.main_thread().ident
        self.stacks: deque[tuple[float, str]] = deque(maxlen=int(self.KEEP_S * 1000 / self.SAMPLE_MS))
        self.cpu: deque[tuple[float, dict[int, tuple[float, float]], float]] = \
            deque(maxlen=int(self.KEEP_S * 1000 / self.CPU_SAMPLE_MS))
        self.names: dict[int, str] = {}  # noted while the threads live: most are gone when the stalls are read
        self._done = threading.Event()

    def run(self) -> None:
        next_cpu = 0.0
        while not self._done.wait(self.SAMPLE_MS / 1000):
            now = time.perf_counter()
            self.stacks.append((now, _stack_text(sys._current_frames().get(self.gui))))
            if now >= next_cpu:
                threads = _threads_times_ms()
                if any(tid not in self.names for tid in threads):
                    self.names.update(_thread_names())
                self.cpu.append((now, threads, _machine_busy_ms()))
                next_cpu = now + self.CPU_SAMPLE_MS / 1000

    def stop(self) -> None:
        self._done.set()
        self.join(2)

    def explain(self, start: float, end: float) -> list[str]:
        """Lines on the window ``[start, end]`` (perf_counter seconds): GUI stacks, then threads and machine."""
        stacks = Counter(text for t, text in self.stacks if start <= t <= end)
        n = sum(stacks.values())
        lines = [f"GUI stack in {k} of {n} samples: {text}" for text, k in stacks.most_common(3)]
        before = [snap for snap in self.cpu if snap[0] <= start]
        after = [snap for snap in self.cpu if snap[0] >= end]
        if not before or not after:
            return lines
        (t0, b, busy0), (t1, a, busy1) = before[-1], after[0]
        delta = {tid: (ran - b.get(tid, (0.0, 0.0))[0], queued - b.get(tid, (0.0, 0.0))[1])
                 for tid, (ran, queued) in a.items()}
        ours = sum(ran for ran, _q in delta.values())
        ran = sorted(((r, tid) for tid, (r, _q) in delta.items() if r >= 1), reverse=True)[:5]
        waited = sorted(((q, tid) for tid, (_r, q) in delta.items() if q >= 1), reverse=True)[:5]
        name = lambda tid: self.names.get(tid, str(tid))  # noqa: E731 - a local shorthand
        lines.append("ran (ms): " + (", ".join(f"{name(tid)} {ms:.0f}" for ms, tid in ran) or "nothing"))
        lines.append("waited for a core (ms): " + (", ".join(f"{name(tid)} {ms:.0f}" for ms, tid in waited)
                                                    or "nothing"))
        span = (t1 - t0) * 1000
        lines.append(f"over {span:.0f} ms ({span * (os.cpu_count() or 1):.0f} core-ms): this process ran "
                     f"{ours:.0f} ms, the machine {busy1 - busy0:.0f} ms (10 ms ticks), so other processes "
                     f"about {max(0.0, busy1 - busy0 - ours):.0f} ms")
        return lines


def _stack_text(frame: Any, depth: int = 4) -> str:
    """The innermost ``depth`` frames as ``file:function:line`` from the inside out (``-`` when none)."""
    parts = []
    while frame is not None and len(parts) < depth:
        code = frame.f_code
        parts.append(f"{os.path.basename(code.co_filename)}:{code.co_name}:{frame.f_lineno}")
        frame = frame.f_back
    return " < ".join(parts) or "-"


def _threads_times_ms() -> dict[int, tuple[float, float]]:
    """Each thread of this process: milliseconds it has run and has waited for a core (Linux; empty elsewhere)."""
    out = {}
    try:
        tids = os.listdir("/proc/self/task")
    except OSError:
        return out
    for tid in tids:
        try:
            with open(f"/proc/self/task/{tid}/schedstat", encoding="ascii") as f:
                ran, queued, _slices = f.read().split()
            out[int(tid)] = (int(ran) / 1e6, int(queued) / 1e6)
        except (OSError, ValueError):
            continue
    return out


def _machine_busy_ms() -> float:
    """Milliseconds all CPUs of the machine have been busy since boot (``/proc/stat``; 0 where unreadable)."""
    try:
        with open("/proc/stat", encoding="ascii") as f:
            fields = [int(x) for x in f.readline().split()[1:]]
    except (OSError, ValueError):
        return 0.0
    idle = fields[3] + (fields[4] if len(fields) > 4 else 0)
    return (sum(fields[:8]) - idle) * 1000 / os.sysconf("SC_CLK_TCK")


def _thread_names() -> dict[int, str]:
    """Native thread id -> the Python thread's name where there is one, else the kernel's (``comm``) and id."""
    names = {t.native_id: t.name for t in threading.enumerate() if t.native_id is not None}
    gui = threading.main_thread().native_id
    if gui is not None:
        names[gui] = "GUI"
    try:
        tids = [int(x) for x in os.listdir("/proc/self/task")]
    except OSError:
        tids = []
    for tid in tids:
        if tid not in names:
            try:
                with open(f"/proc/self/task/{tid}/comm", encoding="utf-8", errors="replace") as f:
                    names[tid] = f"{f.read().strip()}[{tid}]"
            except OSError:
                continue
    return names


class PhaseProbe(Probe):
    """``bench_train_window.Probe`` that also notes each gap's phase of the experiment (its worst per phase),
    and with a :class:`Sampler` keeps every stall over the goal for :meth:`explain_stalls`.

    The gap is read from the parent's own bookkeeping (``_last`` before and after its tick), so lateness is
    measured exactly as there; the phase is the one current when the late tick is served.
    """

    def __init__(self, ws: Any, sampler: Sampler | None = None) -> None:
        super().__init__(ws)
        self.phase = PHASES[0]
        self.worst_by_phase: dict[str, float] = {}
        self.sampler = sampler
        self.stalls: list[tuple[float, float, str]] = []  # (perf_counter at the late tick, lateness ms, phase)

    def _tick(self) -> None:
        before = self._last
        super()._tick()
        if before is not None and self._last is not None:
            late = self._last - before - PROBE_MS
            self.worst_by_phase[self.phase] = max(self.worst_by_phase.get(self.phase, 0.0), late)
            if late > STALL_GOAL_MS and self.sampler is not None:
                self.stalls.append((time.perf_counter(), late, self.phase))

    def explain_stalls(self, origin: float) -> None:
        """Print each kept stall with the sampler's view of it (times from ``origin``, perf_counter seconds)."""
        if self.sampler is None:
            return
        for at, late, phase in self.stalls:
            print(f"    stall {late:.0f} ms ending at {at - origin:.2f} s ({phase}):")
            for line in self.sampler.explain(at - (late + PROBE_MS) / 1000, at):
                print(f"      {line}")


@dataclass
class GuiWork:
    """The longest and total milliseconds of GUI-thread calls timed from outside (wrapped instance methods)."""

    longest: dict[str, float] = field(default_factory=dict)
    longest_cpu: dict[str, float] = field(default_factory=dict)  # the GUI thread's CPU ms in that longest call
    total: dict[str, float] = field(default_factory=dict)
    calls: dict[str, int] = field(default_factory=dict)

    def wrap(self, obj: Any, name: str, label: str | Callable[..., str]) -> Callable[[], None]:
        """Time ``obj.name`` from now on (``label``: a name, or one made from the call's arguments); returns what
        puts the original back. Sees the calls that look the method up when they call, not those of slots
        connected earlier as bound methods, which keep the original."""
        original = getattr(obj, name)

        @functools.wraps(original)
        def timed(*args: Any, **kwargs: Any) -> Any:
            t, cpu = time.perf_counter(), time.thread_time()
            try:
                return original(*args, **kwargs)
            finally:
                ms = (time.perf_counter() - t) * 1000
                key = label(*args, **kwargs) if callable(label) else label
                if ms > self.longest.get(key, -1.0):
                    self.longest[key] = ms
                    self.longest_cpu[key] = (time.thread_time() - cpu) * 1000
                self.total[key] = self.total.get(key, 0.0) + ms
                self.calls[key] = self.calls.get(key, 0) + 1

        setattr(obj, name, timed)
        return lambda: delattr(obj, name) if name in vars(obj) else None


@dataclass
class Outcome:
    """One experiment's figures, for the tables."""

    template: str
    window: str
    planned: int | None
    done: int
    states: list[str]
    wall_s: float
    sps: list[float]
    worst_ms: float
    after_ms: float
    idle_ms: float
    rows: int
    results_s: float | None
    gui_cpu: float
    load_start: float
    load_end: float
    by_phase: dict[str, float]
    work: GuiWork
    clean_close: bool
    gc_before_ms: float


def choose_in_add_menu(panel: Any, path: str) -> Any:
    """Pick ``path`` in the Add menu, filled as when it opens (as tests/ui/test_experiment_panel.py does); its
    Values field. The menu is not popped up: offscreen, a popup's own event loop would wait for a click."""
    panel.fill_add_menu(panel.add_menu)
    actions = [a for a in panel.add_menu.findChildren(type(panel.add_menu.menuAction())) if a.data() == path]
    if not actions:
        raise SystemExit(f"{path} is not offered in the Experiment tab's Add menu")
    actions[0].trigger()
    return panel.values_edit(path)


def type_values(edit: Any, text: str) -> None:
    """Type ``text`` over a Values field as a user does: select all, erase, type key by key."""
    from PySide6.QtCore import Qt
    from PySide6.QtTest import QTest

    edit.setFocus()
    edit.selectAll()
    QTest.keyClick(edit, Qt.Key.Key_Backspace)
    QTest.keyClicks(edit, text)


def open_window(template: str, args: argparse.Namespace, dataset: Any) -> tuple[Any, Any]:
    """The window and its Train workspace with ``template`` open and the Train page shown: (window, workspace).

    The main window by default (its editor, runner and Predict page all live, as for a user); with
    ``--workspace`` a bare TrainWorkspace given ``dataset`` in memory, as ``bench_train_window`` builds it.
    """
    from neuralstudio.core.runs import RunsStore
    from neuralstudio.core.templates import load_template
    from neuralstudio.ui.train.workspace import TrainWorkspace

    if args.workspace:
        ws = TrainWorkspace(runs_store=RunsStore(tempfile.mkdtemp(prefix="ns-runs-")))
        ws.set_dataset(dataset)
        ws.set_design(load_template(template))
        ws.resize(1280, 800)
        ws.show()
        window = ws
        from neuralstudio.ui.garbage_collection import gui_garbage_collector

        gui_garbage_collector().settle()  # as the main window does: once Keras has loaded, its windows built
    else:
        from neuralstudio.ui.main_window import MainWindow

        window = MainWindow(load_default=False, check_autosave=False)
        window.resize(1280, 800)
        window.show()
        if not wait_until(lambda: window.loader.is_loaded or window.loader.error is not None, 600, step_ms=50):
            raise SystemExit("the window had not loaded Keras after 600 s")
        if window.loader.error is not None:
            raise SystemExit(f"the window could not load Keras: {window.loader.error}")
        if not window.new_from_template(template):
            raise SystemExit(f"the template {template} did not open: {window.last_error}")
        window.show_train()
        ws = window.train_page
        wait_until(lambda: window.editor.analysis_current, 120)
    wait_until(lambda: window.windowHandle() is not None and window.windowHandle().isExposed(), 10)
    i = ws.settings_panel.device_box.findData(args.device)
    if i >= 0:
        ws.settings_panel.device_box.setCurrentIndex(i)
    ws.settings_panel.epochs_box.setValue(args.epochs)  # the Train form's Epochs box, as a user sets it
    wait_ms(300)  # laid out and painted
    return window, ws


def define_experiment(ws: Any, grid: dict[str, str]) -> None:
    """Open the Experiment tab and vary each of ``grid``'s paths over its values, through the real widgets."""
    ws.show_experiment()
    panel = ws.experiment.panel
    for path, values in grid.items():
        type_values(choose_in_add_menu(panel, path), values)
    wait_ms(300)  # the check against the design runs once typing pauses (200 ms)
    if not panel.start_button.isEnabled():
        raise SystemExit(f"Start is disabled: {panel.error_label.text() or panel.start_button.toolTip()}")


def settle_experiment(ws: Any) -> float:
    """Wait as a user would before Start: the estimate is in (background analysis of the design), nothing busy.

    Then one full garbage collection, timed (ms): what a full pass costs before the experiment, and so that the
    pass the experiment's end asks for holds only the trials' garbage (``ExperimentRunner`` collects then).
    """
    from neuralstudio.ui.garbage_collection import gui_garbage_collector

    label = ws.experiment.panel.estimate_label
    wait_until(lambda: "estimating" not in label.text() and "waiting for Keras" not in label.text(), 120)
    settle(ws)
    t = time.perf_counter()
    gui_garbage_collector().collect(2)
    gc_ms = (time.perf_counter() - t) * 1000
    wait_ms(300)
    return gc_ms


def idle_worst(ws: Any) -> float:
    """The longest lateness of the probe over ``IDLE_S`` seconds with nothing to do: what the machine costs."""
    probe = Probe(ws)
    probe.start()
    wait_ms(int(IDLE_S * 1000))
    probe.stop()
    return probe.worst_ms


def run_experiment(ws: Any, verbose: int) -> dict[str, Any]:
    """Click Start and wait for the end of every trial, then for the results view; the probes' figures."""
    from PySide6.QtCore import QEventLoop, Qt, QTimer
    from PySide6.QtTest import QTest

    from neuralstudio.ui.garbage_collection import gui_garbage_collector

    tab = ws.experiment
    panel = tab.panel
    runner = tab.runner
    work = GuiWork()
    restores = [work.wrap(tab.results, "set_results", "results view redraw"),
                work.wrap(ws.plots, "refresh", "plots refresh"),
                work.wrap(ws.runs_panel, "reload", "runs table reload"),
                work.wrap(gui_garbage_collector(), "collect", lambda generation=2: f"gc generation {generation}")]
    sampler = Sampler() if verbose >= 2 else None
    probe = PhaseProbe(ws, sampler)
    after = PhaseProbe(ws, sampler)
    after.phase = PHASES[4]
    marks: dict[str, float] = {}
    clicked = 0.0

    def note(what: str) -> None:
        if verbose:
            print(f"    {time.perf_counter() - clicked:6.2f} s: {what}", flush=True)

    def on_started(number: int, values: dict[str, Any]) -> None:
        probe.phase = PHASES[1]
        note(f"trial {number} started {values}")

    def on_training(*_progress: Any) -> None:
        if probe.phase == PHASES[1]:
            probe.phase = PHASES[2]
            note(f"trial {runner.trial_number}: first batches drawn")

    def on_finished(outcome: Any) -> None:
        note(f"trial {outcome.number} finished: {outcome.state} ({outcome.status}), {outcome.seconds:.1f} s")

    loop = QEventLoop()

    def on_running(running: bool) -> None:
        if not running:  # the experiment's thread has ended: switch probes in the same slot, no gap unmeasured
            marks["ended"] = time.perf_counter()
            probe.phase = PHASES[3]
            probe._tick()  # the gap from its last tick to now: the runner's and the tab's handling of the end
            probe.stop()
            after.start()
            note("experiment finished")
            loop.quit()

    runner.trial_started.connect(on_started)
    runner.trial_progress.connect(on_training)
    runner.trial_finished.connect(on_finished)
    tab.running_changed.connect(on_running)
    QTimer.singleShot(3_600_000, loop.quit)
    load_start = os.getloadavg()[0]
    if sampler is not None:
        sampler.start()
    probe.start()
    clicked, cpu0 = time.perf_counter(), time.thread_time()
    QTest.mouseClick(panel.start_button, Qt.MouseButton.LeftButton)
    if tab.is_running():
        loop.exec()
    else:
        probe.stop()
        raise SystemExit(f"the experiment did not start: {ws.status_label.text()}")
    ended = marks.get("ended")
    if ended is None:
        raise SystemExit("the experiment did not end within an hour")
    load_end = os.getloadavg()[0]
    gui_cpu = (time.thread_time() - cpu0) / max(ended - clicked, 1e-9)
    n = len(runner.outcomes)
    filled = wait_until(lambda: tab.results.table.rowCount() == n and not tab.results_pending, RESULTS_TIMEOUT_S)
    results_s = time.perf_counter() - ended if filled else None
    wait_ms(500)  # the end's deferred work (the collector's pass, the runs table) counts too
    after.stop()
    for restore in restores:
        restore()
    if sampler is not None:
        sampler.stop()
        probe.explain_stalls(clicked)
        after.explain_stalls(clicked)
    for signal, slot in ((runner.trial_started, on_started), (runner.trial_progress, on_training),
                         (runner.trial_finished, on_finished), (tab.running_changed, on_running)):
        signal.disconnect(slot)
    by_phase = dict(probe.worst_by_phase)
    by_phase[PHASES[4]] = after.worst_ms
    return {"planned": runner.request.spec.planned_trials(), "outcomes": list(runner.outcomes),
            "study": runner.study, "wall_s": ended - clicked, "worst_ms": probe.worst_ms, "after_ms": after.worst_ms,
            "rows": tab.results.table.rowCount(), "results_s": results_s, "gui_cpu": gui_cpu,
            "load_start": load_start, "load_end": load_end, "by_phase": by_phase, "work": work}


def recorded_speeds(study: Any) -> list[float]:
    """Each trial's samples/s as the study recorded it (``ml/sweep.py`` stores the run's figure per trial)."""
    speeds = []
    for t in sorted(study.trials, key=lambda t: t.number):
        try:
            speeds.append(float(t.user_attrs.get("samples_per_second") or 0.0))
        except (TypeError, ValueError):
            speeds.append(0.0)
    return speeds


def close(window: Any, ws: Any) -> bool:
    """Close as the app does at exit, delete the widgets at a known moment; True when no training thread is left."""
    from PySide6.QtWidgets import QApplication

    from neuralstudio.ui.train.workspace import running_training_threads
    from neuralstudio.ui.widget_lifetime import delete_now

    if window is ws:
        ws.request_close()
        ws.shutdown()
    else:
        window.shutdown()  # stops the workspace's experiment and runs and the window's runner, asking nothing
    QApplication.clipboard().clear()  # Qt's offscreen clipboard crashes at exit while it holds data
    window.close()
    left = running_training_threads()
    delete_now(window)  # ARCHITECTURE.md, Traps: never leave a widget tree to the cyclic collector
    return left == 0


def bench_template(template: str, args: argparse.Namespace, dataset: Any, verbose: int) -> Outcome:
    """One experiment of ``template`` in a new window, from its definition to its close."""
    grid = dict(GRIDS.get(template, GRIDS["nielsen-784-30-10"]))
    if args.learning_rates:
        grid["learning_rate"] = args.learning_rates
    if args.batch_sizes:
        grid["batch_size"] = args.batch_sizes
    window, ws = open_window(template, args, dataset)
    define_experiment(ws, grid)
    gc_before_ms = settle_experiment(ws)
    idle = idle_worst(ws)
    kind = "workspace" if window is ws else "main window"
    print(f"  {template} ({kind}): {', '.join(f'{k}={v}' for k, v in grid.items())}, {args.epochs} epoch(s) a trial; "
          f"idle worst {idle:.1f} ms; load {_loadavg()}; starting", flush=True)
    r = run_experiment(ws, verbose)
    clean = close(window, ws)
    outcomes = r["outcomes"]
    sps = recorded_speeds(r["study"]) if r["study"] is not None else []
    out = Outcome(template, kind, r["planned"], sum(o.state == "complete" for o in outcomes),
                  [f"{o.state}/{o.status}" for o in outcomes], r["wall_s"], sps, r["worst_ms"], r["after_ms"], idle,
                  r["rows"], r["results_s"], r["gui_cpu"], r["load_start"], r["load_end"], r["by_phase"], r["work"],
                  clean, gc_before_ms)
    print(f"  {template}: {out.done} of {out.planned} trial(s) complete ({', '.join(out.states)}) "
          f"in {out.wall_s:.1f} s, "
          f"worst stall {out.worst_ms:.1f} ms (after the end {out.after_ms:.1f} ms, idle {idle:.1f} ms), "
          f"samples/s {', '.join(f'{x:,.0f}' for x in sps)}, results rows {out.rows}, "
          f"GUI thread busy {100 * out.gui_cpu:.0f}% of a core; load {_loadavg()}", flush=True)
    return out


def print_tables(rows: list[Outcome], args: argparse.Namespace, load_before: float, pressure_before: str) -> bool:
    """The markdown tables; True when every experiment met the stall goal, ran all its trials and filled in."""
    print()
    print(f"{args.epochs} epoch(s) a trial, {args.load} busy loop(s); 1-minute load average before "
          f"{load_before:.2f}, after {os.getloadavg()[0]:.2f} ({os.cpu_count()} CPUs); CPU pressure (some, avg10) "
          f"before {pressure_before}, after {cpu_pressure()}")
    print()
    print("| template | window | trials done | wall s | samples/s per trial | worst stall ms (Start to end) "
          "| after the end ms | idle 2 s ms | results rows | GUI thread % core | load at start / end |")
    print("|---|---|---|---:|---|---:|---:|---:|---|---:|---|")
    ok = True
    for o in rows:
        filled = f"{o.rows} = trials" if o.rows == len(o.states) and o.results_s is not None else \
            f"{o.rows} of {len(o.states)} (not filled in)"
        if o.results_s is not None:
            filled += f", {o.results_s:.1f} s after the end"
        print(f"| {o.template} | {o.window} | {o.done} of {o.planned} | {o.wall_s:.1f} "
              f"| {', '.join(f'{x:,.0f}' for x in o.sps)} | {o.worst_ms:.1f} | {o.after_ms:.1f} | {o.idle_ms:.1f} "
              f"| {filled} | {100 * o.gui_cpu:.0f} | {o.load_start:.2f} / {o.load_end:.2f} |")
        ok &= o.worst_ms <= STALL_GOAL_MS and o.done == (o.planned or o.done) and o.rows == len(o.states) \
            and o.clean_close
    print()
    labels = sorted({k for o in rows for k in o.work.longest})
    print("| template | " + " | ".join(f"worst ms: {p}" for p in PHASES) + " | "
          + " | ".join(f"longest {k} ms (its CPU ms; calls)" for k in labels)
          + " | full gc before Start ms | closed cleanly |")
    print("|---|" + "---:|" * (len(PHASES) + len(labels) + 1) + "---|")
    for o in rows:
        phases = " | ".join(f"{o.by_phase[p]:.1f}" if p in o.by_phase else "-" for p in PHASES)
        work = " | ".join(f"{o.work.longest[k]:.1f} ({o.work.longest_cpu[k]:.1f}; {o.work.calls[k]})"
                          if k in o.work.longest else "-" for k in labels)
        print(f"| {o.template} | {phases} | {work} | {o.gc_before_ms:.1f} | {'yes' if o.clean_close else 'NO'} |")
    print()
    worst = max((o.worst_ms for o in rows), default=0.0)
    med = statistics.median(o.worst_ms for o in rows) if rows else 0.0
    print(f"goal (worst stall <= {STALL_GOAL_MS:.0f} ms from Start to the end, all trials run, results shown, "
          f"closed cleanly): {'met' if ok else 'NOT met'} (worst {worst:.1f} ms, median {med:.1f} ms)")
    return ok


def cpu_pressure() -> str:
    """The share of the last 10 s in which some runnable task waited for a CPU (``/proc/pressure/cpu``), or "?"."""
    try:
        with open("/proc/pressure/cpu", encoding="ascii") as f:
            some = f.readline().split()
        return some[1].split("=")[1] + "%"
    except (OSError, IndexError):
        return "?"


def verbosity() -> int:
    """``BENCH_VERBOSE``: unset or 0 -> 0, a number -> that level, any other text -> 1 (as the Probe reads it)."""
    text = os.environ.get("BENCH_VERBOSE", "").strip()
    if not text:
        return 0
    return int(text) if text.isdigit() else 1


def private_settings() -> None:
    """QSettings into a temporary folder: the main window reads and writes its settings, never the user's own."""
    from PySide6.QtCore import QCoreApplication, QSettings

    folder = tempfile.mkdtemp(prefix="ns-bench-qsettings-")
    QSettings.setDefaultFormat(QSettings.Format.IniFormat)
    for scope in (QSettings.Scope.UserScope, QSettings.Scope.SystemScope):
        QSettings.setPath(QSettings.Format.IniFormat, scope, folder)
    QCoreApplication.setOrganizationName("NeuralStudio")
    QCoreApplication.setApplicationName("NeuralStudio-bench")


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--epochs", type=int, default=2, help="epochs a trial (the Train form's Epochs box)")
    ap.add_argument("--templates", nargs="+", default=["nielsen-784-30-10"])
    ap.add_argument("--learning-rates", help="values of the learning rate to try (default: per template)")
    ap.add_argument("--batch-sizes", help="values of the batch size to try (default: per template)")
    ap.add_argument("--reps", type=int, default=1, help="experiments per template, each in a new window")
    ap.add_argument("--workspace", action="store_true", help="a bare Train workspace instead of the main window")
    ap.add_argument("--device", default="auto")
    ap.add_argument("--load", type=int, default=0, help="busy-loop processes to run beside the benchmark")
    ap.add_argument("--load-session", choices=("same", "new"), default="same")
    ap.add_argument("--load-cpu", type=int, help="run the busy loops on this CPU only (a program busy on one core)")
    args = ap.parse_args(argv)
    os.environ.setdefault("NEURALSTUDIO_HOME", tempfile.mkdtemp(prefix="ns-bench-"))
    verbose = verbosity()

    from PySide6.QtWidgets import QApplication

    from neuralstudio.ui.responsiveness import favor_gui_thread, single_threaded_painting

    single_threaded_painting()  # Qt set up as the app sets it up (before the QApplication)
    private_settings()
    QApplication.instance() or QApplication(sys.argv[:1])
    favor_gui_thread()  # as the app does at start-up
    dataset = None
    if args.workspace:  # the main window loads Keras itself, in the background; the bare workspace needs it done
        load_keras_as_the_app_does()
        from neuralstudio.ml.data import load_dataset

        dataset = load_dataset("mnist-sample")
    load_before, pressure_before = os.getloadavg()[0], cpu_pressure()
    where = f", on CPU {args.load_cpu}" if args.load_cpu is not None else ""
    print(f"load: {args.load} busy loop(s) ({args.load_session} session{where}); load average before {_loadavg()}, "
          f"CPU pressure {pressure_before}", flush=True)
    with busy_loops(args.load, args.load_session == "new", args.load_cpu):
        rows = [bench_template(t, args, dataset, verbose) for t in args.templates for _ in range(args.reps)]
    return 0 if print_tables(rows, args, load_before, pressure_before) else 1


if __name__ == "__main__":
    raise SystemExit(main())
