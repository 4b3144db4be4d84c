"""Order lines as Magento's REST API lists them: parents AND children, and how a client folds them.

Each truth ``Line`` becomes one or more ``sales_order_item`` rows. Which shape is decided by the
product id alone (``product_id % 20``), so it is stable across renders and seeds:

* **simple** (the rest, plus every deleted-product line): one priced ``simple`` row.
* **configurable** (0-5, ~30 %): a parent row (``product_type`` ``configurable``, product id
  ``100000 + id``, sku = the child's sku, name = the line's name) that CARRIES THE PRICE, then a
  child row (``simple``, the real product id and sku, name ``"<name> - <variant>"``,
  ``parent_item_id`` = the parent's ``item_id``, every amount 0, an embedded ``parent_item`` copy).
* **bundle** (6, ~5 %): a parent row (``bundle``, product id ``200000 + id``, the line's sku and
  name) with every amount 0, then two children (``simple``, skus ``<sku>-1``/``<sku>-2``) that
  CARRY THE PRICE: child 1 holds 60 % of the unit price and unit discount (rounded), child 2 the
  rest of every amount, so the children add up to the line exactly. Each child orders the parent's
  quantity (one of each part per bundle) and embeds a ``parent_item`` copy.

Row amounts are Magento's: ``row_total = round(price * qty)`` and ``row_total_incl_tax =
row_total + tax_amount`` are BEFORE discount; ``discount_amount`` is positive on items.

Folding (what ``rest_truth`` holds and a correct client stores), one line per sold product in item
order: a simple row is its own line; a configurable pair is one line with the child's sku, the
parent's name and the parent's qty and amounts; a bundle is one line with the parent's sku, name
and qty and the SUM of its children's price, price_incl_tax, tax_amount, discount_amount and row
totals. For every folded line ``tax_rate = tax_percent / 100`` and ``line_total_incl_tax =
row_total_incl_tax - discount_amount``. Item ids are ``entity_id * 100 + n`` (n from 1).
"""
from __future__ import annotations

from dataclasses import dataclass, fields
from decimal import Decimal
from typing import Any

from synclet.sandbox.model import ZERO, Line, Order, money

ITEM_ID_STRIDE = 100
CONFIGURABLE_PRODUCT_OFFSET = 100_000
BUNDLE_PRODUCT_OFFSET = 200_000
BUNDLE_FIRST_SHARE = Decimal("0.6")
VARIANTS = ("Red / S", "Blue / M", "Green / L", "Black / XL", "White / M")


def line_kind(line: Line) -> str:
    """``simple``, ``configurable`` or ``bundle``: how this line's product is sold."""
    if line.deleted_product:
        return "simple"
    bucket = line.product_id % 20
    return "configurable" if bucket < 6 else "bundle" if bucket == 6 else "simple"


@dataclass(frozen=True, slots=True)
class Amounts:
    """The priced columns of one item row."""

    price: Decimal = ZERO
    price_incl_tax: Decimal = ZERO
    tax_amount: Decimal = ZERO
    discount_amount: Decimal = ZERO
    row_total: Decimal = ZERO

    @classmethod
    def of(cls, line: Line, share: Decimal = Decimal(1)) -> Amounts:
        """The line's amounts, or those of a part holding ``share`` of its unit price, rounded as
        the model rounds (tax on the undiscounted price)."""
        price = money(line.unit_price_ex_tax * share)
        if share == 1:
            return cls(price, line.price_incl_tax, line.tax_amount, line.discount_amount, money(price * line.qty))
        return cls(price, money(price * (1 + line.tax_rate)), money(price * line.qty * line.tax_rate),
                   money(money(line.unit_discount * share) * line.qty), money(price * line.qty))

    def __sub__(self, other: Amounts) -> Amounts:
        return Amounts(*(getattr(self, f.name) - getattr(other, f.name) for f in fields(self)))


