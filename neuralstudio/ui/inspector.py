"""The inspector: edits the selected layer's parameters with an editor per parameter kind.

Editors come from the catalog's :class:`ParamSpec` (kind, range, choices, tuple
length).  Every value is checked with ``validate_param`` before it is sent;
a refused value stays visible with the reason below it and changes nothing.
The inspector never edits the graph: it emits requests the window turns into
undo commands.

A parameter's context menu (on its label or its editor) also offers "Vary this in an
experiment": the inspector emits ``vary_requested`` with the parameter's path
(``hidden.units``; ``Dense[hidden].activation`` for every hidden layer of that class;
``hidden.repeat`` for the number of such layers, from the layer's title), and the window
adds it to the Train workspace's Experiment tab.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

from PySide6.QtCore import QEvent, QObject, Qt, Signal
from PySide6.QtWidgets import (
    QCheckBox,
    QComboBox,
    QDoubleSpinBox,
    QFormLayout,
    QHBoxLayout,
    QLabel,
    QLineEdit,
    QMenu,
    QScrollArea,
    QSpinBox,
    QVBoxLayout,
    QWidget,
)

from neuralstudio.core.graph import Graph

_INT_LIMIT = 2**31 - 1
_REG_CLASSES = {"l1": ("L1", ["l1"]), "l2": ("L2", ["l2"]), "l1_l2": ("L1L2", ["l1", "l2"])}


def _text(value: Any) -> str:
    if value is None:
        return "none"
    if isinstance(value, dict):
        return str(value.get("class_name") or value.get("config", {}).get("name") or json.dumps(value))
    return str(value)


class Editor(QObject):
    """One parameter's editor: ``widget`` to show, ``value()`` to read, ``set_value`` to show a value."""

    committed = Signal()

    def __init__(self) -> None:
        super().__init__()
        self.widget: QWidget = QWidget()

    def value(self) -> Any:
        raise NotImplementedError

    def set_value(self, value: Any) -> None:
        raise NotImplementedError


class IntEditor(Editor):
    def __init__(self, minimum: float | None, maximum: float | None) -> None:
        super().__init__()
        self.spin = QSpinBox()
        self.spin.setRange(int(minimum) if minimum is not None else -_INT_LIMIT,
                           int(maximum) if maximum is not None else _INT_LIMIT)
        self.spin.setKeyboardTracking(False)
        self.spin.valueChanged.connect(lambda _v: self.committed.emit())
        self.widget = self.spin

    def value(self) -> Any:
        return self.spin.value()

    def set_value(self, value: Any) -> None:
        if isinstance(value, int) and not isinstance(value, bool):
            self.spin.setValue(value)


class FloatEditor(Editor):
    """A spin box when the range is bounded (rates), else a text field that takes 1e-4."""

    def __init__(self, minimum: float | None, maximum: float | None) -> None:
        super().__init__()
        self.bounded = minimum is not None and maximum is not None
        if self.bounded:
            self.spin = QDoubleSpinBox()
            self.spin.setDecimals(3)
            self.spin.setSingleStep(0.05)
            self.spin.setRange(float(minimum), float(maximum))
            self.spin.setKeyboardTracking(False)
            self.spin.valueChanged.connect(lambda _v: self.committed.emit())
            self.widget = self.spin
        else:
            self.edit = QLineEdit()
            self.edit.editingFinished.connect(self.committed.emit)
            self.widget = self.edit

    def value(self) -> Any:
        if self.bounded:
            return round(self.spin.value(), 6)
        text = self.edit.text().strip()
        if text.lower() in ("", "none"):
            return None
        try:
            return float(text)
        except ValueError:
            return text  # validate_param explains why a word is not a number

    def set_value(self, value: Any) -> None:
        if self.bounded:
            if isinstance(value, (int, float)) and not isinstance(value, bool):
                self.spin.setValue(float(value))
        else:
            self.edit.setText(_text(value) if value is not None else "none")


