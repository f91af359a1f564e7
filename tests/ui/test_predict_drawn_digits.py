"""The bundled model on the project's synthetic hand-drawn digits (real mouse events on the canvas)."""

from digit_strokes import STYLES, drawings, evaluate_on_canvas

from neuralstudio.ml.model_files import load_keras_model
from neuralstudio.ui.predict.workspace import bundled_model_path


def test_every_digit_has_several_styles_and_the_set_varies():
    assert sorted(STYLES) == list(range(10))
    assert all(len(styles) >= 2 for d, styles in STYLES.items())
    items = drawings(per_digit=24)
    assert len(items) == 240
    heights = {round(d.strokes[0][0][1]) for d in items}
    assert len(heights) > 50 and {d.width_factor for d in items} == {0.7, 1.0, 1.5}


def test_bundled_model_reads_drawn_digits(qapp):
    result = evaluate_on_canvas(load_keras_model(bundled_model_path()), per_digit=24)
    table = "  ".join(f"{k}:{v:.0%}" for k, v in result["per_digit"].items())
    print(f"\ndrawn digits: {result['accuracy']:.1%} of {result['total']}  ({table})")
    assert result["accuracy"] >= 0.95, (table, result["mistakes"][:10])
    assert min(result["per_digit"].values()) >= 0.8, table
