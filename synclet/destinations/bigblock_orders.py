"""Stored orders as Big Block order bodies, with locations and UPCs from the operator's CSV.

Pure functions, no HTTP and no database: what goes to the warehouse is decided here and can be
tested line by line. A line whose SKU has no location, or whose quantity is not a whole number of
pieces, holds its order back with a reason a person can act on. A SKU located at ``-`` is not
picked at all (a gift card, a download): its lines are left out, and an order of nothing else is
not sent.
"""
from __future__ import annotations

import csv
import hashlib
import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from decimal import Decimal
from pathlib import Path
from typing import Any

from synclet.errors import ConfigError

SETTING = "BIGBLOCK_LOCATIONS_CSV"
HEADER = ("sku", "location", "upc")
#: Sent for a SKU without a location when BIGBLOCK_ALLOW_MISSING_LOCATION allows it: Big Block
#: refuses a blank location, and a picker should see that this one is unknown.
MISSING_LOCATION = "NO LOCATION"
#: The location of a SKU nobody picks (a gift card, a download, a service): its lines stay out of Big Block.
NOT_PICKED = "-"


@dataclass(frozen=True, slots=True)
class Location:
    location: str
    upc: str | None = None


@dataclass(frozen=True, slots=True)
class Line:
    """One stored order line, as much of it as a picker needs."""

    line_no: int
    sku: str | None
    name: str | None
    quantity: Decimal | None
    error_code: str | None = None  # e.g. Product.ProductNotFound: the shop no longer has the product


class HeldBack(Exception):
    """The order cannot go to Big Block as it is; the message says what a person must fix."""


class Locations:
    """The operator's ``sku,location[,upc]`` file, read once per push.

    SKUs match exactly, or else ignoring case (shops rarely tell ``abc-1`` from ``ABC-1``)."""

    def __init__(self, by_sku: Mapping[str, Location], fingerprint: str, path: str | None) -> None:
        self.by_sku = dict(by_sku)
        self._folded = {sku.casefold(): location for sku, location in by_sku.items()}
        self.fingerprint = fingerprint
        self.path = path

    def find(self, sku: str) -> Location | None:
        return self.by_sku.get(sku) or self._folded.get(sku.casefold())

    @classmethod
    def none(cls) -> Locations:
        return cls({}, "", None)

    @classmethod
    def load(cls, path: str) -> Locations:
        """Read and check the whole file; any problem is a one-line ``ConfigError`` naming the line."""
        try:
            raw = Path(path).read_bytes()
        except OSError as error:
            raise ConfigError(f"{SETTING}: cannot read {path!r} ({error.strerror})") from None
        try:
            text = raw.decode("utf-8-sig")  # a spreadsheet's "CSV UTF-8" starts with a BOM
        except UnicodeDecodeError:
            raise ConfigError(f"{SETTING}: {path!r} is not UTF-8 text (save it as CSV UTF-8)") from None
        by_sku: dict[str, Location] = {}
        first_seen: dict[str, int] = {}
        for number, row in enumerate(csv.reader(text.splitlines()), start=1):
            cells = [cell.strip() for cell in row]
            if not any(cells) or cells[0].startswith("#"):
                continue
            if number == 1 and tuple(cell.lower() for cell in cells[:3]) in (HEADER, HEADER[:2]):
                continue
            if len(cells) not in (2, 3) or not cells[0] or not cells[1]:
                raise ConfigError(f"{SETTING}: {path} line {number}: expected sku,location[,upc], got {','.join(row)!r}")
            sku = cells[0]
            if sku in first_seen:
                raise ConfigError(f"{SETTING}: {path} line {number}: SKU {sku!r} is already on line {first_seen[sku]}")
            first_seen[sku] = number
            by_sku[sku] = Location(cells[1], cells[2] if len(cells) == 3 and cells[2] else None)
        return cls(by_sku, hashlib.sha256(raw).hexdigest(), path)


def order_number(source: str, number: str, prefixes: Mapping[str, str]) -> str:
    """The number Big Block knows the order by: the source's prefix, if any, and the shop's number."""
    return prefixes.get(source, "") + number


def order_body(number: str, lines: Sequence[Line], locations: Locations,
               allow_missing_location: bool) -> dict[str, Any] | None:
    """The Big Block order for ``lines``: one shipment, one item per line to pick; None when no
    line needs picking. Raises ``HeldBack``."""
    if not lines:
        raise HeldBack("the order has no lines")
    items = [item for line in lines if (item := _item(line, locations, allow_missing_location)) is not None]
    if not items:
        return None
    return {"order_number": number, "shipments": [{"shipment_number": number, "items": items}]}


def _item(line: Line, locations: Locations, allow_missing_location: bool) -> dict[str, Any] | None:
    if line.sku and (located := locations.find(line.sku)) is not None and located.location == NOT_PICKED:
        return None
    if not line.sku:
        gone = f" ({line.error_code}: the product was deleted in the shop; pick this order by hand)" if line.error_code else ""
        raise HeldBack(f"line {line.line_no} has no SKU{gone}")
    quantity = line.quantity
    if quantity is None or quantity <= 0 or quantity != quantity.to_integral_value():
        raise HeldBack(f"line {line.line_no} ({line.sku}): quantity {quantity} is not a whole number of pieces")
    location = locations.find(line.sku)
    if location is None and not allow_missing_location:
        where = f"in {locations.path}" if locations.path else f"({SETTING} is not set)"
        raise HeldBack(f"SKU {line.sku} has no location {where}")
    name = line.name or line.sku
    return {
        "name": name,
        "description": name,
        "SKU": line.sku,
        "UPC": (location.upc if location else None) or line.sku,
        "ordered_quantity": int(quantity),
        "quantity_fulfilled": 0,
        "warehouse_location": location.location if location else MISSING_LOCATION,
    }


def content_hash(body: Mapping[str, Any]) -> str:
    return hashlib.sha256(json.dumps(body, sort_keys=True, separators=(",", ":")).encode("utf-8")).hexdigest()


def _items(order: Mapping[str, Any]) -> list[Mapping[str, Any]]:
    """Every item of an order as Big Block shows it: in its shipments, or at the top level."""
    items = [item for shipment in order.get("shipments") or [] for item in shipment.get("items") or []]
    return items or list(order.get("items") or [])


def _comparable(item: Mapping[str, Any]) -> tuple[str, ...]:
    fields = ("name", "description", "SKU", "UPC", "warehouse_location")
    quantity = item.get("ordered_quantity")
    try:
        quantity = str(int(Decimal(str(quantity))))
    except (ArithmeticError, ValueError):
        quantity = str(quantity)
    return (*(str(item.get(name) or "").strip() for name in fields), quantity)


def same_content(held: Mapping[str, Any], body: Mapping[str, Any]) -> bool:
    """Whether the order Big Block holds has the lines of ``body`` (in any order, ids aside)."""
    return sorted(map(_comparable, _items(held))) == sorted(map(_comparable, _items(body)))


def picking_started(held: Mapping[str, Any]) -> bool:
    """Whether any item of the order Big Block holds has been picked, even partly."""
    for item in _items(held):
        try:
            if Decimal(str(item.get("quantity_fulfilled") or 0)) > 0:
                return True
        except ArithmeticError:
            return True  # unreadable: assume a person touched it rather than delete their work
    return False