class BoolEditor(Editor):
    def __init__(self) -> None:
        super().__init__()
        self.box = QCheckBox()
        self.box.toggled.connect(lambda _v: self.committed.emit())
        self.widget = self.box

    def value(self) -> Any:
        return self.box.isChecked()

    def set_value(self, value: Any) -> None:
        self.box.setChecked(bool(value))


class ChoiceEditor(Editor):
    """A combo box; ``editable`` for named Keras objects (activations, initializers) that may be others."""

    def __init__(self, choices: tuple | None, editable: bool) -> None:
        super().__init__()
        self.combo = QComboBox()
        self.combo.setEditable(editable)
        self._dict_value: Any = None
        for c in choices or ():
            self.combo.addItem(_text(c), c)
        if editable:
            self.combo.lineEdit().editingFinished.connect(self.committed.emit)
            self.combo.activated.connect(lambda _i: self.committed.emit())
        else:
            self.combo.activated.connect(lambda _i: self.committed.emit())
        self.widget = self.combo

    def value(self) -> Any:
        text = self.combo.currentText().strip()
        if self._dict_value is not None and text == _text(self._dict_value):
            return self._dict_value  # an imported initializer with its own config, untouched
        i = self.combo.findText(text)
        if i >= 0:
            return self.combo.itemData(i)
        return None if text.lower() == "none" else text

    def set_value(self, value: Any) -> None:
        self._dict_value = value if isinstance(value, dict) else None
        text = _text(value)
        i = self.combo.findText(text)
        if i < 0 and isinstance(value, str):
            i = self.combo.findText(value.lower())
        if i >= 0:
            self.combo.setCurrentIndex(i)
        elif self.combo.isEditable():
            self.combo.setEditText(text)
        else:
            self.combo.addItem(text, value)
            self.combo.setCurrentIndex(self.combo.count() - 1)


class RegularizerEditor(Editor):
    """none / L1 / L2 / L1+L2 with a factor."""

    def __init__(self) -> None:
        super().__init__()
        self.kind = QComboBox()
        for label, data in (("none", None), ("L1", "l1"), ("L2", "l2"), ("L1 + L2", "l1_l2")):
            self.kind.addItem(label, data)
        self.factor = QLineEdit("0.01")
        self.factor.setObjectName("regularizerFactor")
        self.factor.setToolTip("The penalty factor, e.g. 0.01 (larger = stronger regularization)")
        self.factor.setMaximumWidth(80)
        self.widget = QWidget()
        lay = QHBoxLayout(self.widget)
        lay.setContentsMargins(0, 0, 0, 0)
        lay.addWidget(self.kind, 1)
        lay.addWidget(QLabel("×"))
        lay.addWidget(self.factor)
        self.kind.activated.connect(lambda _i: self._on_kind())
        self.factor.editingFinished.connect(self.committed.emit)
        self._other: Any = None

    def _on_kind(self) -> None:
        self.factor.setEnabled(self.kind.currentData() is not None)
        self.committed.emit()

    def value(self) -> Any:
        kind = self.kind.currentData()
        if kind is None:
            return self._other if self.kind.currentText() == _text(self._other) and self._other else None
        try:
            f = float(self.factor.text())
        except ValueError:
            return "a number"  # refused with a reason by _check_factor
        if f < 0 or f != f:
            return "a number"
        cls, keys = _REG_CLASSES[kind]
        return {"class_name": cls, "config": {k: f for k in keys}}

    def set_value(self, value: Any) -> None:
        self._other = None
        if value is None:
            self.kind.setCurrentIndex(0)
        elif isinstance(value, str) and value.lower() in _REG_CLASSES:
            self.kind.setCurrentIndex(self.kind.findData(value.lower()))
        elif isinstance(value, dict) and str(value.get("class_name", "")).lower() in ("l1", "l2", "l1l2"):
            key = {"l1": "l1", "l2": "l2", "l1l2": "l1_l2"}[str(value["class_name"]).lower()]
            self.kind.setCurrentIndex(self.kind.findData(key))
            cfg = value.get("config", {})
            f = cfg.get("l2", cfg.get("l1", 0.01))
            self.factor.setText(f"{f:g}" if isinstance(f, (int, float)) else "0.01")
        else:
            self._other = value
            self.kind.addItem(_text(value), None)
            self.kind.setCurrentIndex(self.kind.count() - 1)
        self.factor.setEnabled(self.kind.currentData() is not None)


