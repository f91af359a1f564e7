"""How fast *this* design trains on each installed Keras backend, measured here and now.

Which backend is fastest depends on the design and the machine: on a CPU, JAX trained a small MLP several times
faster than TensorFlow, while TensorFlow won on a convnet; no rule of thumb says which, so NeuralStudio measures.
Keras fixes its backend once per process, so each backend is measured in a child process of its own
(``python -m neuralstudio.ml.backend_speed`` with ``KERAS_BACKEND`` set), which times a few real training steps
on zeros (:func:`neuralstudio.ml.speed.measure_samples_per_second`, the Train page's Measure speed) and prints
one JSON line.

The design reaches the child as the JSON of ``Design.to_dict()`` on its standard input and is parsed there by
the design file's validating loader (``core.design.design_from_dict``): nothing from it is executed, just as
when a file is opened (docs/ARCHITECTURE.md, "Untrusted files"). The child's console output (TensorFlow writes
start-up lines to descriptor 2) goes to a temporary file and is never shown; only the last line of a failed
child's output becomes its error message. All three standard streams are files, not pipes, so a chatty child
can never block on a full pipe while the parent waits for it.

:class:`Comparison` can be cancelled from another thread (the Settings > Keras Backend dialog closing): the child
running then is killed at once. Importing this module imports neither Keras nor any backend.
"""

from __future__ import annotations

import contextlib
import json
import os
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass
from typing import IO, Any

from neuralstudio.core.design import Design, design_from_dict
from neuralstudio.ml import backends

__all__ = ["BackendSpeed", "Comparison", "capability_notes", "child_command", "compare_backends", "format_table",
           "suggestion"]

#: the seed of every measurement: the same initial weights on every backend and every time
SEED = 1234
#: a first measurement that took less than this is repeated with more steps: a few milliseconds is noise
MIN_TIMED_S = 0.5
#: how long the repeated measurement aims to take, and at most how many steps it runs
TARGET_TIMED_S = 1.0
MAX_STEPS = 2_000
#: two speeds closer than this ratio are "about as fast": the measurement itself varies by several percent
SAME_SPEED_RATIO = 1.15
#: where the app chooses a backend, for the suggestion sentence
HOW_TO_CHOOSE = "choose it in Settings > Keras Backend (applies at the next start)"
_MAX_ERROR = 300
_POLL_S = 0.05


@dataclass
class BackendSpeed:
    """One backend's measurement: its speed, or why there is none."""

    backend: str  # "tensorflow", "jax", "torch"
    samples_per_second: float | None = None
    error: str | None = None  # why it was not measured (not installed, failed, timed out, cancelled)
    seconds: float = 0.0  # the whole measurement, the child's start-up and Keras import included
    version: str = ""  # the backend's version, as the child reported it
    device: str = ""  # what it trained on: "CPU", "GPU (NVIDIA H200)"

    @property
    def ok(self) -> bool:
        return self.samples_per_second is not None

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def child_command() -> list[str]:
    """The command of one measuring child process (its backend comes from ``KERAS_BACKEND``).

    A frozen (PyInstaller) app is its own executable and runs no ``-m``: it measures through the command line's
    hidden ``backends --measure-child`` (``neuralstudio/cli/backends.py``), which calls :func:`child_main`.
    """
    if getattr(sys, "frozen", False):
        return [sys.executable, "backends", "--measure-child"]
    return [sys.executable, "-m", "neuralstudio.ml.backend_speed"]


def _child_env(backend: str) -> dict[str, str]:
    env = dict(os.environ)
    env["KERAS_BACKEND"] = backend
    env.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    # the app itself may hold the GPU already (a run, Predict): neither child reserves all of its memory
    env["XLA_PYTHON_CLIENT_PREALLOCATE"] = "false"
    env["TF_FORCE_GPU_ALLOW_GROWTH"] = "true"
    env["PYTHONUNBUFFERED"] = "1"
    # the package this process runs, first on the child's path (a source checkout that is not installed)
    root = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
    env["PYTHONPATH"] = os.pathsep.join(p for p in (root, env.get("PYTHONPATH", "")) if p)
    return env


