"""Settings > Keras Backend…: choose TensorFlow, JAX or PyTorch for the next start, and measure which is fastest.

Keras fixes its backend when it is first imported, and the window imports it in the background right after it
paints: a choice made here can only apply at the next start. It is saved in the user data folder
(``ml.backends.save_choice``), which the command line reads before any Keras import; when it differs from the
running backend the dialog offers to restart at once (the window closes normally first, so unsaved changes are
asked about, and a cancelled close cancels the restart).

"Measure this design on each backend" runs ``ml.backend_speed.Comparison`` on a plain Python thread: each backend
is timed in a child process of its own, half a minute or so each, so the window never waits for it. The thread
only appends to a list; a GUI timer reads it (docs/ARCHITECTURE.md, "Threads": no Qt object is touched off the
GUI thread). Closing the dialog, however it closes, kills the child measuring then.
"""

from __future__ import annotations

import os
import sys
import threading
from collections.abc import Callable
from typing import Any

from PySide6.QtCore import QProcess, QProcessEnvironment, Qt, QTimer, Signal
from PySide6.QtWidgets import (
    QAbstractItemView,
    QApplication,
    QButtonGroup,
    QDialog,
    QDialogButtonBox,
    QGroupBox,
    QHBoxLayout,
    QHeaderView,
    QLabel,
    QMessageBox,
    QProgressBar,
    QPushButton,
    QRadioButton,
    QTableWidget,
    QTableWidgetItem,
    QVBoxLayout,
    QWidget,
)

from neuralstudio.core.design import Design
from neuralstudio.ml import backends
from neuralstudio.ml.backend_speed import BackendSpeed, Comparison, capability_notes, suggestion

__all__ = ["BackendDialog", "open_backend_dialog", "restart_app"]

_MNEMONIC = {"tensorflow": "&TensorFlow", "jax": "&JAX", "torch": "&PyTorch"}
_SOURCES = {"--backend": "chosen with --backend", "KERAS_BACKEND": "set by the KERAS_BACKEND variable",
            "settings": "chosen here", "default": "the default"}
#: the suggestion's advice, read inside this dialog
HOW_HERE = "choose it above and press OK (applies at the next start)"
_COLUMNS = ("Backend", "Samples/s", "Device", "Note")


def _installed_version(name: str) -> str:
    """The backend's version from its package metadata (importing it would take seconds)."""
    from importlib import metadata

    for dist in {"tensorflow": ("tensorflow", "tensorflow-cpu", "tensorflow-macos")}.get(name, (name,)):
        try:
            return metadata.version(dist).split("+")[0]
        except metadata.PackageNotFoundError:
            continue
    return ""


def _choice_source(running: str) -> str:
    """Where the running backend was chosen, without importing Keras (a choice saved since does not count)."""
    if "keras" in sys.modules:
        return backends.choice_source()
    asked = backends.requested()
    return asked.source if asked.name == running else "default"


def ask_restart(parent: QWidget, chosen: str) -> bool:
    """"Restart now?": True for Restart, False for Later (tests replace :attr:`BackendDialog.ask_restart`)."""
    box = QMessageBox(QMessageBox.Icon.Question, "Restart now?",
                      f"NeuralStudio will train with {backends.label(chosen)} from its next start.", parent=parent)
    box.setInformativeText("Restart now? The window closes as usual first (you are asked about unsaved changes) "
                           "and opens again, with the design's file if it has one.")
    restart = box.addButton("&Restart now", QMessageBox.ButtonRole.AcceptRole)
    box.addButton("&Later", QMessageBox.ButtonRole.RejectRole)
    box.setDefaultButton(restart)
    box.exec()
    return box.clickedButton() is restart


