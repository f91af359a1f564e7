"""What an experiment varies, written as text: parsing, grids, and the designs the values make."""

from __future__ import annotations

import pytest

from neuralstudio.core.search_space import (
    SearchSpaceError,
    apply_values,
    check_params,
    grid_size,
    parse_param,
)
from neuralstudio.core.templates import load_template


@pytest.fixture
def nielsen():
    return load_template("nielsen-784-30-10")


@pytest.mark.parametrize(("text", "kind", "grid"), [
    ("learning_rate=log:0.01:1", "log", [0.01, 0.1, 1.0]),
    ("batch_size=16,64,256", "choice", [16, 64, 256]),
    ("hidden.units=16:128", "int", [16, 72, 128]),
    ("hidden.units=16:128:16", "int", [16, 80, 128]),
    ("momentum=0.5:0.9", "float", [0.5, 0.7, 0.9]),
    ("Dense[hidden].activation=relu,sigmoid", "choice", ["relu", "sigmoid"]),
    ("epochs=3", "choice", [3]),
])
def test_values_are_read_as_ranges_or_choices(text, kind, grid):
    spec = parse_param(text)
    assert spec.kind == kind
    assert spec.grid() == grid
    assert parse_param(spec.to_text()) == spec  # what a study stores reads back the same


@pytest.mark.parametrize(("text", "says"), [
    ("learning_rate", "NAME=VALUES"),
    ("speed=1,2", "not a training setting"),
    ("learning_rate=log:0:1", "positive"),
    ("hidden.units=128:16", "smaller end first"),
    ("epochs=log:1:10", "whole numbers"),
    ("optimizer=adam,newton", "choose among"),
    ("hidden.units=1:2:0", "step"),
])
def test_a_badly_written_value_says_what_to_write(text, says):
    with pytest.raises(SearchSpaceError, match=says):
        parse_param(text)


def test_names_must_exist_in_the_design(nielsen):
    with pytest.raises(SearchSpaceError, match="no layer of that name.*hidden, digit"):
        check_params(nielsen, [parse_param("dense_1.units=16:64")])
    with pytest.raises(SearchSpaceError, match="no hidden Conv2D"):
        check_params(nielsen, [parse_param("Conv2D[hidden].filters=8,16")])
    with pytest.raises(SearchSpaceError, match="given twice"):
        check_params(nielsen, [parse_param("learning_rate=1,2"), parse_param("learning_rate=3")])
    check_params(nielsen, [parse_param("learning_rate=log:0.03:30"), parse_param("hidden.units=10:100")])


def test_values_make_a_new_design_and_leave_the_original_alone(nielsen):
    out = apply_values(nielsen, {"learning_rate": 0.3, "batch_size": 100, "hidden.units": 64,
                                 "Dense[hidden].activation": "relu"})
    assert out.training.learning_rate == 0.3 and out.training.batch_size == 100
    hidden = out.graph.node_by_name("hidden")
    assert hidden.config["units"] == 64 and hidden.config["activation"] == "relu"
    assert out.graph.node_by_name("digit").config["activation"] == "sigmoid"  # the output layer is not hidden
    assert nielsen.graph.node_by_name("hidden").config["units"] == 30 and nielsen.training.learning_rate == 3.0
    assert out.id == nielsen.id  # the trials' runs belong to the design they came from


def test_depth_stacks_copies_of_a_layer_in_the_chain_and_makes_room_for_them(nielsen):
    out = apply_values(nielsen, {"hidden.repeat": 3, "hidden.units": 20})
    g = out.graph
    names = [g.node(i).name for i in g.topological_order()]
    assert names == ["pixels", "hidden", "hidden_2", "hidden_3", "digit"]
    assert all(g.node_by_name(n).config["units"] == 20 for n in ("hidden", "hidden_2", "hidden_3"))
    ys = [g.position(g.node_by_name(n).id)[1] for n in names]
    assert ys == sorted(ys) and len(set(ys)) == len(ys)  # drawn as a column, nothing on top of another
    with pytest.raises(SearchSpaceError, match="1 to 12"):
        apply_values(nielsen, {"hidden.repeat": 0})


def test_a_grid_counts_every_combination():
    specs = [parse_param("learning_rate=0.03,0.3,3,30"), parse_param("batch_size=10,100")]
    assert grid_size(specs) == 8
    assert grid_size([parse_param("hidden.units=10:100")], points=5) == 5


def test_a_kernel_size_and_an_l2_factor_are_written_as_keras_takes_them():
    d = load_template("mnist-cnn")
    conv = next(n for n in d.graph if n.class_name == "Conv2D")
    out = apply_values(d, {f"{conv.name}.kernel_size": 5, f"{conv.name}.kernel_regularizer": 0.001})
    node = out.graph.node_by_name(conv.name)
    assert node.config["kernel_size"] == [5, 5]
    assert node.config["kernel_regularizer"]["config"]["l2"] == 0.001
