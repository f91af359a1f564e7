"""Open a stored experiment by its storage URL, and follow it live while its trials run.

A study lives in an Optuna storage: the journal file on this computer (``ml.sweep.default_storage``)
or a database that several machines share (``postgresql://user@host/db``). Listing its studies and
reading one opens a file or a network connection, which may take seconds or hang on a bad address, so
both run on the workspace's background runner; the dialog shows "Listing…" meanwhile and stays live.

Following: while the opened study has running trials (another process or machine is working on it),
:class:`StudyFollower` reads its results again every 2 s on the runner (never on the GUI thread, where
computing the importances would be felt) and hands them to the results view.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import shiboken6
from PySide6.QtCore import QObject, Qt, QTimer, Signal
from PySide6.QtWidgets import (
    QDialog,
    QDialogButtonBox,
    QHBoxLayout,
    QLabel,
    QLineEdit,
    QListWidget,
    QListWidgetItem,
    QPushButton,
    QVBoxLayout,
    QWidget,
)

from neuralstudio.core.errors import UserError

__all__ = ["POLL_MS", "OpenStudyDialog", "StudyFollower", "open_study_job"]

POLL_MS = 2000


def open_study_job(name: str, url: str) -> tuple[Any, Any]:
    """On a runner's thread: the study ``name`` of storage ``url`` and its results, read once."""
    import optuna

    from neuralstudio.ml.sweep import SweepError, open_storage
    from neuralstudio.ml.sweep_results import results_of

    storage = open_storage(url or None)
    try:
        study = optuna.load_study(study_name=name, storage=storage)
    except KeyError:
        raise SweepError(f"There is no experiment called {name!r} in that storage (any more).") from None
    return study, results_of(study)


def _error_text(exc: BaseException) -> str:
    if isinstance(exc, UserError):
        return str(exc)
    first = (str(exc).strip().splitlines() or [type(exc).__name__])[0][:300]
    return f"Cannot read that storage: {first}."


class OpenStudyDialog(QDialog):
    """The storage URL, the experiments it holds (listed in the background), and Open.

    Args:
        runner: the workspace's ``TaskRunner`` (listing touches files or the network).
        parent: the workspace.
        url: the URL to show first (the last one used); empty: the default journal file.
    """

    def __init__(self, runner: Any, parent: QWidget | None = None, url: str = "") -> None:
        super().__init__(parent)
        from neuralstudio.ml.sweep import default_storage

        self.setObjectName("openStudyDialog")
        self.setWindowTitle("Open an experiment")
        self.runner = runner
        self.default_url = default_storage()
        self._generation = 0
        self.names: list[dict[str, Any]] = []
        self.url_edit = QLineEdit(url or self.default_url, self)
        self.url_edit.setObjectName("studyUrlEdit")
        self.url_edit.setAccessibleName("Storage URL")
        self.url_edit.setPlaceholderText(self.default_url)
        self.url_edit.setToolTip("Where the experiments are stored: a journal file (this computer's default: "
                                 f"{self.default_url}) or a database URL such as postgresql://user@host/db, "
                                 "shared by several machines. Press Enter to list its experiments.")
        self.url_edit.returnPressed.connect(self._on_list_clicked)
        self.list_button = QPushButton("&List", self)
        self.list_button.setObjectName("listStudiesButton")
        self.list_button.setToolTip("List the experiments stored there (Enter)")
        self.list_button.clicked.connect(self._on_list_clicked)
        self.default_button = QPushButton("&Default", self)
        self.default_button.setObjectName("defaultStorageButton")
        self.default_button.setToolTip(f"Back to this computer's experiments ({self.default_url})")
        self.default_button.clicked.connect(self._on_default_clicked)
        self.study_list = QListWidget(self)
        self.study_list.setObjectName("studyList")
        self.study_list.setAccessibleName("Experiments")
        self.study_list.setToolTip("The experiments in that storage, newest first; double-click or Enter opens one")
        self.study_list.itemSelectionChanged.connect(self._on_selection_changed)
        self.study_list.itemActivated.connect(lambda _item: self._on_open_clicked())
        self.status = QLabel("", self)
        self.status.setObjectName("studyStatus")
        self.status.setWordWrap(True)
        self.buttons = QDialogButtonBox(QDialogButtonBox.StandardButton.Open | QDialogButtonBox.StandardButton.Cancel,
                                        self)
        self.open_button = self.buttons.button(QDialogButtonBox.StandardButton.Open)
        self.open_button.setToolTip("Show the chosen experiment's results, and follow it while its trials run")
        self.open_button.setEnabled(False)
        self.buttons.button(QDialogButtonBox.StandardButton.Cancel).setToolTip("Close without opening (Esc)")
        self.buttons.accepted.connect(self._on_open_clicked)
        self.buttons.rejected.connect(self.reject)
        row = QHBoxLayout()
        row.addWidget(QLabel("Storage:", self))
        row.addWidget(self.url_edit, 1)
        row.addWidget(self.list_button)
        row.addWidget(self.default_button)
        lay = QVBoxLayout(self)
        lay.addLayout(row)
        lay.addWidget(self.study_list, 1)
        lay.addWidget(self.status)
        lay.addWidget(self.buttons)
        self.resize(720, 420)
        QTimer.singleShot(0, self.load)

    # ------------------------------------------------------------------ public API
    def url(self) -> str:
        return self.url_edit.text().strip() or self.default_url

    def chosen_name(self) -> str:
        item = self.study_list.currentItem()
        return str(item.data(Qt.ItemDataRole.UserRole)) if item is not None else ""

    def load(self) -> None:
        """List the studies of the URL shown, in the background (a slow server never freezes the dialog)."""
        from neuralstudio.ml.sweep import study_names

        self._generation += 1
        gen, url = self._generation, self.url()
        self.study_list.clear()
        self.names = []
        self.open_button.setEnabled(False)
        self._say("Listing the experiments…")
        self.runner.submit(lambda: study_names(url), lambda names: self._on_names_loaded(gen, names),
                           lambda exc, _tb: self._on_names_failed(gen, exc), thread_name="neuralstudio-studies")

    @property
    def loading(self) -> bool:
        return self.status.text().startswith("Listing")

    # ------------------------------------------------------------------ slots
    def _say(self, text: str, error: bool = False) -> None:
        self.status.setText(text)
        self.status.setStyleSheet("color: #b00020;" if error else "color: #4a5568;")

    def _on_names_loaded(self, gen: int, names: list[dict[str, Any]]) -> None:
        if not shiboken6.isValid(self) or gen != self._generation:
            return  # closed, or another URL was asked for since
        self.names = list(names)
        for s in self.names:
            best = s.get("best")
            best_text = f", best {100 * best:.1f}%" if isinstance(best, (int, float)) else ""
            design = f" · {s['design']}" if s.get("design") else ""
            created = f" · {str(s.get('created', ''))[:16].replace('T', ' ')}" if s.get("created") else ""
            item = QListWidgetItem(f"{s['name']}  ({s.get('trials', 0)} trials{best_text}){design}{created}")
            item.setData(Qt.ItemDataRole.UserRole, s["name"])
            item.setToolTip("Varies: " + (", ".join(s.get("params") or []) or "(not recorded)"))
            self.study_list.addItem(item)
        if self.names:
            self.study_list.setCurrentRow(0)
            self._say(f"{len(self.names)} experiment(s) in {self.url()}.")
        else:
            self._say(f"There are no experiments in {self.url()} yet.")

    def _on_names_failed(self, gen: int, exc: BaseException) -> None:
        if not shiboken6.isValid(self) or gen != self._generation:
            return
        self._say(_error_text(exc), error=True)

    def _on_selection_changed(self) -> None:
        self.open_button.setEnabled(bool(self.chosen_name()))

    def _on_list_clicked(self) -> None:
        self.load()

    def _on_default_clicked(self) -> None:
        self.url_edit.setText(self.default_url)
        self.load()

    def _on_open_clicked(self) -> None:
        if self.chosen_name():
            self.accept()
        else:
            self._say("Choose an experiment in the list first (press List to read the storage).", error=True)


