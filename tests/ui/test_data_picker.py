"""The Train workspace's data picker, driven through its real widgets on real files in tmp_path.

The file dialogs are QFileDialog's static functions, replaced by ones that answer a path; the
recent sources go to a QSettings INI file in tmp_path, never to the user's settings.
"""

from __future__ import annotations

import threading
from pathlib import Path

import pytest
from data_files import write_csv, write_idx_folder, write_image_folder, write_npz
from PySide6.QtCore import QSettings, Qt
from PySide6.QtWidgets import QFileDialog
from support import image_mlp

from neuralstudio.core.runs import RunsStore

pytest.importorskip("pytestqt")

from neuralstudio.ml.data import preview as preview_mod  # noqa: E402
from neuralstudio.ui.train import data_picker as picker_mod  # noqa: E402
from neuralstudio.ui.train import workspace as ws_mod  # noqa: E402
from neuralstudio.ui.train.workspace import TrainWorkspace  # noqa: E402

PREVIEW_TIMEOUT_MS = 30_000
RUN_TIMEOUT_MS = 90_000


@pytest.fixture
def settings_file(tmp_path, monkeypatch) -> Path:
    """The INI file the recent data sources are kept in for this test."""
    path = tmp_path / "recent.ini"
    monkeypatch.setattr(picker_mod, "app_settings", lambda: QSettings(str(path), QSettings.Format.IniFormat))
    return path


@pytest.fixture
def make_workspace(qtbot, tmp_path, settings_file):
    """Makes shown workspaces on the bundled sample's form (no in-memory data set); all closed afterwards."""
    made: list[TrainWorkspace] = []

    def make() -> TrainWorkspace:
        ws = TrainWorkspace(runs_store=RunsStore(tmp_path / "runs"))
        ws.set_design(image_mlp("tiny", epochs=1))
        ws.resize(1200, 800)
        ws.show()
        qtbot.waitExposed(ws)
        made.append(ws)
        return ws

    yield make
    TrainWorkspace.confirm_close = staticmethod(lambda _parent: True)
    try:
        for ws in made:
            assert ws.request_close()
    finally:
        TrainWorkspace.confirm_close = staticmethod(ws_mod.default_confirm_close)
        for ws in made:
            ws.close()
            ws.deleteLater()
    assert ws_mod.running_training_threads() == 0


def answer_dialogs(monkeypatch, path: Path) -> list[str]:
    """Both file dialogs answer ``path``; returns the titles of the dialogs that were opened."""
    opened: list[str] = []

    def folder(_parent, title, _start="", *_args, **_kwargs):
        opened.append(title)
        return str(path)

    def file(_parent, title, _start="", _filter="", *_args, **_kwargs):
        opened.append(title)
        return str(path), "Data files (*.csv *.npz)"

    monkeypatch.setattr(QFileDialog, "getExistingDirectory", staticmethod(folder))
    monkeypatch.setattr(QFileDialog, "getOpenFileName", staticmethod(file))
    return opened


def choose(qtbot, monkeypatch, ws: TrainWorkspace, path: Path) -> None:
    """Click Folder… or File… (as ``path`` is), answer ``path`` and wait for the preview."""
    picker = ws.settings_panel.data_picker
    answer_dialogs(monkeypatch, path)
    button = picker.folder_button if path.is_dir() else picker.file_button
    qtbot.mouseClick(button, Qt.MouseButton.LeftButton)
    qtbot.waitUntil(lambda: picker.state in ("ok", "failed"), timeout=PREVIEW_TIMEOUT_MS)


def shown_thumbnails(ws: TrainWorkspace) -> list[tuple[int, int, str]]:
    """(width, height, caption) of every example image the preview shows."""
    picker = ws.settings_panel.data_picker
    return [(t.pixmap().width(), t.pixmap().height(), c.text())
            for t, c in zip(picker.thumbnails, picker.captions) if t.isVisible()]


KINDS = {
    "npz": (lambda d: write_npz(d / "digits.npz", n=40, classes=3, test=11, names=["zero", "one", "two"]),
            ["40 training and 11 test examples", "28x28 greyscale images, shape (28, 28)",
             "3 classes: zero, one, two"], ["zero", "one", "two"]),
    "csv": (lambda d: write_csv(d / "table.csv", n=10, pixels=16, labels=["no", "yes"]),
            ["8 training and 2 test examples", "4x4 greyscale images, shape (4, 4)", "2 classes: no, yes"],
            ["no", "yes"]),
    "image folder": (lambda d: write_image_folder(d / "pets", {"cat": 5, "dog": 5}),
                     ["8 training and 2 test examples", "28x28 greyscale images", "2 classes: cat, dog"],
                     ["cat", "dog"]),
    "idx folder": (lambda d: write_idx_folder(d / "mnist-idx", train=30, test=9),
                   ["30 training and 9 test examples", "28x28 greyscale images", "3 classes: 0, 1, 2"],
                   ["0", "1", "2"]),
}


