"""Hostile and odd data end to end: the CLI syncs a sandbox store in which some orders carry quotes,
SQL, emoji, control characters, lone surrogates, 10,000-character text, absurd amounts and dates,
odd line lists and a duplicated id. The run must finish, reject what cannot be stored faithfully
(saying why), store the rest whole or cut to its column, and leave every other order exact."""
from __future__ import annotations

import copy
from dataclasses import dataclass, field
from datetime import datetime
from decimal import Decimal
from pathlib import Path
from typing import Any

from sqlalchemy import func, select

from synclet import db
from synclet.history import HISTORY
from synclet.logs import loggable
from synclet.sandbox import Sandbox
from synclet.sandbox.onesaas import render_contact, render_item
from synclet.store import ADDRESSES, ITEMS, ORDERS, REJECTS

from conftest import run_cli
from truth import differences

NOW = datetime(2026, 3, 1)
PAGE_SIZE = 50  # entity ids 1-50 make page 0, 51-100 page 1, …
EMOJI = "😀👍🏽👨‍👩‍👧‍👦🇬🇧𝄞"  # 4-byte UTF-8, modifiers, joiners, flags
SQL = "Robert'); DROP TABLE orders;-- \" \\ ` %_ \\' OR '1'='1"
CONTROL = "a\x00b\x01c\x07d\te\nf\rg\x1bh\x7fi\x85j\u2028k"
LONG = ("😀Ω" + "x" * 8) * 1000  # 10,000 characters, a thousand of them 4 bytes long in UTF-8


@dataclass
class Hostile:
    """What the test did to the store and what it expects the database to hold afterwards."""

    rejected: dict[str, str] = field(default_factory=dict)  # external id -> a word the reason must hold
    columns: dict[tuple[str, str], Any] = field(default_factory=dict)  # (external id, orders column) -> value
    lines: dict[str, list[tuple[str | None, str | None]]] = field(default_factory=dict)  # external id -> (sku, name)s
    billing: dict[str, dict[str, str]] = field(default_factory=dict)  # external id -> order_addresses columns
    ids: set[str] = field(default_factory=set)  # every id whose stored row may differ from the truth

    def serve(self, shop: Sandbox, entity_id: int, overrides: dict[str, Any]) -> str:
        shop.store.override(entity_id, overrides)
        self.ids.add(str(entity_id))
        return str(entity_id)


def plain_orders(shop: Sandbox) -> list[int]:
    """Ordinary orders (with both addresses and priced lines): the ones made hostile."""
    return [
        int(order["external_id"]) for order in shop.truth()
        if order["has_identity"] and order["replaces_external_id"] is None and len(order["addresses"]) == 2
        and all(not item["deleted_product"] for item in order["items"])
    ]


def stored_line(line: dict[str, Any]) -> tuple[str | None, str | None]:
    """(sku, name) as a served line is stored: a deleted product's message is its name; names are cut to 255."""
    name = line.get("ProductName") or line.get("Message")
    return line.get("ProductCode"), name and name[:255]


