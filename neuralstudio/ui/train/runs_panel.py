"""The runs table of the Train workspace: past runs of this design, ticked to overlay and compare.

Runs come from the engine's :class:`~neuralstudio.core.runs.RunsStore`, so they
survive a restart.  The table only reads records; it never writes the store.  A
damaged record is left out of the table and named in a note below it, so that
one bad file neither hides the other runs nor disappears without a word.

A run's saved model can be chosen here: double-click or Enter uses it in Predict and
Export, and the context menu (right-click or the Menu key) also saves, exports or
continues training from it.  The panel only says which run was asked for; the
workspace loads the model in the background, because loading runs Keras.
"""

from __future__ import annotations

import csv
import html
import io
import math
from typing import Any

from PySide6.QtCore import QEvent, QObject, Qt, Signal
from PySide6.QtGui import QContextMenuEvent, QKeyEvent
from PySide6.QtWidgets import (
    QAbstractItemView,
    QCheckBox,
    QHBoxLayout,
    QHeaderView,
    QLabel,
    QMenu,
    QPushButton,
    QTableWidget,
    QTableWidgetItem,
    QVBoxLayout,
    QWidget,
)

from neuralstudio.core.atomic import atomic_write_text
from neuralstudio.core.formatting import format_duration, format_value
from neuralstudio.core.run_outcome import diagnose_record
from neuralstudio.core.runs import DamagedRun, RunRecord, RunsStore

COLUMNS = ("run", "status", "optimizer", "learning rate", "batch", "epochs", "best val acc", "final loss", "time")


def best_val_accuracy(rec: RunRecord) -> float | None:
    vals = [v for v in rec.history().get("val_accuracy", []) if isinstance(v, (int, float)) and math.isfinite(v)]
    if vals:
        return max(vals)
    v = rec.final.get("val_accuracy")
    return float(v) if isinstance(v, (int, float)) else None


def final_loss(rec: RunRecord) -> float | None:
    vals = [v for v in rec.history().get("loss", []) if isinstance(v, (int, float))]
    if vals:
        return float(vals[-1])
    v = rec.final.get("train_loss")
    return float(v) if isinstance(v, (int, float)) else None


def run_label(rec: RunRecord) -> str:
    """A short label for legends: time of day and the hyperparameters people vary most."""
    hp = rec.hyperparameters
    t = rec.id[9:15] if len(rec.id) >= 15 else rec.id
    t = f"{t[0:2]}:{t[2:4]}:{t[4:6]}" if len(t) == 6 and t.isdigit() else t
    return f"{t} {hp.get('optimizer', '?')} lr={format_value(hp.get('learning_rate'))}"


def curves_csv(rec: RunRecord) -> str:
    """A run's per-epoch and per-batch curves as CSV text (``kind,epoch,batch,x,metric...``)."""
    hist = rec.history()
    metrics = [k for k in ("loss", "accuracy", "val_loss", "val_accuracy") if k in hist]
    metrics += sorted(k for k in hist if k not in metrics and k != "seconds")
    buf = io.StringIO()
    w = csv.writer(buf, lineterminator="\n")
    w.writerow(["kind", "epoch", "batch", "x_epochs", *metrics])
    n_epochs = len(rec.epochs)
    for i in range(n_epochs):
        w.writerow(["epoch", i + 1, "", i + 1, *[_csv(hist[m][i]) for m in metrics]])
    steps: dict[int, int] = {}
    for p in rec.batches:
        e = _index(p.get("epoch"))
        steps[e] = max(steps.get(e, 0), _index(p.get("batch")) + 1)
    for p in rec.batches:
        e = _index(p.get("epoch"))
        b = _index(p.get("batch"))
        x = e + (b + 1) / max(1, steps.get(e, 1))
        w.writerow(["batch", e + 1, b + 1, f"{x:.6g}", *[_csv(p.get(m)) for m in metrics]])
    return buf.getvalue()


def _value(v: Any, limit: int = 40) -> str:
    """A record value as table text, cut short: records are files, and may hold anything."""
    text = format_value(v)
    return text if len(text) <= limit else text[: limit - 3] + "..."


def _html(v: Any) -> str:
    """A record value for the rich-text comparison label: cut short and escaped, never markup."""
    return html.escape(_value(v))


