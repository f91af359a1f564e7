"""Deleting a closed window's widgets at a known moment, not whenever the garbage collector gets to them.

A window's Python wrappers sit in reference cycles (bound-method slots, closures kept by
background tasks), so a Python-owned window whose last name goes away is freed by the
cyclic garbage collector, not at once. The collector frees the cycle's wrappers in an
arbitrary order, and the one that owns the C++ window then destroys a widget tree some
of whose parts it has already let go of: the process crashed in ``QWidget::~QWidget``
(measured: a test's main window, still alive at the next test, collected by the app's
own GC timer). ``deleteLater`` destroys the tree top-down in C++ and invalidates every
wrapper first, but only when an event loop runs; :func:`delete_later_now` carries out
the pending deletes without one (docs/ARCHITECTURE.md, Traps).
"""

from __future__ import annotations

from PySide6.QtCore import QCoreApplication, QEvent, QObject

__all__ = ["delete_later_now", "delete_now"]


def delete_later_now() -> None:
    """Carry out every pending ``deleteLater`` now (outside an event loop they would wait for the next one)."""
    if QCoreApplication.instance() is not None:
        QCoreApplication.sendPostedEvents(None, QEvent.Type.DeferredDelete.value)


def delete_now(obj: QObject) -> None:
    """Destroy ``obj`` and its children top-down now, leaving its Python wrappers invalid rather than live."""
    obj.deleteLater()
    delete_later_now()
