"""Choosing the data a run trains on, and seeing what it holds before training.

A learner's own data (a folder of IDX files, a folder of class sub-folders of
images, a ``.csv``, an ``.npz``) is chosen here with Folder…/File…, and the last
:data:`MAX_RECENT` of them are offered again, across sessions, under the named
sets in the same box. Whatever is chosen is loaded in the background by the
Qt-free :func:`neuralstudio.ml.data.preview.preview_source` (the loaders check
sizes and memory budgets of untrusted files) and shown as counts, shape, classes
and a few example images, so that a wrong file is found before a run, not by it.

Only widgets here: the preview's content comes from ``ml/data/preview.py``, which
the command line can use too. The loading runs on the task runner the Train
workspace lends (docs/ARCHITECTURE.md, "Threads"), never on the GUI thread.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from pathlib import Path
from typing import Any

import shiboken6
from PySide6.QtCore import QSettings, Qt, Signal
from PySide6.QtGui import QBrush, QColor
from PySide6.QtWidgets import (
    QComboBox,
    QFileDialog,
    QGridLayout,
    QHBoxLayout,
    QLabel,
    QPushButton,
    QSizePolicy,
    QVBoxLayout,
    QWidget,
)

from neuralstudio.core.errors import UserError
from neuralstudio.core.paths import user_data_dir
from neuralstudio.ui.pixmaps import thumbnail_pixmap
from neuralstudio.ui.tasks import TaskRunner

__all__ = ["MAX_RECENT", "RECENT_KEY", "DataPicker", "app_settings", "data_source_choices"]

MAX_RECENT = 5
RECENT_KEY = "train/recentDataSources"
THUMBNAIL_PX = 40  # the side of an example image in the preview
THUMBNAILS = 8
_COLUMNS = 4
_ERROR_STYLE = "color: #b00020;"
_BOX_TIP = "The data the run trains on: a named set, or one of your recent folders and files (Folder…, File…)"
_KIND_ROLE = Qt.ItemDataRole.UserRole + 1  # "named", "recent" or "other" (a path from a design file)
_MISSING_ROLE = Qt.ItemDataRole.UserRole + 2
_FILE_FILTER = "Data files (*.csv *.npz);;CSV, one row per example (*.csv);;NumPy archive (*.npz);;All files (*)"


def app_settings() -> QSettings:
    """Where recent data sources are kept: the app's settings file (the main window's ``settings()``).

    Built here rather than imported, so that this widget does not import the main window;
    tests replace this function, or set ``NEURALSTUDIO_HOME``, to keep the user's file untouched.
    """
    return QSettings(str(user_data_dir() / "settings.ini"), QSettings.Format.IniFormat)


def data_source_choices() -> list[tuple[str, str]]:
    """``(key, label)`` for every data source the engine offers (falls back to the bundled sample)."""
    try:
        from neuralstudio.ml.data import DATA_SOURCES
    except ImportError:
        return [("mnist-sample", "MNIST sample (bundled, offline)")]
    out: list[tuple[str, str]] = []
    items: Any = DATA_SOURCES.items() if isinstance(DATA_SOURCES, dict) else DATA_SOURCES
    for item in items:
        if isinstance(item, tuple) and len(item) == 2:
            key, desc = item
        else:
            key, desc = item, item
        key = getattr(key, "name", key)
        label = getattr(desc, "title", None) or getattr(desc, "label", None) or getattr(desc, "description", None)
        if not isinstance(label, str):
            label = desc if isinstance(desc, str) else str(key)
        out.append((str(key), label if label != key else str(key)))
    return out or [("mnist-sample", "MNIST sample (bundled, offline)")]


class DataPicker(QWidget):
    """The data source box with Folder…/File… and recent sources, and the preview of the chosen source.

    Args:
        parent: the hosting widget (the settings panel).
        settings: makes the QSettings the recent sources are kept in (default :func:`app_settings`).

    Signals:
        source_changed(): another source was chosen.
        status_changed(): the preview started, succeeded or failed: :meth:`problem` may have changed.
    """

    source_changed = Signal()
    status_changed = Signal()

    def __init__(self, parent: QWidget | None = None, *, settings: Callable[[], QSettings] | None = None) -> None:
        super().__init__(parent)
        self.setObjectName("dataPicker")
        self._settings = settings
        self._runner: Callable[[], TaskRunner] | None = None
        self._override: Any = None  # an in-memory data set the workspace trains on instead
        self._running = False
        self._state = "idle"  # idle (not checked yet), checking, ok, failed
        self._message = ""  # the loader's message when failed
        self._serial = 0  # which preview request is the latest: older answers are dropped
        self._current = ""
        self.preview: Any = None  # the last DataPreview shown

        self.box = QComboBox(self)
        self.box.setObjectName("dataSourceBox")
        self.box.setAccessibleName("Data")
        self.box.setToolTip(_BOX_TIP)
        self.box.setSizeAdjustPolicy(QComboBox.SizeAdjustPolicy.AdjustToMinimumContentsLengthWithIcon)
        self.box.setMinimumContentsLength(16)
        self.folder_button = _button(self, "Folder…", "dataFolderButton",
                                     "Choose a folder: IDX files (MNIST format), or one sub-folder of images per "
                                     "class (the sub-folder's name is the class)")
        self.file_button = _button(self, "File…", "dataFileButton",
                                   "Choose a file: a .csv (a label column and pixel columns, one row per example) "
                                   "or an .npz (x_train, y_train, optionally x_test, y_test)")
        self.notice_label = _text_label(self, "dataNoticeLabel")
        self.notice_label.hide()
        self.preview_label = _text_label(self, "dataPreviewLabel")
        self.preview_label.setAccessibleName("Data preview")
        self.thumbnails: list[QLabel] = []
        self.captions: list[QLabel] = []
        grid = QGridLayout()
        grid.setContentsMargins(0, 0, 0, 0)
        grid.setHorizontalSpacing(6)
        grid.setVerticalSpacing(0)
        for i in range(THUMBNAILS):
            thumb = QLabel(self)
            thumb.setObjectName("dataThumbnail")
            thumb.setFixedSize(THUMBNAIL_PX, THUMBNAIL_PX)
            thumb.setAlignment(Qt.AlignmentFlag.AlignCenter)
            caption = _text_label(self, "dataThumbnailCaption")
            caption.setWordWrap(False)
            caption.setAlignment(Qt.AlignmentFlag.AlignHCenter | Qt.AlignmentFlag.AlignTop)
            caption.setMaximumWidth(THUMBNAIL_PX + 12)
            row, col = divmod(i, _COLUMNS)
            grid.addWidget(thumb, 2 * row, col, Qt.AlignmentFlag.AlignHCenter)
            grid.addWidget(caption, 2 * row + 1, col, Qt.AlignmentFlag.AlignHCenter)
            thumb.hide()
            caption.hide()
            self.thumbnails.append(thumb)
            self.captions.append(caption)
        grid.setColumnStretch(_COLUMNS, 1)

        buttons = QHBoxLayout()
        buttons.setContentsMargins(0, 0, 0, 0)
        buttons.addWidget(self.folder_button)
        buttons.addWidget(self.file_button)
        buttons.addStretch(1)
        lay = QVBoxLayout(self)
        lay.setContentsMargins(0, 0, 0, 0)
        lay.addWidget(self.box)
        lay.addLayout(buttons)
        lay.addWidget(self.notice_label)
        lay.addWidget(self.preview_label)
        lay.addLayout(grid)
        self.setTabOrder(self.box, self.folder_button)
        self.setTabOrder(self.folder_button, self.file_button)

        self._fill(select="mnist-sample")
        self._current = self.source()
        self.box.currentIndexChanged.connect(self._on_index_changed)
        self.folder_button.clicked.connect(self._on_folder_clicked)
        self.file_button.clicked.connect(self._on_file_clicked)

    # ------------------------------------------------------------------ public API
    def set_runner(self, runner: Callable[[], TaskRunner]) -> None:
        """Where previews load: ``runner()`` gives the task runner (called when a preview is first needed)."""
        self._runner = runner

    def source(self) -> str:
        """The chosen source as :func:`~neuralstudio.ml.data.load_dataset` takes it (a named set or a path)."""
        return str(self.box.currentData() or "")

    def source_label(self) -> str:
        """The chosen source in words for the event log: a named set's title, or a file's full path."""
        i = self.box.currentIndex()
        return self.source() if self.box.itemData(i, _KIND_ROLE) != "named" else self.box.currentText()

    def set_source(self, spec: str) -> None:
        """Show ``spec`` (a design's data source) as the choice; a path not offered yet is added for this session.

        It is not added to the recent sources: a design file may name a path of another computer.
        """
        if not spec:
            return
        if self.box.findData(spec) < 0:
            self._fill(select=self.source(), others=[*self._others(), spec])
        self.box.setCurrentIndex(self.box.findData(spec))

    def choose_path(self, path: str | os.PathLike[str]) -> None:
        """Choose a folder or file (what Folder…/File… do): it becomes the first recent source and is previewed."""
        spec = os.path.abspath(os.fspath(path))
        self._store_recent([spec, *[r for r in self.recent_sources() if r != spec]])
        self._fill(select=spec)
        self._on_chosen()

    def recent_sources(self) -> list[str]:
        """The folders and files chosen last, newest first (at most :data:`MAX_RECENT`), as stored."""
        value = self._open_settings().value(RECENT_KEY, [])
        if isinstance(value, str):  # an INI file gives a list of one as its one text
            value = [value]
        if not isinstance(value, (list, tuple)):  # an edited or damaged settings file: start afresh
            return []
        return [str(v) for v in value if str(v)][:MAX_RECENT]

    def problem(self) -> str:
        """Why a run cannot train on the chosen source now, in one sentence; empty when it can."""
        if self._override is not None:
            return ""
        if self._state == "checking":
            return "Reading the data source first: Train is ready once its preview is shown."
        if self._state == "failed":
            return f"Choose another data source: {self._message}"
        return ""

    @property
    def state(self) -> str:
        """``idle`` (not previewed yet), ``checking``, ``ok`` or ``failed``."""
        return self._state

    def set_override(self, dataset: Any) -> None:
        """The workspace trains on this in-memory data set instead (None: on the chosen source again)."""
        self._override = dataset
        self._serial += 1  # a preview still loading is no longer what is trained on
        self._apply_enabled()
        if dataset is not None:
            from neuralstudio.ml.data.preview import preview_dataset  # a few examples copied: cheap

            name = getattr(dataset, "name", "given")
            self._say("")
            self.box.setToolTip(f"Using the data set {name}")
            self._state = "ok"
            try:
                self._show_preview(preview_dataset(dataset))
            except (AttributeError, TypeError, ValueError, IndexError):  # not a Dataset: still trained on, unseen
                self.preview = None
                self.preview_label.setText(f"Using the data set {name}.")
                self._show_thumbnails(None)
            self.status_changed.emit()
        else:
            self._say("")
            self.box.setToolTip(_BOX_TIP)
            self._state = "idle"
            self._request_preview()

    def set_running(self, running: bool) -> None:
        """Lock the choice while a run is going (the run trains on the source it started with)."""
        self._running = running
        self._apply_enabled()

    # ----------------------------------------------------------------- internals
    def showEvent(self, event: Any) -> None:
        super().showEvent(event)
        if self._state == "idle" and self._override is None:
            self._request_preview()

    def _open_settings(self) -> QSettings:
        return (self._settings or app_settings)()

    def _store_recent(self, recent: list[str]) -> None:
        s = self._open_settings()
        s.setValue(RECENT_KEY, recent[:MAX_RECENT])
        s.sync()

    def _others(self) -> list[str]:
        """Paths in the box that are not recent sources (a design's), kept when the box is filled again."""
        return [str(self.box.itemData(i)) for i in range(self.box.count())
                if self.box.itemData(i, _KIND_ROLE) not in ("named", "recent") and self.box.itemData(i)]

    def _fill(self, select: str, others: list[str] | None = None) -> None:
        """The named sets, then paths from designs, then a separator and the recent sources; ``select`` chosen."""
        others = self._others() if others is None else others
        recent = self.recent_sources()
        others = [o for o in dict.fromkeys(others) if o not in recent]
        box = self.box
        box.blockSignals(True)
        try:
            box.clear()
            for key, label in data_source_choices():
                box.addItem(label, key)
                box.setItemData(box.count() - 1, "named", _KIND_ROLE)
            for spec in others:
                self._add_path_item(spec, "other")
            if recent:
                box.insertSeparator(box.count())
                for spec in recent:
                    self._add_path_item(spec, "recent")
            i = box.findData(select)
            box.setCurrentIndex(i if i >= 0 else 0)
        finally:
            box.blockSignals(False)

    def _add_path_item(self, spec: str, kind: str) -> None:
        path = Path(spec)
        missing = not path.exists()
        text = f"{path.name or spec} ({_short_folder(path.parent)})" + (" - no longer exists" if missing else "")
        box = self.box
        box.addItem(text, spec)
        i = box.count() - 1
        box.setItemData(i, kind, _KIND_ROLE)
        box.setItemData(i, missing, _MISSING_ROLE)
        box.setItemData(i, spec + (" (no longer exists)" if missing else ""), Qt.ItemDataRole.ToolTipRole)
        if missing:
            box.setItemData(i, QBrush(QColor("#8a8f98")), Qt.ItemDataRole.ForegroundRole)

    def _apply_enabled(self) -> None:
        free = not self._running and self._override is None
        for w in (self.box, self.folder_button, self.file_button):
            w.setEnabled(free)

    def _say(self, text: str) -> None:
        self.notice_label.setText(text)
        self.notice_label.setVisible(bool(text))

    def _on_chosen(self) -> None:
        """A source was chosen (in the box or with Folder…/File…): preview it and tell the form."""
        self._current = self.source()
        self._state = "idle"
        self.source_changed.emit()
        self._request_preview()

    def _request_preview(self) -> None:
        """Load the chosen source on the task runner; the answer is shown if it is still the latest request."""
        if self._override is not None:
            return
        if self._runner is None:  # a form on its own (no workspace): nothing to load it with
            self.preview = None
            self.preview_label.setText("")
            self._show_thumbnails(None)
            return
        self._serial += 1
        serial, spec, label = self._serial, self.source(), self.source_label()
        self._state = "checking"
        self._message = ""
        self.preview_label.setStyleSheet("")
        self.preview_label.setText(f"Reading {label}…")
        self._show_thumbnails(None)
        self.status_changed.emit()

        def load() -> Any:
            from neuralstudio.ml.data.preview import preview_source  # numpy and the loaders: off the GUI thread

            return preview_source(spec)

        def done(preview: Any) -> None:
            if shiboken6.isValid(self) and serial == self._serial:
                self._state = "ok"
                self._show_preview(preview)
                self.status_changed.emit()

        def failed(exc: BaseException, _tb: str) -> None:
            if shiboken6.isValid(self) and serial == self._serial:
                self._state = "failed"
                self._message = _failure_text(exc, label)
                self.preview = None
                self.preview_label.setStyleSheet(_ERROR_STYLE)
                self.preview_label.setText(self._message)
                self._show_thumbnails(None)
                self.status_changed.emit()

        self._runner().submit(load, done, failed, thread_name="neuralstudio-data-preview")

    def _show_preview(self, preview: Any) -> None:
        self.preview = preview
        self.preview_label.setStyleSheet("")
        lines = preview.summary_lines()
        if len(preview.examples) and not self._has_pictures(preview):
            lines.append("(the examples are not images: no pictures to show)")
        self.preview_label.setText("\n".join(lines))
        self._show_thumbnails(preview)

    @staticmethod
    def _has_pictures(preview: Any) -> bool:
        from neuralstudio.ml.data.preview import thumbnail_pixels

        return thumbnail_pixels(preview.examples[0]) is not None

    def _show_thumbnails(self, preview: Any) -> None:
        from neuralstudio.ml.data.preview import thumbnail_pixels

        examples = preview.examples if preview is not None else ()
        for i, (thumb, caption) in enumerate(zip(self.thumbnails, self.captions)):
            pixels = thumbnail_pixels(examples[i]) if i < len(examples) else None
            if pixels is None:
                thumb.clear()
                thumb.hide()
                caption.hide()
                continue
            name = preview.example_labels[i]
            thumb.setPixmap(thumbnail_pixmap(pixels, THUMBNAIL_PX))
            thumb.setToolTip(f"An example of class {name}")
            thumb.setAccessibleName(f"example {i + 1}: class {name}")
            caption.setText(name)
            thumb.show()
            caption.show()

    # ------------------------------------------------------------------- slots
    def _on_index_changed(self, index: int) -> None:
        if index < 0:
            return
        spec = str(self.box.itemData(index) or "")
        kind = self.box.itemData(index, _KIND_ROLE)
        self._say("")
        if kind == "recent" and not Path(spec).exists():
            self._store_recent([r for r in self.recent_sources() if r != spec])
            self._fill(select=self._current)
            self._say(f"{spec} no longer exists, so it was removed from the recent data sources.")
            return
        if kind == "recent":  # the last chosen comes first
            self._store_recent([spec, *[r for r in self.recent_sources() if r != spec]])
            self._fill(select=spec)
        self._on_chosen()

    def _on_folder_clicked(self) -> None:
        path = QFileDialog.getExistingDirectory(self, "Choose a data folder", self._start_folder())
        if path:
            self.choose_path(path)

    def _on_file_clicked(self) -> None:
        path, _filter = QFileDialog.getOpenFileName(self, "Choose a data file", self._start_folder(), _FILE_FILTER)
        if path:
            self.choose_path(path)

    def _start_folder(self) -> str:
        """Where the dialogs open: beside the last source chosen, else the home folder."""
        for spec in self.recent_sources():
            parent = Path(spec).parent
            if parent.is_dir():
                return str(parent)
        return str(Path.home())


def _short_folder(folder: Path) -> str:
    """``/home/ann/data`` -> ``~/data``: the folder part of a box item, short enough to read."""
    home = str(Path.home())
    text = str(folder)
    return "~" + text[len(home):] if home not in ("", "/") and (text + "/").startswith(home + "/") else text


def _failure_text(exc: BaseException, label: str) -> str:
    """The loader's one-sentence message; a few plain words for what no loader words (a bug, no memory)."""
    if isinstance(exc, UserError):
        return str(exc)
    if isinstance(exc, MemoryError):
        return f"There is not enough memory to load {label}: choose a smaller data set."
    if isinstance(exc, OSError):
        return f"{label} cannot be read ({exc.strerror or exc}): check that it exists and that you may open it."
    return f"{label} could not be loaded ({type(exc).__name__}: {exc})."


def _button(parent: QWidget, text: str, name: str, tip: str) -> QPushButton:
    b = QPushButton(text, parent)
    b.setObjectName(name)
    b.setAccessibleName(name)
    b.setAccessibleDescription(tip)
    b.setToolTip(tip)
    b.setSizePolicy(QSizePolicy.Policy.Maximum, QSizePolicy.Policy.Fixed)
    return b


def _text_label(parent: QWidget, name: str) -> QLabel:
    """A label that shows its text as plain text: class names and messages come from untrusted files."""
    label = QLabel(parent)
    label.setObjectName(name)
    label.setTextFormat(Qt.TextFormat.PlainText)
    label.setWordWrap(True)
    label.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
    return label
