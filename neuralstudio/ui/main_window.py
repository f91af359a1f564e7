"""The main window: Design, Train and Predict workspaces, menus, toolbar, settings, autosave.

The window hosts the :class:`EditorWidget` (which owns the document, its undo
stack and every edit) and the Train and Predict workspaces, and owns one
background :class:`TaskRunner` whose first task loads Keras.  It does what
spans the workspaces: opening and saving files, the current model that Predict
shows and Export writes, autosave, settings and closing.  Nothing here waits
with a nested event loop: opening a model runs in the background and its
result replaces the design only if the user made no edit meanwhile, or agrees.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from PySide6.QtCore import QByteArray, QObject, QSettings, Qt, QTimer, Signal
from PySide6.QtGui import QAction, QCloseEvent, QKeySequence
from PySide6.QtWidgets import (
    QFileDialog,
    QLabel,
    QMainWindow,
    QMenu,
    QMessageBox,
    QProgressBar,
    QTabWidget,
    QVBoxLayout,
    QWidget,
)

from neuralstudio.core.design import Design, design_from_dict, load_design
from neuralstudio.core.errors import UserError
from neuralstudio.core.graph import Graph
from neuralstudio.core.paths import user_data_dir
from neuralstudio.core.templates import is_template_title
from neuralstudio.ml.model_files import UntrustedCodeError
from neuralstudio.ui.actions import make_action
from neuralstudio.ui.editor.editor_widget import EditorWidget
from neuralstudio.ui.editor.layout import auto_layout
from neuralstudio.ui.garbage_collection import gui_garbage_collector
from neuralstudio.ui.keras_loader import KerasLoader
from neuralstudio.ui.library_warnings import library_warnings
from neuralstudio.ui.tasks import TaskRunner

MODEL_SUFFIXES = (".keras", ".h5", ".hdf5")
WEIGHTS_SUFFIX = ".weights.h5"
MAX_RECENT = 8
AUTOSAVE_MS = 60_000
PAGES_DELAY_MS = 250  # build the Train/Predict pages after the first paint


def settings() -> QSettings:
    """The app's settings, an INI file in the user data folder (``NEURALSTUDIO_HOME`` in tests)."""
    return QSettings(str(user_data_dir() / "settings.ini"), QSettings.Format.IniFormat)


def autosave_dir() -> Path:
    return user_data_dir() / "autosave"


def _import_job(path: Path, trusted: bool = False) -> tuple[Design | None, Any, str]:
    """Runs in the worker thread: load a Keras model file and turn it into a laid-out design.

    The loaded model is returned too: it becomes the current model for Predict and export.
    ``trusted`` is the user's explicit, per-file consent to run the file's code (Lambda layers).
    A trusted model with code cannot become a design (a design holds no Python code): it is then
    returned without one (None) and with the reason, so that Predict and Export can still use it.
    """
    from neuralstudio.ml.importer import ModelImportError, import_model
    from neuralstudio.ml.model_metadata import load_model as load_keras_model  # remembers its class names

    model = load_keras_model(path, trusted=trusted)
    try:
        design = import_model(model, name=path.stem)
    except ModelImportError as exc:
        if not trusted:
            raise
        return None, model, str(exc)
    for nid, pos in auto_layout(design.graph).items():
        design.graph.move_node(nid, pos)
    return design, model, ""


def _weights_job(graph: Graph, path: Path) -> Any:
    """Runs in the worker thread: build the design's model and load a ``.weights.h5`` file into it.

    A weights file has no architecture, so it only fits the design it was saved from.
    """
    from neuralstudio.ml.builder import build_model

    if not path.is_file():
        raise UserError(f"{path} does not exist: check the path.")
    model = build_model(graph)
    try:
        model.load_weights(path)
    except Exception as exc:  # noqa: BLE001 - Keras reports a mismatch or a bad file in many ways
        import re

        text = " ".join(str(exc).split())
        m = re.search(r"object <(\w+) name=([^,>]+).*?variable\.shape=(\([^)]*\)).*?value\.shape=(\([^)]*\))", text)
        detail = (f"layer {m[2]} ({m[1]}) needs weights of shape {m[3]}, the file has {m[4]}" if m
                  else text[:300].rstrip("."))
        raise UserError(f"These weights do not fit the current design: {detail}. Open the design they were saved "
                        "from first (a .nsd file), or open a whole model (.keras) instead.") from None
    return model


class OpenRequest(QObject):
    """One file being opened: ``finished(ok)`` comes once it is shown, refused or failed.

    Opening a model takes seconds (Keras loads it in the background); callers that need the outcome
    connect to ``finished`` or poll ``done`` and ``ok``.
    """

    finished = Signal(bool)

    def __init__(self, path: Path, parent: QObject | None = None) -> None:
        super().__init__(parent)
        self.path = path
        self.done = False
        self.ok = False

    def finish(self, ok: bool) -> bool:
        self.done, self.ok = True, ok
        self.finished.emit(ok)
        return ok

    def __bool__(self) -> bool:
        """True once the file is open: a design file opens at once, so ``if window.open_path(p):`` works."""
        return self.ok


