"""The GUI thread comes first: a short GIL switch interval and lower-priority training threads."""

from __future__ import annotations

import os
import sys
import threading

import pytest

from neuralstudio.ui import responsiveness as resp

linux_only = pytest.mark.skipif(not sys.platform.startswith("linux"), reason="per-thread nice values are Linux's")


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


@linux_only
def test_a_training_thread_runs_below_the_gui_thread():
    gui_nice = os.getpriority(os.PRIO_PROCESS, threading.main_thread().native_id)
    seen: dict[str, int] = {}
    ready, release = threading.Event(), threading.Event()

    def worker() -> None:
        seen["tid"] = threading.get_native_id()
        ready.set()
        release.wait(10)

    t = threading.Thread(target=worker)
    t.start()
    try:
        ready.wait(10)
        assert resp.lower_training_threads([seen["tid"]]) >= 1
        assert os.getpriority(os.PRIO_PROCESS, seen["tid"]) == resp.TRAINING_NICE
        assert resp.lower_training_threads([seen["tid"]]) == 0  # already there: nothing to do
        # the GUI (main) thread is never touched, even when asked
        resp.lower_training_threads([threading.main_thread().native_id])
        assert os.getpriority(os.PRIO_PROCESS, threading.main_thread().native_id) == gui_nice
    finally:
        release.set()
        t.join()


def test_a_thread_that_has_ended_is_skipped_quietly():
    t = threading.Thread(target=lambda: None)
    t.start()
    t.join()
    resp.lower_training_threads([t.native_id])  # the other threads of this process are lowered (once)
    assert resp.lower_training_threads([t.native_id]) == 0


@linux_only
def test_every_thread_but_the_gui_and_qts_own_is_lowered():
    """TensorFlow's compute pool is named after whichever thread ran the first op, not tf_*."""
    import ctypes

    tids: dict[str, int] = {}
    ready, release = threading.Barrier(3), threading.Event()

    def worker(name: str) -> None:
        ctypes.CDLL(None).prctl(15, name.encode())  # PR_SET_NAME, as a native thread names itself
        tids[name] = threading.get_native_id()
        ready.wait(10)
        release.wait(10)

    threads = [threading.Thread(target=worker, args=(n,)) for n in ("neuralstudio-im", "QXcbEventQueue")]
    for t in threads:
        t.start()
    try:
        ready.wait(10)
        before = os.getpriority(os.PRIO_PROCESS, tids["QXcbEventQueue"])
        resp.lower_training_threads()
        assert os.getpriority(os.PRIO_PROCESS, tids["neuralstudio-im"]) == resp.TRAINING_NICE
        assert os.getpriority(os.PRIO_PROCESS, tids["QXcbEventQueue"]) == before
    finally:
        release.set()
        for t in threads:
            t.join()
