"""The pure mapping of Magento 2 REST orders and their credit memos into records.

An order's credit memos ride in its stored payload under ``synclet_creditmemos``, so ``parse_stored``
maps a stored ``raw_json`` again. Configurable and bundle lines are folded into their parent, as an
invoice shows them. Parsing does no I/O, so it is tested on recorded shapes.
"""
from __future__ import annotations

from collections import defaultdict
from collections.abc import Mapping, Sequence
from decimal import Decimal
from typing import Any

from synclet.errors import MappingError
from synclet.records import Address, AddressType, Item, Order, Page, Rejected, canonical_json, content_hash
from synclet.sources.fields import Fields, credit_memo, identifier, money, net_subtotal, required_text, type_name

SOURCE = "magento-rest"
CREDITS_KEY = "synclet_creditmemos"
ZERO = Decimal("0")
_ADDRESS_KEYS = {
    "first_name": "firstname", "last_name": "lastname", "company": "company", "phone": "telephone",
    "email": "email", "city": "city", "region": "region", "postcode": "postcode", "country_code": "country_id",
}


def parse_page(number: int, orders: Sequence[Mapping[str, Any]], credit_memos: Sequence[Mapping[str, Any]] = (),
               source: str = SOURCE) -> Page:
    """Map a page of orders, each with the memos whose ``order_id`` is its ``entity_id``; a bad
    order is rejected with its memos, as ``parse`` will want it again."""
    memos_of: defaultdict[str, list[Mapping[str, Any]]] = defaultdict(list)
    for memo in credit_memos:
        memos_of[str(memo.get("order_id"))].append(memo)
    page = Page(number)
    for payload in orders:
        memos = memos_of[str(payload.get("entity_id"))]
        try:
            page.orders.append(parse_order(payload, memos, source))
        except MappingError as error:
            identity = identifier(payload.get("entity_id")), identifier(payload.get("increment_id"))
            page.rejected.append(Rejected(source, *identity, canonical_json(_stored(payload, memos)), str(error)))
    return page


def parse_stored(payload: Mapping[str, Any], source: str = SOURCE) -> Order:
    """Map an order's stored ``raw_json`` payload again: the order with its memos inside."""
    memos = payload.get(CREDITS_KEY) or []
    if not isinstance(memos, list):
        raise MappingError(f"{CREDITS_KEY}: expected a list, got {type_name(memos)}")
    return parse_order({k: v for k, v in payload.items() if k != CREDITS_KEY}, memos, source)


def parse_order(payload: Mapping[str, Any], credit_memos: Sequence[Mapping[str, Any]] = (),
                source: str = SOURCE) -> Order:
    """One REST order and its credit memos into records; raises ``MappingError`` naming the first bad field."""
    stored = _stored(payload, credit_memos)
    order = Fields(stored)
    external_id = required_text(order, "entity_id")
    updated_at = order.time("updated_at") or order.time("created_at")
    if updated_at is None:
        raise MappingError("updated_at: missing, and created_at too")
    billing = order.child("billing_address")
    shipping = _shipping(order)
    shipping_address = shipping.child("address") if shipping else None
    payment = order.child("payment") or Fields({}, "payment")
    discount = order.decimal("discount_amount")
    name = _full_name(order, "customer_firstname", "customer_lastname") or _billing_name(billing)
    guest = str(order.data.get("customer_is_guest")).lower() in ("1", "true")
    lines = _fold_items(order.objects("items"))
    addresses: list[tuple[Fields | None, AddressType]] = [(billing, "billing"), (shipping_address, "shipping")]
    raw_json = canonical_json(stored)
    return Order(
        source=source, external_id=external_id, order_number=order.text("increment_id"),
        status=order.text("status"), order_date=order.time("created_at"), source_updated_at=updated_at,
        currency_code=order.text("order_currency_code"), customer_email=order.text("customer_email"),
        customer_name=name, customer_external_id=None if guest else order.text("customer_id"),
        subtotal=net_subtotal(order), tax_amount=order.decimal("tax_amount"),
        shipping_amount=order.decimal("shipping_amount"), shipping_tax_amount=order.decimal("shipping_tax_amount"),
        shipping_incl_tax=order.decimal("shipping_incl_tax"), grand_total=order.decimal("grand_total"),
        discount_amount=None if discount is None else abs(discount),
        payment_method=payment.text("method"), payment_amount=payment.decimal("amount_paid"),
        shipping_method=(shipping.text("method") if shipping else None) or order.text("shipping_description"),
        notes=order.text("customer_note"), store_name=order.text("store_name"),
        replaces_external_id=order.text("relation_parent_id"),  # an edited order names the one it replaces
        replaces_order_number=order.text("relation_parent_real_id"),
        raw_json=raw_json, content_hash=content_hash(raw_json),
        items=[_item(amounts, product, line_no) for line_no, (amounts, product) in enumerate(lines, start=1)],
        addresses=[_address(fields, kind) for fields, kind in addresses if fields is not None],
        credits=[credit_memo(memo) for memo in order.objects(CREDITS_KEY)],
    )


