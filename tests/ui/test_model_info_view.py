"""Model information shows what could not be read beside a model, not a wrong "never trained" line."""

from __future__ import annotations

import json

import keras

from neuralstudio.ml.model_info import model_info
from neuralstudio.ui.export.info_view import ModelInfoView


def test_a_damaged_run_record_is_named_in_the_view(qtbot, tmp_path):
    path = tmp_path / "model.keras"
    keras.Sequential([keras.Input((4,)), keras.layers.Dense(2, name="out")]).save(path)
    deep = "[" * 5000 + "]" * 5000
    (tmp_path / "run.json").write_text(json.dumps({"format": "neuralstudio-run"})[:-1] + f', "x": {deep}}}')
    info = model_info(path)
    assert info.notes, "the damaged run.json is reported"
    view = ModelInfoView(info)
    qtbot.addWidget(view)
    assert view.history_note.text() == " ".join(info.notes)
    assert "not saved by a NeuralStudio" not in view.history_note.text()
