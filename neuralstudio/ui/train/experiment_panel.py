"""The Experiment tab of the Train workspace: what varies, how it is searched, and the run of its trials.

:class:`ExperimentPanel` is the definition form: a table of the hyperparameters that vary, each with its
values as text (``log:1e-4:1``, ``16:128``, ``relu,sigmoid,tanh``, the syntax of
``core/search_space.py``, the same as ``neuralstudio sweep --param``), checked as it is typed with the
reason shown in red under the table; the strategy, trials, time limit and pruning; the estimate of
trials, time and memory; Start, Pause and Stop and the experiment's progress.

:class:`ExperimentTab` puts the form beside the results (``experiment_results.py``) and does the work
of the tab for the workspace: it snapshots the design and the Train form when Start is pressed (as Train
does), runs the trials through :class:`~neuralstudio.ui.train.experiment_runner.ExperimentRunner`, reads
the study's results on the workspace's background runner after every trial, computes the estimate there
too (``ml.sweep_budget`` analyses the design, which imports Keras), and turns "Apply to design" into the
workspace's ``apply_design_requested`` signal, which the main window makes one undo step.

Only widgets and wiring live here; what varies, how it applies to a design, the search, the results and
the budget are Qt-free (``core/search_space.py``, ``ml/sweep.py``, ``ml/sweep_results.py``,
``ml/sweep_budget.py``).
"""

from __future__ import annotations

import math
import sys
from typing import Any

import shiboken6
from PySide6.QtCore import Qt, QTimer, Signal
from PySide6.QtGui import QKeySequence, QShortcut
from PySide6.QtWidgets import (
    QAbstractItemView,
    QComboBox,
    QDialog,
    QFrame,
    QGridLayout,
    QHBoxLayout,
    QHeaderView,
    QLabel,
    QLineEdit,
    QMenu,
    QProgressBar,
    QPushButton,
    QScrollArea,
    QSizePolicy,
    QSpinBox,
    QSplitter,
    QTableWidget,
    QTableWidgetItem,
    QVBoxLayout,
    QWidget,
)

from neuralstudio.core.design import Design, design_from_dict
from neuralstudio.core.errors import UserError
from neuralstudio.core.search_space import (
    DEFAULT_GRID_POINTS,
    REPEAT,
    SETTING_NAMES,
    ParamSpec,
    SearchSpaceError,
    check_params,
    parse_param,
)
from neuralstudio.core.training_settings import LOSSES, TrainingSettings
from neuralstudio.ui.train.experiment_results import ExperimentResultsView, value_text
from neuralstudio.ui.train.experiment_runner import ExperimentRequest, ExperimentRunner

__all__ = ["ExperimentPanel", "ExperimentTab", "default_values", "param_words"]

#: layer parameters offered in the Add menu (when the layer has them): what the course varies
TUNABLE = ("units", "filters", "kernel_size", "strides", "pool_size", "activation", "rate", "kernel_regularizer")
#: classes whose weights take an L2 factor even when the design does not spell the regularizer out
_WEIGHTED = ("Dense", "Conv1D", "Conv2D", "Conv3D", "SeparableConv2D", "DepthwiseConv2D", "Conv2DTranspose")
_KEY_WORDS = {"kernel_regularizer": "L2 factor", "rate": "dropout rate", "units": "units", "filters": "filters",
              "kernel_size": "kernel size", "strides": "strides", "pool_size": "pool size", "activation": "activation"}
_SETTING_WORDS = {"learning_rate": "learning rate", "batch_size": "batch size", "epochs": "epochs",
                  "optimizer": "optimizer", "momentum": "momentum", "loss": "loss",
                  "validation_split": "validation split", "seed": "seed"}
VALUES_TIP = ("The values to try: log:1e-4:1 (a range on a log scale), 16:128 (whole numbers; 0.1:0.5 real ones), "
              "16:128:16 (with a step), relu,sigmoid,tanh (a list) or one value. A grid tries lists as they are "
              f"and {DEFAULT_GRID_POINTS} values spread over a range.")
ESTIMATE_DELAY_MS = 400
#: while the Experiment tab is shown, the Train page's plots keep at least this height, the tab gets this much
PLOTS_MIN_PX = 230
RESULTS_LATE_MS = 4000
FORM_MIN_PX = 340
VALIDATE_DELAY_MS = 200
STRATEGIES = (("Grid", "grid", "Try every combination of the values (ranges at "
               f"{DEFAULT_GRID_POINTS} points)"),
              ("Random", "random", "Draw the values at random, as many trials as the budget allows"),
              ("Bayesian (TPE)", "tpe", "Optuna's tree-structured Parzen estimator: after a few random trials, "
               "it draws more often where the good trials were"))
PRUNERS = (("None", "none", "Every trial trains all its epochs"),
           ("Median", "median", "Stop a trial early when its validation accuracy is below the median of the earlier "
            "trials at the same epoch"),
           ("Halving", "halving", "Keep only the better half of the trials at each rung of epochs"))
ERROR_STYLE = "border: 1px solid #e53e3e; background: #fff5f5;"


def param_words(path: str) -> str:
    """A path in words for the table and the menus: ``units of hidden``, ``number of hidden layers``."""
    if "." not in path:
        return _SETTING_WORDS.get(path, path.replace("_", " "))
    layer, key = path.rsplit(".", 1)
    if key == REPEAT:
        return f"number of {layer} layers"
    what = _KEY_WORDS.get(key, key.replace("_", " "))
    if layer.endswith("[hidden]"):
        return f"{what} of every hidden {layer[:-8]} layer"
    if layer.endswith("[*]"):
        return f"{what} of every {layer[:-3]} layer"
    return f"{what} of {layer}"


def _g(x: float) -> str:
    return f"{float(f'{x:.3g}'):g}"


def _current_value(design: Design | None, path: str) -> Any:
    """The design's value of a layer path (its first layer for a group), or None."""
    if design is None or "." not in path:
        return None
    layer, key = path.rsplit(".", 1)
    if layer.endswith("]"):
        cls = layer.split("[", 1)[0]
        outputs = set(design.graph.outputs())
        nodes = [n for n in design.graph if n.class_name == cls and (layer.endswith("[*]") or n.id not in outputs)]
    else:
        node = design.graph.node_by_name(layer)
        nodes = [node] if node is not None else []
    return nodes[0].config.get(key) if nodes else None


