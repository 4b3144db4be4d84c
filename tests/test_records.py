"""Canonical JSON: the stored payload and the source of every content hash, so its text must not
depend on how a number was spelled, nor on which of its two ways wrote it."""
from __future__ import annotations

from decimal import Decimal as D
from typing import Any

import pytest

from synclet.records import canonical_json


@pytest.mark.parametrize(("payload", "text"), [
    ({"b": D("165.0000"), "a": [D("0.1"), 2, None, True]}, '{"a":[0.1,2,null,true],"b":165.0}'),
    ({"Total": D("-3.50"), "Name": "Zoë ☃"}, '{"Name":"Zoë ☃","Total":-3.5}'),
    ({"x": D("12345678.9012")}, '{"x":12345678.9012}'),
    ({"x": D("1E+2")}, '{"x":100.0}'),
    # Numbers no float holds are written as their text, the others as numbers, in one payload.
    ({"x": D("NaN"), "y": D("1.5")}, '{"x":"NaN","y":1.5}'),
    ({"x": D("-Infinity")}, '{"x":"-Infinity"}'),
    ({"x": [D("1E+400"), D("2.25")]}, '{"x":["1E+400",2.25]}'),
])
def test_canonical_json_writes_values_not_spellings(payload: Any, text: str) -> None:
    assert canonical_json(payload) == text


def test_a_value_json_cannot_hold_is_refused_by_name() -> None:
    with pytest.raises(TypeError, match="set is not JSON serialisable"):
        canonical_json({"x": {1, 2}})