class BackendDialog(QDialog):
    """The three backends as radio buttons, the one in use marked, and the speed of the design on each.

    Args:
        design: what "Measure" measures: a callable returning the editor's design now (None: nothing to measure).
        parent: the main window.
    """

    #: OK chose another backend than the running one, and the user asked to restart now
    restart_requested = Signal()
    ask_restart: Callable[[QWidget, str], bool] = staticmethod(ask_restart)

    def __init__(self, design: Callable[[], Design | None] | None = None, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setWindowTitle("Keras Backend")
        self.setObjectName("backendDialog")
        self._design = design or (lambda: None)
        self.running = backends.current()  # no Keras import: what select() set before the window started
        self.source = _choice_source(self.running)
        self.saved = backends.saved_choice()
        self._comparison: Comparison | None = None
        self._thread: threading.Thread | None = None
        self._arrived: list[BackendSpeed] = []  # appended by the measuring thread, read by the timer
        self._finished = threading.Event()
        self.speeds: list[BackendSpeed] = []
        self.restart_wanted = False

        intro = QLabel("NeuralStudio trains with Keras, which runs on one of three backends. Which one is fastest "
                       "depends on the design and the machine; the choice applies at the next start.", self)
        intro.setWordWrap(True)

        box = QGroupBox("Backend", self)
        grid = QVBoxLayout(box)
        self.group = QButtonGroup(self)
        self.radios: dict[str, QRadioButton] = {}
        self.details: dict[str, QLabel] = {}
        chosen = self.saved if self.saved and backends.installed(self.saved) else self.running
        for name in backends.BACKENDS:
            ok = backends.installed(name)
            version = _installed_version(name) if ok else ""
            text = _MNEMONIC[name] + (f" {version}" if version else "")
            if name == self.running:
                text += " \u2014 in use"
            radio = QRadioButton(text, box)
            radio.setObjectName(f"backend_{name}")
            radio.setEnabled(ok)
            notes = capability_notes(name)
            if ok:
                detail = "Installed." + (f" Unlike the others: {'; '.join(notes)}." if notes
                                         else " Everything works on it.")
                tip = f"Train with {backends.label(name)} from the next start."
            else:
                detail = f"Not installed: {backends.INSTALL[name]}, then restart NeuralStudio."
                tip = f"{backends.label(name)} is not installed: {backends.INSTALL[name]}"
            if name == self.running:
                tip += f" In use now ({_SOURCES.get(self.source, self.source)})."
            radio.setToolTip(tip)
            label = QLabel(detail, box)
            label.setObjectName(f"backendDetail_{name}")
            label.setWordWrap(True)
            label.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)  # to copy the pip line
            label.setContentsMargins(22, 0, 0, 6)
            label.setToolTip(tip)
            label.setBuddy(radio)
            self.group.addButton(radio)
            self.radios[name], self.details[name] = radio, label
            grid.addWidget(radio)
            grid.addWidget(label)
        self.radios[chosen].setChecked(True)
        self.override_label = QLabel("", box)
        self.override_label.setObjectName("backendOverride")
        self.override_label.setWordWrap(True)
        if self.source in ("--backend", "KERAS_BACKEND"):
            self.override_label.setText(
                f"This window's backend was {_SOURCES[self.source]}, which wins over the choice saved here when "
                "NeuralStudio is started the same way again.")
        self.override_label.setVisible(bool(self.override_label.text()))
        grid.addWidget(self.override_label)

        speed_box = QGroupBox("Speed of this design", self)
        speed = QVBoxLayout(speed_box)
        row = QHBoxLayout()
        self.measure_button = QPushButton("&Measure this design on each backend", speed_box)
        self.measure_button.setObjectName("measureBackends")
        self.measure_button.setToolTip("Time a few real training steps of the design on each installed backend, "
                                       "each in a process of its own (half a minute or so each); the window stays "
                                       "usable.")
        self.stop_button = QPushButton("&Stop", speed_box)
        self.stop_button.setObjectName("stopMeasuring")
        self.stop_button.setToolTip("Stop measuring (closing the dialog stops it too)")
        self.stop_button.setVisible(False)
        self.busy = QProgressBar(speed_box)
        self.busy.setRange(0, 0)
        self.busy.setMaximumWidth(120)
        self.busy.setTextVisible(False)
        self.busy.setVisible(False)
        self.busy.setAccessibleName("Measuring")
        row.addWidget(self.measure_button)
        row.addWidget(self.stop_button)
        row.addWidget(self.busy)
        row.addStretch(1)
        speed.addLayout(row)
        self.status_label = QLabel(self._measure_hint(), speed_box)
        self.status_label.setObjectName("measureStatus")
        self.status_label.setWordWrap(True)
        speed.addWidget(self.status_label)
        self.table = QTableWidget(0, len(_COLUMNS), speed_box)
        self.table.setObjectName("backendSpeeds")
        self.table.setHorizontalHeaderLabels(list(_COLUMNS))
        self.table.verticalHeader().setVisible(False)
        self.table.setEditTriggers(QAbstractItemView.EditTrigger.NoEditTriggers)
        self.table.setSelectionMode(QAbstractItemView.SelectionMode.NoSelection)
        self.table.setFocusPolicy(Qt.FocusPolicy.NoFocus)
        header = self.table.horizontalHeader()
        for col in range(3):
            header.setSectionResizeMode(col, QHeaderView.ResizeMode.ResizeToContents)
        header.setSectionResizeMode(3, QHeaderView.ResizeMode.Stretch)
        self.table.setVisible(False)
        speed.addWidget(self.table)
        self.suggestion_label = QLabel("", speed_box)
        self.suggestion_label.setObjectName("backendSuggestion")
        self.suggestion_label.setWordWrap(True)
        self.suggestion_label.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
        speed.addWidget(self.suggestion_label)

        self.buttons = QDialogButtonBox(QDialogButtonBox.StandardButton.Ok | QDialogButtonBox.StandardButton.Cancel,
                                        self)
        self.ok_button = self.buttons.button(QDialogButtonBox.StandardButton.Ok)
        self.ok_button.setToolTip("Save the checked backend for the next start")
        self.cancel_button = self.buttons.button(QDialogButtonBox.StandardButton.Cancel)
        self.cancel_button.setToolTip("Close without changing the backend (stops a measurement)")
        self.buttons.accepted.connect(self.accept)
        self.buttons.rejected.connect(self.reject)

        lay = QVBoxLayout(self)
        lay.addWidget(intro)
        lay.addWidget(box)
        lay.addWidget(speed_box)
        lay.addStretch(1)
        lay.addWidget(self.buttons)
        self.setMinimumWidth(620)

        self._timer = QTimer(self)
        self._timer.setInterval(100)
        self._timer.timeout.connect(self._on_tick)
        self.measure_button.clicked.connect(self._on_measure_clicked)
        self.stop_button.clicked.connect(self._on_stop_clicked)
        app = QApplication.instance()
        if app is not None:
            app.aboutToQuit.connect(self._cancel_measurement)
        self._update_measure_button()

    # ------------------------------------------------------------------ state
    def chosen(self) -> str:
        """The backend whose radio button is checked."""
        for name, radio in self.radios.items():
            if radio.isChecked():
                return name
        return self.running

    def _measure_hint(self) -> str:
        design = self._design()
        if design is None or not len(design.graph):
            return "There is no design with layers to measure."
        return (f"Times a few training steps of \u201c{design.name}\u201d (batch {design.training.batch_size}) on "
                "each installed backend, each in a process of its own: half a minute or so per backend.")

    def is_measuring(self) -> bool:
        return self._thread is not None and self._thread.is_alive()

    def _update_measure_button(self) -> None:
        design = self._design()
        ok = design is not None and len(design.graph) > 0
        self.measure_button.setEnabled(ok and not self.is_measuring())
        if not ok:
            self.measure_button.setToolTip("Open or make a design with layers first: there is nothing to measure.")

    # ------------------------------------------------------------------ measuring
    def start_measuring(self) -> bool:
        """Measure the editor's design now on every installed backend (in the background); False if no design."""
        design = self._design()
        if design is None or not len(design.graph) or self.is_measuring():
            return False
        names = [b for b in backends.BACKENDS if backends.installed(b)]
        # the design as JSON now: later edits stay out; a slow laptop may take minutes for a large design
        self._comparison = comparison = Comparison(design, names, timeout_s=300)
        self._arrived = arrived = []
        self._finished = finished = threading.Event()

        def work() -> None:
            try:
                comparison.run(arrived.append)
            finally:
                finished.set()

        self.speeds = []
        self.table.setRowCount(0)
        for name in names:
            self._set_row(BackendSpeed(name, error="waiting"), waiting=True)
        self.table.setVisible(True)
        self.suggestion_label.setText("")
        self._thread = threading.Thread(target=work, name="neuralstudio-backend-speed", daemon=True)
        self._thread.start()
        self._show_busy(True)
        self._say_progress()
        self._timer.start()
        return True

    def _set_row(self, s: BackendSpeed, *, waiting: bool = False) -> None:
        row = next((r for r in range(self.table.rowCount()) if self.table.item(r, 0).data(Qt.ItemDataRole.UserRole)
                    == s.backend), None)
        if row is None:
            row = self.table.rowCount()
            self.table.insertRow(row)
        name = backends.label(s.backend) + (f" {s.version}" if s.version else "")
        if s.backend == self.running:
            name += " (in use)"
        if waiting:
            cells = [name, "", "", "waiting"]
        elif s.ok:
            cells = [name, f"{s.samples_per_second:,.0f}", s.device or "", f"measured in {s.seconds:.0f} s"]
        else:
            cells = [name, "\u2013", "", s.error or "not measured"]
        for col, text in enumerate(cells):
            item = QTableWidgetItem(text)
            if col == 0:
                item.setData(Qt.ItemDataRole.UserRole, s.backend)
            if col == 1:
                item.setTextAlignment(Qt.AlignmentFlag.AlignRight | Qt.AlignmentFlag.AlignVCenter)
            item.setToolTip(text)
            self.table.setItem(row, col, item)
        self._fit_table()

    def _fit_table(self) -> None:
        """The table as tall as its rows: no scroll bar for three rows."""
        self.table.resizeRowsToContents()
        height = self.table.horizontalHeader().height() + 2 * self.table.frameWidth()
        height += sum(self.table.rowHeight(r) for r in range(self.table.rowCount()))
        self.table.setFixedHeight(height)

    def _say_progress(self) -> None:
        done = len(self.speeds)
        total = self.table.rowCount()
        if done < total:
            name = self.table.item(done, 0).data(Qt.ItemDataRole.UserRole)
            self.table.item(done, 3).setText("measuring\u2026")
            self.status_label.setText(f"Measuring {backends.label(name)} ({done + 1} of {total}): each backend starts "
                                      "a process of its own, half a minute or so.")

    def _on_tick(self) -> None:
        while len(self.speeds) < len(self._arrived):
            s = self._arrived[len(self.speeds)]
            self.speeds.append(s)
            self._set_row(s)
        if self._finished.is_set() and len(self.speeds) == len(self._arrived):
            self._timer.stop()
            self._show_busy(False)
            cancelled = self._comparison is not None and self._comparison.cancelled
            self.status_label.setText("Measuring stopped." if cancelled else
                                      "Measured just now, a few training steps on zeros per backend.")
            if not cancelled:
                self.suggestion_label.setText(suggestion(self.speeds, self.running, how=HOW_HERE))
            self._thread = None
            self._update_measure_button()
            return
        self._say_progress()

    def _show_busy(self, busy: bool) -> None:
        self.busy.setVisible(busy)
        self.stop_button.setVisible(busy)
        self.measure_button.setEnabled(not busy)

    def _cancel_measurement(self) -> None:
        if self._comparison is not None:
            self._comparison.cancel()  # kills the child measuring now

    # ------------------------------------------------------------------ slots
    def _on_measure_clicked(self) -> None:
        self.start_measuring()

    def _on_stop_clicked(self) -> None:
        self._cancel_measurement()
        self.stop_button.setEnabled(False)
        self.status_label.setText("Stopping\u2026")
        QTimer.singleShot(0, lambda: self.stop_button.setEnabled(True))

    # ------------------------------------------------------------------ closing
    def accept(self) -> None:
        """Save the checked backend; when it is not the one running, ask whether to restart now."""
        chosen = self.chosen()
        backends.save_choice(chosen)
        self.saved = chosen
        self.restart_wanted = chosen != self.running and bool(type(self).ask_restart(self, chosen))
        super().accept()
        if self.restart_wanted:
            self.restart_requested.emit()

    def done(self, result: int) -> None:
        """However the dialog closes (OK, Cancel, Esc, the title bar), the measuring child is killed."""
        self._cancel_measurement()
        app = QApplication.instance()
        if app is not None:
            try:
                app.aboutToQuit.disconnect(self._cancel_measurement)
            except (RuntimeError, TypeError):
                pass
        super().done(result)