def default_values(path: str, design: Design | None = None) -> str:
    """Sensible values to try for ``path``, around the design's current value (the text the row starts with).

    E.g. a learning rate of 3 gives ``log:0.3:30``, 30 units ``16:128``, an activation ``relu,sigmoid,tanh``.
    """
    if "." not in path:
        t = design.training if design is not None else TrainingSettings()
        if path == "learning_rate":
            return f"log:{_g(t.learning_rate / 10)}:{_g(t.learning_rate * 10)}"
        if path == "batch_size":
            return "16,32,64,128"
        if path == "epochs":
            return f"{max(1, t.epochs // 2)},{t.epochs}" if t.epochs > 1 else "1,2"
        if path == "optimizer":
            return "sgd,sgd-momentum,adam"
        if path == "momentum":
            return "0.5,0.9,0.99"
        if path == "loss":
            other = "sparse_categorical_crossentropy" if t.loss != "sparse_categorical_crossentropy" else \
                "quadratic"
            return ",".join(x for x in (t.loss, other) if x in LOSSES)
        if path == "validation_split":
            return "0.1,0.2"
        return "1,2,3"
    key = path.rsplit(".", 1)[1]
    cur = _current_value(design, path)
    if key == REPEAT:
        return "1,2,3"
    if key in ("units", "filters"):
        if isinstance(cur, int) and cur > 0:
            lo = max(1, 2 ** round(math.log2(max(1.0, cur / 2))))
            hi = max(lo + 1, 2 ** round(math.log2(cur * 4)))
            return f"{lo}:{hi}"
        return "16:128"
    if key == "kernel_size":
        return "3,5"
    if key == "pool_size":
        return "2,3"
    if key == "strides":
        return "1,2"
    if key == "activation":
        return "relu,sigmoid,tanh"
    if key == "rate":
        return "0.1:0.5"
    if key == "kernel_regularizer":
        return "0,0.0001,0.001"
    if isinstance(cur, bool) or cur is None:
        return value_text(cur) if cur is not None else ""
    if isinstance(cur, int):
        return f"{max(1, cur // 2)}:{max(2, cur * 2)}"
    if isinstance(cur, float):
        return f"{_g(cur / 2)}:{_g(cur * 2)}"
    return value_text(cur)


def _chain_layer(design: Design, node: Any) -> bool:
    """A layer that can be repeated: one input, at most one output connection (what ``repeat_layer`` takes)."""
    g = design.graph
    return node.class_name != "InputLayer" and not node.shares and len(g.in_edges(node.id)) == 1 \
        and len(g.out_edges(node.id)) <= 1


def _layer_keys(node: Any) -> list[str]:
    keys = [k for k in TUNABLE if k in node.config]
    if node.class_name in _WEIGHTED:
        for k in ("activation", "kernel_regularizer"):
            if k not in keys:
                keys.append(k)
    return keys


