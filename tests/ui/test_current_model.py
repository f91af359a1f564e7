"""The current model (what Predict shows and Export writes) keeps the design it was built from."""

from __future__ import annotations

import keras

from neuralstudio.core.design import Design, design_from_dict
from neuralstudio.core.graph import Graph


def _design(units: int) -> Design:
    g = Graph()
    i = g.add_node("InputLayer", {"batch_shape": [None, 4]}, name="x")
    d = g.add_node("Dense", {"units": units, "activation": "softmax"}, name="out")
    g.connect(i.id, d.id)
    return Design(graph=g, name=f"net{units}")


def test_python_export_gets_the_trained_design_not_the_one_in_the_editor(ready_window, monkeypatch):
    """Defect: the Python export wrote the editor's current design, whatever the model was built from."""
    w = ready_window
    trained = design_from_dict(_design(3).to_dict())
    model = keras.Sequential([keras.Input((4,)), keras.layers.Dense(3, activation="softmax", name="out")])
    w._on_model_trained(model, "net3", trained)
    w.editor.set_design(_design(7), None)  # the learner goes on editing another network
    seen = {}

    class FakeDialog:
        def __init__(self, model, *, model_path, design, runner, parent):
            seen.update(model=model, design=design)

            class _Signal:
                def connect(self, _slot):
                    pass

            self.exported = _Signal()

        def exec(self):
            return 0

    import neuralstudio.ui.export.dialog as dialog_mod

    monkeypatch.setattr(dialog_mod, "ExportDialog", FakeDialog)
    w.export_model()
    assert seen["model"] is model
    assert seen["design"] is trained and seen["design"].graph.node_by_name("out").config["units"] == 3


def test_an_opened_model_is_exported_from_its_own_architecture(ready_window, qtbot, tmp_path, monkeypatch):
    from window_helpers import open_file

    w = ready_window
    path = tmp_path / "m.keras"
    keras.Sequential([keras.Input((4,)), keras.layers.Dense(2, name="only")]).save(path)
    assert open_file(qtbot, w, path, confirm=False)
    w.editor.add_layer("Dense", (300.0, 300.0))  # an edit after opening does not change the model
    assert w.current_design is None  # export rebuilds the design from the model itself
