"""The main window: Design, Train and Predict workspaces, menus, toolbar, settings, autosave.

The window owns one :class:`Document` (the design, its undo stack, its path)
and one background :class:`TaskRunner` whose first task loads Keras.  Every edit
the editor widgets request becomes an undo command (``_push``); the scene,
inspector and problems list follow the graph's events.  Analysis runs on a
copy of the graph in the background, debounced, and its result is applied
only if no edit happened since it started.
"""

from __future__ import annotations

import copy
import json
from pathlib import Path
from typing import Any

from PySide6.QtCore import QByteArray, QMimeData, QPointF, QSettings, Qt, QTimer, Signal
from PySide6.QtGui import QAction, QCloseEvent, QGuiApplication, QKeySequence
from PySide6.QtWidgets import (
    QDockWidget,
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

from neuralstudio.core.design import Design, load_design
from neuralstudio.core.errors import UserError
from neuralstudio.core.events import GraphEvent
from neuralstudio.core.graph import Edge, Graph
from neuralstudio.core.paths import user_data_dir
from neuralstudio.ml.model_files import UntrustedCodeError
from neuralstudio.ui import commands as cmd
from neuralstudio.ui.code_view import CodeView
from neuralstudio.ui.document import Document
from neuralstudio.ui.editor.layout import NODE_H, NODE_W, ROW_GAP, auto_layout
from neuralstudio.ui.editor.scene import GraphScene
from neuralstudio.ui.editor.view import GraphView
from neuralstudio.ui.garbage_collection import gui_garbage_collector
from neuralstudio.ui.inspector import Inspector
from neuralstudio.ui.keras_loader import KerasLoader
from neuralstudio.ui.palette import Palette
from neuralstudio.ui.problems_panel import ProblemsList
from neuralstudio.ui.tasks import TaskRunner

NODES_MIME = "application/x-neuralstudio-nodes"
MODEL_SUFFIXES = (".keras", ".h5", ".hdf5")
WEIGHTS_SUFFIX = ".weights.h5"
MAX_RECENT = 8
AUTOSAVE_MS = 60_000
ANALYSIS_DELAY_MS = 300
PAGES_DELAY_MS = 250  # build the Train/Predict pages after the first paint


def settings() -> QSettings:
    """The app's settings, an INI file in the user data folder (``NEURALSTUDIO_HOME`` in tests)."""
    return QSettings(str(user_data_dir() / "settings.ini"), QSettings.Format.IniFormat)


def autosave_dir() -> Path:
    return user_data_dir() / "autosave"


def lay_out_missing(graph: Graph) -> None:
    """Give every node a position (files without a layout, imported models)."""
    if any(graph.position(n) is None for n in graph.nodes):
        for nid, pos in auto_layout(graph).items():
            graph.move_node(nid, pos)


def _analysis_job(graph: Graph, design: Design) -> dict[str, Any]:
    """Runs in the worker thread on a private copy: problems, shapes, counts and the generated code."""
    from neuralstudio.ml.builder import analyze

    # Shape-only analysis: ~20 ms after an edit of a 200-layer graph instead of building the whole model.
    result = analyze(graph, build=False, loss=design.training.loss)
    code, code_error = "", ""
    try:
        from neuralstudio.ml.codegen import generate_code
    except ImportError:
        code_error = "The code generator is not installed in this build."
    else:
        try:
            code = generate_code(design)
        except Exception as exc:  # noqa: BLE001 - shown under the code view
            code_error = f"No code for this design yet: {exc}"
    return {"analysis": result, "code": code, "code_error": code_error}


def _import_job(path: Path, trusted: bool = False) -> tuple[Design | None, Any, str]:
    """Runs in the worker thread: load a Keras model file and turn it into a laid-out design.

    The loaded model is returned too: it becomes the current model for Predict and export.
    ``trusted`` is the user's explicit, per-file consent to run the file's code (Lambda layers).
    A trusted model with code cannot become a design (a design holds no Python code): it is then
    returned without one (None) and with the reason, so that Predict and Export can still use it.
    """
    from neuralstudio.ml.importer import ModelImportError, import_model
    from neuralstudio.ml.model_files import load_keras_model

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


def apply_fix(graph: Graph, problem: Any) -> None:
    """Apply ``problem.fix`` to ``graph`` with core's fixer (run inside a SnapshotCommand)."""
    from neuralstudio.core.fixes import apply_fix as core_apply_fix

    core_apply_fix(graph, problem)


class MainWindow(QMainWindow):
    """The application window.

    Args:
        load_default: open the default template (``mnist-cnn``) at start.
        check_autosave: offer back an autosave left by a crash.
    """

    analysis_applied = Signal()
    design_loaded = Signal()

    def __init__(self, *, load_default: bool = True, check_autosave: bool = True) -> None:
        super().__init__()
        self.setObjectName("mainWindow")
        self.setWindowTitle("NeuralStudio")
        # before any worker thread starts: garbage is collected in this thread only (see the module)
        self.garbage = gui_garbage_collector()
        self.runner = TaskRunner(self)
        self.loader = KerasLoader(self.runner, self)
        self.doc = Document(self)
        self.last_analysis: Any = None
        self.current_model: Any = None
        self.current_model_path: Path | None = None
        self._generation = 0
        self._analysing = False
        self._analysis_pending = False
        self._autosave_dirty = False
        self._closing = False
        self._catalog: dict[str, Any] = {}
        self._validate: Any = None

        self.scene = GraphScene(self)
        self.view = GraphView(self.scene)
        self.palette = Palette()
        self.inspector = Inspector()
        self.problems = ProblemsList()
        self.code_view = CodeView()

        self.tabs = QTabWidget()
        self.tabs.setObjectName("workspaceTabs")
        self.tabs.setAccessibleName("workspaceTabs")
        self.design_page = self._make_design_page()
        self.tabs.addTab(self.design_page, "Design")
        # The Train and Predict pages (pyqtgraph plots) are built just after the first paint, or when
        # their tab is first opened, so that the window appears within half a second.
        self._train_page: Any = None
        self._predict_page: Any = None
        self._train_host = self._page_host("trainHost")
        self.tabs.addTab(self._train_host, "Train")
        self._predict_host = self._page_host("predictHost")
        self.tabs.addTab(self._predict_host, "Predict")
        self.tabs.currentChanged.connect(lambda _index: self._ensure_pages())
        self.tabs.setTabToolTip(0, "Design the network (Ctrl+1)")
        self.tabs.setTabToolTip(1, "Train it and watch loss and accuracy (Ctrl+2)")
        self.tabs.setTabToolTip(2, "Draw digits and see what it predicts (Ctrl+3)")
        self.setCentralWidget(self.tabs)

        self._make_status_bar()
        self._make_actions()
        self._connect()

        self._analysis_timer = QTimer(self)
        self._analysis_timer.setSingleShot(True)
        self._analysis_timer.setInterval(ANALYSIS_DELAY_MS)
        self._analysis_timer.timeout.connect(self._on_analysis_timer)
        self._autosave_timer = QTimer(self)
        self._autosave_timer.setInterval(AUTOSAVE_MS)
        self._autosave_timer.timeout.connect(self.autosave)
        self._autosave_timer.start()

        self.scene.set_graph(self.doc.graph)
        self._restore_settings()
        if check_autosave and self._offer_autosave():
            pass
        elif load_default:
            self._load_default()
        self.loader.start()
        self._update_title()
        QTimer.singleShot(PAGES_DELAY_MS, self._ensure_pages)

    # ================================================================ pages
    def _make_design_page(self) -> QMainWindow:
        page = QMainWindow()
        page.setObjectName("designWorkspace")
        page.setWindowFlags(Qt.WindowType.Widget)
        page.setCentralWidget(self.view)
        page.setDockOptions(QMainWindow.DockOption.AnimatedDocks | QMainWindow.DockOption.AllowTabbedDocks)

        def dock(title: str, name: str, widget: QWidget, area: Qt.DockWidgetArea) -> QDockWidget:
            d = QDockWidget(title, page)
            d.setObjectName(name)
            d.setWidget(widget)
            d.setFeatures(QDockWidget.DockWidgetFeature.DockWidgetMovable
                          | QDockWidget.DockWidgetFeature.DockWidgetFloatable
                          | QDockWidget.DockWidgetFeature.DockWidgetClosable)
            page.addDockWidget(area, d)
            return d

        self.palette_dock = dock("Layers", "paletteDock", self.palette, Qt.DockWidgetArea.LeftDockWidgetArea)
        self.inspector_dock = dock("Inspector", "inspectorDock", self.inspector, Qt.DockWidgetArea.RightDockWidgetArea)
        self.code_dock = dock("Code", "codeDock", self.code_view, Qt.DockWidgetArea.RightDockWidgetArea)
        self.problems_dock = dock("Problems", "problemsDock", self.problems, Qt.DockWidgetArea.BottomDockWidgetArea)
        page.tabifyDockWidget(self.inspector_dock, self.code_dock)
        self.inspector_dock.raise_()
        page.resizeDocks([self.palette_dock, self.inspector_dock], [250, 340], Qt.Orientation.Horizontal)
        page.resizeDocks([self.problems_dock], [130], Qt.Orientation.Vertical)
        return page

    @staticmethod
    def _page_host(name: str) -> QWidget:
        host = QWidget()
        host.setObjectName(name)
        QVBoxLayout(host).setContentsMargins(0, 0, 0, 0)
        return host

    def _ensure_pages(self) -> None:
        """Build the Train and Predict workspaces once (deferred from start-up)."""
        if self._train_page is not None or getattr(self, "_closing", False):
            return
        self._train_page = self._make_train_page()
        self._train_host.layout().addWidget(self._train_page)
        self._predict_page = self._make_predict_page()
        self._predict_host.layout().addWidget(self._predict_page)
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
        return page

    def _make_predict_page(self) -> QWidget:
        from neuralstudio.ui.predict.workspace import PredictWorkspace

        # Shares the window's runner, so the bundled model loads after Keras and stops with the window.
        return PredictWorkspace(runner=self.runner)

    # ========================================================= current model
    def _set_current_model(self, model: Any, path: Path | None, label: str, *, copy: bool = True) -> None:
        """The model Predict shows and Export writes: the last one trained or opened.

        ``copy=False`` hands Predict the model itself: for a trusted model with code, which Keras
        would refuse to copy (the copy goes through safe-mode deserialization); it is not training.
        """
        self.current_model = model
        self.current_model_path = path
        self.predict_page.set_model(model, label, copy=copy)
        self.train_page.set_start_model(model, label)
        self.act_export.setEnabled(True)
        self.act_model_info.setEnabled(True)

    def _on_model_trained(self, model: Any, label: str) -> None:
        self._set_current_model(model, None, f"trained: {label}")
        self.statusBar().showMessage("The trained model is now used by Predict and Export.", 8000)

    def export_model(self) -> None:
        """File > Export: every format, verified against the Keras model before it is written."""
        if self.current_model is None:
            self._show_error("Nothing to export yet",
                             "Train the design first (Train workspace), or open a .keras or .h5 model.")
            return
        from neuralstudio.ui.export.dialog import ExportDialog

        dialog = ExportDialog(self.current_model, model_path=self.current_model_path, design=self.doc.design,
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

    def show_about(self) -> None:
        from neuralstudio.ui.about_dialog import AboutDialog

        AboutDialog(self).exec()

    # ============================================================ status bar
    def _make_status_bar(self) -> None:
        sb = self.statusBar()
        self.params_label = QLabel("Total params: –")
        self.params_label.setObjectName("totalParams")
        self.params_label.setAccessibleName("totalParams")
        self.params_label.setToolTip("Parameters of the whole model (trainable in brackets)")
        self.params_label.setMinimumWidth(self.params_label.fontMetrics().horizontalAdvance(
            "Total params: 000,000,000 (trainable 000,000,000)"))
        self.check_label = QLabel("")
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
    def _action(self, text: str, slot: Any, shortcut: Any = None, tip: str = "", *, local: bool = False,
                name: str = "") -> QAction:
        a = QAction(text, self)
        if shortcut is not None:
            a.setShortcut(QKeySequence(shortcut))
        if name:
            a.setObjectName(name)
        keys = a.shortcut().toString(QKeySequence.SequenceFormat.NativeText)
        a.setToolTip(f"{tip or text.replace('&', '').rstrip('…')}" + (f" ({keys})" if keys else ""))
        a.setStatusTip(tip or text.replace("&", ""))
        a.triggered.connect(lambda _checked=False: slot())
        if local:  # editing keys must not steal Ctrl+C etc. from text fields
            a.setShortcutContext(Qt.ShortcutContext.WidgetWithChildrenShortcut)
            self.view.addAction(a)
        else:
            self.addAction(a)
        return a

    def _make_actions(self) -> None:
        keys = QKeySequence.StandardKey
        self.act_new = self._action("&New", self.new_default, keys.New, "New design from the default template",
                                    name="actionNew")
        self.act_open = self._action("&Open…", self.open_dialog, keys.Open,
                                     "Open a design (.nsd) or a Keras model (.keras, .h5)", name="actionOpen")
        self.act_save = self._action("&Save", self.save, keys.Save, "Save the design", name="actionSave")
        self.act_save_as = self._action("Save &As…", self.save_as, keys.SaveAs, "Save the design under a new name",
                                        name="actionSaveAs")
        self.act_quit = self._action("&Quit", self.close, keys.Quit, "Quit NeuralStudio")
        self.act_undo = self.doc.undo_stack.createUndoAction(self, "&Undo")
        self.act_undo.setShortcut(QKeySequence(keys.Undo))
        self.act_undo.setObjectName("actionUndo")
        self.act_undo.setToolTip("Undo the last change (Ctrl+Z)")
        self.act_redo = self.doc.undo_stack.createRedoAction(self, "&Redo")
        self.act_redo.setShortcuts([QKeySequence(keys.Redo), QKeySequence("Ctrl+Y")])
        self.act_redo.setObjectName("actionRedo")
        self.act_redo.setToolTip("Redo the change undone last (Ctrl+Shift+Z)")
        self.addAction(self.act_undo)
        self.addAction(self.act_redo)
        self.act_delete = self._action("&Delete", self.delete_selection, keys.Delete, "Delete the selected layers",
                                       local=True)
        self.act_copy = self._action("&Copy", self.copy_selection, keys.Copy, "Copy the selected layers", local=True)
        self.act_paste = self._action("&Paste", self.paste, keys.Paste, "Paste layers", local=True)
        self.act_duplicate = self._action("D&uplicate", self.duplicate, "Ctrl+D", "Duplicate the selected layers",
                                          local=True)
        self.act_rename = self._action("&Rename", self.rename_selected, "F2", "Rename the selected layer")
        self.act_select_all = self._action("Select &All", self.scene_select_all, keys.SelectAll,
                                           "Select every layer", local=True)
        self.act_layout = self._action("Auto-&layout", self.auto_layout, "Ctrl+L",
                                       "Arrange the network top to bottom", name="actionLayout")
        self.act_fit = self._action("Zoom to &Fit", self.view.zoom_to_fit, "Ctrl+0", "Show the whole network",
                                    name="actionFit")
        self.act_zoom_in = self._action("Zoom &In", lambda: self.view.set_zoom(self.view.zoom * 1.25), keys.ZoomIn)
        self.act_zoom_out = self._action("Zoom O&ut", lambda: self.view.set_zoom(self.view.zoom / 1.25), keys.ZoomOut)
        self.act_train = self._action("&Train", self.show_train, "Ctrl+T", "Go to the Train workspace",
                                      name="actionTrain")
        self.act_export = self._action("&Export Model…", self.export_model, "Ctrl+E",
                                       "Save or export the trained (or opened) model: .keras, .h5, SavedModel, "
                                       "LiteRT, ONNX, Python code; each export is verified", name="actionExport")
        self.act_model_info = self._action("Model &Information…", self.show_model_info, "Ctrl+I",
                                           "Inputs, outputs, layers, parameters and history of the current model",
                                           name="actionModelInfo")
        self.act_export.setEnabled(False)
        self.act_model_info.setEnabled(False)
        self.act_about = self._action("&About NeuralStudio", self.show_about, tip="Versions, data and license")
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
        m_file.addSeparator()
        m_file.addAction(self.act_export)
        m_file.addAction(self.act_model_info)
        m_file.addSeparator()
        m_file.addAction(self.act_quit)
        m_edit = mb.addMenu("&Edit")
        for a in (self.act_undo, self.act_redo, None, self.act_copy, self.act_paste, self.act_duplicate,
                  self.act_delete, self.act_rename, self.act_select_all):
            m_edit.addSeparator() if a is None else m_edit.addAction(a)
        m_view = mb.addMenu("&View")
        for a in (self.act_layout, self.act_fit, self.act_zoom_in, self.act_zoom_out, None, *self.act_tabs):
            m_view.addSeparator() if a is None else m_view.addAction(a)
        m_view.addSeparator()
        for d in (self.palette_dock, self.inspector_dock, self.code_dock, self.problems_dock):
            m_view.addAction(d.toggleViewAction())
        m_run = mb.addMenu("&Run")
        m_run.addAction(self.act_train)
        m_help = mb.addMenu("&Help")
        m_help.addAction(self.act_about)

        tb = self.addToolBar("Main")
        tb.setObjectName("mainToolBar")
        tb.setToolButtonStyle(Qt.ToolButtonStyle.ToolButtonTextOnly)
        self.new_template_action = QAction("New from Template", self)
        self.new_template_action.setMenu(self.templates_menu)
        self.new_template_action.setToolTip("Start a new design from a template")
        self.new_template_action.triggered.connect(self.new_default)
        for a in (self.new_template_action, self.act_open, self.act_save, self.act_save_as, None, self.act_undo,
                  self.act_redo, None, self.act_layout, self.act_fit, None, self.act_train):
            tb.addSeparator() if a is None else tb.addAction(a)

    def _connect(self) -> None:
        self.doc.graph_event.connect(self._on_graph_event)
        self.doc.design_replaced.connect(self._on_design_replaced)
        self.doc.modified_changed.connect(lambda _m: self._update_title())
        self.doc.path_changed.connect(self._update_title)
        self.loader.loaded.connect(self._on_keras_loaded)
        self.loader.failed.connect(self._on_keras_failed)
        self.scene.selectionChanged.connect(self._on_selection_changed)
        self.scene.connect_requested.connect(self._on_connect_requested)
        self.scene.move_requested.connect(self._on_move_requested)
        self.scene.drop_requested.connect(self._on_drop_requested)
        self.palette.activated.connect(self.append_layer)
        self.inspector.param_edit_requested.connect(self._on_param_edit_requested)
        self.inspector.rename_requested.connect(self._on_rename_requested)
        self.problems.node_requested.connect(self._on_problem_node)
        self.problems.fix_requested.connect(self.apply_fix)
        self.view.zoom_changed.connect(lambda z: self.statusBar().showMessage(f"Zoom {z:.0%}", 1500))

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
        lay_out_missing(design.graph)
        self.doc.set_design(design, path, modified=modified)
        self.design_loaded.emit()

    def _on_design_replaced(self) -> None:
        self.scene.set_graph(self.doc.graph)
        self.inspector.show_node(self.doc.graph, None)
        self.last_analysis = None
        self.params_label.setText("Total params: –")
        self._autosave_dirty = False
        self._schedule_analysis()
        QTimer.singleShot(0, self.view.zoom_to_fit)
        train = getattr(self._train_page, "set_design", None)
        if callable(train):
            train(self.doc.design)

    def new_default(self) -> bool:
        return self.new_from_template(None)

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
        start = str(self.doc.path.parent) if self.doc.path else str(Path.home())
        path, _ = QFileDialog.getOpenFileName(
            self, "Open a design or a Keras model", start,
            "Designs and models (*.nsd *.keras *.h5 *.hdf5);;Designs (*.nsd);;Keras models (*.keras *.h5 *.hdf5);;"
            "Weights for the current design (*.weights.h5)")
        if path:
            self.open_path(path, confirm=False)

    def open_path(self, path: str | Path, *, confirm: bool = True) -> bool:
        """Open a design (.nsd), a Keras model (.keras/.h5) or weights (.weights.h5) as the Open action does.

        Models load in the background (the window stays responsive); this
        returns once the design is shown, True on success.  A model with
        code (a Lambda layer) opens only if the user answers the warning
        with "Trust and open", asked again every time.  Weights load into
        the current design's model and leave the design as it is.
        """
        p = Path(path)
        if p.name.lower().endswith(WEIGHTS_SUFFIX):
            return self._open_weights(p)
        if confirm and not self._confirm_discard():
            return False
        try:
            if p.suffix.lower() in MODEL_SUFFIXES:
                self.statusBar().showMessage(f"Opening {p.name}…")
                if not self.loader.wait():
                    raise UserError(self.loader.error or "Keras is not available.")
                try:
                    design, model, why = self.runner.call(lambda: _import_job(p))
                except UntrustedCodeError as exc:
                    if not self._ask_trust(p.name, exc):
                        self.last_error = str(exc)
                        self.statusBar().showMessage(f"{p.name} was not opened: it contains code.", 8000)
                        return False
                    design, model, why = self.runner.call(lambda: _import_job(p, trusted=True))
                if design is None:  # trusted code: usable in Predict and Export, but not as a design
                    self._set_current_model(model, p, f"opened: {p.name}", copy=False)
                    self._add_recent(p)
                    self.last_error = why
                    self.tabs.setCurrentWidget(self.predict_page)
                    self.statusBar().showMessage(f"Opened {p.name} for Predict and Export; the design is unchanged "
                                                 f"because {why[:1].lower()}{why[1:]}", 20_000)
                    return True
                self._set_design(design, None, modified=True)
                self._set_current_model(model, p, f"opened: {p.name}")
            else:
                design = load_design(p)
                self._set_design(design, p)
        except UserError as exc:
            self._show_error(f"Cannot open {p.name}", str(exc))
            return False
        except Exception as exc:  # noqa: BLE001 - a broken model file must not crash the editor
            self._show_error(f"Cannot open {p.name}", f"{type(exc).__name__}: {exc}")
            return False
        self._add_recent(p)
        self.statusBar().showMessage(f"Opened {p.name} ({len(self.doc.graph)} layers).", 5000)
        return True

    def _open_weights(self, p: Path) -> bool:
        """Load a weights-only file into the current design's model and make that the current model."""
        try:
            if not self.loader.wait():
                raise UserError(self.loader.error or "Keras is not available.")
            self.statusBar().showMessage(f"Loading the weights {p.name} into {self.doc.design.name}…")
            graph = self.doc.graph.copy()
            model = self.runner.call(lambda: _weights_job(graph, p))
        except UserError as exc:
            self._show_error(f"Cannot open {p.name}", str(exc))
            return False
        except Exception as exc:  # noqa: BLE001 - e.g. a design that does not build
            self._show_error(f"Cannot open {p.name}", f"{type(exc).__name__}: {exc}")
            return False
        self._set_current_model(model, p, f"{self.doc.design.name} + {p.name}")
        self._add_recent(p)
        self.statusBar().showMessage(f"Loaded the weights {p.name}: Predict, Export and Train use them now.", 8000)
        return True

    def save(self) -> bool:
        if self.doc.path is None:
            return self.save_as()
        return self.save_to(self.doc.path)

    def save_as(self) -> bool:
        start = str(self.doc.path) if self.doc.path else str(Path.home() / f"{self.doc.design.name}.nsd")
        path, _ = QFileDialog.getSaveFileName(self, "Save the design", start, "Designs (*.nsd)")
        if not path:
            return False
        if not path.endswith(".nsd"):
            path += ".nsd"
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
            self.design_page.restoreState(docks)
        else:  # first start: sizes apply once the window has its real size
            QTimer.singleShot(0, self._default_dock_sizes)

    def _default_dock_sizes(self) -> None:
        page = self.design_page
        page.resizeDocks([self.palette_dock, self.inspector_dock], [270, 360], Qt.Orientation.Horizontal)
        page.resizeDocks([self.problems_dock], [110], Qt.Orientation.Vertical)

    def _save_settings(self) -> None:
        s = settings()
        s.setValue("window/geometry", self.saveGeometry())
        s.setValue("window/state", self.saveState())
        s.setValue("design/docks", self.design_page.saveState())
        s.sync()

    # ------------------------------------------------------------ autosave
    def autosave(self) -> bool:
        """Write a recovery copy when there are unsaved changes since the last one."""
        if not (self.doc.modified and self._autosave_dirty):
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
        self._autosave_dirty = False
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
        self._autosave_dirty = True
        return True

    # ================================================================ Keras
    def _on_keras_loaded(self) -> None:
        from neuralstudio.ml import catalog as cat

        self._catalog = self.loader.catalog
        self._validate = cat.validate_param
        self.keras_label.setText(f"Keras {self.loader.keras_version}")
        self.keras_busy.hide()
        self.palette.set_catalog(self._catalog, cat.categories())
        self.scene.set_catalog(self._catalog.get, cat.summary_text)
        self.inspector.set_catalog(self._catalog.get, cat.validate_param)
        self.problems.set_status("Checking the network…")
        self._schedule_analysis(now=True)
        # TensorFlow's ~270,000 long-lived objects are in now: freeze them so full passes stay short
        QTimer.singleShot(0, self.garbage.settle)

    def _on_keras_failed(self, message: str) -> None:
        self.keras_label.setText("Keras failed to load")
        self.keras_label.setToolTip(message)
        self.keras_busy.hide()
        self.problems.set_status(message)

    # ============================================================== analysis
    def _on_graph_event(self, ev: GraphEvent) -> None:
        self._autosave_dirty = True
        if ev.kind == "node_changed" and ev.subject == self.inspector.node_id:
            self.inspector.refresh()
        elif ev.kind == "node_removed" and ev.subject == self.inspector.node_id:
            self.inspector.show_node(self.doc.graph, None)
        if ev.kind != "node_moved":
            self._schedule_analysis()

    def _schedule_analysis(self, now: bool = False) -> None:
        self._generation += 1
        self.check_label.setText("Checking…")
        if now:
            self._analysis_timer.start(0)
        else:
            self._analysis_timer.start()

    def _on_analysis_timer(self) -> None:
        if not self.loader.is_loaded or self._closing:
            return  # _on_keras_loaded schedules it again
        if self._analysing:
            self._analysis_pending = True
            return
        gen = self._generation
        design = self.doc.design
        graph = design.graph.copy()
        snap = Design(graph=graph, training=copy.deepcopy(design.training), data=dict(design.data),
                      name=design.name, description=design.description)
        self._analysing = True
        self.runner.submit(lambda: _analysis_job(graph, snap),
                           lambda res: self._on_analysis_done(gen, res),
                           lambda exc, tb: self._on_analysis_failed(gen, exc, tb))

    def _after_analysis(self) -> None:
        self._analysing = False
        if self._analysis_pending and not self._closing:
            self._analysis_pending = False
            self._on_analysis_timer()

    def _on_analysis_done(self, gen: int, res: dict[str, Any]) -> None:
        current = gen == self._generation
        if current:
            a = res["analysis"]
            self.last_analysis = a
            self.scene.set_analysis(a.infos, a.problems)
            names = {n.id: n.name for n in self.doc.graph}
            self.problems.set_problems(a.problems, names)
            self.params_label.setText(f"Total params: {a.total_params:,} (trainable {a.trainable_params:,})")
            n_err = len(a.errors)
            self.check_label.setText(f"{n_err} problem{'s' if n_err != 1 else ''}" if n_err else "Builds ✓")
            if res["code_error"]:
                self.code_view.set_error(res["code_error"])
            else:
                self.code_view.set_code(res["code"])
        self._after_analysis()
        if current:
            self.analysis_applied.emit()

    def _on_analysis_failed(self, gen: int, exc: BaseException, tb: str) -> None:
        if gen == self._generation:
            self.problems.set_status(f"The network could not be checked: {exc}")
            self.check_label.setText("Check failed")
        self._after_analysis()

    @property
    def analysis_current(self) -> bool:
        """True when the shown analysis matches the graph as it is now."""
        return (self.last_analysis is not None and not self._analysing and not self._analysis_timer.isActive()
                and self.check_label.text() != "Checking…")

    # ================================================================= edits
    def push(self, command: cmd.GraphCommand) -> bool:
        """Apply ``command`` and put it on the undo stack; a refused edit is reported, not raised."""
        try:
            command.execute()
        except UserError as exc:
            self.statusBar().showMessage(str(exc), 8000)
            self.last_error = str(exc)
            return False
        self.doc.undo_stack.push(command)
        return True

    def push_macro(self, label: str, commands: list[cmd.GraphCommand]) -> bool:
        """Several commands as one undo step; all or nothing."""
        stack = self.doc.undo_stack
        stack.beginMacro(label)
        ok = True
        for c in commands:
            if not self.push(c):
                ok = False
                break
        stack.endMacro()
        if not ok:
            stack.undo()
            stack.setIndex(stack.index())  # the failed macro stays only as an obsolete redo
        return ok

    def _on_connect_requested(self, src: str, dst: str, slot: int) -> None:
        g = self.doc.graph
        existing = next((e for e in g.in_edges(dst) if e.slot == slot), None)
        if existing is not None and existing.src == src:
            return
        if existing is not None:  # dropping onto a used input replaces that connection
            self.push_macro("Reconnect", [cmd.DisconnectCommand(g, existing), cmd.ConnectCommand(g, src, dst, slot)])
            return
        why = g.can_connect(src, dst, slot)
        if why:
            self.statusBar().showMessage(why, 8000)
            self.last_error = why
            return
        self.push(cmd.ConnectCommand(g, src, dst, slot))

    def _on_move_requested(self, moved: dict[str, tuple[float, float]]) -> None:
        self.push(cmd.MoveNodesCommand(self.doc.graph, moved, "Move" if len(moved) > 1 else "Move layer"))

    def _default_config(self, class_name: str) -> dict[str, Any]:
        spec = self._catalog.get(class_name)
        return spec.default_config() if spec is not None else {}

    def _on_drop_requested(self, class_name: str, pos: QPointF, edge: Edge | None) -> None:
        self.add_layer(class_name, (pos.x() - NODE_W / 2, pos.y() - NODE_H / 2), edge)

    def add_layer(self, class_name: str, pos: tuple[float, float], edge: Edge | None = None) -> str | None:
        """Add a layer at ``pos``; with ``edge``, insert it into that connection. One undo step."""
        if class_name not in self._catalog and self.loader.is_loaded:
            self.statusBar().showMessage(f"{class_name} is not a layer NeuralStudio can add.", 6000)
            return None
        g = self.doc.graph
        add = cmd.AddNodeCommand(g, class_name, self._default_config(class_name), pos=(round(pos[0], 1),
                                                                                      round(pos[1], 1)))
        ok = self.push(add) if edge is None else self._insert_macro(add, edge)
        if ok:
            self.scene.select_nodes([add.node_id])
            return add.node_id
        return None

    def _insert_macro(self, add: cmd.AddNodeCommand, edge: Edge) -> bool:
        g = self.doc.graph
        stack = self.doc.undo_stack
        stack.beginMacro(f"Insert {add.class_name}")
        ok = self.push(cmd.DisconnectCommand(g, edge)) and self.push(add)
        ok = ok and self.push(cmd.ConnectCommand(g, edge.src, add.node_id, 0, edge.src_port))
        ok = ok and self.push(cmd.ConnectCommand(g, add.node_id, edge.dst, edge.slot))
        stack.endMacro()
        if not ok:
            stack.undo()
        return ok

    def append_layer(self, class_name: str) -> str | None:
        """Add a layer after the selected one (or after the output), taking over its connections."""
        g = self.doc.graph
        sel = self.scene.selected_node_ids()
        after = sel[0] if len(sel) == 1 else (g.outputs()[0] if g.outputs() else None)
        if after is None:
            c = self.view.mapToScene(self.view.viewport().rect().center())
            return self.add_layer(class_name, (c.x() - NODE_W / 2, c.y() - NODE_H / 2))
        px, py = g.position(after) or (0.0, 0.0)
        outs = g.out_edges(after)
        pos = (px, py + NODE_H + ROW_GAP) if not outs else (px + NODE_W + 40, py + (NODE_H + ROW_GAP) / 2)
        add = cmd.AddNodeCommand(g, class_name, self._default_config(class_name), pos=pos)
        stack = self.doc.undo_stack
        stack.beginMacro(f"Append {class_name}")
        ok = self.push(add)
        if ok:
            for e in outs:
                ok = ok and self.push(cmd.DisconnectCommand(g, e))
                ok = ok and self.push(cmd.ConnectCommand(g, add.node_id, e.dst, e.slot))
            ok = ok and self.push(cmd.ConnectCommand(g, after, add.node_id, 0))
        stack.endMacro()
        if not ok:
            stack.undo()
            return None
        self.scene.select_nodes([add.node_id])
        return add.node_id

    def _on_param_edit_requested(self, node_id: str, key: str, value: Any) -> None:
        self.push(cmd.SetParamCommand(self.doc.graph, node_id, key, value))

    def _on_rename_requested(self, node_id: str, name: str) -> None:
        self.push(cmd.RenameCommand(self.doc.graph, node_id, name))

    def apply_fix(self, problem: Any) -> bool:
        """One-click fix: one undo step."""
        if problem.fix is None:
            return False
        return self.push(cmd.SnapshotCommand(self.doc.graph, problem.fix.label, lambda g: apply_fix(g, problem)))

    def delete_selection(self) -> None:
        g = self.doc.graph
        edges = [e for e in self.scene.selected_edges()]
        nodes = self.scene.selected_node_ids()
        commands: list[cmd.GraphCommand] = [cmd.DisconnectCommand(g, e) for e in edges
                                            if e.src not in nodes and e.dst not in nodes]
        commands += [cmd.RemoveNodeCommand(g, n) for n in nodes]
        if commands:
            self.push_macro(f"Delete {len(nodes)} layer{'s' if len(nodes) != 1 else ''}", commands)

    def _selection_payload(self) -> dict[str, Any] | None:
        g = self.doc.graph
        chosen = set(self.scene.selected_node_ids())
        if not chosen:
            return None
        ids = [n for n in g.nodes if n in chosen]  # graph order, so pasting keeps it
        return {"nodes": [g.node(n).to_dict() for n in ids],
                "edges": [e.to_dict() for e in g.edges if e.src in chosen and e.dst in chosen],
                "positions": {n: list(g.position(n) or (0.0, 0.0)) for n in ids}}

    def copy_selection(self) -> None:
        payload = self._selection_payload()
        if payload is None:
            return
        mime = QMimeData()
        text = json.dumps(payload)
        mime.setData(NODES_MIME, text.encode("utf-8"))
        mime.setText(text)
        QGuiApplication.clipboard().setMimeData(mime)

    def paste(self) -> list[str]:
        mime = QGuiApplication.clipboard().mimeData()
        if mime is None or not mime.hasFormat(NODES_MIME):
            return []
        try:
            payload = json.loads(bytes(mime.data(NODES_MIME).data()).decode("utf-8"))
        except ValueError:
            return []
        return self._paste_payload(payload, "Paste")

    def duplicate(self) -> list[str]:
        payload = self._selection_payload()
        return self._paste_payload(payload, "Duplicate") if payload else []

    def _paste_payload(self, payload: dict[str, Any], label: str) -> list[str]:
        g = self.doc.graph
        adds: dict[str, cmd.AddNodeCommand] = {}
        commands: list[cmd.GraphCommand] = []
        taken: set[str] = set()
        for nd in payload.get("nodes", []):
            if not isinstance(nd, dict) or not isinstance(nd.get("class_name"), str):
                continue
            base = str(nd.get("name") or "layer")
            name = g.unique_name(base)
            i = 1
            while name in taken:
                name = g.unique_name(f"{base}_{i}")
                i += 1
            taken.add(name)
            x, y = payload.get("positions", {}).get(nd.get("id"), (0.0, 0.0))
            cfg = dict(nd.get("config") or {})
            cfg.pop("name", None)
            add = cmd.AddNodeCommand(g, nd["class_name"], cfg, pos=(x + 40.0, y + 40.0), name=name)
            adds[nd.get("id")] = add
            commands.append(add)

        class _Connect(cmd.GraphCommand):  # ids of pasted nodes exist only once their adds ran
            def __init__(self, e: dict[str, Any]) -> None:
                super().__init__("Connect")
                self.e = e
                self.edge: Edge | None = None

            def _redo(self) -> None:
                self.edge = g.connect(adds[self.e["src"]].node_id, adds[self.e["dst"]].node_id,
                                      self.e.get("slot", 0), src_port=self.e.get("src_port", 0))

            def undo(self) -> None:
                assert self.edge is not None
                g.disconnect(self.edge)

        for e in payload.get("edges", []):
            if e.get("src") in adds and e.get("dst") in adds:
                commands.append(_Connect(e))
        if not commands or not self.push_macro(label, commands):
            return []
        ids = [a.node_id for a in adds.values()]
        self.scene.select_nodes(ids)
        return ids

    def rename_selected(self) -> None:
        self.tabs.setCurrentWidget(self.design_page)
        self.inspector_dock.show()
        self.inspector_dock.raise_()
        self.inspector.focus_name()

    def scene_select_all(self) -> None:
        self.scene.select_nodes(list(self.doc.graph.nodes))

    def auto_layout(self) -> None:
        positions = auto_layout(self.doc.graph)
        changed = {n: p for n, p in positions.items() if self.doc.graph.position(n) != p}
        if changed:
            self.push(cmd.MoveNodesCommand(self.doc.graph, changed, "Auto-layout"))
        self.view.zoom_to_fit()

    def show_train(self) -> None:
        self.tabs.setCurrentWidget(self._train_host)

    # ============================================================ selection
    def _on_selection_changed(self) -> None:
        ids = self.scene.selected_node_ids()
        self.inspector.show_node(self.doc.graph, ids[0] if len(ids) == 1 else None)

    def _on_problem_node(self, node_id: str) -> None:
        item = self.scene.nodes.get(node_id)
        if item is None:
            return
        self.scene.select_nodes([node_id])
        self.view.centerOn(item)

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
        self._analysis_timer.stop()
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
