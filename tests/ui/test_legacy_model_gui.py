"""A Keras 2 model file opens through File > Open as any other model (tests/legacy_models.py builds it).

The file is a Keras 3 ``.h5`` rewritten in the layout standalone Keras 2.2.4 saved (no InputLayer,
``batch_input_shape`` on the first layer): before the fix, the window showed "Kernel shape must have the
same length as input" for it.  No tf_keras is needed here, so the test stays quick.
"""

from __future__ import annotations

import numpy as np
import pytest
from window_helpers import open_file

pytest.importorskip("pytestqt")


@pytest.fixture
def keras224_file(tmp_path):
    import keras
    import legacy_models as lm

    model = keras.Sequential([keras.Input((28, 28, 1)), keras.layers.Conv2D(4, 3, activation="relu", name="conv"),
                              keras.layers.Flatten(name="flat"), keras.layers.Dense(10, activation="softmax",
                                                                                    name="probs")], name="old_cnn")
    model.save(tmp_path / "k3.h5")
    path = lm.keras2_copy(tmp_path / "k3.h5", tmp_path / "old_cnn.h5")
    x = np.random.default_rng(0).random((2, 28, 28, 1), dtype=np.float32)
    return path, x, np.asarray(model(x))


def test_a_keras2_h5_file_opens_as_a_design_and_a_current_model(ready_window, qtbot, monkeypatch, keras224_file):
    w = ready_window
    errors: list[str] = []
    monkeypatch.setattr(w, "_show_error", lambda title, message: errors.append(message))
    monkeypatch.setattr(w, "_ask_unsaved", lambda: "discard")
    path, x, y = keras224_file
    assert open_file(qtbot, w, path), (errors, w.last_error)
    assert not errors
    assert w.current_model is not None and w.current_model_path == path
    np.testing.assert_allclose(w.current_model.predict(x, verbose=0), y, rtol=1e-5, atol=1e-6)
    classes = sorted(node.class_name for node in w.doc.design.graph.nodes.values())
    assert classes == ["Conv2D", "Dense", "Flatten", "InputLayer"]
