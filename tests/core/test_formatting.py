"""How values, shapes and durations are written for people."""

from __future__ import annotations

import math

from neuralstudio.core.formatting import format_duration, format_shape, format_value


def test_values_and_shapes():
    assert format_value(None) == "-" and format_value(0.123456) == "0.1235" and format_value(3) == "3"
    assert format_shape((None, 28, 28, 1)) == "(None, 28, 28, 1)"


def test_durations_keep_tenths_for_short_times():
    assert format_duration(0.23) == "0.2 s"  # a fast epoch does not read "0 s"
    assert format_duration(9.94) == "9.9 s"
    assert format_duration(42.4) == "42 s"
    assert format_duration(150) == "2.5 min"
    assert format_duration(7200) == "2.0 h"
    for bad in (None, "3", math.nan, math.inf, -1, True):
        assert format_duration(bad) == "-"
