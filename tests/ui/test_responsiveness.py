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
    assert resp.lower_training_threads([t.native_id]) == 0


def test_during_a_run_only_the_gui_thread_collects_garbage():
    import gc
    import weakref

    class Node:
        pass

    assert gc.isenabled()
    owner = resp.GuiOwnedGarbageCollection()
    owner.start()
    try:
        assert owner.active and not gc.isenabled()  # no thread starts a collection on its own
        a, b = Node(), Node()
        a.other, b.other = b, a
        gone = weakref.ref(a)
        del a, b
        owner.step()  # little allocated yet: nothing to do
        junk = [[] for _ in range(resp.GuiOwnedGarbageCollection.YOUNG_LIMIT + 1000)]
        owner.step()  # the young generations filled up: collected here, on the calling (GUI) thread
        assert gone() is None
        del junk
    finally:
        owner.finish()
    assert not owner.active and gc.isenabled()
    owner.finish()  # idempotent
    assert gc.isenabled()


def test_automatic_collection_stays_off_if_it_was_off():
    import gc

    gc.disable()
    try:
        owner = resp.GuiOwnedGarbageCollection()
        owner.start()
        owner.finish()
        assert not gc.isenabled()
    finally:
        gc.enable()
