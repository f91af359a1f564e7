"""Hostile design files: every one is refused with a DesignError (one plain line in the CLI), none hangs."""

from __future__ import annotations

import json
import os
import threading

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from neuralstudio.core.design import MAX_FILE_BYTES, Design, DesignError, design_from_dict, load_design, loads_design

json_values = st.recursive(
    st.none() | st.booleans() | st.integers(-10, 10**6) | st.floats(allow_nan=False, allow_infinity=False)
    | st.text(max_size=12),
    lambda children: st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=8), children, max_size=4),
    max_leaves=20,
)


def _valid() -> dict:
    return Design().to_dict()


def test_a_link_to_dev_zero_is_refused_at_once(tmp_path):
    link = tmp_path / "zero.nsd"
    os.symlink("/dev/zero", link)
    done: list[BaseException] = []
    t = threading.Thread(target=lambda: done.append(pytest.raises(DesignError, load_design, link).value))
    t.start()
    t.join(5)
    assert not t.is_alive(), "reading /dev/zero did not stop"
    assert "not a regular file" in str(done[0])


def test_a_named_pipe_is_refused_without_blocking(tmp_path):
    fifo = tmp_path / "pipe.nsd"
    os.mkfifo(fifo)
    with pytest.raises(DesignError, match="not a regular file"):
        load_design(fifo)


def test_an_oversized_file_is_refused_before_it_is_read(tmp_path):
    big = tmp_path / "big.nsd"
    with open(big, "wb") as fh:
        fh.truncate(MAX_FILE_BYTES + 1)
    with pytest.raises(DesignError, match="too large"):
        load_design(big)


def test_a_lone_surrogate_is_refused_when_opened_so_saving_cannot_fail(tmp_path):
    text = json.dumps(_valid()).replace('"description": ""', '"description": "bad \\ud800 text"')
    with pytest.raises(DesignError, match="invalid character"):
        loads_design(text, "s.nsd")


def test_name_and_description_are_bounded():
    d = _valid()
    d["name"] = "n" * 1_000_000
    with pytest.raises(DesignError, match="too long") as info:
        design_from_dict(d, "long.nsd")
    assert len(str(info.value)) < 300


@pytest.mark.parametrize("config, words", [
    ({"batch_shape": ["__import__('os')", 28]}, "batch size"),
    ({"batch_shape": [None, 28.5]}, "size 2"),
    ({"batch_shape": "28, 28"}, "list"),
    ({"x=1,y": 2}, "not a Keras parameter name"),
    ({"kernel_initializer": {"class_name": "HeNormal", "module": "os", "config": {}}}, "module"),
    ({"kernel_initializer": {"class_name": "He Normal", "config": {}}}, "class"),
    ({"kernel_initializer": {"class_name": "HeNormal", "config": {"a b": 1}}}, "argument"),
    ({"units": "x" * 20_000}, "characters"),
])
def test_layer_configs_hold_only_what_code_can_quote(config, words):
    d = _valid()
    d["graph"] = {"nodes": [{"id": "n1", "class_name": "InputLayer", "name": "inp", "config": config}],
                  "edges": []}
    with pytest.raises(DesignError, match=words) as info:
        design_from_dict(d, "h.nsd")
    assert len(str(info.value)) < 400


@settings(max_examples=300, deadline=None, derandomize=True, suppress_health_check=[HealthCheck.too_slow])
@given(graph=json_values, layout=json_values, extra=st.dictionaries(st.sampled_from(
    ["name", "description", "training", "data", "pos"]), json_values, max_size=3))
def test_version_0_designs_with_any_graph_or_layout_raise_only_design_errors(graph, layout, extra):
    data = {"format": "neuralstudio-design", "version": 0, "graph": graph, "layout": layout, **extra}
    try:
        design_from_dict(data, "v0.nsd")
    except DesignError:
        pass


@settings(max_examples=200, deadline=None, derandomize=True, suppress_health_check=[HealthCheck.too_slow])
@given(nodes=st.lists(st.dictionaries(st.sampled_from(["id", "class_name", "name", "config", "shares", "pos"]),
                                      json_values, max_size=6), max_size=4),
       edges=json_values)
def test_version_0_nodes_of_any_shape_raise_only_design_errors(nodes, edges):
    data = {"format": "neuralstudio-design", "version": 0, "graph": {"nodes": nodes, "edges": edges}}
    try:
        design_from_dict(data, "v0.nsd")
    except DesignError:
        pass
