"""Exports never delete a user's files and never end in a traceback when the target cannot be written."""

from __future__ import annotations

import errno
import tempfile

import pytest

keras = pytest.importorskip("keras")

from neuralstudio.ml.export import ExportError, export_model  # noqa: E402

pytestmark = pytest.mark.backend_neutral  # file handling around the writers


@pytest.fixture(scope="module")
def model():
    return keras.Sequential([keras.Input((4,)), keras.layers.Dense(3, activation="softmax", name="out")])


@pytest.mark.parametrize("fmt, own", [("python", "model.py"), ("inference-script", "predict.py"),
                                      ("savedmodel", "saved_model.pb")])
def test_a_previous_export_holding_other_files_is_not_replaced(model, tmp_path, fmt, own):
    folder = tmp_path / "export"
    folder.mkdir()
    (folder / own).write_text("previous export\n")
    (folder / "my_notes.txt").write_text("a week of work\n")
    with pytest.raises(ExportError, match="my_notes.txt"):
        export_model(model, folder, fmt)
    assert (folder / "my_notes.txt").read_text() == "a week of work\n"
    assert (folder / own).read_text() == "previous export\n"


def test_a_folder_that_is_no_export_is_not_replaced(model, tmp_path):
    folder = tmp_path / "export"
    folder.mkdir()
    (folder / "thesis.tex").write_text("x")
    with pytest.raises(ExportError, match="not a previous python export"):
        export_model(model, folder, "python")
    assert (folder / "thesis.tex").exists()


@pytest.mark.parametrize("err, words", [(errno.EACCES, "Permission denied"), (errno.ENOSPC, "disk is full")])
def test_an_unwritable_target_is_a_message(model, tmp_path, monkeypatch, err, words):
    def refuse(*_a, **_k):
        raise OSError(err, "Permission denied" if err == errno.EACCES else "No space left on device")

    monkeypatch.setattr(tempfile, "mkstemp", refuse)
    monkeypatch.setattr(tempfile, "mkdtemp", refuse)
    for fmt, name in (("keras", "m.keras"), ("python", "py_export")):
        with pytest.raises(ExportError, match=words):
            export_model(model, tmp_path / name, fmt)
    assert sorted(p.name for p in tmp_path.iterdir()) == []
