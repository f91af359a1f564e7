"""Garbage is collected in the GUI thread only, and full passes wait while a model trains."""

from __future__ import annotations

import gc
import threading
import weakref

import pytest

from neuralstudio.ui import garbage_collection as gcmod
from neuralstudio.ui.garbage_collection import GuiGarbageCollector


class _Cycle:
    def __init__(self) -> None:
        self.me = self


@pytest.fixture
def collector(qapp):
    """A private collector, with CPython's own collection given back afterwards."""
    was_enabled = gc.isenabled()
    shared = gcmod._collector
    if shared is not None:
        shared.stop()
    c = GuiGarbageCollector(tick_ms=10)
    c.start()
    yield c
    c.stop()
    if shared is not None:
        shared.start()
    elif was_enabled:
        gc.enable()


@pytest.fixture
def collections_by_thread():
    """The thread id of every collection CPython makes while the test runs."""
    seen: list[int] = []

    def record(phase: str, _info: dict) -> None:
        if phase == "start":
            seen.append(threading.get_ident())

    gc.callbacks.append(record)
    yield seen
    gc.callbacks.remove(record)


def test_start_switches_automatic_collection_off_and_stop_gives_it_back(collector):
    assert not gc.isenabled() and collector.active
    collector.settle()
    assert gc.get_freeze_count() > 0
    collector.stop()
    assert gc.isenabled() and gc.get_freeze_count() == 0 and not collector.active


def test_a_busy_background_thread_never_collects(qtbot, collector, collections_by_thread):
    """The deadlock this prevents: a cycle holding a Qt object destroyed from the training thread."""
    stop = threading.Event()
    made = []

    def allocate() -> None:
        while not stop.is_set():
            made.append(weakref.ref(_Cycle()))  # cycles only a collection can free
            if len(made) > 50_000:
                made.clear()

    worker = threading.Thread(target=allocate)
    worker.start()
    try:
        qtbot.waitUntil(lambda: collector.passes[0] >= 3, timeout=5000)
    finally:
        stop.set()
        worker.join()
    assert collections_by_thread, "the GUI thread collected nothing"
    assert set(collections_by_thread) == {threading.main_thread().ident}


def test_young_cycles_are_freed_by_the_timer(qtbot, collector):
    threshold0 = gc.get_threshold()[0]
    refs = [weakref.ref(_Cycle()) for _ in range(threshold0 * 2)]
    qtbot.waitUntil(lambda: all(r() is None for r in refs), timeout=5000)


def test_full_passes_wait_while_busy_and_come_when_idle(qtbot, collector, monkeypatch):
    monkeypatch.setattr(gcmod, "IDLE_FULL_SPACING_S", 0.0)
    monkeypatch.setattr(gcmod, "RUN_FULL_SPACING_S", 3600.0)
    # Not the cost rule: after a 0.25 s full pass (a big heap on a loaded CI machine) it alone would
    # space the next one 5 s away, past this test's wait. CI failed so once.
    monkeypatch.setattr(gcmod, "FULL_COST_FACTOR", 0)
    collector.collect(2)  # the spacing counts from here
    owner = object()
    collector.set_busy(owner, True)
    full_before = collector.passes[2]

    def oldest_generation_due() -> bool:
        [_Cycle() for _ in range(1000)]  # garbage that fills the young generation
        return gc.get_count()[2] > gc.get_threshold()[2]

    qtbot.waitUntil(oldest_generation_due, timeout=10_000)
    qtbot.wait(100)
    assert collector.passes[2] == full_before and collector.passes[1] > 0
    collector.set_busy(owner, False)
    qtbot.waitUntil(lambda: collector.passes[2] > full_before, timeout=5000)
