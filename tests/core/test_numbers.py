"""Numbers read from reports and records that may hold anything."""

from __future__ import annotations

from neuralstudio.core.numbers import as_number


def test_as_number_reads_only_numbers():
    assert as_number(3) == 3.0 and as_number("2.5") == 2.5
    assert as_number(True) is None and as_number(None) is None and as_number("x", 0.0) == 0.0
    assert as_number([1]) is None