def _index(v: Any) -> int:
    """An epoch or batch number from a record point; 0 when the file holds something else."""
    if isinstance(v, bool) or not isinstance(v, (int, float)) or not math.isfinite(v):
        return 0
    return max(0, min(int(v), 10**9))


def damaged_note(damaged: list[DamagedRun]) -> str:
    """``1 damaged run record skipped: <folder>``, or empty when there is none."""
    if not damaged:
        return ""
    names = ", ".join(d.folder.name for d in damaged[:3]) + (", ..." if len(damaged) > 3 else "")
    n = len(damaged)
    return f"{n} damaged run record{'s' if n != 1 else ''} skipped: {names}"


def _csv(v: Any) -> str:
    return "" if v is None else repr(float(v)) if isinstance(v, (int, float)) else str(v)


#: the words a comparison uses for a setting or result (the record's keys are snake_case identifiers)
_KEY_TEXT = {"learning_rate": "learning rate", "batch_size": "batch size", "validation_split": "validation split",
             "early_stopping": "early stopping", "test_accuracy": "test accuracy",
             "val_accuracy": "validation accuracy", "seconds": "training time", "source": "data",
             "mixed_precision": "mixed precision"}


def _key_text(key: str) -> str:
    return _KEY_TEXT.get(key, key.replace("_", " "))


def _value_text(key: str, value: Any) -> Any:
    """Accuracies as percentages and times in seconds; anything else as it is."""
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        if key.endswith("accuracy"):
            return f"{100 * value:.1f}%"
        if key == "seconds":
            return f"{value:.1f} s"
    return value


class _SortItem(QTableWidgetItem):
    """Sorts by a number when it has one (so 10 > 9 and '-' sorts first)."""

    def __init__(self, text: str, key: Any = None) -> None:
        super().__init__(text)
        self._key = key

    def __lt__(self, other: QTableWidgetItem) -> bool:  # type: ignore[override]
        a, b = self._key, getattr(other, "_key", None)
        if isinstance(a, (int, float)) and isinstance(b, (int, float)):
            return a < b
        return self.text() < other.text()