class StudyFollower(QObject):
    """Reads a study's results every :data:`POLL_MS` on the runner while the study has running trials.

    Args:
        runner_of: returns the ``TaskRunner`` to read on.
        parent: the owner.

    Signals:
        results_ready(object): fresh ``SweepResults`` of the followed study.
        failed(str): the storage could not be read (the following stops).
    """

    results_ready = Signal(object)
    failed = Signal(str)

    def __init__(self, runner_of: Callable[[], Any], parent: QObject | None = None) -> None:
        super().__init__(parent)
        self.runner_of = runner_of  # the runner is asked for when first needed (the workspace makes its own lazily)
        self.study: Any = None
        self._pending = False
        self._timer = QTimer(self)
        self._timer.setInterval(POLL_MS)
        self._timer.timeout.connect(self._on_poll_timer)

    def follow(self, study: Any) -> None:
        """Poll ``study`` from now on (until it has no running trial)."""
        self.study = study
        self._timer.start()

    def stop(self) -> None:
        self.study = None
        self._timer.stop()

    def is_following(self) -> bool:
        return self._timer.isActive()

    def _on_poll_timer(self) -> None:
        study = self.study
        if study is None or self._pending:
            return  # the last read is still going (a slow server): skip a beat rather than queue reads
        from neuralstudio.ml.sweep_results import results_of

        self._pending = True
        self.runner_of().submit(lambda: results_of(study), lambda res: self._on_read(study, res),
                           lambda exc, _tb: self._on_read_failed(study, exc), thread_name="neuralstudio-follow")

    def _on_read(self, study: Any, results: Any) -> None:
        self._pending = False
        if not shiboken6.isValid(self) or study is not self.study:
            return
        self.results_ready.emit(results)
        if not any(r.state in ("running", "waiting") for r in results.rows):
            self._timer.stop()  # nothing is running any more: the results are final

    def _on_read_failed(self, study: Any, exc: BaseException) -> None:
        self._pending = False
        if not shiboken6.isValid(self) or study is not self.study:
            return
        self.stop()
        self.failed.emit(_error_text(exc))
