"""Compare what synclet stored with what the sandbox store knows to be true."""
from __future__ import annotations

from datetime import datetime
from decimal import Decimal
from typing import Any

from sqlalchemy import select
from sqlalchemy.engine import Engine

from synclet import db
from synclet.history import HISTORY
from synclet.store import ADDRESSES, CREDITS, ITEMS, ORDERS

ORDER_FIELDS = (
    "order_number status order_date source_updated_at currency_code customer_email customer_name "
    "customer_external_id subtotal tax_amount shipping_amount shipping_tax_amount shipping_incl_tax "
    "discount_amount grand_total payment_method payment_amount shipping_method notes store_name "
    "replaces_external_id replaces_order_number"
).split()
ITEM_FIELDS = "line_no sku name quantity unit_price_ex_tax price_incl_tax tax_rate tax_amount discount_amount line_total_incl_tax".split()
ADDRESS_FIELDS = "address_type first_name last_name company phone line1 line2 city region postcode country_code".split()
CREDIT_FIELDS = (
    "external_id credit_number state credit_date subtotal tax_amount shipping_amount adjustment_positive "
    "adjustment_negative grand_total"
).split()


def normal(value: Any) -> Any:
    """One spelling per value: Decimals by value, datetimes as the store writes them."""
    if isinstance(value, Decimal):
        return value.normalize()
    if isinstance(value, datetime):
        return value.strftime("%Y-%m-%d %H:%M:%S")
    return value


def expected_value(field: str, value: Any) -> Any:
    numeric = field not in ("order_number", "credit_number", "external_id", "state", "customer_external_id",
                            "replaces_external_id", "replaces_order_number", "sku", "name", "phone", "postcode")
    if isinstance(value, str) and numeric:
        try:
            return Decimal(value).normalize()
        except ArithmeticError:
            return value
    return value


def stored(engine: Engine, source: str = "magento") -> dict[str, dict[str, Any]]:
    """external_id -> the stored order with its items, addresses and credits, normalised."""
    with engine.connect() as conn:
        orders = {row.id: dict(row._mapping) for row in conn.execute(select(ORDERS).where(ORDERS.c.source == source))}
        children: dict[str, dict[int, list[dict[str, Any]]]] = {}
        for name, table, order_by in (("items", ITEMS, ITEMS.c.line_no), ("addresses", ADDRESSES, ADDRESSES.c.address_type), ("credits", CREDITS, CREDITS.c.external_id)):
            grouped: dict[int, list[dict[str, Any]]] = {}
            for row in conn.execute(select(table).where(table.c.order_id.in_(list(orders) or [0])).order_by(table.c.order_id, order_by, table.c.id)):
                grouped.setdefault(row.order_id, []).append(dict(row._mapping))
            children[name] = grouped
    result = {}
    for order_id, order in orders.items():
        entry = {field: normal(order[field]) for field in ORDER_FIELDS}
        entry["items"] = [{f: normal(i[f]) for f in ITEM_FIELDS} for i in children["items"].get(order_id, [])]
        entry["addresses"] = [{f: normal(a[f]) for f in ADDRESS_FIELDS} for a in children["addresses"].get(order_id, [])]
        entry["credits"] = [{f: normal(c[f]) for f in CREDIT_FIELDS} for c in children["credits"].get(order_id, [])]
        result[order["external_id"]] = entry
    return result


def expected(truth: list[dict[str, Any]]) -> dict[str, dict[str, Any]]:
    """The sandbox's truth in the same normal form; orders without identity are not stored."""
    result = {}
    for order in truth:
        if not order["has_identity"]:
            continue
        entry = {field: expected_value(field, order[field]) for field in ORDER_FIELDS}
        entry["items"] = [_item(item) for item in order["items"]]
        entry["addresses"] = sorted(({f: a[f] for f in ADDRESS_FIELDS} for a in order["addresses"]), key=lambda a: a["address_type"])
        entry["credits"] = sorted(({f: expected_value(f, c[f]) for f in CREDIT_FIELDS} for c in order["credits"]), key=lambda c: c["external_id"])
        result[order["external_id"]] = entry
    return result


def _item(item: dict[str, Any]) -> dict[str, Any]:
    if item["deleted_product"]:
        # The API tells only that the product is gone: no SKU, no numbers.
        return {f: None for f in ITEM_FIELDS} | {"line_no": item["line_no"], "name": "Ordered product could not be found!"}
    return {f: expected_value(f, item[f]) for f in ITEM_FIELDS}


def differences(engine: Engine, truth: list[dict[str, Any]], source: str = "magento") -> list[str]:
    """Human-readable differences between the database and the store; empty when they agree."""
    have, want = stored(engine, source), expected(truth)
    problems = [f"missing order {key}" for key in sorted(want.keys() - have.keys())]
    problems += [f"unexpected order {key}" for key in sorted(have.keys() - want.keys())]
    for key in sorted(want.keys() & have.keys()):
        for field in want[key]:
            if have[key][field] != want[key][field]:
                problems.append(f"order {key} {field}: stored {have[key][field]!r}, store has {want[key][field]!r}")
    return problems


def runs_of(database_url: str, source: str) -> list[dict[str, Any]]:
    """The ``sync_history`` rows of ``source``, oldest first."""
    with db.connect(database_url).connect() as conn:
        query = select(HISTORY).where(HISTORY.c.source == source).order_by(HISTORY.c.id)
        return [dict(row._mapping) for row in conn.execute(query)]