class TupleEditor(Editor):
    """One spin box per dimension (kernel sizes, strides)."""

    def __init__(self, n: int, minimum: float | None) -> None:
        super().__init__()
        self.widget = QWidget()
        lay = QHBoxLayout(self.widget)
        lay.setContentsMargins(0, 0, 0, 0)
        self.spins = []
        for i in range(n):
            s = QSpinBox()
            s.setRange(int(minimum) if minimum is not None else 0, 4096)
            s.setKeyboardTracking(False)
            s.valueChanged.connect(lambda _v: self.committed.emit())
            if i:
                lay.addWidget(QLabel("×"))
            lay.addWidget(s, 1)
            self.spins.append(s)

    def value(self) -> Any:
        return [s.value() for s in self.spins]

    def set_value(self, value: Any) -> None:
        vals = [value] * len(self.spins) if isinstance(value, int) else list(value or [])
        for s, v in zip(self.spins, vals, strict=False):
            if isinstance(v, int):
                s.setValue(v)


class TextEditor(Editor):
    """Free text: 'shape' parses "None, 28, 28, 1"; 'any' parses JSON; 'str' keeps the text."""

    def __init__(self, kind: str) -> None:
        super().__init__()
        self.kind = kind
        self.edit = QLineEdit()
        self.edit.editingFinished.connect(self.committed.emit)
        if kind == "shape":
            self.edit.setPlaceholderText("e.g. None, 28, 28, 1")
        elif kind == "any":
            self.edit.setPlaceholderText("a number, [list] or null")
        self.widget = self.edit

    def value(self) -> Any:
        text = self.edit.text().strip()
        if self.kind == "shape":
            if text.lower() in ("", "none"):
                return None
            out: list[Any] = []
            for part in text.strip("()[]").split(","):
                part = part.strip()
                if not part:
                    continue
                if part.lower() == "none":
                    out.append(None)
                else:
                    try:
                        out.append(int(part))
                    except ValueError:
                        return text
            return out
        if self.kind == "any":
            if text.lower() in ("", "none"):
                return None
            try:
                return json.loads(text)
            except ValueError:
                return text
        return text

    def set_value(self, value: Any) -> None:
        if self.kind == "shape" and isinstance(value, (list, tuple)):
            self.edit.setText(", ".join("None" if v is None else str(v) for v in value))
        elif self.kind == "any":
            self.edit.setText("none" if value is None else json.dumps(value))
        else:
            self.edit.setText("" if value is None else str(value))


#: sizes a learner types as a batch size (by habit from Keras's batch_shape): a first size among them, before
#: an example's shape, is most likely one
BATCH_SIZE_LIKE = frozenset({8, 10, 16, 32, 50, 64, 100, 128, 256, 512, 1024})


class ExampleShapeEditor(TextEditor):
    """The Input's shape, asked for as the shape of one example ("28, 28, 1"), stored as Keras's batch_shape.

    Keras's ``batch_shape`` starts with the batch size, which a design leaves open (None): typing
    "28, 28, 1" into it made batch size 28 of 28x1 inputs, and the Problems panel found nothing wrong.
    A leading None (the batch size, as Keras writes it) is accepted and dropped.
    """

    LABEL = "shape of one example"

    def __init__(self) -> None:
        super().__init__("shape")
        self.edit.setPlaceholderText("e.g. 28, 28, 1 (an MNIST image) or 784 (flattened)")

    def value(self) -> Any:
        dims = super().value()
        if not isinstance(dims, list) or not dims:
            return dims
        if dims[0] is None and len(dims) > 1:
            dims = dims[1:]
        return [None, *dims]

    def set_value(self, value: Any) -> None:
        if isinstance(value, (list, tuple)) and len(value) > 1:
            super().set_value(list(value)[1:])
        else:
            super().set_value(value)

    def hint(self) -> str:
        """A warning for a shape that is valid but probably not meant: a batch size typed first."""
        dims = self.value()
        if not isinstance(dims, list) or len(dims) < 3:
            return ""
        first, rest = dims[1], dims[2:]
        if first in BATCH_SIZE_LIKE and rest and all(isinstance(d, int) for d in rest):
            example = ", ".join(str(d) for d in rest)
            return (f"{first} looks like a batch size: give the shape of one example only ({example}?). "
                    "The batch size is chosen in Train.")
        return ""