@pytest.mark.parametrize("kind", list(KINDS))
def test_choosing_each_kind_shows_its_counts_shape_classes_and_examples(qtbot, monkeypatch, tmp_path,
                                                                        make_workspace, kind):
    write, expected, classes = KINDS[kind]
    path = write(tmp_path)
    threads = []
    real = preview_mod.preview_source

    def recorded(spec, *args, **kwargs):
        threads.append(threading.current_thread())
        return real(spec, *args, **kwargs)

    monkeypatch.setattr(preview_mod, "preview_source", recorded)
    ws = make_workspace()
    picker = ws.settings_panel.data_picker
    opened = answer_dialogs(monkeypatch, path)
    button = picker.folder_button if path.is_dir() else picker.file_button
    qtbot.mouseClick(button, Qt.MouseButton.LeftButton)
    assert opened and picker.state == "checking"  # loaded in the background: the click returns at once
    assert not ws.train_button.isEnabled() and "Reading the data source" in ws.train_button.toolTip()
    qtbot.waitUntil(lambda: picker.state == "ok", timeout=PREVIEW_TIMEOUT_MS)
    text = picker.preview_label.text()
    for part in expected:
        assert part in text, text
    assert picker.preview_label.styleSheet() == ""
    thumbs = shown_thumbnails(ws)
    assert len(thumbs) == 8
    assert [c for _w, _h, c in thumbs][:len(classes)] == classes  # one of each class first
    assert all(max(w, h) == picker_mod.THUMBNAIL_PX for w, h, _c in thumbs)
    assert threads and all(t is not threading.main_thread() for t in threads)
    # the chosen source is what Train would train on, and what the box shows
    assert ws.settings_panel.data_source() == str(path) and ws._training_data() == str(path)
    assert path.name in picker.box.currentText()
    assert ws.train_button.isEnabled() and ws.train_button.toolTip() == ws_mod.TRAIN_TIP


def test_a_damaged_file_shows_the_message_in_red_and_disables_train(qtbot, monkeypatch, tmp_path, make_workspace):
    bad = tmp_path / "broken.npz"
    bad.write_bytes(b"PK\x03\x04 but the rest of the zip archive is missing")
    ws = make_workspace()
    picker = ws.settings_panel.data_picker
    choose(qtbot, monkeypatch, ws, bad)
    assert picker.state == "failed"
    message = picker.preview_label.text()
    assert "broken.npz" in message and "Traceback" not in message
    assert "#b00020" in picker.preview_label.styleSheet()
    assert shown_thumbnails(ws) == []
    assert not ws.train_button.isEnabled()
    assert ws.train_button.toolTip() == f"Choose another data source: {message}"
    # a good source enables Train again
    choose(qtbot, monkeypatch, ws, write_npz(tmp_path / "good.npz"))
    assert picker.state == "ok" and ws.train_button.isEnabled()
    assert picker.preview_label.styleSheet() == ""


def test_recent_sources_persist_through_a_new_workspace(qtbot, monkeypatch, tmp_path, settings_file, make_workspace):
    ws = make_workspace()
    paths = [write_npz(tmp_path / f"set{i}.npz") for i in range(6)]
    for p in paths:
        choose(qtbot, monkeypatch, ws, p)
    newest_first = [str(p) for p in reversed(paths)][:picker_mod.MAX_RECENT]
    assert ws.settings_panel.data_picker.recent_sources() == newest_first  # the last 5 chosen
    stored = QSettings(str(settings_file), QSettings.Format.IniFormat).value(picker_mod.RECENT_KEY)
    assert stored == newest_first

    again = make_workspace()
    box = again.settings_panel.data_box
    keys = [box.itemData(i) for i in range(box.count())]
    named = [k for k, _label in picker_mod.data_source_choices()]
    assert keys[:len(named)] == named
    separator = len(named)
    assert box.itemText(separator) == "" and box.itemData(separator) is None  # the separator
    assert keys[separator + 1:] == newest_first
    # choosing an older recent source puts it first
    box.setCurrentIndex(box.findData(str(paths[2])))
    qtbot.waitUntil(lambda: again.settings_panel.data_picker.state == "ok", timeout=PREVIEW_TIMEOUT_MS)
    assert again.settings_panel.data_picker.recent_sources()[0] == str(paths[2])
    assert again.settings_panel.data_source() == str(paths[2])


