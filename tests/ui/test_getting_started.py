"""Help > Getting started (F1): the first hour in six steps, with the keys."""

from __future__ import annotations

import pytest
from PySide6.QtCore import Qt

pytest.importorskip("pytestqt")

from neuralstudio.ui.getting_started import STEPS  # noqa: E402


def test_f1_opens_the_getting_started_page_beside_the_window(main_window, qtbot):
    w = main_window
    w.activateWindow()
    qtbot.keyClick(w, Qt.Key.Key_F1)
    dlg = w._getting_started
    qtbot.waitUntil(dlg.isVisible, timeout=5000)
    assert not dlg.isModal()  # it stays open while the user follows it
    text = dlg.browser.toPlainText()
    assert len(STEPS) == 6
    for title, _ in STEPS:
        assert title in text
    assert "shape of one example" in text and "Ctrl+N" in text
    menu_texts = [a.text() for a in w.menuBar().actions()[-1].menu().actions()]
    assert "&Getting Started" in menu_texts
    dlg.close()


def test_every_hyperparameter_explains_itself_with_a_typical_range(qtbot):
    from PySide6.QtWidgets import QLabel

    from neuralstudio.ui.train.settings_panel import HYPERPARAMETER_TIPS, SettingsPanel

    panel = SettingsPanel()
    qtbot.addWidget(panel)
    for box in (panel.lr_box, panel.batch_box, panel.epochs_box, panel.val_box):
        assert "Typical" in box.toolTip()
    assert "too high" in panel.lr_box.toolTip().lower()
    captions = {lb.text(): lb.toolTip() for lb in panel.findChildren(QLabel)}
    assert captions["Learning rate"] == HYPERPARAMETER_TIPS["learning_rate"]  # on the words too
