"""Measuring one design on each backend in child processes, and the sentence that says which to choose."""

from __future__ import annotations

import io
import json
import sys
import threading
import time

import pytest
from support import flat_mlp

from neuralstudio.ml import backend_speed, backends
from neuralstudio.ml.backend_speed import BackendSpeed, Comparison, compare_backends, format_table, suggestion


def test_a_tiny_design_is_measured_on_tensorflow_and_jax_in_processes_of_their_own():
    wanted = [b for b in ("tensorflow", "jax") if backends.installed(b)]
    if len(wanted) < 2:
        pytest.skip(f"needs TensorFlow and JAX; installed: {wanted}")
    heard = []
    speeds = compare_backends(flat_mlp(hidden=8, batch_size=32), wanted, timeout_s=240, on_result=heard.append)
    assert [s.backend for s in speeds] == wanted and heard == speeds
    for s in speeds:
        assert s.ok, f"{s.backend}: {s.error}"
        assert s.samples_per_second > 10 and s.error is None and s.seconds > 0
        assert s.device == "CPU" or s.device.startswith("GPU")
        assert s.version  # the child's own backend answered, not this process's
    import jax
    import tensorflow as tf

    assert speeds[0].version == tf.__version__ and speeds[1].version == jax.__version__
    sentence = suggestion(speeds, "tensorflow")
    assert "samples/s" in sentence and "JAX" in sentence and "TensorFlow" in sentence
    table = format_table(speeds, "tensorflow")
    assert "(in use)" in table.splitlines()[1] and "JAX" in table.splitlines()[2]


def test_the_child_refuses_a_damaged_design_with_the_loaders_message():
    out = io.StringIO()
    assert backend_speed.child_main(io.StringIO(json.dumps({"graph": {}})), out) == 1
    error = json.loads(out.getvalue())["error"]
    assert "is not a NeuralStudio design" in error


def test_a_failed_child_reports_its_last_line_and_nothing_else(monkeypatch):
    script = ("import sys; print('WARNING: All log messages before absl', file=sys.stderr); "
              "print('Traceback noise', file=sys.stderr); print('RuntimeError: out of memory', file=sys.stderr); "
              "sys.exit(3)")
    monkeypatch.setattr(backend_speed, "child_command", lambda: [sys.executable, "-c", script])
    [s] = compare_backends(flat_mlp(), ["tensorflow"])
    assert not s.ok and s.error == "RuntimeError: out of memory"


def test_an_absent_backend_is_reported_without_starting_a_process(monkeypatch):
    monkeypatch.setattr(backends, "installed", lambda name: name != "torch")
    monkeypatch.setattr(backend_speed, "child_command", lambda: pytest.fail("no process for an absent backend"))
    [s] = compare_backends(flat_mlp(), ["torch"])
    assert s.error == f"not installed ({backends.INSTALL['torch']})" and s.seconds == 0


def test_a_child_past_its_time_limit_is_killed(monkeypatch):
    monkeypatch.setattr(backend_speed, "child_command",
                        lambda: [sys.executable, "-c", "import time; time.sleep(60)"])
    t0 = time.monotonic()
    [s] = compare_backends(flat_mlp(), ["tensorflow"], timeout_s=1)
    assert time.monotonic() - t0 < 10
    assert "took longer than 1 s" in s.error


def test_cancel_kills_the_running_child_at_once_and_starts_no_other(monkeypatch):
    monkeypatch.setattr(backend_speed, "child_command",
                        lambda: [sys.executable, "-c", "import time; time.sleep(60)"])
    comparison = Comparison(flat_mlp(), ["tensorflow", "jax"], timeout_s=120)
    box = {}
    thread = threading.Thread(target=lambda: box.setdefault("speeds", comparison.run()))
    thread.start()
    deadline = time.monotonic() + 30
    while comparison.process is None and time.monotonic() < deadline:
        time.sleep(0.01)
    proc = comparison.process
    assert proc is not None
    t0 = time.monotonic()
    comparison.cancel()
    thread.join(10)
    assert not thread.is_alive() and time.monotonic() - t0 < 5
    assert proc.poll() is not None  # killed and reaped: no process left behind
    assert [s.error for s in box["speeds"]] == ["cancelled", "cancelled"]


def _s(backend: str, speed: float | None = None, error: str | None = None) -> BackendSpeed:
    return BackendSpeed(backend, speed, error, seconds=3.0)


def test_the_sentence_names_a_faster_backend_with_the_measured_ratio():
    speeds = [_s("tensorflow", 4721), _s("jax", 22261), _s("torch", 900)]
    assert suggestion(speeds, "tensorflow") == (
        "JAX trains this design 4.7x faster than TensorFlow here (22,261 against 4,721 samples/s, measured just "
        "now): choose it in Settings > Keras Backend (applies at the next start).")
    assert suggestion(speeds, "tensorflow", how="use --backend jax").endswith("measured just now): use --backend jax.")


def test_the_sentence_keeps_the_backend_in_use_when_it_is_fastest():
    speeds = [_s("tensorflow", 773), _s("jax", 202), _s("torch", error="not installed (pip install x)")]
    assert suggestion(speeds, "tensorflow") == ("TensorFlow, the backend in use, is the fastest for this design here "
                                                "(773 samples/s; JAX 202, PyTorch not installed).")


def test_the_sentence_says_when_two_backends_are_about_as_fast():
    sentence = suggestion([_s("tensorflow", 1000), _s("jax", 1080)], "tensorflow")
    assert "about as fast" in sentence and "no need to switch" in sentence


def test_the_sentence_handles_a_failed_backend_in_use_and_nothing_measured():
    speeds = [_s("tensorflow", error="RuntimeError: boom"), _s("jax", 5000), _s("torch", error="cancelled")]
    sentence = suggestion(speeds, "tensorflow")
    assert sentence.startswith("JAX is the fastest backend measured for this design here (5,000 samples/s; "
                               "TensorFlow, the backend in use: failed: RuntimeError: boom)")
    only = suggestion([_s("tensorflow", 800), _s("jax", error="ValueError: bad")], "tensorflow")
    assert only == ("TensorFlow, the backend in use, is the only one measured for this design here (800 samples/s; "
                    "JAX failed: ValueError: bad).")
    none = suggestion([_s("tensorflow", error="ValueError: no"), _s("torch", error="not installed (pip)")], "jax")
    assert none == ("No backend could be measured for this design here (TensorFlow failed: ValueError: no; "
                    "PyTorch not installed).")