def make_editor(spec: Any) -> Editor:
    kind = spec.kind
    if kind == "shape" and spec.name == "batch_shape":
        return ExampleShapeEditor()
    if kind == "int" and spec.default is not None:
        return IntEditor(spec.minimum, spec.maximum)
    if kind == "int":
        return TextEditor("any")
    if kind == "float":
        return FloatEditor(spec.minimum, spec.maximum)
    if kind == "bool":
        return BoolEditor()
    if kind == "choice":
        return ChoiceEditor(spec.choices, editable=False)
    if kind in ("activation", "initializer", "constraint"):
        return ChoiceEditor(spec.choices, editable=True)
    if kind == "regularizer":
        return RegularizerEditor()
    if kind == "tuple":
        return TupleEditor(spec.tuple_len or 1, spec.minimum)
    return TextEditor(kind)


VARY_TEXT = "Vary this in an experiment"


class _VaryMenuFilter(QObject):
    """Adds the "Vary this" entries to the context menu of a parameter's label and editor (and their parts).

    A line edit keeps its own menu (undo, copy, paste) with the entries below it; other editors show only them.
    """

    def __init__(self, inspector: Inspector) -> None:
        super().__init__(inspector)
        self.inspector = inspector

    def eventFilter(self, obj: QObject, event: QEvent) -> bool:
        if event.type() != QEvent.Type.ContextMenu or not isinstance(obj, QWidget):
            return False
        key = obj.property("varyKey")
        if not isinstance(key, str) or not self.inspector.vary_paths(key):
            return False
        menu = obj.createStandardContextMenu() if isinstance(obj, QLineEdit) else QMenu(obj)
        if not menu.isEmpty():
            menu.addSeparator()
        self.inspector.add_vary_actions(menu, key)
        menu.exec(event.globalPos())
        menu.deleteLater()
        return True