def _stored(payload: Mapping[str, Any], credit_memos: Sequence[Mapping[str, Any]]) -> dict[str, Any]:
    return {**payload, CREDITS_KEY: list(credit_memos)}


def _shipping(order: Fields) -> Fields | None:
    """Magento keeps the shipping address and method only in the first shipping assignment."""
    extension = order.child("extension_attributes")
    assignments = extension.objects("shipping_assignments") if extension else []
    return assignments[0].child("shipping") if assignments else None


def _fold_items(lines: list[Fields]) -> list[tuple[Fields, Fields]]:
    """Each sold product once, as (the line holding its amounts, the line naming the product).

    Magento lists parents and children: a configurable parent holds the amounts and its simple
    child the real SKU; a bundle is sold as one product, the parent, with its children's amounts
    added up when the children carry the price (a fixed-price bundle carries it on the parent)."""
    parents = {line.text("item_id") for line in lines} - {None}
    children: defaultdict[str | None, list[Fields]] = defaultdict(list)
    for line in lines:
        if line.text("parent_item_id") in parents:
            children[line.text("parent_item_id")].append(line)
    folded: list[tuple[Fields, Fields]] = []
    for line in lines:
        if line.text("parent_item_id") in parents:
            continue
        kids = children.get(line.text("item_id"), [])
        if line.text("product_type") == "bundle":
            priced = _summed(line, kids) if any(kid.decimal("price") for kid in kids) else line
            folded.append((priced, line))
        else:
            folded.append((line, kids[0] if kids else line))
    return folded


_BUNDLE_ROW_AMOUNTS = ("tax_amount", "discount_amount", "row_total", "row_total_incl_tax")


def _summed(parent: Fields, children: list[Fields]) -> Fields:
    """The bundle parent with its priced children's row amounts added up (their tax rate is one).

    A part may be ordered several times per bundle (its ``qty_ordered`` is then a multiple of the
    bundle's), so the parts' unit prices do not add up to the bundle's: its unit prices are its row
    totals per bundle, rounded half up to 4 places, consistent with its line total."""
    data = dict(parent.data)
    data.update({key: sum((child.decimal(key) or ZERO for child in children), ZERO) for key in _BUNDLE_ROW_AMOUNTS})
    quantity = parent.decimal("qty_ordered")
    for unit, row in (("price", "row_total"), ("price_incl_tax", "row_total_incl_tax")):
        data[unit] = money(data[row] / quantity) if quantity else None
    data["tax_percent"] = next((c.data.get("tax_percent") for c in children if c.data.get("tax_percent")), 0)
    return Fields(data, parent.path)


def _item(amounts: Fields, product: Fields, line_no: int) -> Item:
    """Magento's ``row_total_incl_tax`` is before the line's discount; the contract's line total is after it."""
    rate = amounts.decimal("tax_percent")
    discount = amounts.decimal("discount_amount")
    row_total = amounts.decimal("row_total_incl_tax")
    return Item(
        line_no=line_no, sku=product.text("sku"), name=amounts.text("name"), product_id=product.text("product_id"),
        quantity=amounts.decimal("qty_ordered"), unit_price_ex_tax=amounts.decimal("price"),
        price_incl_tax=amounts.decimal("price_incl_tax"), tax_rate=None if rate is None else rate / 100,
        tax_amount=amounts.decimal("tax_amount"), discount_amount=discount,
        line_total_incl_tax=None if row_total is None else row_total - (discount or ZERO),
    )


def _billing_name(billing: Fields | None) -> str | None:
    """Who ordered when the order names nobody: the billing company, else the billing person."""
    if billing is None:
        return None
    return (billing.text("company") or "").strip() or _full_name(billing, "firstname", "lastname")


def _full_name(fields: Fields | None, first: str, last: str) -> str | None:
    if fields is None:
        return None
    return " ".join(part.strip() for part in (fields.text(first), fields.text(last)) if part and part.strip()) or None


def _address(fields: Fields, kind: AddressType) -> Address:
    line1, line2 = _street(fields)
    return Address(kind, line1=line1, line2=line2, **{attr: fields.text(key) for attr, key in _ADDRESS_KEYS.items()})


def _street(address: Fields) -> tuple[str | None, str | None]:
    """Magento's street is a list of lines: the first is line1, the others joined are line2."""
    value = address.data.get("street")
    if value is None or isinstance(value, str):
        return value or None, None
    if not isinstance(value, list) or any(isinstance(line, (dict, list)) for line in value):
        raise MappingError(f"{address.name('street')}: expected a list of lines, got {type_name(value)}")
    lines = [str(line) for line in value if line not in (None, "")]
    return (lines[0] if lines else None), (", ".join(lines[1:]) or None)