class ExperimentPanel(QWidget):
    """The definition form (see the module docstring); it starts nothing itself, it asks.

    Signals:
        start_requested(), stop_requested(), pause_toggled(bool): the buttons (and their keys).
        definition_changed(): what varies or the budget changed (the tab computes a new estimate).
    """

    start_requested = Signal()
    stop_requested = Signal()
    pause_toggled = Signal(bool)
    definition_changed = Signal()

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setObjectName("experimentPanel")
        self.design: Design | None = None
        self._running = False
        self._blocked = ""  # why Start cannot be pressed now besides the definition (a run is going...)
        self._errors: dict[str, str] = {}
        self._problem = ""

        title = QLabel("<b>Vary</b>", self)
        self.table = QTableWidget(0, 3, self)
        self.table.setObjectName("experimentParams")
        self.table.setAccessibleName("Hyperparameters to vary")
        self.table.setToolTip("What the experiment varies, and over which values (edit the Values column)")
        self.table.setHorizontalHeaderLabels(["Hyperparameter", "Values", "Tried"])
        self.table.horizontalHeaderItem(1).setToolTip(VALUES_TIP)
        self.table.horizontalHeaderItem(2).setToolTip("How many values a grid tries (random and Bayesian "
                                                      "searches draw from the whole range)")
        self.table.verticalHeader().setVisible(False)
        self.table.setSelectionBehavior(QAbstractItemView.SelectionBehavior.SelectRows)
        self.table.setSelectionMode(QAbstractItemView.SelectionMode.SingleSelection)
        self.table.setEditTriggers(QAbstractItemView.EditTrigger.NoEditTriggers)
        header = self.table.horizontalHeader()
        header.setSectionResizeMode(0, QHeaderView.ResizeMode.Interactive)  # fitted in _fit_columns
        header.setSectionResizeMode(1, QHeaderView.ResizeMode.Stretch)
        header.setSectionResizeMode(2, QHeaderView.ResizeMode.ResizeToContents)
        self.table.setMinimumHeight(78)  # three rows; more scroll
        self.table.setTextElideMode(Qt.TextElideMode.ElideMiddle)
        self.table.itemSelectionChanged.connect(self._on_selection_changed)

        self.add_button = self._button("Add ▾", "addParamButton",
                                       "Add a hyperparameter to vary: a training setting, a layer's parameter, one "
                                       "for every hidden layer of a class, or the number of layers (Ctrl+Shift+A)")
        self.add_menu = QMenu(self)
        self.add_menu.setObjectName("addParamMenu")
        self.add_menu.setToolTipsVisible(True)
        self.add_menu.aboutToShow.connect(self._on_add_menu_about_to_show)
        self.add_button.setMenu(self.add_menu)
        self.remove_button = self._button("Remove", "removeParamButton",
                                          "Stop varying the selected hyperparameter (Delete)")
        self.remove_button.clicked.connect(self._on_remove_clicked)
        self.remove_button.setEnabled(False)
        self.error_label = QLabel("", self)
        self.error_label.setObjectName("experimentError")
        self.error_label.setAccessibleName("Experiment definition problem")
        self.error_label.setWordWrap(True)
        self.error_label.setStyleSheet("color: #b00020;")
        self.error_label.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
        self.error_label.hide()

        self.strategy_box = QComboBox(self)
        self.strategy_box.setObjectName("strategyBox")
        for text, data, tip in STRATEGIES:
            self.strategy_box.addItem(text, data)
            self.strategy_box.setItemData(self.strategy_box.count() - 1, tip, Qt.ItemDataRole.ToolTipRole)
        self.strategy_box.setToolTip("How the values are chosen: every combination (grid), at random, or "
                                     "Bayesian (TPE: tries more where good trials were)")
        self.trials_spin = QSpinBox(self)
        self.trials_spin.setObjectName("trialsSpin")
        self.trials_spin.setRange(0, 10_000)
        self.trials_spin.setToolTip("The most trials to run; 'all' runs the whole grid, 'auto' 20 trials (or as "
                                    "many as the time limit allows)")
        self.time_spin = QSpinBox(self)
        self.time_spin.setObjectName("timeLimitSpin")
        self.time_spin.setRange(0, 100_000)
        self.time_spin.setSuffix(" min")
        self.time_spin.setSpecialValueText("none")
        self.time_spin.setToolTip("Start no trial after this many minutes (the running one finishes); none: no limit")
        self.prune_box = QComboBox(self)
        self.prune_box.setObjectName("pruneBox")
        for text, data, tip in PRUNERS:
            self.prune_box.addItem(text, data)
            self.prune_box.setItemData(self.prune_box.count() - 1, tip, Qt.ItemDataRole.ToolTipRole)
        self.prune_box.setToolTip("Stop clearly worse trials early to spend the time on better ones: median or "
                                  "successive halving")
        for w in (self.strategy_box, self.prune_box):
            w.currentIndexChanged.connect(self._on_budget_changed)
        for w in (self.trials_spin, self.time_spin):
            w.valueChanged.connect(self._on_budget_changed)

        self.estimate_label = QLabel("Add a hyperparameter to vary.", self)
        self.estimate_label.setObjectName("experimentEstimate")
        self.estimate_label.setAccessibleName("Experiment estimate")
        self.estimate_label.setToolTip("Trials, the estimated total time (from the last run's speed) and the memory "
                                       "one trial needs at its largest batch size and layers")
        self.estimate_label.setWordWrap(True)
        self.estimate_label.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
        self.start_button = self._button("Start", "startExperimentButton",
                                         "Run the experiment's trials in the background (Ctrl+Return)")
        self.start_button.setStyleSheet("font-weight: bold;")
        self.pause_button = self._button("Pause", "pauseExperimentButton",
                                         "Pause or resume the running trial and the experiment (Ctrl+Shift+P)")
        self.pause_button.setCheckable(True)
        self.stop_button = self._button("Stop", "stopExperimentButton",
                                        "Stop the running trial and start no more; finished trials are kept (Ctrl+.)")
        self.start_button.clicked.connect(self._on_start_clicked)
        self.pause_button.toggled.connect(self._on_pause_toggled)
        self.stop_button.clicked.connect(self._on_stop_clicked)
        self.progress_bar = QProgressBar(self)
        self.progress_bar.setObjectName("experimentProgress")
        self.progress_bar.setAccessibleName("Experiment progress")
        self.progress_bar.setToolTip("Trials done and the time left, from the trials so far")
        self.progress_bar.setFormat("no experiment running")
        self.progress_bar.setValue(0)
        self.progress_bar.setTextVisible(True)

        for keys, slot in (("Ctrl+Return", self._on_start_clicked), ("Ctrl+Enter", self._on_start_clicked),
                           ("Ctrl+Shift+P", self.pause_button.toggle), ("Ctrl+.", self._on_stop_clicked),
                           ("Ctrl+Shift+A", self._on_add_shortcut)):
            sc = QShortcut(QKeySequence(keys), self)
            sc.setContext(Qt.ShortcutContext.WidgetWithChildrenShortcut)
            sc.activated.connect(slot)
        delete = QShortcut(QKeySequence(QKeySequence.StandardKey.Delete), self.table)
        delete.setContext(Qt.ShortcutContext.WidgetShortcut)
        delete.activated.connect(self._on_remove_clicked)

        self._validate_timer = QTimer(self)
        self._validate_timer.setSingleShot(True)
        self._validate_timer.setInterval(VALIDATE_DELAY_MS)
        self._validate_timer.timeout.connect(self._on_validate_timer)

        buttons = QHBoxLayout()
        buttons.addWidget(self.add_button)
        buttons.addWidget(self.remove_button)
        buttons.addStretch(1)
        form = QGridLayout()
        form.setColumnStretch(1, 1)
        form.setColumnStretch(3, 1)
        for i, (label, w) in enumerate((("Strategy", self.strategy_box), ("Trials", self.trials_spin),
                                        ("Time limit", self.time_spin), ("Pruning", self.prune_box))):
            lab = QLabel(label, self)
            lab.setToolTip(w.toolTip())
            lab.setBuddy(w)
            form.addWidget(lab, i // 2, (i % 2) * 2)
            form.addWidget(w, i // 2, (i % 2) * 2 + 1)
        run = QHBoxLayout()
        run.addWidget(self.start_button, 2)
        run.addWidget(self.pause_button, 1)
        run.addWidget(self.stop_button, 1)
        # The definition scrolls on a short screen (1024x700); Start, Pause, Stop and the progress stay in view
        # below it, as Train's buttons stay below its settings.
        body = QWidget(self)
        body.setObjectName("experimentDefinition")
        bl = QVBoxLayout(body)
        bl.setContentsMargins(0, 0, 0, 0)
        bl.addWidget(title)
        bl.addWidget(self.table, 1)
        bl.addLayout(buttons)
        bl.addWidget(self.error_label)
        bl.addLayout(form)
        bl.addWidget(self.estimate_label)
        self.scroll = QScrollArea(self)
        self.scroll.setObjectName("experimentDefinitionScroll")
        self.scroll.setWidgetResizable(True)
        self.scroll.setFrameShape(QFrame.Shape.NoFrame)
        self.scroll.setHorizontalScrollBarPolicy(Qt.ScrollBarPolicy.ScrollBarAlwaysOff)
        self.scroll.setWidget(body)
        # as wide as the form needs: it never scrolls sideways (a clipped field is worse than a narrower results
        # view, whose table then moves into the pictures' tabs)
        self.scroll.setMinimumWidth(body.minimumSizeHint().width() + self.scroll.verticalScrollBar().sizeHint().width())
        lay = QVBoxLayout(self)
        lay.setContentsMargins(4, 4, 4, 4)
        lay.addWidget(self.scroll, 1)
        lay.addLayout(run)
        lay.addWidget(self.progress_bar)
        self._on_budget_changed()
        self._update_buttons()

    def _button(self, text: str, name: str, tip: str) -> QPushButton:
        b = QPushButton(text, self)
        b.setObjectName(name)
        b.setAccessibleName(name)
        b.setToolTip(tip)
        b.setAccessibleDescription(tip)
        return b

    # ------------------------------------------------------------------ public API
    def set_design(self, design: Design | None) -> None:
        """The design whose layers the Add menu lists and the values are checked against."""
        self.design = design
        self._validate(full=False)
        self._validate_timer.start()

    def paths(self) -> list[str]:
        return [self.table.item(r, 0).data(Qt.ItemDataRole.UserRole) for r in range(self.table.rowCount())]

    def values_edit(self, path: str) -> QLineEdit | None:
        """The Values field of ``path``'s row (None when it does not vary)."""
        for r, p in enumerate(self.paths()):
            if p == path:
                return self.table.cellWidget(r, 1)  # type: ignore[return-value]
        return None

    def add_param(self, path: str, values: str | None = None) -> QLineEdit:
        """Vary ``path`` (``learning_rate``, ``hidden.units``, ``Dense[hidden].activation``, ``hidden.repeat``).

        Starts with ``values``, else with :func:`default_values` around the design's value; a path that
        already varies keeps its row, whose field gets the focus.
        """
        edit = self.values_edit(path)
        if edit is None:
            row = self.table.rowCount()
            self.table.insertRow(row)
            item = QTableWidgetItem(param_words(path))
            item.setData(Qt.ItemDataRole.UserRole, path)
            item.setToolTip(path)
            self.table.setItem(row, 0, item)
            edit = QLineEdit(values if values is not None else default_values(path, self.design))
            edit.setObjectName("experimentValues")
            edit.setAccessibleName(f"Values of {param_words(path)}")
            edit.setProperty("path", path)
            edit.setToolTip(VALUES_TIP)
            edit.setFrame(False)
            edit.textChanged.connect(self._on_values_edited)
            self.table.setCellWidget(row, 1, edit)
            tried = QTableWidgetItem("")
            tried.setTextAlignment(Qt.AlignmentFlag.AlignCenter)
            self.table.setItem(row, 2, tried)
            self.table.resizeRowsToContents()
            self._fit_columns()
        elif values is not None:
            edit.setText(values)
        self._validate(full=False)
        self._validate_timer.start()
        self.definition_changed.emit()
        edit.setFocus()
        edit.selectAll()
        return edit

    def remove_param(self, path: str) -> None:
        for r, p in enumerate(self.paths()):
            if p == path:
                self.table.removeRow(r)
                break
        self._validate(full=True)
        self.definition_changed.emit()

    def specs(self) -> list[ParamSpec]:
        """The rows as specs; raises :class:`SearchSpaceError` with the first problem."""
        out = []
        for r, path in enumerate(self.paths()):
            edit = self.table.cellWidget(r, 1)
            out.append(parse_param(f"{path}={edit.text()}"))  # type: ignore[union-attr]
        return out

    def problem(self) -> str:
        """Why the definition cannot start ("" when it can), checked against the design now."""
        self._validate(full=True)
        return self._problem

    def strategy(self) -> str:
        return str(self.strategy_box.currentData())

    def trials(self) -> int | None:
        return self.trials_spin.value() or None

    def timeout_s(self) -> float | None:
        return 60.0 * self.time_spin.value() if self.time_spin.value() else None

    def prune(self) -> str:
        return str(self.prune_box.currentData())

    def set_estimate(self, text: str, warning: bool = False) -> None:
        self.estimate_label.setText(text)
        self.estimate_label.setStyleSheet("color: #b00020; font-weight: 600;" if warning else "")

    def set_blocked(self, reason: str) -> None:
        """Start cannot be pressed for ``reason`` (a single run is going); "" lifts it."""
        self._blocked = reason
        self._update_buttons()

    def set_running(self, running: bool) -> None:
        self._running = running
        if not running:
            self.pause_button.blockSignals(True)
            self.pause_button.setChecked(False)
            self.pause_button.setText("Pause")
            self.pause_button.blockSignals(False)
        self.table.setEnabled(not running)
        for w in (self.add_button, self.strategy_box, self.trials_spin, self.time_spin, self.prune_box):
            w.setEnabled(not running)
        self._update_buttons()

    def set_progress(self, percent: int, text: str) -> None:
        self.progress_bar.setValue(percent)
        self.progress_bar.setFormat(text)

    def resizeEvent(self, event: Any) -> None:
        super().resizeEvent(event)
        self._fit_columns()

    def _fit_columns(self) -> None:
        """The names take what they need up to 45% of the table; the values get the rest (long names elide)."""
        if self.table.rowCount():
            want = self.table.sizeHintForColumn(0) + 12
            self.table.setColumnWidth(0, max(80, min(want, int(self.table.viewport().width() * 0.45))))

    # ------------------------------------------------------------------ validation
    def _validate(self, full: bool) -> None:
        """Parse every row (cheap, at each key); with ``full`` also check the whole set against the design."""
        self._errors = {}
        specs: list[ParamSpec] = []
        for r, path in enumerate(self.paths()):
            edit: QLineEdit = self.table.cellWidget(r, 1)  # type: ignore[assignment]
            try:
                spec = parse_param(f"{path}={edit.text()}")
            except SearchSpaceError as exc:
                self._errors[path] = str(exc)
                self._mark(r, edit, str(exc), "")
                continue
            specs.append(spec)
            tried = str(len(spec.grid(DEFAULT_GRID_POINTS))) if self.strategy() == "grid" or spec.kind == "choice" \
                else "range"
            self._mark(r, edit, "", tried)
        problem = next(iter(self._errors.values()), "")
        if not problem and full and specs and self.design is not None:
            try:
                check_params(self.design, specs)
            except UserError as exc:
                problem = str(exc)
                for r, path in enumerate(self.paths()):  # the row the message is about: it starts with its name
                    layer = path.rsplit(".", 1)[0] if "." in path else path
                    if problem.startswith(path) or problem.startswith(layer + ":"):
                        self._mark(r, self.table.cellWidget(r, 1), problem, "")  # type: ignore[arg-type]
        if not self.paths():
            problem = ""
        self._problem = problem
        self.error_label.setText(problem)
        self.error_label.setVisible(bool(problem))
        if not self.paths():
            self.set_estimate("Add a hyperparameter to vary: Add, or right-click a parameter in the Inspector.")
        self._update_buttons()

    def _mark(self, row: int, edit: QLineEdit, error: str, tried: str) -> None:
        edit.setStyleSheet(ERROR_STYLE if error else "")
        edit.setToolTip(error or VALUES_TIP)
        edit.setProperty("invalid", bool(error))
        item = self.table.item(row, 2)
        if item is not None:
            item.setText(tried if not error else "!")

    def _update_buttons(self) -> None:
        ok = bool(self.paths()) and not self._problem and not self._errors and self.design is not None
        self.start_button.setEnabled(ok and not self._running and not self._blocked)
        if self._blocked and not self._running:
            self.start_button.setToolTip(self._blocked)
        elif self._problem or self._errors:
            self.start_button.setToolTip("Fix the values shown in red first")
        else:
            self.start_button.setToolTip("Run the experiment's trials in the background (Ctrl+Return)")
        self.pause_button.setEnabled(self._running)
        self.stop_button.setEnabled(self._running)
        self.remove_button.setEnabled(not self._running and self.table.currentRow() >= 0 and bool(self.paths()))

    # ------------------------------------------------------------------ the Add menu
    def _on_add_menu_about_to_show(self) -> None:
        self.fill_add_menu(self.add_menu)

    def fill_add_menu(self, menu: QMenu) -> None:
        """Training settings, every layer's parameters, "every hidden <Class> layer", "number of <layer> layers"."""
        for sub in menu.findChildren(QMenu):  # the submenus of the last time (clear() keeps them as children)
            sub.setParent(None)
            sub.deleteLater()
        menu.clear()
        taken = set(self.paths())

        def add(m: QMenu, text: str, path: str) -> None:
            a = m.addAction(text + ("  (varies already)" if path in taken else ""))
            a.setObjectName(f"vary:{path}")
            a.setData(path)
            a.setToolTip(f"Vary {param_words(path)} ({path}), starting with {default_values(path, self.design)}")
            a.setEnabled(path not in taken)
            a.triggered.connect(lambda _checked=False, p=path: self.add_param(p))

        menu.addSection("Training settings")
        for name in SETTING_NAMES:
            add(menu, param_words(name), name)
        design = self.design
        if design is None:
            return
        layers = [n for n in design.graph if n.class_name != "InputLayer"]
        if layers:
            sub = menu.addMenu("Layer parameter")
            sub.setToolTipsVisible(True)
            for node in layers:
                keys = _layer_keys(node)
                if not keys:
                    continue
                lm = sub.addMenu(f"{node.name} ({node.class_name})")
                lm.setToolTipsVisible(True)
                for key in keys:
                    add(lm, _KEY_WORDS.get(key, key), f"{node.name}.{key}")
        outputs = set(design.graph.outputs())
        classes: dict[str, list[Any]] = {}
        for node in layers:
            if node.id not in outputs:
                classes.setdefault(node.class_name, []).append(node)
        groups = [(cls, nodes) for cls, nodes in classes.items() if _layer_keys(nodes[0])]
        if groups:
            sub = menu.addMenu("Every hidden layer of a class")
            sub.setToolTipsVisible(True)
            for cls, nodes in groups:
                gm = sub.addMenu(f"every hidden {cls} layer ({len(nodes)})")
                gm.setToolTipsVisible(True)
                for key in _layer_keys(nodes[0]):
                    add(gm, _KEY_WORDS.get(key, key), f"{cls}[hidden].{key}")
        chain = [n for n in layers if _chain_layer(design, n) and n.id not in outputs]
        if chain:
            sub = menu.addMenu("Number of layers")
            sub.setToolTipsVisible(True)
            for node in chain:
                add(sub, f"number of {node.name} layers ({node.class_name})", f"{node.name}.{REPEAT}")

    # ------------------------------------------------------------------ slots
    def _on_values_edited(self, _text: str) -> None:
        self._validate(full=False)
        self._validate_timer.start()  # the check against the design copies it: after typing pauses
        self.definition_changed.emit()

    def _on_validate_timer(self) -> None:
        self._validate(full=True)

    def _on_budget_changed(self, *_args: Any) -> None:
        grid = self.strategy() == "grid"
        self.trials_spin.setSpecialValueText("all" if grid else ("as many as fit" if self.time_spin.value() else
                                                                 "auto (20)"))
        self._validate(full=False)
        self.definition_changed.emit()

    def _on_selection_changed(self) -> None:
        self._update_buttons()

    def _on_remove_clicked(self) -> None:
        row = self.table.currentRow()
        if self._running or row < 0 or row >= self.table.rowCount():
            return
        self.remove_param(self.paths()[row])

    def _on_add_shortcut(self) -> None:
        if self.add_button.isEnabled():
            self.add_button.showMenu()

    def _on_start_clicked(self) -> None:
        if self.start_button.isEnabled():
            self.start_requested.emit()

    def _on_pause_toggled(self, on: bool) -> None:
        if not self._running:
            return
        self.pause_button.setText("Resume" if on else "Pause")
        self.pause_toggled.emit(on)

    def _on_stop_clicked(self) -> None:
        if self.stop_button.isEnabled():
            self.stop_button.setEnabled(False)
            self.stop_requested.emit()


class ExperimentTab(QWidget):
    """The Experiment tab: the form beside the results, and the experiment's life (see the module docstring).

    Args:
        host: the Train workspace (its design, form, data, runs store, background runner, plots and log).

    Signals:
        running_changed(bool): an experiment started or ended (the workspace disables Train meanwhile).
        say(str, bool): a status line for the workspace (text, is it an error).
        log(str): a line for the event log.
    """

    running_changed = Signal(bool)
    say = Signal(str, bool)
    log = Signal(str)

    def __init__(self, host: Any, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        from neuralstudio.ui.train.open_study_dialog import StudyFollower

        self.setObjectName("experimentTab")
        self.host = host
        self.panel = ExperimentPanel(self)
        self.results = ExperimentResultsView(self)
        self.runner = ExperimentRunner(host.plots, self)
        self.follower = StudyFollower(host._info_runner, self)
        self.storage: str | None = None  # None: ml.sweep.default_storage()
        self.last_url = ""
        self.shown_study: Any = None  # the study whose results the view shows (ours or an opened one)
        self._results_pending = False
        self._results_again = False
        self._results_due = False  # a trial ended: read the results once the next one trains
        self._results_after = -1  # the number of the trial that ended
        self._estimate_gen = 0
        self._estimate_s: float | None = None
        self._saved_sizes: list[int] | None = None

        self.panel.setSizePolicy(QSizePolicy.Policy.Preferred, QSizePolicy.Policy.Expanding)
        self.split = QSplitter(Qt.Orientation.Horizontal, self)
        self.split.setObjectName("experimentSplit")
        self.split.addWidget(self.panel)
        self.split.addWidget(self.results)
        self.split.setStretchFactor(0, 0)
        self.split.setStretchFactor(1, 1)
        self.split.setSizes([self.panel.minimumSizeHint().width() + 40, 900])
        lay = QVBoxLayout(self)
        lay.setContentsMargins(2, 2, 2, 2)
        lay.addWidget(self.split)

        self._estimate_timer = QTimer(self)
        self._estimate_timer.setSingleShot(True)
        self._estimate_timer.setInterval(ESTIMATE_DELAY_MS)
        self._estimate_timer.timeout.connect(self._on_estimate_timer)

        self.panel.start_requested.connect(self._on_start_requested)
        self.panel.stop_requested.connect(self._on_stop_requested)
        self.panel.pause_toggled.connect(self._on_pause_toggled)
        self.panel.definition_changed.connect(self._on_definition_changed)
        self.results.apply_requested.connect(self._on_apply_requested)
        self.results.use_run_requested.connect(self._on_use_run_requested)
        self.results.open_study_requested.connect(self._on_open_study_requested)
        self.runner.running_changed.connect(self._on_runner_running_changed)
        self.runner.study_ready.connect(self._on_study_ready)
        self.runner.trial_started.connect(self._on_trial_started)
        self.runner.trial_finished.connect(self._on_trial_finished)
        self.runner.message.connect(self.log.emit)
        self.runner.progress.connect(self.panel.set_progress)
        self.runner.trial_progress.connect(self._on_trial_training)
        self.runner.finished.connect(self._on_experiment_finished)
        self.follower.results_ready.connect(self._on_followed_results)
        self.follower.failed.connect(lambda text: self.say.emit(text, True))

    # ------------------------------------------------------------------ public API
    def set_design(self, design: Design | None) -> None:
        self.panel.set_design(design)
        self._estimate_timer.start()

    def is_running(self) -> bool:
        return self.runner.is_running()

    def add_param(self, path: str, values: str | None = None) -> QLineEdit:
        """Vary ``path`` with ``values`` (defaults around the design's value); what "Vary this" does."""
        return self.panel.add_param(path, values)

    def set_single_run(self, running: bool) -> None:
        """A single run started or ended: one training at a time."""
        self.panel.set_blocked("A training run is going: stop it or let it end to start an experiment."
                               if running else "")

    def stop(self) -> None:
        self.runner.stop()

    def wait_finished(self, timeout_s: float = 120.0) -> bool:
        return self.runner.wait_finished(timeout_s)

    def shutdown(self) -> None:
        """Stop following a study, and an experiment still running (request_close asks first; a window shut down
        without it must not leave the thread running: destroying a running QThread aborts the process)."""
        self.follower.stop()
        self._estimate_timer.stop()
        if self.is_running():
            self.runner.stop()
            self.runner.wait_finished()

    def open_study(self, url: str, name: str) -> None:
        """Show the study ``name`` of storage ``url`` (read in the background) and follow it while trials run."""
        from neuralstudio.ui.train.open_study_dialog import open_study_job

        self.last_url = url
        self.follower.stop()
        self.say.emit(f"Opening the experiment {name}…", False)

        def done(got: tuple[Any, Any]) -> None:
            study, results = got
            if not shiboken6.isValid(self):
                return
            self.shown_study = study
            self.results.set_results(results)
            running = self.results.has_running_trials()
            if running:
                self.follower.follow(study)
            self.say.emit(f"Opened the experiment {name}: {len(results.rows)} trial(s)"
                          + (", following its running trials live." if running else "."), False)

        def failed(exc: BaseException, _tb: str) -> None:
            if shiboken6.isValid(self):
                self.say.emit(f"Could not open the experiment {name}: {exc}", True)

        self.host._info_runner().submit(lambda: open_study_job(name, url), done, failed,
                                        thread_name="neuralstudio-open-study")

    # ------------------------------------------------------------------ the bottom pane's height
    def showEvent(self, event: Any) -> None:
        """The results need room: while this tab is shown, the bottom pane takes more of the Train page's height."""
        super().showEvent(event)
        split = self._page_split()
        if split is not None and not event.spontaneous() and self._saved_sizes is None:
            sizes = split.sizes()
            total = sum(sizes)
            if len(sizes) == 2 and total > 0:
                self._saved_sizes = sizes
                # 58% of a tall page; on a short one (1024x700) what the form needs, the plots keeping 200 px
                bottom = max(sizes[1], int(total * 0.58), min(total - PLOTS_MIN_PX, FORM_MIN_PX))
                split.setSizes([total - bottom, bottom])

    def hideEvent(self, event: Any) -> None:
        super().hideEvent(event)
        split = self._page_split()
        if split is not None and not event.spontaneous() and self._saved_sizes is not None:
            split.setSizes(self._saved_sizes)
            self._saved_sizes = None

    def _page_split(self) -> QSplitter | None:
        """The Train page's vertical splitter (plots above, tabs below) that holds this tab's tab widget."""
        w = self.parentWidget()
        while w is not None and not isinstance(w, QSplitter):
            w = w.parentWidget()
        return w if isinstance(w, QSplitter) and w.orientation() == Qt.Orientation.Vertical else None

    # ------------------------------------------------------------------ starting
    def build_request(self) -> ExperimentRequest:
        """What Start runs: a snapshot of the design with the form's settings, the search and the data.

        Raises ``UserError`` with a sentence when something is missing or wrong.
        """
        from neuralstudio.ml.sweep import SweepSpec

        host = self.host
        if host._design is None:
            raise UserError("There is no design: build or open one in the Design workspace first.")
        problem = self.panel.problem()
        if problem:
            raise UserError(problem)
        params = self.panel.specs()
        if not params:
            raise UserError("Nothing varies: add a hyperparameter to vary first.")
        settings = host.settings_panel.settings()  # raises UserError for a half-typed form
        snapshot = design_from_dict(host._design.to_dict(), host._design.name)
        snapshot.training = settings
        data = host._training_data()
        in_memory = host._dataset is not None
        if not in_memory:
            snapshot.data = {**snapshot.data, "source": data}
        spec = SweepSpec(snapshot, params, strategy=self.panel.strategy(), trials=self.panel.trials(),
                         timeout_s=self.panel.timeout_s(), prune=self.panel.prune(),
                         data=None if in_memory else str(data), storage=self.storage,
                         seed=int(settings.seed or 0), device=host.settings_panel.device())
        spec.validate()
        return ExperimentRequest(spec, dataset=host._dataset if in_memory else None, runs_store=host.runs_store)

    def start(self) -> bool:
        """Start the experiment (what Start does); False with a message when it cannot."""
        if self.is_running():
            return False
        host = self.host
        if host.is_running() or getattr(host, "_measuring", False):
            self.say.emit("A training run or a speed measurement is going: start the experiment when it ends.", True)
            return False
        try:
            request = self.build_request()
        except UserError as exc:
            self.say.emit(f"Cannot start the experiment: {exc}", True)
            return False
        self.follower.stop()
        self.shown_study = None
        self.results.clear("The first trial is starting…")
        spec = request.spec
        planned = spec.planned_trials()
        what = ", ".join(p.to_text() for p in spec.params)
        self.log.emit(f"Experiment on {spec.design.name}: {what}; {spec.strategy}, "
                      f"{planned if planned is not None else 'as many as fit'} trial(s)"
                      + (f", pruning: {spec.prune}" if spec.prune != "none" else "") + ".")
        self.say.emit("Starting the experiment: creating its study and loading the data…", False)
        self.runner.start(request, self._estimate_s)
        return True

    # ------------------------------------------------------------------ estimate
    def _on_definition_changed(self) -> None:
        self._estimate_timer.start()

    def _on_estimate_timer(self) -> None:
        """Trials now; time and memory on the background runner (the design's analysis imports Keras)."""
        if self.is_running():
            return
        self._estimate_gen += 1
        gen = self._estimate_gen
        self._estimate_s = None
        if not self.panel.paths() or self.panel.problem() or self.host._design is None:
            return
        try:
            request = self.build_request()
        except UserError as exc:
            self.panel.set_estimate(f"No estimate: {exc}", warning=True)
            return
        spec = request.spec
        planned = spec.planned_trials()
        trials = f"{planned} trial(s)" if planned is not None else "as many trials as fit in the time limit"
        if "keras" not in sys.modules:  # the editor loads Keras in the background: importing it here would freeze
            self.panel.set_estimate(f"{trials}; time and memory: waiting for Keras to load…")
            self._estimate_timer.start(1000)
            return
        self.panel.set_estimate(f"{trials}; estimating the time and the memory per trial…")
        data = request.dataset if request.dataset is not None else spec.data
        sps = self._samples_per_second()
        shape = tuple(int(d) for d in request.dataset.x_train.shape[1:]) if request.dataset is not None else None

        def job() -> Any:
            from neuralstudio.ml.speed import train_examples
            from neuralstudio.ml.sweep_budget import estimate_sweep

            return estimate_sweep(spec, train_examples=train_examples(data), samples_per_second=sps,
                                  sample_shape=shape)

        def done(est: Any) -> None:
            if not shiboken6.isValid(self) or gen != self._estimate_gen:
                return
            self._estimate_s = est.seconds
            self.panel.set_estimate(est.text(), warning=bool(est.too_big))

        def failed(exc: BaseException, _tb: str) -> None:
            if shiboken6.isValid(self) and gen == self._estimate_gen:
                self.panel.set_estimate(f"{trials}; no time or memory estimate: {exc}", warning=True)

        self.host._info_runner().submit(job, done, failed, thread_name="neuralstudio-estimate")

    def _samples_per_second(self) -> float | None:
        """The speed of the newest run of this design that recorded one (what the single run's estimate uses)."""
        for rec in getattr(self.host.runs_panel, "records", []):
            try:
                sps = float(rec.timing.get("samples_per_second") or 0)
            except (TypeError, ValueError, AttributeError):
                continue
            if sps > 0 and math.isfinite(sps):
                return sps
        return None

    # ------------------------------------------------------------------ the run
    def _on_start_requested(self) -> None:
        self.start()

    def _on_stop_requested(self) -> None:
        if self.is_running():
            self.runner.stop()
            self.say.emit("Stopping the experiment after the running trial's current batch; finished trials are "
                          "kept…", False)
            self.log.emit("Experiment: stop requested.")

    def _on_pause_toggled(self, on: bool) -> None:
        if on:
            self.runner.pause()
            self.say.emit("Experiment paused: press Resume to go on, or Stop.", False)
        else:
            self.runner.resume()
            self.say.emit("Experiment resumed.", False)

    def _on_runner_running_changed(self, running: bool) -> None:
        self.panel.set_running(running)
        self.running_changed.emit(running)

    def _on_study_ready(self, study: Any) -> None:
        self.shown_study = study
        self.log.emit(f"Experiment study {study.study_name} in {self.storage or 'the default storage'}.")

    def _on_trial_started(self, number: int, values: dict[str, Any]) -> None:
        text = ", ".join(f"{p}={value_text(v)}" for p, v in values.items())
        self.say.emit(f"Experiment: training trial {number} ({text})…", False)
        self.log.emit(f"Trial {number} started: {text}.")

    def _on_trial_finished(self, outcome: Any) -> None:
        score = f", {100 * outcome.value:.1f}%" if isinstance(outcome.value, (int, float)) else ""
        self.log.emit(f"Trial {outcome.number}: {outcome.state}{score} ({outcome.status}). {outcome.message}".strip())
        # The results are read, and the table and the picture redrawn, once the next trial trains: not now,
        # while it is built and traced (Python work that holds the GIL and made the same redraw take 10x longer),
        # and by then Optuna has recorded this trial as finished. At the latest after RESULTS_LATE_MS.
        self._results_due = True
        self._results_after = outcome.number
        QTimer.singleShot(RESULTS_LATE_MS, self._on_results_due)

    def _on_trial_training(self, *_progress: Any) -> None:
        """Batches arrived: when they are the next trial's, it trains (its tracing is over)."""
        number = self.runner.trial_number
        if number is not None and number > self._results_after:
            self._on_results_due()

    def _on_results_due(self) -> None:
        if not self._results_due or not shiboken6.isValid(self):
            return
        self._results_due = False
        if self.host.runs_panel.isVisible():  # the trials are ordinary runs of this design (hidden: read at the end,
            self.host.runs_panel.reload()   # a scan of the runs folder is 20-60 ms while a trial trains)
        self._refresh_results()

    def _on_experiment_finished(self, outcomes: list[Any], crash: str) -> None:
        done = [o for o in outcomes if o.state == "complete"]
        if crash:
            self.say.emit(crash, True)
            self.log.emit(crash)
        else:
            stopped = self.runner.control is not None and self.runner.control.stop_requested
            self.say.emit(f"Experiment {'stopped' if stopped else 'finished'}: {len(done)} of {len(outcomes)} "
                          "trial(s) complete; the results are in the Experiment tab.", False)
            self.log.emit(f"Experiment {'stopped' if stopped else 'finished'}: {len(outcomes)} trial(s).")
            planned = self.runner.request.spec.planned_trials() if self.runner.request is not None else None
            of = f" of {planned}" if planned else ""
            self.panel.set_progress(100 if not stopped else self.panel.progress_bar.value(),
                                    f"{len(outcomes)}{of} trials {'run, then stopped' if stopped else 'done'}")
        self._results_due = False
        self.host.runs_panel.reload()
        self._refresh_results()

    def _refresh_results(self) -> None:
        """Read the running study's results on the background runner (importances take a moment)."""
        study = self.runner.study
        if study is None or (self.shown_study is not None and self.shown_study is not study):
            return
        if self._results_pending:
            self._results_again = True
            return
        from neuralstudio.ml.sweep_results import results_of

        self._results_pending = True

        def done(results: Any) -> None:
            self._results_pending = False
            if not shiboken6.isValid(self):
                return
            if self.shown_study is study or self.shown_study is None:
                self.results.set_results(results)
            if self._results_again:
                self._results_again = False
                self._refresh_results()

        def failed(exc: BaseException, _tb: str) -> None:
            self._results_pending = False
            if shiboken6.isValid(self):
                self.log.emit(f"Could not read the experiment's results: {exc}")

        self.host._info_runner().submit(lambda: results_of(study), done, failed, thread_name="neuralstudio-results")

    @property
    def results_pending(self) -> bool:
        return self._results_pending

    def _on_followed_results(self, results: Any) -> None:
        self.results.set_results(results)

    # ------------------------------------------------------------------ results actions
    def _on_apply_requested(self, values: dict[str, Any]) -> None:
        """The best trial's values into the design: built here, made one undo step by the main window."""
        from neuralstudio.core.search_space import apply_values

        design = self.host._design
        if design is None:
            self.say.emit("There is no design to apply the values to.", True)
            return
        try:
            new = apply_values(design, values)
        except UserError as exc:
            self.say.emit(f"Cannot apply the trial's values to this design: {exc}", True)
            return
        text = ", ".join(f"{p}={value_text(v)}" for p, v in values.items())
        self.host.apply_design_requested.emit(new)
        self.say.emit(f"Applied {text} to the design (Edit > Undo, Ctrl+Z, takes it back).", False)
        self.log.emit(f"Applied the best trial's values to the design: {text}.")

    def _on_use_run_requested(self, run_id: str) -> None:
        try:
            rec = self.host.runs_store.get(run_id)
        except (UserError, OSError) as exc:
            self.say.emit(f"The trial's run {run_id} cannot be read: {exc}", True)
            return
        self.host._on_run_use_requested(rec)

    def _on_open_study_requested(self) -> None:
        from neuralstudio.ui.train.open_study_dialog import OpenStudyDialog

        dialog = OpenStudyDialog(self.host._info_runner(), self, url=self.last_url)
        if dialog.exec() == QDialog.DialogCode.Accepted and dialog.chosen_name():
            self.open_study(dialog.url(), dialog.chosen_name())
        dialog.deleteLater()
