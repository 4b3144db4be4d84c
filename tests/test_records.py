"""Canonical JSON: the stored payload and the source of every content hash, so its text must not
depend on how a number was spelled, nor on which of its two ways wrote it. Records crossing from
the reader process arrive whole."""
from __future__ import annotations

import dataclasses
import pickle
from datetime import datetime
from decimal import Decimal as D
from typing import Any

import pytest

from synclet.records import Address, Credit, Item, Order, Page, Rejected, canonical_json


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


def _filled(cls: type, index: int = 0) -> Any:
    """A record with every field set to a value of its own, none left at its default."""
    values: dict[str, Any] = {}
    for number, spec in enumerate(dataclasses.fields(cls)):
        kind = str(spec.type)
        if kind.startswith("list["):
            continue
        if "Decimal" in kind:
            values[spec.name] = D(f"{number}.{index}5")
        elif "datetime" in kind:
            values[spec.name] = datetime(2026, 1, 1 + number, 12, index)
        elif kind == "bool":
            values[spec.name] = not spec.default
        elif kind.startswith("int"):
            values[spec.name] = number + index
        elif spec.name == "address_type":
            values[spec.name] = "shipping"
        else:
            values[spec.name] = f"{spec.name}-{index}"
    return cls(**values)


def test_records_come_out_of_pickle_as_they_went_in() -> None:
    order = _filled(Order)
    order.items = [_filled(Item, 1), _filled(Item, 2)]
    order.addresses = [_filled(Address, 1)]
    order.credits = [_filled(Credit, 1)]
    page = _filled(Page)
    page.orders, page.rejected = [order], [_filled(Rejected, 1)]
    back = pickle.loads(pickle.dumps(page, protocol=pickle.HIGHEST_PROTOCOL))
    assert back == page and type(back.orders[0].items[1]) is Item
    assert back.orders[0].credits[0].grand_total == order.credits[0].grand_total
    assert back.covered_until is not None and back.unchanged == page.unchanged != 0
