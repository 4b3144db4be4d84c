"""Stored orders as Big Block bodies, the locations file, and reading Big Block's copies back."""
from __future__ import annotations

from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest

from synclet.destinations.bigblock import is_duplicate
from synclet.destinations.bigblock_orders import (
    HeldBack,
    Line,
    Location,
    Locations,
    content_hash,
    order_body,
    order_number,
    picking_started,
    same_content,
)
from synclet.errors import ConfigError

SHELVES = Locations({"SKU-A": Location("Aisle 3", "0123456789012"), "sku-b": Location("B-07")}, "f", "locations.csv")


def test_one_shipment_one_item_per_line_with_location_and_upc() -> None:
    body = order_body("M-100", [Line(1, "SKU-A", "Widget A", Decimal("2.0000")), Line(2, "SKU-B", None, Decimal("1"))],
                      SHELVES, allow_missing_location=False)
    assert body == {"order_number": "M-100", "shipments": [{"shipment_number": "M-100", "items": [
        {"name": "Widget A", "description": "Widget A", "SKU": "SKU-A", "UPC": "0123456789012", "ordered_quantity": 2,
         "quantity_fulfilled": 0, "warehouse_location": "Aisle 3"},
        # matched ignoring case; no UPC in the file, so the SKU is the code; no name, so the SKU names it
        {"name": "SKU-B", "description": "SKU-B", "SKU": "SKU-B", "UPC": "SKU-B", "ordered_quantity": 1,
         "quantity_fulfilled": 0, "warehouse_location": "B-07"},
    ]}]}


@pytest.mark.parametrize(
    ("lines", "allow", "reason"),
    [
        ([], False, "the order has no lines"),
        ([Line(1, None, "Gift card", Decimal(1))], False, "line 1 has no SKU"),
        ([Line(1, "SKU-A", "x", Decimal("1.5"))], False, "line 1 (SKU-A): quantity 1.5 is not a whole number"),
        ([Line(1, "SKU-A", "x", Decimal(0))], False, "quantity 0 is not"),
        ([Line(1, "SKU-A", "x", None)], False, "quantity None is not"),
        ([Line(1, "SKU-A", "x", Decimal(1)), Line(2, "SKU-Z", "z", Decimal(1))], False, "SKU SKU-Z has no location in locations.csv"),
    ],
)
def test_an_order_that_cannot_be_picked_is_held_back_with_the_reason(lines: list[Line], allow: bool, reason: str) -> None:
    with pytest.raises(HeldBack, match=reason.replace("(", r"\(").replace(")", r"\)")):
        order_body("M-1", lines, SHELVES, allow)


def test_a_missing_location_may_be_allowed() -> None:
    body = order_body("M-1", [Line(1, "SKU-Z", "z", Decimal(3))], Locations.none(), allow_missing_location=True)
    assert body is not None and body["shipments"][0]["items"][0]["warehouse_location"] == "NO LOCATION"
    with pytest.raises(HeldBack, match="BIGBLOCK_LOCATIONS_CSV is not set"):
        order_body("M-1", [Line(1, "SKU-Z", "z", Decimal(3))], Locations.none(), allow_missing_location=False)


def test_prefix_per_source() -> None:
    prefixes = {"valerdat": "PO-"}
    assert order_number("valerdat", "2025-1", prefixes) == "PO-2025-1"
    assert order_number("magento", "100000001", prefixes) == "100000001"


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("sku,location,upc\nA,Aisle 1,111\nB,Aisle 2\n", {"A": Location("Aisle 1", "111"), "B": Location("Aisle 2")}),
        ("\ufeffA, Aisle 1 ,\n\n# a comment\nB,\"Bay 2, top\"\n", {"A": Location("Aisle 1"), "B": Location("Bay 2, top")}),
        ("SKU,Location\nA,1\n", {"A": Location("1")}),
    ],
)
def test_locations_file(tmp_path: Path, text: str, expected: dict[str, Location]) -> None:
    path = tmp_path / "locations.csv"
    path.write_text(text, encoding="utf-8")
    assert Locations.load(str(path)).by_sku == expected


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("A,1\nA,2\n", "line 2: SKU 'A' is already on line 1"),
        ("A\n", "line 1: expected sku,location"),
        ("A,1,2,3\n", "line 1: expected sku,location"),
        (",Aisle\n", "line 1: expected sku,location"),
    ],
)
def test_a_bad_locations_file_is_one_line_naming_the_line(tmp_path: Path, text: str, message: str) -> None:
    path = tmp_path / "locations.csv"
    path.write_text(text, encoding="utf-8")
    with pytest.raises(ConfigError, match=message) as caught:
        Locations.load(str(path))
    assert str(caught.value).startswith("BIGBLOCK_LOCATIONS_CSV:") and "\n" not in str(caught.value)