class Inspector(QScrollArea):
    """Shows the selected layer and sends edit requests."""

    param_edit_requested = Signal(str, str, object)  # node id, key, value
    rename_requested = Signal(str, str)
    #: a parameter to vary in an experiment: ``layer.key``, ``Class[hidden].key`` or ``layer.repeat``
    vary_requested = Signal(str)

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setObjectName("inspector")
        self.setAccessibleName("inspector")
        self.setWidgetResizable(True)
        self.graph: Graph | None = None
        self.node_id: str | None = None
        self.spec_of: Callable[[str], Any] = lambda _cn: None
        self.validate: Callable[[str, str, Any], str | None] | None = None
        self.editors: dict[str, Editor] = {}
        self.errors: dict[str, QLabel] = {}
        self.name_edit: QLineEdit | None = None
        self._vary_filter = _VaryMenuFilter(self)
        self._show_message("Select a layer to edit its parameters.")

    def set_catalog(self, spec_of: Callable[[str], Any], validate: Callable[[str, str, Any], str | None]) -> None:
        self.spec_of, self.validate = spec_of, validate
        self.show_node(self.graph, self.node_id)

    def _show_message(self, text: str) -> None:
        label = QLabel(text)
        label.setWordWrap(True)
        label.setAlignment(Qt.AlignmentFlag.AlignTop | Qt.AlignmentFlag.AlignLeft)
        label.setMargin(10)
        label.setStyleSheet("color: #718096")
        self.setWidget(label)
        self.editors, self.errors, self.name_edit = {}, {}, None

    def show_node(self, graph: Graph | None, node_id: str | None) -> None:
        """Build the form for one node (or a hint when none or several are selected)."""
        self.graph, self.node_id = graph, node_id
        if graph is None or node_id is None or node_id not in graph.nodes:
            self.node_id = None
            self._show_message("Select a layer to edit its parameters.")
            return
        node = graph.node(node_id)
        spec = self.spec_of(node.class_name)
        page = QWidget()
        outer = QVBoxLayout(page)
        title = QLabel(f"<b>{node.class_name}</b>")
        title.setToolTip("Right-click: vary the number of such layers in an experiment")
        self._offer_vary(title, "repeat")
        outer.addWidget(title)
        if spec is not None and spec.doc:
            doc = QLabel(spec.doc)
            doc.setWordWrap(True)
            doc.setStyleSheet("color: #4a5568")
            outer.addWidget(doc)
        form = QFormLayout()
        form.setFieldGrowthPolicy(QFormLayout.FieldGrowthPolicy.AllNonFixedFieldsGrow)
        outer.addLayout(form)
        self.editors, self.errors = {}, {}
        self.name_edit = QLineEdit(node.name)
        self.name_edit.setObjectName("param_name")
        self.name_edit.setToolTip("The layer's name (F2). Letters, digits and underscores.")
        self.name_edit.editingFinished.connect(self._on_name_edited)
        form.addRow("name", self.name_edit)
        self.errors["name"] = self._error_label(form)
        if spec is None:
            msg = "Loading Keras…" if self.validate is None else "NeuralStudio has no editor for this layer type."
            outer.addWidget(QLabel(msg))
        else:
            for p in spec.params:
                ed = make_editor(p)
                ed.widget.setObjectName(f"param_{p.name}")
                ed.widget.setAccessibleName(f"param_{p.name}")
                ed.widget.setToolTip(p.doc or p.name)
                ed.set_value(node.config.get(p.name, p.default))
                ed.committed.connect(lambda key=p.name: self._on_committed(key))
                label = QLabel(getattr(ed, "LABEL", p.name))
                label.setToolTip(p.doc or p.name)
                if p.name != "batch_shape":
                    self._offer_vary(label, p.name)
                    self._offer_vary(ed.widget, p.name)
                form.addRow(label, ed.widget)
                self.editors[p.name] = ed
                self.errors[p.name] = self._error_label(form)
                hint = getattr(ed, "hint", lambda: "")()
                if hint:
                    self._set_error(p.name, hint, warning=True)
        outer.addStretch(1)
        self.setWidget(page)

    # ------------------------------------------------------------------ vary this
    def _offer_vary(self, widget: QWidget, key: str) -> None:
        """Give ``widget`` (and the widgets inside it: a spin box's text field) the "Vary this" context menu."""
        for w in [widget, *widget.findChildren(QWidget)]:
            w.setProperty("varyKey", key)
            w.installEventFilter(self._vary_filter)

    def vary_paths(self, key: str) -> list[tuple[str, str]]:
        """The "Vary this" entries for parameter ``key`` of the shown layer: (menu text, path) pairs.

        The layer's own parameter; the same parameter of every hidden layer of its class when there are
        several; for ``repeat`` (the layer's title), the number of such layers, when it sits in a chain.
        """
        graph, node_id = self.graph, self.node_id
        if graph is None or node_id is None or node_id not in graph.nodes:
            return []
        node = graph.node(node_id)
        if key == "repeat":
            chain = (node.class_name != "InputLayer" and len(graph.in_edges(node_id)) == 1
                     and len(graph.out_edges(node_id)) == 1 and not node.shares)
            return [(f"Vary the number of {node.name} layers in an experiment", f"{node.name}.repeat")] if chain else []
        out = [(VARY_TEXT, f"{node.name}.{key}")]
        outputs = set(graph.outputs())
        hidden = [n for n in graph if n.class_name == node.class_name and n.id not in outputs]
        if node_id not in outputs and len(hidden) > 1:
            out.append((f"Vary {key} of every hidden {node.class_name} layer in an experiment",
                        f"{node.class_name}[hidden].{key}"))
        return out

    def add_vary_actions(self, menu: QMenu, key: str) -> None:
        """Append the "Vary this" actions for ``key`` to ``menu`` (each emits :attr:`vary_requested`)."""
        for text, path in self.vary_paths(key):
            action = menu.addAction(text)
            action.setObjectName(f"vary:{path}")
            action.setToolTip(f"Add {path} to the Train workspace's Experiment tab, with values to try")
            action.triggered.connect(lambda _checked=False, p=path: self.vary_requested.emit(p))

    @staticmethod
    def _error_label(form: QFormLayout) -> QLabel:
        label = QLabel()
        label.setWordWrap(True)
        label.setStyleSheet("color: #c53030")
        label.hide()
        form.addRow("", label)
        return label

    def refresh(self) -> None:
        """Show the node's current values (after an undo) without rebuilding the form."""
        if self.graph is None or self.node_id is None or self.node_id not in self.graph.nodes:
            self.show_node(self.graph, None)
            return
        node = self.graph.node(self.node_id)
        spec = self.spec_of(node.class_name)
        if self.name_edit is not None and not self.name_edit.hasFocus():
            self.name_edit.setText(node.name)
        for key, ed in self.editors.items():
            p = spec.param(key) if spec is not None else None
            cur = node.config.get(key, p.default if p is not None else None)
            if ed.value() != cur:
                blocked = ed.blockSignals(True)
                ed.set_value(cur)
                ed.blockSignals(blocked)
            hint = getattr(ed, "hint", lambda: "")()  # a warning about the value shown stays with it
            self._set_error(key, hint or None, warning=True)

    def _set_error(self, key: str, reason: str | None, *, warning: bool = False) -> None:
        """Show ``reason`` under the field: an error (red, the value was refused) or a ``warning`` (kept)."""
        label = self.errors.get(key)
        if label is None:
            return
        label.setText(reason or "")
        label.setVisible(bool(reason))
        label.setStyleSheet("color: #b7791f" if warning else "color: #c53030")
        ed = self.editors.get(key)
        w = ed.widget if ed is not None else self.name_edit
        if w is not None:
            w.setProperty("invalid", bool(reason) and not warning)
            w.setStyleSheet("border: 1px solid #e53e3e;" if reason and not warning else "")

    def error_text(self, key: str) -> str:
        label = self.errors.get(key)
        return label.text() if label is not None and label.isVisibleTo(self) else ""

    def _on_committed(self, key: str) -> None:
        if self.graph is None or self.node_id is None or self.node_id not in self.graph.nodes:
            return
        node = self.graph.node(self.node_id)
        value = self.editors[key].value()
        reason = self.validate(node.class_name, key, value) if self.validate is not None else None
        if reason is None and key in ("kernel_regularizer", "bias_regularizer", "activity_regularizer") \
                and value == "a number":
            reason = "The regularization factor must be a number of 0 or more, e.g. 0.01."
        self._set_error(key, reason)
        if reason:
            return
        hint = getattr(self.editors[key], "hint", lambda: "")()
        if hint:  # accepted, but probably not meant: said beside the field
            self._set_error(key, hint, warning=True)
        spec = self.spec_of(node.class_name)
        p = spec.param(key) if spec is not None else None
        current = node.config.get(key, p.default if p is not None else None)
        if value != current:
            self.param_edit_requested.emit(self.node_id, key, value)

    def _on_name_edited(self) -> None:
        if self.graph is None or self.node_id is None or self.name_edit is None:
            return
        name = self.name_edit.text().strip()
        node = self.graph.node(self.node_id)
        if name == node.name:
            self._set_error("name", None)
            return
        reason = None
        if self.validate is not None:
            reason = self.validate(node.class_name, "name", name)
        other = self.graph.node_by_name(name)
        if reason is None and other is not None and other.id != self.node_id:
            reason = f"Another layer is already called {name!r}: choose a different name."
        self._set_error("name", reason)
        if not reason:
            self.rename_requested.emit(self.node_id, name)

    def focus_name(self) -> None:
        if self.name_edit is not None:
            self.name_edit.setFocus()
            self.name_edit.selectAll()