class RunsPanel(QWidget):
    """The runs table (``runsTable``) with compare and export buttons.

    Signals:
        overlay_changed: the ticked records changed (list of RunRecord).
        compare_requested / export_csv_requested / export_png_requested: button presses.
        use_requested(RunRecord): use this run's model in Predict and Export (double-click, Enter, menu).
        save_model_requested / export_requested / continue_requested (RunRecord): the run's context menu.
    """

    overlay_changed = Signal(list)
    compare_requested = Signal()
    export_csv_requested = Signal()
    export_png_requested = Signal()
    use_requested = Signal(object)
    save_model_requested = Signal(object)
    export_requested = Signal(object)
    continue_requested = Signal(object)

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.store: RunsStore | None = None
        self.design_name: str | None = None
        self.design_id = ""
        self.records: list[RunRecord] = []
        self.table = QTableWidget(0, len(COLUMNS), self)
        self.table.setObjectName("runsTable")
        self.table.setAccessibleName("runsTable")
        self.table.setAccessibleDescription("Past runs of this design; tick runs to overlay their curves")
        self.table.setHorizontalHeaderLabels(list(COLUMNS))
        self.table.setSelectionBehavior(QAbstractItemView.SelectionBehavior.SelectRows)
        self.table.setEditTriggers(QAbstractItemView.EditTrigger.NoEditTriggers)
        self.table.verticalHeader().setVisible(False)
        self.table.horizontalHeader().setSectionResizeMode(QHeaderView.ResizeMode.ResizeToContents)
        self.table.horizontalHeader().setStretchLastSection(True)
        self.table.itemChanged.connect(self._on_item_changed)
        self.current_run_id: str | None = None  # the run whose model is in Predict and Export, if any
        self._wire_run_choice()
        self.all_box = QCheckBox("all designs", self)
        self.all_box.setObjectName("allRunsBox")
        self.all_box.toggled.connect(lambda _on: self.reload())
        self.compare_button = QPushButton("Compare", self)
        self.compare_button.setToolTip("Show what differs between the ticked runs (hyperparameters and results)")
        self.compare_button.setObjectName("compareButton")
        self.compare_button.setAccessibleName("compareButton")
        self.compare_button.setEnabled(False)
        self.compare_button.clicked.connect(self.compare_requested)
        self.csv_button = QPushButton("Curves CSV…", self)
        self.csv_button.setToolTip("Export the selected run's loss and accuracy curves as a CSV file")
        self.csv_button.setObjectName("exportCsvButton")
        self.csv_button.clicked.connect(self.export_csv_requested)
        self.png_button = QPushButton("Plots PNG…", self)
        self.png_button.setToolTip("Export the loss and accuracy plots as PNG pictures")
        self.png_button.setObjectName("exportPngButton")
        self.png_button.clicked.connect(self.export_png_requested)
        self.diff_label = QLabel("", self)
        self.diff_label.setObjectName("diffLabel")
        self.diff_label.setWordWrap(True)
        self.diff_label.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
        self.damaged_label = QLabel("", self)
        self.damaged_label.setObjectName("damagedRunsLabel")
        self.damaged_label.setWordWrap(True)
        self.damaged_label.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
        self.damaged_label.hide()
        buttons = QHBoxLayout()
        buttons.addWidget(QLabel("Tick runs to overlay:", self))
        buttons.addWidget(self.all_box)
        buttons.addStretch(1)
        for b in (self.compare_button, self.csv_button, self.png_button):
            buttons.addWidget(b)
        lay = QVBoxLayout(self)
        lay.setContentsMargins(0, 0, 0, 0)
        lay.addLayout(buttons)
        lay.addWidget(self.table, 1)
        lay.addWidget(self.damaged_label)
        lay.addWidget(self.diff_label)
        self._filling = False

    # ---------------------------------------------------------------- contents
    def set_store(self, store: RunsStore, design_name: str | None, design_id: str = "") -> None:
        """Show the runs of ``store`` made with this design: the one with ``design_id`` (by name for runs
        recorded before designs had ids), or all of them with no design."""
        self.store = store
        self.design_name = design_name
        self.design_id = design_id
        self.reload()

    def _is_this_design(self, rec: RunRecord) -> bool:
        rec_id = rec.design.get("id") if isinstance(rec.design, dict) else None
        if self.design_id and isinstance(rec_id, str) and rec_id:
            return rec_id == self.design_id
        return rec.name == self.design_name

    def reload(self) -> None:
        """Read the store again, keeping the ticks of runs still listed."""
        ticked = {r.id for r in self.ticked()}
        scan = self.store.scan(reuse=True) if self.store is not None else None  # only changed runs parsed again
        recs = scan.records if scan is not None else []
        self._show_damaged(scan.damaged if scan is not None else [])
        if self.design_name and not self.all_box.isChecked():
            recs = [r for r in recs if self._is_this_design(r)]
        recs = [r for r in recs if r.status != "running"]
        self.records = list(reversed(recs))  # newest first
        self._filling = True
        self.table.setSortingEnabled(False)
        self.table.setRowCount(len(self.records))
        for row, rec in enumerate(self.records):
            hp = rec.hyperparameters
            first = _SortItem(rec.id, rec.id)
            first.setFlags(first.flags() | Qt.ItemFlag.ItemIsUserCheckable)
            first.setCheckState(Qt.CheckState.Checked if rec.id in ticked else Qt.CheckState.Unchecked)
            first.setData(Qt.ItemDataRole.UserRole, rec.id)
            first.setToolTip(_run_tip(rec, rec.id == self.current_run_id))
            if rec.id == self.current_run_id:
                font = first.font()
                font.setBold(True)
                first.setFont(font)
            bva = best_val_accuracy(rec)
            fl = final_loss(rec)
            secs = rec.timing.get("seconds")
            cells = [first, _SortItem(rec.status), _SortItem(_value(hp.get("optimizer", "-"))),
                     _SortItem(_value(hp.get("learning_rate")), hp.get("learning_rate")),
                     _SortItem(_value(hp.get("batch_size")), hp.get("batch_size")),
                     _SortItem(f"{len(rec.epochs)}/{_value(hp.get('epochs'))}", len(rec.epochs)),
                     _SortItem("-" if bva is None else f"{bva:.2%}", bva),
                     _SortItem(format_value(fl), fl),
                     _SortItem(format_duration(secs), secs)]
            for col, item in enumerate(cells):
                if col:
                    item.setFlags(item.flags() & ~Qt.ItemFlag.ItemIsUserCheckable)
                self.table.setItem(row, col, item)
        self.table.setSortingEnabled(True)
        self._filling = False
        self._on_item_changed(None)

    def _show_damaged(self, damaged: list[DamagedRun]) -> None:
        note = damaged_note(damaged)
        self.damaged_label.setText(note)
        self.damaged_label.setToolTip("\n".join(f"{d.folder}: {d.reason}" for d in damaged[:20]))
        self.damaged_label.setVisible(bool(note))

    def record(self, run_id: str) -> RunRecord | None:
        return next((r for r in self.records if r.id == run_id), None)

    def ticked(self) -> list[RunRecord]:
        """The ticked runs, in table order."""
        out = []
        for row in range(self.table.rowCount()):
            item = self.table.item(row, 0)
            if item is not None and item.checkState() == Qt.CheckState.Checked:
                rec = self.record(item.data(Qt.ItemDataRole.UserRole))
                if rec is not None:
                    out.append(rec)
        return out

    def set_ticked(self, run_ids: list[str]) -> None:
        """Tick exactly ``run_ids`` (the rest unticked)."""
        self._filling = True
        for row in range(self.table.rowCount()):
            item = self.table.item(row, 0)
            on = item.data(Qt.ItemDataRole.UserRole) in run_ids
            item.setCheckState(Qt.CheckState.Checked if on else Qt.CheckState.Unchecked)
        self._filling = False
        self._on_item_changed(None)

    def selected_or_ticked(self) -> RunRecord | None:
        """The run to export: the current row, else the first ticked one, else the newest."""
        row = self.table.currentRow()
        if row >= 0 and self.table.item(row, 0) is not None:
            rec = self.record(self.table.item(row, 0).data(Qt.ItemDataRole.UserRole))
            if rec is not None:
                return rec
        ticked = self.ticked()
        if ticked:
            return ticked[0]
        return self.records[0] if self.records else None

    def write_csv(self, rec: RunRecord, path: str) -> None:
        atomic_write_text(path, curves_csv(rec))

    def show_comparison(self) -> str:
        """Describe what differs between the first two ticked runs (in the label); return the text."""
        ticked = self.ticked()
        if len(ticked) < 2 or self.store is None:
            text = "Tick two runs to see what differs between them."
        else:
            cmp_ = self.store.compare(ticked[0], ticked[1])
            rows = [f"<b>{_html(_key_text(d.key))}</b>: {_html(_value_text(d.key, d.a))} → "
                    f"{_html(_value_text(d.key, d.b))}" for d in cmp_.differences
                    if d.section != "results" or d.key in ("val_accuracy", "test_accuracy", "seconds")]
            head = f"<b>A</b> {html.escape(run_label(ticked[0]))} vs <b>B</b> {html.escape(run_label(ticked[1]))}: "
            text = head + ("; ".join(rows) if rows else "same settings and results.")
        self.diff_label.setText(text)
        self._compared = [r.id for r in ticked[:2]] if len(ticked) >= 2 else None
        return text

    # ------------------------------------------------------------------ slots
    def _on_item_changed(self, item: QTableWidgetItem | None) -> None:
        if self._filling or (item is not None and item.column() != 0):
            return
        ticked = self.ticked()
        self.compare_button.setEnabled(len(ticked) >= 2)
        shown = getattr(self, "_compared", None)
        if shown is not None and shown != [r.id for r in ticked[:2]]:
            self.diff_label.clear()  # about runs no longer ticked (or no longer listed): stale
            self._compared = None
        self.overlay_changed.emit(ticked)

    # ------------------------------------------------------------ run choice
    def _wire_run_choice(self) -> None:
        """Double-click, Enter and the context menu (right-click, or the Menu key / Shift+F10).

        The menu comes from the viewport's context-menu event (Qt's default policy), whose reason tells a
        click from a key: a key opens the menu of the selected run, a click that of the run under the pointer
        (for a key the platform gives the pointer's position, wherever it is).
        """
        self.table.setToolTip("Double-click a run (or press Enter) to use its model in Predict and Export; "
                              "right-click it (or press the Menu key) to save, export or continue training it")
        self.table.setContextMenuPolicy(Qt.ContextMenuPolicy.DefaultContextMenu)
        self.table.doubleClicked.connect(self._on_row_double_clicked)
        self.table.installEventFilter(self)
        self.table.viewport().installEventFilter(self)

    def set_current_run(self, run_id: str | None) -> None:
        """Mark the run whose model is now the current one (bold in the table), or none."""
        if run_id == self.current_run_id:
            return
        self.current_run_id = run_id
        self._filling = True
        for row in range(self.table.rowCount()):
            item = self.table.item(row, 0)
            if item is None:
                continue
            rec = self.record(item.data(Qt.ItemDataRole.UserRole))
            font = item.font()
            font.setBold(rec is not None and rec.id == run_id)
            item.setFont(font)
            if rec is not None:
                item.setToolTip(_run_tip(rec, rec.id == run_id))
        self._filling = False

    def record_at_row(self, row: int) -> RunRecord | None:
        """The run shown in ``row`` (rows follow the table's sorting, not :attr:`records`)."""
        item = self.table.item(row, 0) if row >= 0 else None
        return self.record(item.data(Qt.ItemDataRole.UserRole)) if item is not None else None

    def row_of(self, run_id: str) -> int:
        """The row that shows run ``run_id``, or -1."""
        for row in range(self.table.rowCount()):
            item = self.table.item(row, 0)
            if item is not None and item.data(Qt.ItemDataRole.UserRole) == run_id:
                return row
        return -1

    def run_menu(self, rec: RunRecord) -> QMenu:
        """The context menu of run ``rec``; each action emits its request for that run."""
        menu = QMenu(self.table)
        menu.setObjectName("runMenu")
        for text, name, tip, signal in (
                ("Use in Predict and Export", "useRunAction",
                 "Make this run's model the one that Predict shows and Export writes", self.use_requested),
                ("Save model as…", "saveRunModelAction", "Save a copy of this run's model as a .keras file",
                 self.save_model_requested),
                ("Export…", "exportRunAction", "Export this run's model (.keras, .h5, SavedModel, LiteRT, ONNX, "
                 "Python code), verified", self.export_requested),
                ("Continue training from it", "continueRunAction",
                 "Make this run's model current and tick Continue from the current model", self.continue_requested)):
            action = menu.addAction(text)
            action.setObjectName(name)
            action.setToolTip(tip)
            action.triggered.connect(lambda _checked=False, s=signal: s.emit(rec))
        menu.setToolTipsVisible(True)
        return menu

    def eventFilter(self, watched: QObject, event: QEvent) -> bool:
        """Enter on a selected run uses its model (as a double-click does); a context-menu event opens its menu."""
        if watched is self.table and event.type() == QEvent.Type.KeyPress and isinstance(event, QKeyEvent) \
                and event.key() in (Qt.Key.Key_Return, Qt.Key.Key_Enter):
            rec = self.record_at_row(self.table.currentRow())
            if rec is not None:
                self.use_requested.emit(rec)
                return True
        if watched is self.table.viewport() and event.type() == QEvent.Type.ContextMenu \
                and isinstance(event, QContextMenuEvent):
            self._open_run_menu(event)
            return True
        return super().eventFilter(watched, event)

    def _on_row_double_clicked(self, index: Any) -> None:
        rec = self.record_at_row(index.row())
        if rec is not None:
            self.use_requested.emit(rec)

    def _open_run_menu(self, event: QContextMenuEvent) -> None:
        """The menu of the run under the pointer (a click) or of the selected run (a key), beside that run."""
        if event.reason() == QContextMenuEvent.Reason.Keyboard:
            row = self.table.currentRow()
            pos = self.table.visualRect(self.table.currentIndex()).center()
        else:
            index = self.table.indexAt(event.pos())
            row, pos = (index.row() if index.isValid() else -1), event.pos()
        rec = self.record_at_row(row)
        if rec is None:
            return
        self.table.selectRow(row)
        menu = self.run_menu(rec)
        menu.exec(self.table.viewport().mapToGlobal(pos))
        menu.deleteLater()


def _run_tip(rec: RunRecord, current: bool) -> str:
    """A run's tooltip: what happened, what went wrong (one sentence each), and whether its model is current."""
    parts = [rec.message or rec.status, *diagnose_record(rec).sentences]
    if current:
        parts.append("Its model is the one Predict shows and Export writes.")
    return " ".join(p for p in parts if p)