def test_a_missing_or_binary_locations_file_is_a_config_error(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="cannot read"):
        Locations.load(str(tmp_path / "nope.csv"))
    (tmp_path / "bin.csv").write_bytes(b"\xff\xfeA\x00,\x001\x00")
    with pytest.raises(ConfigError, match="not UTF-8"):
        Locations.load(str(tmp_path / "bin.csv"))


def test_the_fingerprint_follows_the_file(tmp_path: Path) -> None:
    path = tmp_path / "locations.csv"
    path.write_text("A,1\n")
    first = Locations.load(str(path)).fingerprint
    path.write_text("A,2\n")
    assert Locations.load(str(path)).fingerprint != first


BODY = order_body("M-7", [Line(1, "SKU-A", "Widget A", Decimal(2)), Line(2, "SKU-B", "B", Decimal(1))], SHELVES, False)


def held_copy(**changes: Any) -> dict[str, Any]:
    """Big Block's answer for BODY: ids added, items in another order, quantities as it prints them."""
    items = [dict(item, id=10 + n, device=None) for n, item in enumerate(reversed(BODY["shipments"][0]["items"]))]
    items[0].update(changes)
    return {"id": 5, "order_number": "M-7", "shipments": [{"id": 9, "shipment_number": "M-7", "items": items}]}


@pytest.mark.parametrize(
    ("held", "same"),
    [
        (held_copy(), True),
        (held_copy(ordered_quantity="1"), True),
        (held_copy(ordered_quantity=3), False),
        (held_copy(warehouse_location="Aisle 9"), False),
        ({"id": 5, "order_number": "M-7", "items": held_copy()["shipments"][0]["items"]}, True),
        ({"id": 5, "order_number": "M-7", "shipments": []}, False),
    ],
)
def test_same_content_ignores_ids_order_and_number_spelling(held: dict[str, Any], same: bool) -> None:
    assert same_content(held, BODY) is same


@pytest.mark.parametrize(
    ("held", "started"),
    [(held_copy(), False), (held_copy(quantity_fulfilled=1), True), (held_copy(quantity_fulfilled="0.5"), True),
     (held_copy(quantity_fulfilled=None), False), (held_copy(quantity_fulfilled="lots"), True)],
)
def test_picking_started_when_any_item_was_fulfilled(held: dict[str, Any], started: bool) -> None:
    assert picking_started(held) is started


def test_content_hash_is_stable_and_follows_the_lines() -> None:
    again = order_body("M-7", [Line(1, "SKU-A", "Widget A", Decimal("2.00")), Line(2, "SKU-B", "B", Decimal(1))], SHELVES, False)
    assert content_hash(again) == content_hash(BODY)
    changed = order_body("M-7", [Line(1, "SKU-A", "Widget A", Decimal(3)), Line(2, "SKU-B", "B", Decimal(1))], SHELVES, False)
    assert content_hash(changed) != content_hash(BODY)


@pytest.mark.parametrize(
    ("errors", "duplicate"),
    [
        ({"non_field_errors": ["The fields order_number, voodoo_customer must make a unique set."]}, True),
        ({"order_number": ["order with this order number already exists."]}, True),
        ({"order_number": ["This field may not be blank."]}, False),
        ({"shipments": [{"items": [{"SKU": ["This field is required."]}]}]}, False),
        ("<html>Bad Request</html>", False),
    ],
)
def test_a_duplicate_order_number_is_told_from_other_refusals(errors: Any, duplicate: bool) -> None:
    assert is_duplicate(errors) is duplicate


def test_lines_of_sku_not_picked_stay_out_and_an_order_of_nothing_else_is_not_sent() -> None:
    shelves = Locations({"SKU-A": Location("Aisle 3"), "GIFT-1": Location("-")}, "f", "locations.csv")
    body = order_body("M-1", [Line(1, "GIFT-1", "Gift card", Decimal(1)), Line(2, "SKU-A", "A", Decimal(1))], shelves, False)
    assert body is not None and [item["SKU"] for item in body["shipments"][0]["items"]] == ["SKU-A"]
    assert order_body("M-2", [Line(1, "GIFT-1", "Gift card", Decimal("0.5"))], shelves, False) is None