class Comparison:
    """Measures one design on several backends, one child process after another; cancellable from any thread.

    Args:
        design: the design to measure (it is turned into JSON here, so later edits do not reach the children).
        names: the backends to measure, in order (default: all three; one not installed is reported as such
            without starting a process).
        timeout_s: the most one backend's child may take, start-up included; it is killed after that.
    """

    def __init__(self, design: Design, names: Sequence[str] | None = None, *, timeout_s: float = 120) -> None:
        self._payload = json.dumps(design.to_dict(), ensure_ascii=False)
        self.backends = [backends.normalize(b) for b in (names or backends.BACKENDS)]
        self.timeout_s = float(timeout_s)
        self._cancel = threading.Event()
        self._lock = threading.Lock()
        self._proc: subprocess.Popen[bytes] | None = None

    @property
    def cancelled(self) -> bool:
        return self._cancel.is_set()

    @property
    def process(self) -> subprocess.Popen[bytes] | None:
        """The child measuring now, if any (for tests)."""
        return self._proc

    def cancel(self) -> None:
        """Stop: the running child is killed now, and no other starts; :meth:`run` returns soon after."""
        self._cancel.set()
        with self._lock:
            proc = self._proc
        if proc is not None and proc.poll() is None:
            with contextlib.suppress(OSError):
                proc.kill()

    def run(self, on_result: Callable[[BackendSpeed], None] | None = None) -> list[BackendSpeed]:
        """Measure each backend in turn; ``on_result`` hears each one as it is known (on this thread)."""
        results = []
        for name in self.backends:
            result = self._measure(name)
            results.append(result)
            if on_result is not None:
                on_result(result)
        return results

    def _measure(self, name: str) -> BackendSpeed:
        if self._cancel.is_set():
            return BackendSpeed(name, error="cancelled")
        if not backends.installed(name):
            return BackendSpeed(name, error=f"not installed ({backends.INSTALL[name]})")
        t0 = time.monotonic()
        with tempfile.TemporaryFile() as stdin, tempfile.TemporaryFile() as stdout, \
                tempfile.TemporaryFile() as stderr:
            stdin.write(self._payload.encode("utf-8"))
            stdin.seek(0)
            try:
                with self._lock:
                    if self._cancel.is_set():
                        return BackendSpeed(name, error="cancelled")
                    self._proc = subprocess.Popen(  # noqa: S603 - our own interpreter and module, no shell
                        child_command(), stdin=stdin, stdout=stdout, stderr=stderr, env=_child_env(name),
                        creationflags=getattr(subprocess, "CREATE_NO_WINDOW", 0))
                proc = self._proc
            except OSError as exc:
                return BackendSpeed(name, error=f"could not start a process ({exc.strerror or exc})")
            try:
                code = self._wait(proc, t0)
            finally:
                with self._lock:
                    self._proc = None
            seconds = time.monotonic() - t0
            if code is None:
                if self._cancel.is_set():
                    return BackendSpeed(name, error="cancelled", seconds=seconds)
                return BackendSpeed(name, error=f"took longer than {self.timeout_s:.0f} s and was stopped",
                                    seconds=seconds)
            return _read_result(name, code, stdout, stderr, seconds)

    def _wait(self, proc: subprocess.Popen[bytes], t0: float) -> int | None:
        """The child's exit status, or None when it was killed (cancelled or past the time limit)."""
        while True:
            try:
                code = proc.wait(timeout=_POLL_S)
            except subprocess.TimeoutExpired:
                if self._cancel.is_set() or time.monotonic() - t0 > self.timeout_s:
                    with contextlib.suppress(OSError):
                        proc.kill()
                    proc.wait()
                    return None
                continue
            return None if self._cancel.is_set() else code


def _read_result(name: str, code: int, stdout: IO[bytes], stderr: IO[bytes], seconds: float) -> BackendSpeed:
    stdout.seek(0)
    lines = stdout.read(1_000_000).decode("utf-8", "replace").splitlines()
    data: dict[str, Any] = {}
    for line in reversed(lines):
        if line.startswith("{"):
            with contextlib.suppress(ValueError):
                data = json.loads(line)
            break
    speed = data.get("samples_per_second")
    if isinstance(speed, (int, float)) and not isinstance(speed, bool) and speed > 0:
        return BackendSpeed(name, float(speed), seconds=seconds, version=str(data.get("version", ""))[:40],
                            device=str(data.get("device", ""))[:80])
    error = data.get("error") if isinstance(data.get("error"), str) else None
    if not error:
        stderr.seek(0, os.SEEK_END)
        stderr.seek(max(0, stderr.tell() - 64_000))
        tail = [ln.strip() for ln in stderr.read().decode("utf-8", "replace").splitlines() if ln.strip()]
        error = tail[-1] if tail else f"the measuring process ended with status {code}"
    return BackendSpeed(name, error=_short(error), seconds=seconds)


