"""The GUI thread comes first: a short GIL switch interval, and training threads as batch work for the run only."""

from __future__ import annotations

import ctypes
import os
import subprocess
import sys
import textwrap
import threading
from collections.abc import Callable

import pytest

from neuralstudio.ui import responsiveness as resp

linux_only = pytest.mark.skipif(not sys.platform.startswith("linux") or resp.TRAINING_POLICY is None,
                                reason="per-thread scheduling policies are Linux's")


def test_switch_interval_is_shortened_never_lengthened(monkeypatch):
    before = sys.getswitchinterval()
    try:
        sys.setswitchinterval(0.005)
        resp.favor_gui_thread()
        assert sys.getswitchinterval() == pytest.approx(resp.GUI_SWITCH_INTERVAL_S)
        sys.setswitchinterval(0.0005)
        resp.favor_gui_thread()
        assert sys.getswitchinterval() == pytest.approx(0.0005)
    finally:
        sys.setswitchinterval(before)


class Parked:
    """Threads that start, say who they are, and wait until released (optionally named as a native thread)."""

    def __init__(self, *names: str, body: Callable[[], None] | None = None) -> None:
        self.tids: dict[str, int] = {}
        self._ready = threading.Barrier(len(names) + 1)
        self._release = threading.Event()
        self._body = body
        self.threads = [threading.Thread(target=self._run, args=(n,)) for n in names]

    def _run(self, name: str) -> None:
        ctypes.CDLL(None).prctl(15, name.encode()[:15])  # PR_SET_NAME, as a native thread names itself
        self.tids[name] = threading.get_native_id()
        if self._body is not None:
            self._body()
        self._ready.wait(10)
        self._release.wait(10)

    def __enter__(self) -> Parked:
        for t in self.threads:
            t.start()
        self._ready.wait(10)
        return self

    def __exit__(self, *exc: object) -> None:
        self._release.set()
        for t in self.threads:
            t.join()


def policy(tid: int) -> int:
    return os.sched_getscheduler(tid)


@linux_only
def test_training_threads_are_batch_work_for_the_run_only_and_keep_their_nice_value():
    """TensorFlow's compute pool is named after whichever thread ran the first op, not tf_*: all are lowered."""
    gui = threading.main_thread().native_id
    with Parked("neuralstudio-im", "QXcbEventQueue") as parked:
        pool, qt = parked.tids["neuralstudio-im"], parked.tids["QXcbEventQueue"]
        nice = os.getpriority(os.PRIO_PROCESS, pool)
        with resp.training_priority() as lowered:
            assert policy(pool) == resp.TRAINING_POLICY and pool in lowered.changed
            assert os.getpriority(os.PRIO_PROCESS, pool) == nice  # never niced: it would lose to other programs
            assert policy(qt) == os.SCHED_OTHER and policy(gui) == os.SCHED_OTHER  # Qt's own and the GUI's
        assert policy(pool) == os.SCHED_OTHER, "the run's end must give the thread its normal policy back"


@linux_only
def test_the_gui_thread_is_never_touched_even_when_asked():
    gui = threading.main_thread().native_id
    with resp.training_priority([gui]) as lowered:
        assert gui not in lowered.changed and policy(gui) == os.SCHED_OTHER


@linux_only
def test_threads_started_during_the_run_inherit_the_policy_and_get_it_back_after():
    born: dict[str, int] = {}
    started, release = threading.Event(), threading.Event()

    def child() -> None:
        born["tid"] = threading.get_native_id()
        started.set()
        release.wait(10)

    with Parked("trainer") as parked:
        with resp.training_priority([parked.tids["trainer"]]):
            # a thread started by a lowered thread: here, the test thread stands in for the worker
            os.sched_setscheduler(threading.get_native_id(), resp.TRAINING_POLICY, os.sched_param(0))
            try:
                t = threading.Thread(target=child)
                t.start()
            finally:
                os.sched_setscheduler(threading.get_native_id(), os.SCHED_OTHER, os.sched_param(0))
            assert started.wait(10) and policy(born["tid"]) == resp.TRAINING_POLICY
        try:
            assert policy(born["tid"]) == os.SCHED_OTHER
        finally:
            release.set()
            t.join()


def test_a_thread_that_has_ended_is_skipped_quietly():
    """Threads come and go while the list is read (an OS thread outlives its Python ``join`` briefly)."""
    t = threading.Thread(target=lambda: None)
    t.start()
    t.join()
    lowered = resp.lower_training_threads([t.native_id])
    resp.restore_threads(lowered)
    assert resp.restore_threads(lowered) == 0  # nothing left to give back


@linux_only
def test_an_unprivileged_process_gets_its_threads_back(tmp_path):
    """The point of using a policy instead of nice: without privileges, a lowered nice value cannot be undone."""
    script = textwrap.dedent("""
        import os, threading
        from neuralstudio.ui import responsiveness as resp
        if os.getuid() == 0:
            os.setgid(65534)
            os.setuid(65534)  # nobody: no CAP_SYS_NICE, as on a user's desktop
        release = threading.Event()
        t = threading.Thread(target=release.wait, args=(10,))
        t.start()
        with resp.training_priority([t.native_id]):
            during = os.sched_getscheduler(t.native_id)
        after = os.sched_getscheduler(t.native_id)
        release.set()
        t.join()
        try:
            os.setpriority(os.PRIO_PROCESS, t.native_id, 1)
            os.setpriority(os.PRIO_PROCESS, threading.get_native_id(), 1)
            os.setpriority(os.PRIO_PROCESS, threading.get_native_id(), 0)
            nice_undone = "yes"
        except OSError:
            nice_undone = "no"
        print(during == resp.TRAINING_POLICY, after == os.SCHED_OTHER, nice_undone)
    """)
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(p for p in sys.path if p)}
    proc = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=60, env=env,
                          cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr[-2000:]
    during, after, nice_undone = proc.stdout.split()
    assert during == "True" and after == "True"
    if os.getuid() == 0:
        assert nice_undone == "no", "as nobody, a thread's nice value could be lowered again: revisit the policy"