def test_a_vanished_recent_source_is_shown_as_such_and_removed_when_chosen(qtbot, monkeypatch, tmp_path,
                                                                            make_workspace):
    ws = make_workspace()
    gone = write_npz(tmp_path / "gone.npz")
    kept = write_npz(tmp_path / "kept.npz")
    choose(qtbot, monkeypatch, ws, gone)
    choose(qtbot, monkeypatch, ws, kept)
    gone.unlink()

    again = make_workspace()
    picker = again.settings_panel.data_picker
    box = picker.box
    i = box.findData(str(gone))
    assert "no longer exists" in box.itemText(i)
    assert "no longer exists" in box.itemData(i, Qt.ItemDataRole.ToolTipRole)
    box.setCurrentIndex(box.findData("mnist-sample"))
    before = again.settings_panel.data_source()
    box.setCurrentIndex(box.findData(str(gone)))
    assert picker.notice_label.isVisible()
    assert picker.notice_label.text() == f"{gone} no longer exists, so it was removed from the recent data sources."
    assert box.findData(str(gone)) < 0 and picker.recent_sources() == [str(kept)]
    assert again.settings_panel.data_source() == before  # the choice stays what it was
    assert make_workspace().settings_panel.data_box.findData(str(gone)) < 0  # and it stays removed


def test_a_run_started_after_choosing_an_npz_trains_on_it(qtbot, monkeypatch, tmp_path, make_workspace):
    path = write_npz(tmp_path / "my-digits.npz", n=64, classes=10, test=16)
    ws = make_workspace()
    choose(qtbot, monkeypatch, ws, path)
    picker = ws.settings_panel.data_picker
    assert "64 training and 16 test examples" in picker.preview_label.text()
    qtbot.mouseClick(ws.train_button, Qt.MouseButton.LeftButton)
    assert ws.is_running()
    assert not picker.box.isEnabled() and not picker.file_button.isEnabled()  # the run keeps its data
    qtbot.waitUntil(lambda: not ws.is_running(), timeout=RUN_TIMEOUT_MS)
    result = ws.last_result
    assert result is not None and result.status == "finished", ws.last_message
    first_line = ws.log_view.toPlainText().splitlines()[0]
    assert first_line.endswith(f"1 epochs on {path}."), first_line
    record = ws.runs_store.get(result.run_id)
    assert record.data["name"] == str(path) and record.data["train_size"] == 64
    assert record.design["data"]["source"] == str(path)
    assert picker.box.isEnabled() and picker.file_button.isEnabled() and picker.folder_button.isEnabled()


def test_the_buttons_work_from_the_keyboard_and_say_what_they_accept(qtbot, monkeypatch, tmp_path, make_workspace):
    ws = make_workspace()
    picker = ws.settings_panel.data_picker
    assert "IDX" in picker.folder_button.toolTip() and "sub-folder" in picker.folder_button.toolTip()
    assert ".csv" in picker.file_button.toolTip() and ".npz" in picker.file_button.toolTip()
    for b in (picker.box, picker.folder_button, picker.file_button):
        assert b.focusPolicy() & Qt.FocusPolicy.TabFocus
    opened = answer_dialogs(monkeypatch, write_npz(tmp_path / "keys.npz"))
    picker.file_button.setFocus()
    qtbot.keyClick(picker.file_button, Qt.Key.Key_Space)
    assert opened == ["Choose a data file"]
    qtbot.waitUntil(lambda: picker.state == "ok", timeout=PREVIEW_TIMEOUT_MS)


def test_an_in_memory_data_set_is_previewed_and_locks_the_choice(qtbot, make_workspace):
    from support import mnist_slice

    ws = make_workspace()
    picker = ws.settings_panel.data_picker
    ws.set_dataset(mnist_slice(50, 10))
    assert not picker.box.isEnabled() and not picker.folder_button.isEnabled()
    assert "50 training and 10 test examples" in picker.preview_label.text()
    assert len(shown_thumbnails(ws)) == 8 and ws.train_button.isEnabled()
    ws.set_dataset(None)  # back to the form's choice, previewed again
    assert picker.box.isEnabled()
    qtbot.waitUntil(lambda: picker.state == "ok", timeout=PREVIEW_TIMEOUT_MS)
    assert "8,000 training and 2,000 test examples" in picker.preview_label.text()