def _short(text: str) -> str:
    text = " ".join(str(text).split())
    return text if len(text) <= _MAX_ERROR else text[: _MAX_ERROR - 3] + "..."


def compare_backends(design: Design, backends: Sequence[str] | None = None, *, timeout_s: float = 120,
                     on_result: Callable[[BackendSpeed], None] | None = None) -> list[BackendSpeed]:
    """Measure ``design``'s training speed on each backend (default: all three), each in a process of its own.

    Returns one :class:`BackendSpeed` per backend, in order; a backend not installed, failing or slower than
    ``timeout_s`` (per backend) has ``samples_per_second`` None and its ``error`` says why. To cancel from
    another thread, use :class:`Comparison` directly.
    """
    return Comparison(design, backends, timeout_s=timeout_s).run(on_result)


# ----------------------------------------------------------------------------- what to tell the learner
def _speed(s: BackendSpeed) -> str:
    return f"{s.samples_per_second:,.0f}"


def _why_not(s: BackendSpeed) -> str:
    err = s.error or "not measured"
    if err.startswith("not installed") or err == "cancelled":
        return err.partition(" (")[0]
    return f"failed: {err[:120]}"


def suggestion(speeds: Sequence[BackendSpeed], current: str, *, how: str = HOW_TO_CHOOSE) -> str:
    """One sentence: which backend trains this design fastest here, by how much, and what to do about it.

    Args:
        speeds: the measurements (:func:`compare_backends`).
        current: the backend in use.
        how: how to switch, where the sentence is read (the app's menu; the command line's ``--backend``);
            ``{name}`` in it becomes the faster backend's name.
    """
    current = backends.normalize(current)
    measured = sorted((s for s in speeds if s.ok), key=lambda s: -float(s.samples_per_second or 0))
    by_name = {s.backend: s for s in speeds}
    cur = by_name.get(current)
    others = [s for s in speeds if s.backend != current]
    if not measured:
        details = "; ".join(f"{backends.label(s.backend)} {_why_not(s)}" for s in speeds) or "nothing was measured"
        return f"No backend could be measured for this design here ({details})."
    best = measured[0]
    lab = backends.label
    how = how.replace("{name}", best.backend)
    if best.backend == current:
        rest = [f"{lab(s.backend)} {_speed(s)}" if s.ok else f"{lab(s.backend)} {_why_not(s)}" for s in others]
        tail = f"; {', '.join(rest)}" if rest else ""
        if len(measured) == 1:
            if not others:
                return f"{lab(current)}, the backend in use, trains this design at {_speed(best)} samples/s here."
            return (f"{lab(current)}, the backend in use, is the only one measured for this design here "
                    f"({_speed(best)} samples/s{tail}).")
        return (f"{lab(current)}, the backend in use, is the fastest for this design here "
                f"({_speed(best)} samples/s{tail}).")
    if cur is not None and cur.ok:
        ratio = float(best.samples_per_second or 0) / float(cur.samples_per_second or 1)
        if ratio < SAME_SPEED_RATIO:
            return (f"{lab(best.backend)} and {lab(current)}, the backend in use, train this design about as fast here "
                    f"({_speed(best)} against {_speed(cur)} samples/s): no need to switch.")
        return (f"{lab(best.backend)} trains this design {ratio:.1f}x faster than {lab(current)} here "
                f"({_speed(best)} against {_speed(cur)} samples/s, measured just now): {how}.")
    why = _why_not(cur) if cur is not None else "not measured"
    return (f"{lab(best.backend)} is the fastest backend measured for this design here ({_speed(best)} samples/s; "
            f"{lab(current)}, the backend in use: {why}): {how}.")


def format_table(speeds: Sequence[BackendSpeed], current: str) -> str:
    """The measurements as aligned text, the backend in use marked, for ``neuralstudio backends DESIGN``."""
    rows = [("backend", "samples/s", "device", "took", "")]
    for s in speeds:
        name = backends.label(s.backend) + (f" {s.version}" if s.version else "")
        mark = "(in use)" if s.backend == current else ""
        if s.ok:
            rows.append((name, _speed(s), s.device or "-", f"{s.seconds:.1f} s", mark))
        else:
            rows.append((name, "-", "-", f"{s.seconds:.1f} s" if s.seconds else "-",
                         f"{mark} {s.error}".strip()))
    widths = [max(len(r[i]) for r in rows) for i in range(4)]
    out = []
    for r in rows:
        cells = [r[0].ljust(widths[0]), r[1].rjust(widths[1]), r[2].ljust(widths[2]), r[3].rjust(widths[3]), r[4]]
        out.append("  ".join(cells).rstrip())
    return "\n".join(out)