def _qtys(order: Order, line_index: int) -> dict[str, float]:
    """Shipped, invoiced, canceled and refunded quantities; every row of a line shares them."""
    line = order.lines[line_index]
    refunded = sum((item.qty for memo in order.credit_memos for item in memo.items
                    if credited_line(order, item.product_id) == line_index), ZERO)
    return {
        "qty_ordered": float(line.qty),
        "qty_invoiced": float(line.qty if order.amount_paid is not None else ZERO),
        "qty_shipped": float(line.qty if order.status in ("complete", "closed") and order.shipping else ZERO),
        "qty_refunded": float(refunded),
        "qty_canceled": float(line.qty if order.status == "canceled" else ZERO),
    }


def credited_line(order: Order, product_id: int) -> int | None:
    """Index of the line a credit memo item refunds: the first line of that product."""
    return next((n for n, line in enumerate(order.lines) if line.product_id == product_id), None)


def _row(item_id: int, order: Order, qtys: dict[str, float], amounts: Amounts, *, sku: str, name: str,
         product_id: int, product_type: str, tax_percent: Decimal,
         parent: dict[str, Any] | None = None) -> dict[str, Any]:
    row: dict[str, Any] = {
        "item_id": item_id, "order_id": order.entity_id, "sku": sku, "name": name,
        "product_id": product_id, "product_type": product_type, **qtys,
        "price": float(amounts.price), "base_price": float(amounts.price),
        "price_incl_tax": float(amounts.price_incl_tax), "tax_percent": float(tax_percent),
        "tax_amount": float(amounts.tax_amount), "discount_amount": float(amounts.discount_amount),
        "row_total": float(amounts.row_total),
        "row_total_incl_tax": float(amounts.row_total + amounts.tax_amount),
        "parent_item_id": parent["item_id"] if parent else None,
    }
    if parent is not None:
        row["parent_item"] = dict(parent)
    return row


def render_items(order: Order) -> list[dict[str, Any]]:
    """Every item row of the order, parents before their children, ids stable per order."""
    rows: list[dict[str, Any]] = []

    def add(line: Line, qtys: dict[str, float], amounts: Amounts, priced: bool, **attrs: Any) -> dict[str, Any]:
        row = _row(order.entity_id * ITEM_ID_STRIDE + len(rows) + 1, order, qtys, amounts,
                   tax_percent=line.tax_rate * 100 if priced else ZERO, **attrs)
        rows.append(row)
        return row

    for index, line in enumerate(order.lines):
        qtys, kind, whole = _qtys(order, index), line_kind(line), Amounts.of(line)
        if kind == "configurable":
            parent = add(line, qtys, whole, True, sku=line.sku, name=line.name, product_type="configurable",
                         product_id=CONFIGURABLE_PRODUCT_OFFSET + line.product_id)
            variant = VARIANTS[line.product_id % len(VARIANTS)]
            add(line, qtys, Amounts(), False, sku=line.sku, name=f"{line.name} - {variant}",
                product_id=line.product_id, product_type="simple", parent=parent)
        elif kind == "bundle":
            parent = add(line, qtys, Amounts(), False, sku=line.sku, name=line.name, product_type="bundle",
                         product_id=BUNDLE_PRODUCT_OFFSET + line.product_id)
            first = Amounts.of(line, BUNDLE_FIRST_SHARE)
            for part, amounts in enumerate((first, whole - first), start=1):
                add(line, qtys, amounts, True, sku=f"{line.sku}-{part}", name=f"{line.name} (part {part})",
                    product_id=line.product_id, product_type="simple", parent=parent)
        else:
            add(line, qtys, whole, True, sku=line.sku, name=line.name, product_id=line.product_id,
                product_type="simple")
    return rows


def first_item_ids(order: Order) -> list[int]:
    """Per line, the ``item_id`` of its first row (the parent of a pair or bundle): what a credit
    memo item's ``order_item_id`` points at."""
    ids, next_id = [], order.entity_id * ITEM_ID_STRIDE + 1
    for line in order.lines:
        ids.append(next_id)
        next_id += {"simple": 1, "configurable": 2, "bundle": 3}[line_kind(line)]
    return ids


def fold_truth(order: Order) -> list[dict[str, Any]]:
    """The folded lines as ``rest_truth`` holds them: by construction each equals its model line
    (see the module docstring), and a deleted product is an ordinary line because REST reads the
    stored order item."""
    return [line.truth(n) | {"deleted_product": False} for n, line in enumerate(order.lines, start=1)]