def restart_app(window: Any, *, start: Callable[[QProcess], Any] | None = None) -> bool:
    """Close ``window`` as the user would, then start NeuralStudio again (on the backend saved now).

    The close asks about unsaved changes; when it is cancelled nothing restarts and False is returned. The new
    process opens the design's file if it has one, and does not inherit ``KERAS_BACKEND`` (which
    ``ml.backends.select`` set to the running backend, and which would win over the saved choice).

    Args:
        window: the main window.
        start: starts the prepared QProcess (tests); default its ``startDetached()``.
    """
    from neuralstudio.desktop_integration import launch_command

    path = getattr(getattr(window, "doc", None), "path", None)
    if not window.close():
        return False
    program, *args = launch_command()
    args.append("gui")
    if path is not None and os.path.exists(path):
        args.append(str(path))
    env = QProcessEnvironment.systemEnvironment()
    env.remove("KERAS_BACKEND")
    proc = QProcess()
    proc.setProgram(program)
    proc.setArguments(args)
    proc.setProcessEnvironment(env)
    result = start(proc) if start is not None else proc.startDetached()  # PySide6: (started, pid)
    return bool(result[0] if isinstance(result, tuple) else result)


def open_backend_dialog(window: Any) -> BackendDialog:
    """Settings > Keras Backend…: the dialog, window-modal, measuring the window's current design."""
    dialog = BackendDialog(lambda: window.doc.design, window)
    dialog.setAttribute(Qt.WidgetAttribute.WA_DeleteOnClose)
    dialog.restart_requested.connect(lambda: QTimer.singleShot(0, lambda: restart_app(window)))
    dialog.open()
    return dialog