def make_hostile(shop: Sandbox) -> Hostile:
    hostile = Hostile()
    ids = iter(plain_orders(shop)[5:])

    def contact(entity_id: int, **changes: str) -> dict[str, Any]:
        order = shop.store.get(entity_id)
        rendered = render_contact(order.customer, order)
        rendered.update({k: v for k, v in changes.items() if k in ("FirstName", "LastName")})
        billing = rendered["Addresses"]["BillingAddress"]
        billing.update({k: v for k, v in changes.items() if k in billing})
        return rendered

    # Text: stored whole in TEXT columns, cut to the column in VARCHAR ones, emoji byte for byte.
    key = hostile.serve(shop, next(ids), {"Notes": SQL, "OrderNumber": SQL[:40]})
    hostile.columns |= {(key, "notes"): SQL, (key, "order_number"): SQL[:40]}
    key = hostile.serve(shop, next(ids), {"Notes": CONTROL + EMOJI})
    hostile.columns[(key, "notes")] = CONTROL + EMOJI
    key = hostile.serve(shop, next(ids), {"Notes": LONG, "OrderNumber": LONG, "Status": EMOJI})
    hostile.columns |= {(key, "notes"): LONG, (key, "order_number"): LONG[:64], (key, "status"): EMOJI}
    entity_id = next(ids)
    key = hostile.serve(shop, entity_id, {"Contact": contact(entity_id, FirstName=LONG, LastName=SQL, Line1=SQL,
                                                             City=CONTROL, Line2=EMOJI, PostCode=LONG)})
    hostile.columns[(key, "customer_name")] = LONG[:255]
    hostile.billing[key] = {"first_name": LONG[:255], "last_name": SQL, "line1": SQL, "line2": EMOJI, "city": CONTROL, "postcode": LONG[:32]}
    # Lone surrogates arrive as \udXXX escapes and are stored as U+FFFD.
    entity_id = next(ids)
    key = hostile.serve(shop, entity_id, {"Notes": "before\ud800after\udfff", "Contact": contact(entity_id, FirstName="\udc00Zoë")})
    hostile.columns[(key, "notes")] = "before\ufffdafter\ufffd"
    # SKUs and names of lines; a list with a duplicated line, an empty one and a deleted product.
    entity_id = next(ids)
    lines = [render_item(line) for line in shop.store.get(entity_id).lines]
    lines[0] |= {"ProductCode": SQL + EMOJI, "ProductName": LONG}
    odd = [*lines, copy.deepcopy(lines[0]), {}, {"ErrorCode": "Product.ProductNotFound", "Message": CONTROL}]
    key = hostile.serve(shop, entity_id, {"Items": odd})
    hostile.lines[key] = [stored_line(line) for line in odd]
    # Amounts and dates a database can hold, however odd.
    key = hostile.serve(shop, next(ids), {"Total": "-5.00", "Date": "2099-12-31 23:59:59"})
    hostile.columns |= {(key, "grand_total"): Decimal("-5"), (key, "order_date"): datetime(2099, 12, 31, 23, 59, 59)}
    key = hostile.serve(shop, next(ids), {"Date": "1969-07-20 20:17:40", "LastUpdatedDate": "1969-07-20 20:17:40"})
    hostile.columns[(key, "source_updated_at")] = datetime(1969, 7, 20, 20, 17, 40)

    # What cannot be stored faithfully is rejected, with the reason.
    for overrides, reason in (
        ({"Total": "1e400"}, "Total"),
        ({"Total": "99999999999999999999.99"}, "grand_total"),
        ({"Date": "0000-00-00 00:00:00"}, "Date"),
        ({"Total": float("nan")}, "Total"),
        ({"Discounts": float("inf")}, "Discounts"),
    ):
        hostile.rejected[hostile.serve(shop, next(ids), overrides)] = reason
    hostile.rejected["12 OR 1=1"] = "Id"
    hostile.serve(shop, next(ids), {"Id": "12 OR 1=1", "Notes": SQL})

    # Two entries of one page with the same Id: the later one is stored under it.
    first = next(ids)
    second = next(i for i in ids if (i - 1) // PAGE_SIZE == (first - 1) // PAGE_SIZE)
    hostile.serve(shop, second, {"Id": str(first)})
    hostile.ids.add(str(first))
    hostile.columns[(str(first), "order_number")] = shop.store.get(second).increment_id
    return hostile


def test_hostile_orders_neither_fail_the_run_nor_touch_other_orders(database_url: str) -> None:
    with Sandbox(orders=300, seed=29, now=NOW) as shop:
        hostile = make_hostile(shop)
        env = {**shop.env(), "DATABASE_URL": database_url, "MAGENTO_PAGE_SIZE": str(PAGE_SIZE),
               "HTTP_MAX_RETRIES": "1", "HTTP_BACKOFF_SECONDS": "0.01"}

        result = run_cli("sync", "--source", "magento", env=env)

        assert result.exit_code == 1, result.output  # 1: some orders were rejected
        engine = db.connect(database_url)
        with engine.connect() as conn:
            run = conn.execute(select(HISTORY).order_by(HISTORY.c.id.desc())).mappings().first()
            rejects = {row.external_id: row for row in conn.execute(select(REJECTS))}
            stored = {row.external_id: row._mapping for row in conn.execute(select(ORDERS).where(ORDERS.c.external_id.in_(hostile.ids)))}
            lines = {
                external_id: conn.execute(select(ITEMS.c.sku, ITEMS.c.name).join(ORDERS).where(ORDERS.c.external_id == external_id)
                                          .order_by(ITEMS.c.line_no)).all()
                for external_id in hostile.lines
            }
            billing = {
                external_id: conn.execute(select(ADDRESSES).join(ORDERS).where(ORDERS.c.external_id == external_id,
                                                                               ADDRESSES.c.address_type == "billing")).mappings().one()
                for external_id in hostile.billing
            }
            hex_notes = dict(conn.execute(select(ORDERS.c.external_id, func.hex(ORDERS.c.notes)).where(ORDERS.c.external_id.in_(hostile.ids))).all())
        assert (run["status"], run["orders_rejected"]) == ("success", len(hostile.rejected))

        assert set(rejects) == set(hostile.rejected)
        for external_id, reason in hostile.rejected.items():
            message = rejects[external_id].error_message
            assert reason in message and "\n" not in message and len(message) < 300, message
        assert not set(hostile.rejected) & set(stored)

        # Every order not made hostile is exactly what the store holds.
        truth = [order for order in shop.truth() if order["external_id"] not in hostile.ids]
        allowed = {f"unexpected order {external_id}" for external_id in hostile.ids}
        assert [problem for problem in differences(engine, truth) if problem not in allowed] == []

        assert {external_id: [tuple(line) for line in rows] for external_id, rows in lines.items()} == hostile.lines
        assert {key: {column: billing[key][column] for column in want} for key, want in hostile.billing.items()} == hostile.billing
        for (external_id, column), value in hostile.columns.items():
            assert stored[external_id][column] == value, (external_id, column)
            if column == "notes":  # byte for byte: 4-byte emoji were not mangled into ? or cut
                assert hex_notes[external_id].upper() == value.encode("utf-8").hex().upper()

        # Each cut is a warning of one short line, however long the order number it names.
        cuts = [line for line in Path("synclet.log").read_text(encoding="utf-8").splitlines() if "stored the first" in line]
        assert len(cuts) >= 5 and all(len(line) < 200 for line in cuts), cuts


def test_a_dry_run_prints_a_hostile_order_number_escaped_on_one_line(tmp_path: Path) -> None:
    """Order numbers come from the shop: a dry run prints them as the activity log writes them, so
    an escape sequence cannot drive the operator's terminal nor a line break forge a line."""
    with Sandbox(orders=60, seed=29, now=NOW) as shop:
        entity_id = plain_orders(shop)[0]
        shop.store.override(entity_id, {"OrderNumber": CONTROL})
        env = {**shop.env(), "DATABASE_URL": f"sqlite:///{tmp_path / 'dry.db'}"}
        result = run_cli("sync", "--dry-run", "--source", "magento", env=env)
    assert result.exit_code == 0, result.output
    escaped = loggable(CONTROL)
    assert f"[dry-run] would add: magento {escaped}" in result.output.splitlines()
    assert not {"\x1b", "\x00", "\r", "\u2028"} & set(result.output)