class MainWindow(QMainWindow):
    """The application window.

    Args:
        load_default: open the default template (``mnist-cnn``) at start.
        check_autosave: offer back an autosave left by a crash.
    """

    def __init__(self, *, load_default: bool = True, check_autosave: bool = True) -> None:
        super().__init__()
        self.setObjectName("mainWindow")
        self.setWindowTitle("NeuralStudio")
        # before any worker thread starts: garbage is collected in this thread only (see the module)
        self.garbage = gui_garbage_collector()
        library_warnings()  # the libraries' warnings go to the event log (Train), from the start
        self.runner = TaskRunner(self)
        self.loader = KerasLoader(self.runner, self)
        self.editor = EditorWidget(self.runner, self)
        self.doc = self.editor.doc  # the open design; the editor owns it and every edit to it
        self.current_model: Any = None
        self.current_model_path: Path | None = None
        self.current_design: Design | None = None  # the design the current model was built from, if known
        self.last_error = ""
        self._opening: OpenRequest | None = None
        self._closing = False

        self.tabs = QTabWidget()
        self.tabs.setObjectName("workspaceTabs")
        self.tabs.setAccessibleName("workspaceTabs")
        self.design_page = self.editor
        self.tabs.addTab(self.editor, "Design")
        # The Train and Predict pages (pyqtgraph plots) are built just after the first paint, or when
        # their tab is first opened, so that the window appears within half a second.
        self._train_page: Any = None
        self._predict_page: Any = None
        self._train_host = self._page_host("trainHost")
        self.tabs.addTab(self._train_host, "Train")
        self._predict_host = self._page_host("predictHost")
        self.tabs.addTab(self._predict_host, "Predict")
        self.tabs.currentChanged.connect(self._on_tab_changed)
        self.tabs.setTabToolTip(0, "Design the network (Ctrl+1)")
        self.tabs.setTabToolTip(1, "Train it and watch loss and accuracy (Ctrl+2)")
        self.tabs.setTabToolTip(2, "Draw digits and see what it predicts (Ctrl+3)")
        self.setCentralWidget(self.tabs)

        self._make_status_bar()
        self._make_actions()
        self._connect()

        self._autosave_timer = QTimer(self)
        self._autosave_timer.setInterval(AUTOSAVE_MS)
        self._autosave_timer.timeout.connect(self.autosave)
        self._autosave_timer.start()

        self._restore_settings()
        if check_autosave and self._offer_autosave():
            pass
        elif load_default:
            self._load_default()
        self.loader.start()
        self._update_title()
        QTimer.singleShot(PAGES_DELAY_MS, self._ensure_pages)

    # The editor's parts, for the menus here and for tests and scripts that drive the canvas.
    @property
    def scene(self) -> Any:
        return self.editor.scene

    @property
    def view(self) -> Any:
        return self.editor.view

    @property
    def palette(self) -> Any:
        return self.editor.palette

    @property
    def inspector(self) -> Any:
        return self.editor.inspector

    # ================================================================ pages
    @staticmethod
    def _page_host(name: str) -> QWidget:
        host = QWidget()
        host.setObjectName(name)
        QVBoxLayout(host).setContentsMargins(0, 0, 0, 0)
        return host

    def _ensure_pages(self) -> None:
        """Build the Train and Predict workspaces once (deferred from start-up)."""
        if self._train_page is not None or self._closing:
            return
        self._train_page = self._make_train_page()
        self._train_host.layout().addWidget(self._train_page)
        self._predict_page = self._make_predict_page()
        self._predict_host.layout().addWidget(self._predict_page)
        self._train_page.set_design(self.doc.design)

    def _on_tab_changed(self, index: int) -> None:
        self._ensure_pages()
        toolbar = getattr(self, "design_toolbar", None)
        if toolbar is not None:
            toolbar.setVisible(index == 0)
        if self.tabs.widget(index) is self._train_host and self._train_page is not None:
            # the design may have been edited since Train last showed it: its layer count, its name, a
            # message about the design as it was
            self._train_page.set_design(self.doc.design)

    @property
    def train_page(self) -> Any:
        self._ensure_pages()
        return self._train_page

    @property
    def predict_page(self) -> Any:
        self._ensure_pages()
        return self._predict_page

    def _make_train_page(self) -> QWidget:
        from neuralstudio.ui.train.workspace import TrainWorkspace

        page = TrainWorkspace(runner=self.runner)  # the window's runner: it stops with the window
        page.model_trained.connect(self._on_model_trained)
        page.open_in_predict.connect(self._on_open_in_predict)
        page.training_settings_changed.connect(self._on_training_settings_changed)
        page.apply_design_requested.connect(self._on_apply_design_requested)
        return page

    def _make_predict_page(self) -> QWidget:
        from neuralstudio.ui.predict.workspace import PredictWorkspace

        # Shares the window's runner, so the bundled model loads after Keras and stops with the window.
        return PredictWorkspace(runner=self.runner)

    # ========================================================= current model
    def _set_current_model(self, model: Any, path: Path | None, label: str, *, copy: bool = True,
                           design: Design | None = None) -> None:
        """The model Predict shows and Export writes: the last one trained or opened.

        ``design`` is the design the model was built from (a training run's snapshot): the Python export
        writes that one, not whatever the editor shows by then; None rebuilds it from the model itself.
        ``copy=False`` hands Predict the model itself: for a trusted model with code, which Keras
        would refuse to copy (the copy goes through safe-mode deserialization); it is not training.
        """
        self.current_model = model
        self.current_model_path = path
        self.current_design = design
        self.predict_page.set_model(model, label, copy=copy)
        self.train_page.set_start_model(model, label)
        self.act_export.setEnabled(True)
        self.act_model_info.setEnabled(True)

    def _on_model_trained(self, model: Any, label: str, design: Any = None) -> None:
        """A run's model becomes current: one that just ended well, or one the learner chose in the runs table.

        A run that went wrong is not offered here while a better model is current (the Train workspace says so).
        """
        self._set_current_model(model, None, f"trained: {label}", design=design)
        self.statusBar().showMessage(f"The model of {label} is now used by Predict and Export.", 8000)

    def _on_open_in_predict(self, image: Any) -> None:
        """An image of the Train workspace's Mistakes tab: shown and predicted in Predict, which comes forward."""
        self.predict_page.show_image(image, "An image of the test data, as the network saw it: draw on it to see "
                                            "how the answer changes.")
        self.tabs.setCurrentWidget(self._predict_host)

    def export_model(self) -> None:
        """File > Export: every format, verified against the Keras model before it is written."""
        if self.current_model is None:
            self._show_error("Nothing to export yet",
                             "Train the design first (Train workspace), or open a .keras or .h5 model.")
            return
        from neuralstudio.ui.export.dialog import ExportDialog

        dialog = ExportDialog(self.current_model, model_path=self.current_model_path, design=self.current_design,
                              runner=self.runner, parent=self)
        dialog.exported.connect(lambda r: self.statusBar().showMessage(f"Exported and verified: {r.path}", 10_000))
        dialog.exec()

    def show_model_info(self) -> None:
        if self.current_model is None:
            self._show_error("No model yet", "Train the design first, or open a .keras or .h5 model.")
            return
        from PySide6.QtWidgets import QDialog, QDialogButtonBox

        from neuralstudio.ml.model_info import info_from_model
        from neuralstudio.ui.export.info_view import ModelInfoView

        dialog = QDialog(self)
        dialog.setWindowTitle("Model information")
        lay = QVBoxLayout(dialog)
        lay.addWidget(ModelInfoView(info_from_model(self.current_model, self.current_model_path)))
        buttons = QDialogButtonBox(QDialogButtonBox.StandardButton.Close)
        buttons.rejected.connect(dialog.reject)
        lay.addWidget(buttons)
        dialog.resize(720, 560)
        dialog.exec()

    def _on_training_settings_changed(self, settings: Any) -> None:
        """Hyperparameters set in Train belong to the design: saved with it, and checked by the editor."""
        if settings == self.doc.design.training:
            return
        self.doc.design.training = settings
        self.doc.mark_modified()
        self.editor.schedule_analysis()  # e.g. a loss that fits the output layer now, or no longer
        self._update_title()

    def _on_apply_design_requested(self, design: Any) -> None:
        """An experiment's best values (layers and training settings) into the open design: one undo step."""
        from neuralstudio.ui.commands import ApplyDesignCommand

        if self.editor.push(ApplyDesignCommand(self.doc.design, design, on_change=self._on_design_applied)):
            self.statusBar().showMessage("Applied the experiment's best values to the design: Ctrl+Z undoes it.", 8000)

    def _on_design_applied(self) -> None:
        """After Apply to design and its undo or redo: Train shows the settings, the editor checks the design."""
        self.editor.schedule_analysis()
        if self._train_page is not None:
            self._train_page.set_design(self.doc.design)
        self._update_title()

    def _on_vary_requested(self, path: str) -> None:
        """"Vary this in an experiment" in the Inspector: the Train workspace's Experiment tab gets that row."""
        self.tabs.setCurrentWidget(self._train_host)
        self.train_page.vary(path)

    def show_experiment(self) -> None:
        """Run > Experiment… (Ctrl+Shift+E): the Train workspace's Experiment tab."""
        self.tabs.setCurrentWidget(self._train_host)
        self.train_page.show_experiment()

    def show_getting_started(self) -> None:
        from neuralstudio.ui.getting_started import GettingStartedDialog

        if getattr(self, "_getting_started", None) is None:
            self._getting_started = GettingStartedDialog(self)
        self._getting_started.show()
        self._getting_started.raise_()

    def show_backend_settings(self) -> None:
        """Settings > Keras Backend…: choose the backend of the next start, measure this design on each."""
        from neuralstudio.ui.backend_dialog import open_backend_dialog

        self.backend_dialog = open_backend_dialog(self)

    def show_about(self) -> None:
        from neuralstudio.ui.about_dialog import AboutDialog

        AboutDialog(self).exec()

    # ============================================================ status bar
    def _make_status_bar(self) -> None:
        sb = self.statusBar()
        self.params_label = self.editor.params_label
        self.check_label = self.editor.check_label
        self.keras_label = QLabel("Loading Keras…")
        self.keras_label.setObjectName("kerasStatus")
        self.keras_busy = QProgressBar()
        self.keras_busy.setRange(0, 0)
        self.keras_busy.setMaximumWidth(90)
        self.keras_busy.setMaximumHeight(14)
        self.keras_busy.setToolTip("Keras and TensorFlow are loading in the background; you can already edit.")
        sb.addPermanentWidget(self.check_label)
        sb.addPermanentWidget(self.params_label)
        sb.addPermanentWidget(self.keras_label)
        sb.addPermanentWidget(self.keras_busy)

    # =============================================================== actions
    def _action(self, text: str, slot: Any, shortcut: Any = None, tip: str = "", *, name: str = "") -> QAction:
        a = make_action(self, text, slot, shortcut, tip, name=name)
        self.addAction(a)
        return a

    def _make_actions(self) -> None:
        keys = QKeySequence.StandardKey
        ed = self.editor
        self.act_new = self._action("&New", self.new_empty, keys.New,
                                    "New empty design (templates: File > New from Template)", name="actionNew")
        self.act_rename_design = self._action("Rename &Design…", self.rename_design, None,
                                              "Give the design its own name: used by Train, its runs, the code "
                                              "and the file", name="actionRenameDesign")
        self.act_open = self._action("&Open…", self.open_dialog, keys.Open,
                                     "Open a design (.nsd) or a Keras model (.keras, .h5)", name="actionOpen")
        self.act_save = self._action("&Save", self.save, keys.Save, "Save the design", name="actionSave")
        self.act_save_as = self._action("Save &As…", self.save_as, keys.SaveAs, "Save the design under a new name",
                                        name="actionSaveAs")
        self.act_quit = self._action("&Quit", self.close, keys.Quit, "Quit NeuralStudio")
        self.act_undo, self.act_redo = ed.act_undo, ed.act_redo
        self.addAction(self.act_undo)
        self.addAction(self.act_redo)
        self.act_rename = self._action("&Rename", self.rename_selected, "F2", "Rename the selected layer")
        self.act_layout = self._action("Auto-&layout", ed.auto_layout, "Ctrl+L",
                                       "Arrange the network top to bottom", name="actionLayout")
        self.act_fit = self._action("Zoom to &Fit", ed.view.zoom_to_fit, "Ctrl+0", "Show the whole network",
                                    name="actionFit")
        self.act_zoom_in = self._action("Zoom &In", lambda: ed.view.set_zoom(ed.view.zoom * 1.25), keys.ZoomIn)
        self.act_zoom_out = self._action("Zoom O&ut", lambda: ed.view.set_zoom(ed.view.zoom / 1.25), keys.ZoomOut)
        self.act_train = self._action("&Train", self.show_train, "Ctrl+T", "Go to the Train workspace",
                                      name="actionTrain")
        self.act_experiment = self._action("E&xperiment…", self.show_experiment, "Ctrl+Shift+E",
                                           "Vary hyperparameters over many trials: the Train workspace's Experiment "
                                           "tab (Ctrl+Shift+E)", name="actionExperiment")
        self.act_export = self._action("&Export Model…", self.export_model, "Ctrl+E",
                                       "Save or export the trained (or opened) model: .keras, .h5, SavedModel, "
                                       "LiteRT, ONNX, Python code; each export is verified", name="actionExport")
        self.act_model_info = self._action("Model &Information…", self.show_model_info, "Ctrl+I",
                                           "Inputs, outputs, layers, parameters and history of the current model",
                                           name="actionModelInfo")
        self.act_export.setEnabled(False)
        self.act_model_info.setEnabled(False)
        self.act_backend = self._action("Keras &Backend…", self.show_backend_settings, None,
                                        "Train with TensorFlow, JAX or PyTorch (from the next start), and measure "
                                        "which is fastest for this design", name="actionBackend")
        self.act_about = self._action("&About NeuralStudio", self.show_about, tip="Versions, data and license")
        self.act_getting_started = self._action("&Getting Started", self.show_getting_started,
                                                QKeySequence.StandardKey.HelpContents,
                                                "The first hour in six steps, with the keys (F1)",
                                                name="actionGettingStarted")
        self.act_tabs = [self._action(t, lambda i=i: self.tabs.setCurrentIndex(i), f"Ctrl+{i + 1}")
                         for i, t in enumerate(("Design", "Train", "Predict"))]

        mb = self.menuBar()
        m_file = mb.addMenu("&File")
        m_file.addAction(self.act_new)
        self.templates_menu = m_file.addMenu("New from &Template")
        self.templates_menu.setToolTipsVisible(True)
        self.templates_menu.aboutToShow.connect(self._fill_templates_menu)
        m_file.addAction(self.act_open)
        self.recent_menu = m_file.addMenu("Open &Recent")
        self.recent_menu.aboutToShow.connect(self._fill_recent_menu)
        m_file.addSeparator()
        m_file.addAction(self.act_save)
        m_file.addAction(self.act_save_as)
        m_file.addAction(self.act_rename_design)
        m_file.addSeparator()
        m_file.addAction(self.act_export)
        m_file.addAction(self.act_model_info)
        m_file.addSeparator()
        m_file.addAction(self.act_quit)
        m_edit = mb.addMenu("&Edit")
        for a in (self.act_undo, self.act_redo, None, ed.act_copy, ed.act_paste, ed.act_duplicate,
                  ed.act_delete, self.act_rename, ed.act_select_all):
            m_edit.addSeparator() if a is None else m_edit.addAction(a)
        m_view = mb.addMenu("&View")
        for a in (self.act_layout, self.act_fit, self.act_zoom_in, self.act_zoom_out, None, *self.act_tabs):
            m_view.addSeparator() if a is None else m_view.addAction(a)
        m_view.addSeparator()
        for d in (ed.palette_dock, ed.inspector_dock, ed.code_dock, ed.problems_dock):
            m_view.addAction(d.toggleViewAction())
        m_run = mb.addMenu("&Run")
        m_run.addAction(self.act_train)
        m_run.addAction(self.act_experiment)
        m_settings = mb.addMenu("&Settings")
        m_settings.setToolTipsVisible(True)
        m_settings.addAction(self.act_backend)
        m_help = mb.addMenu("&Help")
        m_help.addAction(self.act_getting_started)
        m_help.addSeparator()
        m_help.addAction(self.act_about)

        tb = self.addToolBar("Main")
        tb.setObjectName("mainToolBar")
        tb.setToolButtonStyle(Qt.ToolButtonStyle.ToolButtonTextOnly)
        self.new_template_action = QAction("New from Template", self)
        self.new_template_action.setMenu(self.templates_menu)
        self.new_template_action.setToolTip("Start a new design from a template")
        self.new_template_action.triggered.connect(self.new_default)
        for a in (self.new_template_action, self.act_open, self.act_save, self.act_save_as):
            tb.addAction(a)
        # The editing tools only where there is a design to edit: hidden in Train and Predict
        self.design_toolbar = self.addToolBar("Design")
        self.design_toolbar.setObjectName("designToolBar")
        self.design_toolbar.setToolButtonStyle(Qt.ToolButtonStyle.ToolButtonTextOnly)
        # Undo/Redo as short fixed words: the undo stack's own actions say "Undo Set dense_1.activation",
        # and the toolbar jumped in width at every edit. The menu keeps the long text; the tip tells it.
        self.tb_undo = self._stack_action("Undo", "Undo the last change (Ctrl+Z; Edit menu: which one)",
                                          self.doc.undo_stack.undo, self.doc.undo_stack.canUndoChanged,
                                          self.doc.undo_stack.canUndo())
        self.tb_redo = self._stack_action("Redo", "Redo the change undone last (Ctrl+Shift+Z)",
                                          self.doc.undo_stack.redo, self.doc.undo_stack.canRedoChanged,
                                          self.doc.undo_stack.canRedo())
        for a in (self.tb_undo, self.tb_redo, None, self.act_layout, self.act_fit, None, self.act_train):
            self.design_toolbar.addSeparator() if a is None else self.design_toolbar.addAction(a)

    def _stack_action(self, text: str, tip: str, slot: Any, can_changed: Any, enabled: bool) -> QAction:
        """A toolbar action with fixed text for the undo stack (its own actions change text, and width, at every
        edit). Connected to C++ slots only: a Python slot on an action of a window being destroyed aborted the
        tests ("pure virtual method called")."""
        action = QAction(text, self)
        action.setToolTip(tip)
        action.setEnabled(enabled)
        action.triggered.connect(slot)
        can_changed.connect(action.setEnabled)
        return action

    def _connect(self) -> None:
        self.editor.message.connect(lambda text, ms: self.statusBar().showMessage(text, ms))
        self.editor.message.connect(lambda text, _ms: setattr(self, "last_error", text))
        self.editor.design_renamed.connect(self._on_design_renamed)
        self.editor.inspector.vary_requested.connect(self._on_vary_requested)
        self.doc.design_replaced.connect(self._on_design_replaced)
        self.doc.modified_changed.connect(lambda _m: self._update_title())
        self.doc.path_changed.connect(self._update_title)
        self.loader.loaded.connect(self._on_keras_loaded)
        self.loader.failed.connect(self._on_keras_failed)

    # ============================================================= documents
    def _load_default(self) -> None:
        from neuralstudio.core.templates import DEFAULT_TEMPLATE, load_template

        try:
            design = load_template(DEFAULT_TEMPLATE)
        except UserError as exc:
            self.statusBar().showMessage(str(exc), 10_000)
            return
        self._set_design(self._fresh_layout(design), None)

    @staticmethod
    def _fresh_layout(design: Design) -> Design:
        """Templates are laid out for this editor's node size (they are fresh copies, nothing to keep)."""
        for nid, pos in auto_layout(design.graph).items():
            design.graph.move_node(nid, pos)
        return design

    def _set_design(self, design: Design, path: Path | None, *, modified: bool = False) -> None:
        self.editor.set_design(design, path, modified=modified)

    def _on_design_replaced(self) -> None:
        train = getattr(self._train_page, "set_design", None)
        if callable(train):
            train(self.doc.design)

    def new_default(self) -> bool:
        return self.new_from_template(None)

    def new_empty(self) -> bool:
        """Replace the design with an empty one, named "untitled" until it is renamed or saved."""
        from neuralstudio.core.design import new_design_id

        if not self._confirm_discard():
            return False
        self._set_design(Design(id=new_design_id()), None)
        self.statusBar().showMessage("New design: drag layers from the palette, starting with an Input.", 8000)
        return True

    def rename_design(self) -> bool:
        """Ask for the design's name; Train, its runs, the generated code and the file name use it."""
        from neuralstudio.core.design import MAX_NAME

        name = self._ask_design_name(self.doc.design.name)
        if name is None:
            return False
        name = " ".join(name.split())
        if not name or len(name) > MAX_NAME:
            self._show_error("Cannot rename the design",
                             f"A design's name needs 1 to {MAX_NAME} characters: the name was kept.")
            return False
        if name != self.doc.design.name:
            self._set_design_name(name)
        return True

    def _ask_design_name(self, current: str) -> str | None:
        """The name typed, or None when cancelled (tests replace this method)."""
        from PySide6.QtWidgets import QInputDialog

        text, ok = QInputDialog.getText(self, "Rename the design", "Name of the design:", text=current)
        return text if ok else None

    def _set_design_name(self, name: str) -> None:
        self.doc.design.name = name
        self.doc.mark_modified()
        self._on_design_renamed()

    def _on_design_renamed(self) -> None:
        self._on_design_replaced()  # Train shows the name, and the runs of this design
        self.editor.schedule_analysis()  # the generated code is named after the design
        self._update_title()

    def new_from_template(self, name: str | None) -> bool:
        """Replace the design with a fresh copy of template ``name`` (default: mnist-cnn)."""
        from neuralstudio.core.templates import DEFAULT_TEMPLATE, load_template

        if not self._confirm_discard():
            return False
        try:
            design = load_template(name or DEFAULT_TEMPLATE)
        except UserError as exc:
            self._show_error("Cannot open the template", str(exc))
            return False
        self._set_design(self._fresh_layout(design), None)
        return True

    def open_dialog(self) -> None:
        if not self._confirm_discard():
            return
        start = str(self._dialog_folder())
        path, _ = QFileDialog.getOpenFileName(
            self, "Open a design or a Keras model", start,
            "Designs and models (*.nsd *.keras *.h5 *.hdf5);;Designs (*.nsd);;Keras models (*.keras *.h5 *.hdf5);;"
            "Weights for the current design (*.weights.h5)")
        if path:
            self.open_path(path, confirm=False)

    def open_path(self, path: str | Path, *, confirm: bool = True) -> OpenRequest:
        """Open a design (.nsd), a Keras model (.keras/.h5) or weights (.weights.h5) as the Open action does.

        A design opens at once.  A model loads in the background (after Keras, on the window's runner) and
        the returned request finishes when it is shown; if the design was edited meanwhile, the user is
        asked before those edits are replaced.  A model with code (a Lambda layer) opens only if the user
        answers the warning with "Trust and open", asked again every time.  Weights load into the current
        design's model and leave the design as it is.
        """
        p = Path(path)
        request = OpenRequest(p, self)
        if p.name.lower().endswith(WEIGHTS_SUFFIX):
            self._open_weights(request)
            return request
        if confirm and not self._confirm_discard():
            request.finish(False)
            return request
        if p.suffix.lower() not in MODEL_SUFFIXES:
            try:
                design = load_design(p)
            except UserError as exc:
                self._show_error(f"Cannot open {p.name}", str(exc))
                request.finish(False)
                return request
            self._set_design(design, p)
            self._opened(request, f"Opened {p.name} ({len(self.doc.graph)} layers).")
            return request
        self._open_model(request, trusted=False)
        return request

    def _open_model(self, request: OpenRequest, *, trusted: bool) -> None:
        p = request.path
        self._opening = request
        self.statusBar().showMessage(f"Opening {p.name}…")
        changes = self.editor.edit_count
        self.runner.submit(lambda: _import_job(p, trusted=trusted),
                           lambda res: self._on_model_opened(request, res, changes),
                           lambda exc, _tb: self._on_open_failed(request, exc, trusted))

    def _on_model_opened(self, request: OpenRequest, result: tuple[Design | None, Any, str], changes: int) -> None:
        p = request.path
        design, model, why = result
        if self._closing:
            request.finish(False)
            return
        if design is None:  # trusted code: usable in Predict and Export, but not as a design
            self._set_current_model(model, p, f"opened: {p.name}", copy=False)
            self._add_recent(p)
            self.last_error = why
            self.tabs.setCurrentWidget(self._predict_host)
            self._opening = None
            self.statusBar().showMessage(f"Opened {p.name} for Predict and Export; the design is unchanged "
                                         f"because {why[:1].lower()}{why[1:]}", 20_000)
            request.finish(True)
            return
        if self.editor.edit_count != changes and self.doc.modified and not self._ask_replace_edits(p.name):
            self._opening = None
            self.statusBar().showMessage(f"{p.name} was not opened: your changes made while it loaded are kept.",
                                         10_000)
            request.finish(False)
            return
        self._set_design(design, None, modified=True)
        self._set_current_model(model, p, f"opened: {p.name}")
        self._opened(request, f"Opened {p.name} ({len(self.doc.graph)} layers).")

    def _on_open_failed(self, request: OpenRequest, exc: BaseException, trusted: bool) -> None:
        p = request.path
        if self._closing:
            request.finish(False)
            return
        if isinstance(exc, UntrustedCodeError) and not trusted:
            if self._ask_trust(p.name, exc):
                self._open_model(request, trusted=True)
                return
            self._opening = None
            self.last_error = str(exc)
            self.statusBar().showMessage(f"{p.name} was not opened: it contains code.", 8000)
            request.finish(False)
            return
        self._opening = None
        message = str(exc) if isinstance(exc, UserError) else f"{type(exc).__name__}: {exc}"
        self.statusBar().clearMessage()
        self._show_error(f"Cannot open {p.name}", message)
        request.finish(False)

    def _opened(self, request: OpenRequest, message: str) -> None:
        self._opening = None
        self._add_recent(request.path)
        self.statusBar().showMessage(message, 5000)
        request.finish(True)

    def _open_weights(self, request: OpenRequest) -> None:
        """Load a weights-only file into the current design's model and make that the current model."""
        p = request.path
        self.statusBar().showMessage(f"Loading the weights {p.name} into {self.doc.design.name}…")
        graph = self.doc.graph.copy()
        design = design_from_dict(self.doc.design.to_dict(), self.doc.design.name)  # as it is now, for Export

        def done(model: Any) -> None:
            self._set_current_model(model, p, f"{self.doc.design.name} + {p.name}", design=design)
            self._add_recent(p)
            self.statusBar().showMessage(f"Loaded the weights {p.name}: Predict, Export and Train use them now.",
                                         8000)
            request.finish(True)

        def failed(exc: BaseException, _tb: str) -> None:
            message = str(exc) if isinstance(exc, UserError) else f"{type(exc).__name__}: {exc}"
            self.statusBar().clearMessage()
            self._show_error(f"Cannot open {p.name}", message)
            request.finish(False)

        self.runner.submit(lambda: _weights_job(graph, p), done, failed)

    def save(self) -> bool:
        if self.doc.path is None:
            return self.save_as()
        return self.save_to(self.doc.path)

    def save_as(self) -> bool:
        start = str(self.doc.path) if self.doc.path else str(self._dialog_folder() / f"{self.doc.design.name}.nsd")
        path, _ = QFileDialog.getSaveFileName(self, "Save the design", start, "Designs (*.nsd)")
        if not path:
            return False
        if not path.endswith(".nsd"):
            path += ".nsd"
        if is_template_title(self.doc.design.name):  # "untitled", or still the template's: the file names it
            self._set_design_name(Path(path).stem)
        return self.save_to(Path(path))

    def save_to(self, path: str | Path) -> bool:
        try:
            self.doc.save(Path(path))
        except OSError as exc:
            self._show_error("Cannot save", f"{path} could not be written: {exc.strerror or exc}.")
            return False
        self._add_recent(Path(path))
        self._remove_autosave()
        self.statusBar().showMessage(f"Saved {Path(path).name}.", 4000)
        return True

    def _update_title(self) -> None:
        self.setWindowTitle(f"{self.doc.display_name()}[*] — NeuralStudio")
        self.setWindowModified(self.doc.modified)

    # ------------------------------------------------------------- prompts
    def _ask_unsaved(self) -> str:
        """'save', 'discard' or 'cancel' (tests replace this method)."""
        box = QMessageBox(QMessageBox.Icon.Warning, "Unsaved changes",
                          f"{self.doc.display_name()} has changes that are not saved.",
                          QMessageBox.StandardButton.Save | QMessageBox.StandardButton.Discard
                          | QMessageBox.StandardButton.Cancel, self)
        box.setInformativeText("Save them before continuing?")
        answer = box.exec()
        return {QMessageBox.StandardButton.Save: "save",
                QMessageBox.StandardButton.Discard: "discard"}.get(QMessageBox.StandardButton(answer), "cancel")

    def _ask_replace_edits(self, file_name: str) -> bool:
        """True to replace the edits made while ``file_name`` was loading (tests replace this method)."""
        answer = QMessageBox.question(
            self, "Replace your changes?",
            f"You changed the design while {file_name} was opening. Replace the design (and those changes) "
            f"with {file_name}?",
            QMessageBox.StandardButton.Yes | QMessageBox.StandardButton.No, QMessageBox.StandardButton.No)
        return answer == QMessageBox.StandardButton.Yes

    def _ask_trust(self, file_name: str, exc: UntrustedCodeError) -> bool:
        """True to open a file with code in it after a warning; asked every time, never remembered.

        Tests replace this method.
        """
        from neuralstudio.ui.predict.workspace import ask_trust

        return ask_trust(self, file_name, exc)

    def _ask_restore_autosave(self, when: str) -> bool:
        answer = QMessageBox.question(
            self, "Recover unsaved work?",
            f"NeuralStudio did not close normally and kept a copy of your unsaved design ({when}). Recover it?",
            QMessageBox.StandardButton.Yes | QMessageBox.StandardButton.No, QMessageBox.StandardButton.Yes)
        return answer == QMessageBox.StandardButton.Yes

    def _show_error(self, title: str, message: str) -> None:
        self.last_error = message
        QMessageBox.warning(self, title, message)

    def _confirm_discard(self) -> bool:
        if not self.doc.modified:
            return True
        answer = self._ask_unsaved()
        if answer == "save":
            return self.save()
        return answer == "discard"

    # ------------------------------------------------------ recent / settings
    def recent_files(self) -> list[str]:
        value = settings().value("recentFiles", [])
        if isinstance(value, str):
            value = [value]
        return [str(v) for v in value or []]

    def _dialog_folder(self) -> Path:
        """Where Open and Save As start: the design's folder, else the last file's, else the home folder."""
        if self.doc.path is not None:
            return self.doc.path.parent
        for r in self.recent_files():
            if Path(r).parent.is_dir():
                return Path(r).parent
        return Path.home()

    def _add_recent(self, p: Path) -> None:
        s = str(p.resolve())
        recent = [r for r in self.recent_files() if r != s]
        settings().setValue("recentFiles", [s, *recent][:MAX_RECENT])

    def _fill_recent_menu(self) -> None:
        self.recent_menu.clear()
        recent = [r for r in self.recent_files() if Path(r).exists()]
        if not recent:
            self.recent_menu.addAction("No recent files").setEnabled(False)
        for r in recent:
            a = self.recent_menu.addAction(Path(r).name)
            a.setToolTip(r)
            a.triggered.connect(lambda _c=False, path=r: self.open_path(path))

    def _fill_templates_menu(self) -> None:
        from neuralstudio.core.templates import list_templates

        self.templates_menu.clear()
        try:
            infos = list_templates()
        except UserError as exc:
            self.templates_menu.addAction(str(exc)).setEnabled(False)
            return
        for info in infos:
            a = self.templates_menu.addAction(f"{info.title}" + ("  (default)" if info.is_default else ""))
            a.setToolTip(info.summary)
            a.setStatusTip(info.summary)
            a.triggered.connect(lambda _c=False, n=info.name: self.new_from_template(n))

    def _restore_settings(self) -> None:
        s = settings()
        geo = s.value("window/geometry")
        if isinstance(geo, QByteArray) and not geo.isEmpty():
            self.restoreGeometry(geo)
        else:
            self.resize(1400, 860)
        state = s.value("window/state")
        if isinstance(state, QByteArray):
            self.restoreState(state)
        docks = s.value("design/docks")
        if isinstance(docks, QByteArray):
            self.editor.restoreState(docks)
        else:  # first start: sizes apply once the window has its real size
            QTimer.singleShot(0, self.editor.default_dock_sizes)

    def _save_settings(self) -> None:
        s = settings()
        s.setValue("window/geometry", self.saveGeometry())
        s.setValue("window/state", self.saveState())
        s.setValue("design/docks", self.editor.saveState())
        s.sync()

    # ------------------------------------------------------------ autosave
    def autosave(self) -> bool:
        """Write a recovery copy when there are unsaved changes since the last one."""
        if not (self.doc.modified and self.editor.changed_since_autosave):
            return False
        folder = autosave_dir()
        try:
            folder.mkdir(parents=True, exist_ok=True)
            self.doc.design.save(folder / "autosave.nsd")
            from neuralstudio.core.atomic import atomic_write_text

            atomic_write_text(folder / "autosave.json", json.dumps(
                {"path": str(self.doc.path) if self.doc.path else None}))
        except OSError as exc:
            self.statusBar().showMessage(f"Autosave failed: {exc.strerror or exc}", 8000)
            return False
        self.editor.changed_since_autosave = False
        return True

    def _remove_autosave(self) -> None:
        for name in ("autosave.nsd", "autosave.json"):
            try:
                (autosave_dir() / name).unlink()
            except OSError:
                pass

    def _offer_autosave(self) -> bool:
        f = autosave_dir() / "autosave.nsd"
        if not f.exists():
            return False
        import datetime

        when = datetime.datetime.fromtimestamp(f.stat().st_mtime).strftime("%Y-%m-%d %H:%M")
        if not self._ask_restore_autosave(when):
            self._remove_autosave()
            return False
        try:
            design = load_design(f)
            meta = json.loads((autosave_dir() / "autosave.json").read_text("utf-8"))
        except (UserError, OSError, ValueError) as exc:
            self.statusBar().showMessage(f"The autosave could not be read: {exc}", 10_000)
            return False
        path = Path(meta["path"]) if isinstance(meta, dict) and meta.get("path") else None
        self._set_design(design, path, modified=True)
        self.editor.changed_since_autosave = True
        return True

    # ================================================================ Keras
    def _on_keras_loaded(self) -> None:
        self.keras_label.setText(f"Keras {self.loader.keras_version}")
        self.keras_busy.hide()
        self.editor.set_catalog(self.loader.catalog)
        # TensorFlow's ~270,000 long-lived objects are in now: freeze them so full passes stay short
        QTimer.singleShot(0, self.garbage.settle)

    def _on_keras_failed(self, message: str) -> None:
        self.keras_label.setText("Keras failed to load")
        self.keras_label.setToolTip(message)
        self.keras_busy.hide()
        self.editor.set_keras_failed(message)

    # ================================================================ misc
    def rename_selected(self) -> None:
        self.tabs.setCurrentWidget(self.editor)
        self.editor.focus_rename()

    def show_train(self) -> None:
        self.tabs.setCurrentWidget(self._train_host)

    # ================================================================ close
    def closeEvent(self, event: QCloseEvent) -> None:
        if self._closing:  # already shut down (tests, benchmark)
            event.accept()
            return
        request = getattr(self._train_page, "request_close", None)
        if callable(request) and not request():
            event.ignore()
            return
        if not self._confirm_discard():
            event.ignore()
            return
        self.shutdown()
        event.accept()

    def shutdown(self, *, keep_autosave: bool = False) -> None:
        """Stop timers and the worker thread (a running QThread must never be destroyed).

        Args:
            keep_autosave: leave the recovery copy in place (what a crash leaves behind).
        """
        if self._closing:
            return
        self._closing = True
        self.editor.shutdown()
        self._autosave_timer.stop()
        self._save_settings()
        if not keep_autosave:
            self._remove_autosave()
        shutdown = getattr(self._train_page, "shutdown", None)
        if callable(shutdown):
            shutdown()
        self.runner.shutdown()

    def menu(self, title: str) -> QMenu | None:
        for a in self.menuBar().actions():
            if a.text().replace("&", "") == title:
                return a.menu()
        return None