# ----------------------------------------------------------------------------- what else differs
_EXPORT_NAMES = {"savedmodel": "SavedModel", "litert": "LiteRT", "onnx": "ONNX", "h5": "HDF5", "keras": ".keras"}


def capability_notes(backend: str) -> list[str]:
    """What works differently on ``backend`` than on the others, in a few words each (from
    :func:`neuralstudio.ml.backends.capability_table`): "one step per execution", "no SavedModel/LiteRT export".

    Rows where every backend does the job its own way (Predict's compiled call, the gradient API) are how, not
    whether, and are left out; so is everything that works the same everywhere.
    """
    backend = backends.normalize(backend)
    notes: list[str] = []
    missing_exports: list[str] = []
    for row in backends.capability_table():
        job, cell = row["job"], row[backend]
        others = [row[b] for b in backends.BACKENDS if b != backend]
        if job.startswith("export "):
            name = job.removeprefix("export ")
            shown = _EXPORT_NAMES.get(name, name)
            if cell == "no":
                missing_exports.append(shown)
            elif cell.startswith("yes (needs ") and cell not in others:
                notes.append(f"{shown} export needs {cell.removeprefix('yes (needs ').rstrip(')')}")
            continue
        short = job.partition(" (")[0]
        if cell.startswith("yes, ") and "yes" in others:
            notes.append(cell.removeprefix("yes, "))
        elif cell == "no" or cell.startswith("no:"):
            reason = cell.partition(":")[2].strip()
            notes.append(f"{short}: no" + (f", {reason}" if reason else ""))
    if missing_exports:
        notes.append(f"no {'/'.join(missing_exports)} export")
    return notes


# ----------------------------------------------------------------------------- the child process
def _device_text() -> str:
    with contextlib.suppress(Exception):
        from neuralstudio.ml.devices import device_report

        report = device_report()
        if report.gpus:
            gpu = report.gpus[0]
            return f"GPU ({gpu.description})" if gpu.description else "GPU"
        return "CPU"
    return ""


def measure_here(design: Design) -> dict[str, Any]:
    """Measure ``design`` on the backend of this process (the child's work): ``{"samples_per_second", ...}``.

    A first measurement of five steps is repeated with more steps when it took under half a second: a tiny
    design's five steps last a few milliseconds, too few to tell two backends apart.
    """
    import keras

    from neuralstudio.ml.speed import measure_samples_per_second

    settings = design.training
    backends.set_random_seed(SEED)
    speed = measure_samples_per_second(design, settings)
    step_s = settings.batch_size / speed
    if 5 * step_s < MIN_TIMED_S:
        steps = int(min(MAX_STEPS, max(5, TARGET_TIMED_S / step_s)))
        backends.set_random_seed(SEED)
        speed = measure_samples_per_second(design, settings, steps=steps)
    version = ""
    with contextlib.suppress(Exception):
        version = str(sys.modules[keras.backend.backend()].__version__).split("+")[0]
    return {"backend": keras.backend.backend(), "samples_per_second": speed, "version": version,
            "device": _device_text()}


def child_main(stdin: IO[str] | None = None, stdout: IO[str] | None = None) -> int:
    """Read a design's JSON on stdin, measure it, print one JSON line; what the libraries print goes to stderr."""
    stdin = stdin or sys.stdin
    out = stdout or sys.stdout
    try:
        with contextlib.redirect_stdout(sys.stderr):  # only the result line reaches stdout
            data = json.loads(stdin.read(64 * 2**20))
            design = design_from_dict(data, "the design to measure")
            result = measure_here(design)
    except Exception as exc:  # noqa: BLE001 - reported to the parent as one line
        from neuralstudio.core.errors import UserError

        text = str(exc) if isinstance(exc, UserError) else f"{type(exc).__name__}: {exc}".rstrip(": ")
        result = {"error": _short(text)}
    out.write(json.dumps(result) + "\n")
    out.flush()
    return 0 if "error" not in result else 1


if __name__ == "__main__":
    sys.exit(child_main())
