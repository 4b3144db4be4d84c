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
  CARRY THE PRICE, each embedding a ``parent_item`` copy. Part 1 is in each bundle ``m`` times
  (``m = 1 + (product_id // 20) % 3``, so 1, 2 or 3), part 2 once; a child orders the parent's
  quantity times its ``m``. Part 1's unit price and unit discount are 60 % of the line's divided
  by ``m`` (rounded), its row amounts those of its own quantity; part 2 holds the rest of every
  amount (its unit prices the line's less ``m`` times part 1's), so the rows add up to the line
  exactly, and the parts' unit prices do not when ``m > 1``.

Row amounts are Magento's: ``row_total = round(price * qty)`` and ``row_total_incl_tax =
row_total + tax_amount`` are BEFORE discount; ``discount_amount`` is positive on items.

Folding (what ``rest_truth`` holds and a correct client stores), one line per sold product in item
order: a simple row is its own line; a configurable pair is one line with the child's sku, the
parent's name and the parent's qty and amounts; a bundle is one line with the parent's sku, name
and qty, the SUM of its children's tax_amount, discount_amount and row totals, and as unit prices
its row totals per bundle: ``price = money(sum(row_total) / qty)`` and ``price_incl_tax =
money(sum(row_total_incl_tax) / qty)``. For every folded line ``tax_rate = tax_percent / 100``
and ``line_total_incl_tax = row_total_incl_tax - discount_amount``. Item ids are
``entity_id * 100 + n`` (n from 1).
"""
from __future__ import annotations

from dataclasses import dataclass
from decimal import Decimal
from typing import Any

from synclet.sandbox.model import ZERO, Line, Order, fmt_money, money

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
    def of(cls, line: Line) -> Amounts:
        """The line's own amounts."""
        return cls(line.unit_price_ex_tax, line.price_incl_tax, line.tax_amount, line.discount_amount,
                   money(line.unit_price_ex_tax * line.qty))

    @classmethod
    def part(cls, line: Line, share: Decimal, per_bundle: int) -> Amounts:
        """A bundle part holding ``share`` of the line's unit price and discount, ``per_bundle``
        times in each bundle, rounded as the model rounds (tax on the undiscounted price)."""
        price, qty = money(line.unit_price_ex_tax * share / per_bundle), line.qty * per_bundle
        return cls(price, money(price * (1 + line.tax_rate)), money(price * qty * line.tax_rate),
                   money(money(line.unit_discount * share / per_bundle) * qty), money(price * qty))

    def rest_of(self, part: Amounts, per_bundle: int) -> Amounts:
        """What is left of these line amounts for a part in each bundle once, beside ``part``
        (in each bundle ``per_bundle`` times): unit prices less ``per_bundle`` of the part's."""
        return Amounts(self.price - per_bundle * part.price, self.price_incl_tax - per_bundle * part.price_incl_tax,
                       self.tax_amount - part.tax_amount, self.discount_amount - part.discount_amount,
                       self.row_total - part.row_total)


def bundle_part_count(line: Line) -> int:
    """How many of part 1 each bundle of this line holds: 1, 2 or 3, by product id."""
    return 1 + (line.product_id // 20) % 3


def _qtys(order: Order, line_index: int, per_unit: int = 1) -> dict[str, float]:
    """Shipped, invoiced, canceled and refunded quantities, times ``per_unit`` for a part that is
    in each bundle more than once; every other row of a line shares them."""
    line = order.lines[line_index]
    refunded = sum((item.qty for memo in order.credit_memos for item in memo.items
                    if credited_line(order, item.product_id) == line_index), ZERO)
    return {
        "qty_ordered": float(line.qty * per_unit),
        "qty_invoiced": float(line.qty * per_unit if order.amount_paid is not None else ZERO),
        "qty_shipped": float(line.qty * per_unit if order.status in ("complete", "closed") and order.shipping else ZERO),
        "qty_refunded": float(refunded * per_unit),
        "qty_canceled": float(line.qty * per_unit if order.status == "canceled" else ZERO),
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
            count = bundle_part_count(line)
            first = Amounts.part(line, BUNDLE_FIRST_SHARE, count)
            parts = ((first, _qtys(order, index, count)), (whole.rest_of(first, count), qtys))
            for part, (amounts, part_qtys) in enumerate(parts, start=1):
                add(line, part_qtys, amounts, True, sku=f"{line.sku}-{part}", name=f"{line.name} (part {part})",
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
    stored order item. A bundle's unit prices are its row totals per bundle, which may differ from
    the model's unit price incl. tax in the 4th place."""
    folded = []
    for n, line in enumerate(order.lines, start=1):
        row = line.truth(n) | {"deleted_product": False}
        if line_kind(line) == "bundle":
            row_total = money(line.unit_price_ex_tax * line.qty)
            row["unit_price_ex_tax"] = fmt_money(row_total / line.qty)
            row["price_incl_tax"] = fmt_money((row_total + line.tax_amount) / line.qty)
        folded.append(row)
    return folded
