"""The layer palette: every layer of the catalog, by category, with search and doc tooltips.

Drag an entry onto the canvas to add it there (the mime data carries only the
class name); double-click it to append it after the selected layer.
"""

from __future__ import annotations

from typing import Any

from PySide6.QtCore import QMimeData, Qt, Signal
from PySide6.QtGui import QBrush, QColor
from PySide6.QtWidgets import QLineEdit, QTreeWidget, QTreeWidgetItem, QVBoxLayout, QWidget

from neuralstudio.ui.editor.node_item import category_color
from neuralstudio.ui.editor.view import LAYER_MIME

CLASS_ROLE = Qt.ItemDataRole.UserRole + 1


class LayerTree(QTreeWidget):
    """The tree; its drags carry the layer class name under :data:`LAYER_MIME`."""

    def mimeTypes(self) -> list[str]:
        return [LAYER_MIME]

    def mimeData(self, items: list[QTreeWidgetItem]) -> QMimeData:
        mime = QMimeData()
        names = [i.data(0, CLASS_ROLE) for i in items if i.data(0, CLASS_ROLE)]
        if names:
            mime.setData(LAYER_MIME, names[0].encode("utf-8"))
            mime.setText(names[0])
        return mime


class Palette(QWidget):
    """Search box + tree of layers."""

    activated = Signal(str)  # class name (double-click / Enter)

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setObjectName("layerPalette")
        self.setAccessibleName("layerPalette")
        self.search = QLineEdit()
        self.search.setObjectName("paletteSearch")
        self.search.setAccessibleName("paletteSearch")
        self.search.setPlaceholderText("Search layers…")
        self.search.setClearButtonEnabled(True)
        self.search.setToolTip("Type part of a layer name or description to filter the palette")
        self.tree = LayerTree()
        self.tree.setHeaderHidden(True)
        self.tree.setDragEnabled(True)
        self.tree.setDragDropMode(QTreeWidget.DragDropMode.DragOnly)
        self.tree.setUniformRowHeights(True)
        self.tree.setIndentation(14)
        lay = QVBoxLayout(self)
        lay.setContentsMargins(4, 4, 4, 4)
        lay.addWidget(self.search)
        lay.addWidget(self.tree)
        self.search.textChanged.connect(self._on_search)
        self.tree.itemActivated.connect(self._on_item_activated)
        self._items: dict[str, QTreeWidgetItem] = {}
        loading = QTreeWidgetItem(["Loading Keras layers…"])
        loading.setFlags(Qt.ItemFlag.NoItemFlags)
        self.tree.addTopLevelItem(loading)

    def set_catalog(self, catalog: dict[str, Any], categories: list[str]) -> None:
        """Fill the tree once the catalog has loaded in the background."""
        self.tree.clear()
        self._items.clear()
        sections: dict[str, QTreeWidgetItem] = {}
        for cat in categories:
            sec = QTreeWidgetItem([cat])
            sec.setFlags(Qt.ItemFlag.ItemIsEnabled)
            sec.setForeground(0, QBrush(category_color(cat).darker(130)))
            f = sec.font(0)
            f.setBold(True)
            sec.setFont(0, f)
            sections[cat] = sec
            self.tree.addTopLevelItem(sec)
        for name, spec in sorted(catalog.items()):
            sec = sections.get(spec.category)
            if sec is None:
                continue
            item = QTreeWidgetItem([name])
            item.setData(0, CLASS_ROLE, name)
            item.setToolTip(0, f"<b>{name}</b><br>{spec.doc or ''}<br><i>Drag onto the canvas, or double-click "
                               "to append after the selected layer.</i>")
            item.setFlags(Qt.ItemFlag.ItemIsEnabled | Qt.ItemFlag.ItemIsSelectable | Qt.ItemFlag.ItemIsDragEnabled)
            item.setForeground(0, QBrush(QColor("#1a202c")))
            sec.addChild(item)
            self._items[name] = item
        for cat in ("Core", "Convolution", "Pooling", "Reshaping"):
            if cat in sections:
                sections[cat].setExpanded(True)
        self._on_search(self.search.text())

    def item_for(self, class_name: str) -> QTreeWidgetItem | None:
        return self._items.get(class_name)

    def _on_search(self, text: str) -> None:
        needle = text.strip().lower()
        for i in range(self.tree.topLevelItemCount()):
            sec = self.tree.topLevelItem(i)
            visible = 0
            for j in range(sec.childCount()):
                child = sec.child(j)
                hit = not needle or needle in child.text(0).lower() or needle in child.toolTip(0).lower()
                child.setHidden(not hit)
                visible += hit
            sec.setHidden(visible == 0 and sec.childCount() > 0)
            if needle:
                sec.setExpanded(visible > 0)

    def _on_item_activated(self, item: QTreeWidgetItem, _col: int) -> None:
        name = item.data(0, CLASS_ROLE)
        if name:
            self.activated.emit(name)
