"""The background task runner: results come back on the GUI thread, and no thread outlives Python."""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
import threading

import pytest

pytest.importorskip("pytestqt")

from neuralstudio.ui.tasks import TaskRunner  # noqa: E402


def test_results_and_errors_come_back_on_the_gui_thread(qtbot):
    runner = TaskRunner()
    try:
        seen = {}
        runner.submit(lambda: threading.current_thread().name, lambda r: seen.setdefault("worker", r))
        runner.submit(lambda: 1 / 0, None, lambda exc, tb: seen.setdefault("error", (exc, threading.current_thread())))
        qtbot.waitUntil(lambda: len(seen) == 2, timeout=5000)
        assert isinstance(seen["error"][0], ZeroDivisionError)
        assert seen["error"][1] is threading.main_thread()
        runner.submit(lambda: threading.current_thread().name, lambda r: seen.setdefault("named", r),
                      thread_name="plain-one")
        qtbot.waitUntil(lambda: "named" in seen, timeout=5000)
        assert seen["named"] == "plain-one"
    finally:
        runner.shutdown()


def test_each_task_runs_on_a_plain_python_thread_of_its_own(qtbot):
    """Keras work directly on a QThread crashed the process, and Keras keeps its state per thread
    (docs/ARCHITECTURE.md, "Threads"): a task runs on a fresh ``threading.Thread``, with no state left by the last."""
    runner = TaskRunner(name="ns-test-tasks")
    local = threading.local()

    def task() -> tuple[str, bool, object]:
        left_over = hasattr(local, "mark")
        local.mark = True
        return threading.current_thread().name, left_over, type(threading.current_thread())

    try:
        first, second = runner.call(task), runner.call(task)
        seen = {}
        runner.submit(lambda: threading.current_thread().name, lambda r: seen.setdefault("name", r),
                      thread_name="ns-named-task")
        qtbot.waitUntil(lambda: "name" in seen, timeout=5000)
    finally:
        runner.shutdown()
    assert first[0] == second[0] == "ns-test-tasks" and first[2] is threading.Thread  # not a QThread's dummy
    assert first[1] is False and second[1] is False, "a task saw the thread-local state of the one before"
    assert seen["name"] == "ns-named-task"


def test_a_script_that_drops_a_runner_without_stopping_it_exits_cleanly(tmp_path):
    """Destroying a running QThread aborts the process; the runner's thread must be stopped at exit."""
    script = textwrap.dedent("""
        from PySide6.QtWidgets import QApplication, QWidget
        from neuralstudio.ui.tasks import TaskRunner
        app = QApplication([])
        owner = QWidget()
        runner = TaskRunner(owner)
        runner.call(lambda: 42)
        del runner
        owner.deleteLater()
        del owner
        print("done")
    """)
    path = tmp_path / "drop_runner.py"
    path.write_text(script)
    proc = subprocess.run([sys.executable, str(path)], capture_output=True, text=True, timeout=120,
                          env={**os.environ, "QT_QPA_PLATFORM": "offscreen"})
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert "done" in proc.stdout and "Destroyed while thread" not in proc.stderr
