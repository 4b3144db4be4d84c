"""Orders and credit memos as Magento 2's REST API returns them, and the truth a REST client keeps.

Follows /work/shared/reference/magento-rest.md. Amounts are JSON numbers and mean what Magento's
columns mean, which is not always what the truth means:

* order ``subtotal`` is the sum of item ``row_total`` BEFORE discount, over every line (a line
  whose product was deleted is still a stored order item); ``discount_amount`` is NEGATIVE, so
  ``grand_total = subtotal + discount_amount + tax_amount + shipping_amount``;
* a credit memo likewise: ``subtotal`` before discount, ``discount_amount`` negative, and
  ``grand_total = subtotal + discount_amount + tax_amount + shipping_amount + adjustment_positive
  - adjustment_negative``;
* the shipping address exists only in ``extension_attributes.shipping_assignments[0].shipping``;
* times are UTC ``YYYY-MM-DD HH:MM:SS``; absent values are ``null``.

Item rows and the folding rules are in ``synclet.sandbox.rest_items``.
"""
from __future__ import annotations

from decimal import Decimal
from typing import Any

from synclet.sandbox.model import ZERO, Address, CreditMemo, Order, fmt_money, fmt_time, money
from synclet.sandbox.rest_items import credited_line, first_item_ids, fold_truth, render_items

STATES = {"pending": "new", "holded": "holded", "processing": "processing", "complete": "complete",
          "canceled": "canceled", "closed": "closed"}
STORE_IDS = {"GBP": 1, "EUR": 2, "USD": 3}
REGION_CODES = {"Texas": "TX", "Berlin": "BER", "Île-de-France": "IDF"}
REFUNDED = 2  # credit memo state: only refunded memos count in the order's total_refunded


def _n(value: Decimal | None) -> float | None:
    return None if value is None else float(value)


def state_of(order: Order) -> str:
    return STATES.get(order.status, order.status)


def customer_id(order: Order) -> int | None:
    """None for a guest checkout (OneSaas says ``"0"``)."""
    return None if order.customer.contact_id == "0" else int(order.customer.contact_id)


def render_address(address: Address, address_type: str, order: Order) -> dict[str, Any]:
    street = [address.line1] + ([address.line2] if address.line2 else [])
    return {
        "address_type": address_type,
        "entity_id": order.entity_id * 2 - (address_type == "billing"),
        "parent_id": order.entity_id,
        "firstname": address.first_name, "lastname": address.last_name, "company": address.company,
        "street": street, "city": address.city, "region": address.region,
        "region_code": REGION_CODES.get(address.region or ""), "postcode": address.postcode,
        "country_id": address.country_code, "telephone": address.phone, "email": order.customer.email,
    }


def _order_amounts(order: Order) -> dict[str, Decimal | None]:
    """The money columns that also exist as ``base_*`` (one currency per store here)."""
    subtotal = sum((money(line.unit_price_ex_tax * line.qty) for line in order.lines), ZERO)
    refunded = [memo.grand_total for memo in order.credit_memos if memo.state == REFUNDED]
    return {
        "subtotal": subtotal, "subtotal_incl_tax": subtotal + order.line_tax,
        "tax_amount": order.tax_amount, "shipping_amount": order.shipping_ex_tax,
        "shipping_incl_tax": order.shipping_ex_tax + order.shipping_tax,
        "shipping_tax_amount": order.shipping_tax, "discount_amount": -order.discount_amount,
        "grand_total": order.grand_total, "total_paid": order.amount_paid,
        "total_refunded": sum(refunded, ZERO) if refunded else None,
    }


def _shipping_assignment(order: Order, items: list[dict[str, Any]]) -> dict[str, Any]:
    """The only place the shipping address and method appear; a virtual order has neither."""
    shipping: dict[str, Any] = {"total": {"shipping_amount": float(order.shipping_ex_tax),
                                          "shipping_incl_tax": float(order.shipping_ex_tax + order.shipping_tax),
                                          "shipping_tax_amount": float(order.shipping_tax)}}
    if order.shipping_address is not None:
        shipping["address"] = render_address(order.shipping_address, "shipping", order)
    if order.shipping is not None:
        shipping["method"] = order.shipping.method
    return {"shipping": shipping, "items": items}


def render_order(order: Order) -> dict[str, Any]:
    """One order as ``GET /V1/orders/{id}`` returns it (list items have the same shape)."""
    amounts = {name: _n(value) for name, value in _order_amounts(order).items()}
    customer = order.customer
    items = render_items(order)
    body: dict[str, Any] = {
        "entity_id": order.entity_id, "increment_id": order.increment_id,
        "state": state_of(order), "status": order.status,
        "created_at": fmt_time(order.created_at), "updated_at": fmt_time(order.updated_at),
        "order_currency_code": order.currency, "base_currency_code": order.currency,
        "global_currency_code": order.currency, "store_currency_code": order.currency,
        "customer_email": customer.email, "customer_firstname": customer.first_name,
        "customer_lastname": customer.last_name, "customer_id": customer_id(order),
        "customer_is_guest": int(customer_id(order) is None),
        **amounts, **{f"base_{name}": value for name, value in amounts.items()},
        "shipping_description": order.shipping.description if order.shipping else None,
        "customer_note": order.notes, "store_id": STORE_IDS.get(order.currency, 1),
        "store_name": order.store_name, "is_virtual": int(order.shipping is None),
        "total_item_count": len(items),
        "items": items,
        "billing_address": render_address(order.billing, "billing", order) if order.billing else None,
        "payment": {"method": order.payment_method, "amount_paid": _n(order.amount_paid),
                    "base_amount_paid": _n(order.amount_paid), "amount_ordered": float(order.grand_total),
                    "base_amount_ordered": float(order.grand_total), "last_trans_id": order.last_transaction_id,
                    "additional_information": []},
        "status_histories": [],
        "extension_attributes": {"shipping_assignments": [_shipping_assignment(order, items)]},
    }
    if order.edited_from is not None:
        body["relation_parent_id"] = str(order.edited_from.entity_id)
        body["relation_parent_real_id"] = order.edited_from.increment_id
    return body


def render_credit_memo(memo: CreditMemo, order: Order) -> dict[str, Any]:
    """One credit memo; each item's ``order_item_id`` is the first row of the line it refunds."""
    line_item_ids = first_item_ids(order)
    items, discount = [], ZERO
    for n, item in enumerate(memo.items, start=1):
        line = credited_line(order, item.product_id)
        row_total, item_discount = money(item.unit_price_ex_tax * item.qty), money(item.unit_discount * item.qty)
        discount += item_discount
        items.append({
            "entity_id": memo.entity_id * 100 + n, "parent_id": memo.entity_id,
            "order_item_id": None if line is None else line_item_ids[line], "product_id": item.product_id,
            "sku": item.sku, "name": item.name, "qty": float(item.qty), "price": float(item.unit_price_ex_tax),
            "price_incl_tax": float(item.price_incl_tax), "row_total": float(row_total),
            "row_total_incl_tax": float(row_total + item.tax_amount), "tax_amount": float(item.tax_amount),
            "discount_amount": float(item_discount),
        })
    amounts = {
        "subtotal": memo.subtotal + discount, "discount_amount": -discount, "tax_amount": memo.tax_amount,
        "shipping_amount": memo.shipping_amount, "adjustment_positive": memo.adjustment_positive,
        "adjustment_negative": memo.adjustment_negative,
        "adjustment": memo.adjustment_positive - memo.adjustment_negative, "grand_total": memo.grand_total,
    }
    return {
        "entity_id": memo.entity_id, "increment_id": memo.increment_id, "order_id": order.entity_id,
        "store_id": STORE_IDS.get(order.currency, 1), "state": memo.state,
        "created_at": fmt_time(memo.created_at), "updated_at": fmt_time(memo.updated_at),
        "order_currency_code": order.currency, "base_currency_code": order.currency,
        **{name: float(value) for name, value in amounts.items()},
        **{f"base_{name}": float(value) for name, value in amounts.items()},
        "items": items,
    }


def rest_truth(order: Order) -> dict[str, Any]:
    """What a correct REST client stores for ``order``, in ``Order.truth()``'s shape.

    Differences from the OneSaas view: every order has identity (an order without addresses is an
    ordinary order here, just without address rows); items are folded (rules in ``rest_items``)
    and a deleted product's line is an ordinary line; ``subtotal`` is net of line discounts over
    EVERY line (``REST subtotal + REST discount_amount``), so ``subtotal + tax_amount +
    shipping_amount = grand_total``; ``customer_external_id`` is ``customer_id`` as text, None for
    a guest (OneSaas says ``"0"``); ``customer_name`` is ``"firstname lastname"`` of the order's
    customer, else the billing address's company, else None. Unchanged conventions:
    ``discount_amount`` positive, ``tax_rate`` a fraction, ``shipping_method`` the assignment's
    method code (None for a virtual order), ``payment_amount`` = ``payment.amount_paid``,
    ``replaces_external_id``/``replaces_order_number`` = ``relation_parent_id``/``_real_id``, and
    credits as in the model: credit ``subtotal`` = REST memo ``subtotal + discount_amount``.
    """
    row = order.truth()
    customer = order.customer
    named = " ".join(part for part in (customer.first_name, customer.last_name) if part)
    row.update(
        has_identity=True,
        customer_external_id=None if customer_id(order) is None else customer.contact_id,
        customer_name=named or (order.billing.company if order.billing else None) or None,
        subtotal=fmt_money(sum((line.total_ex_tax for line in order.lines), ZERO)),
        items=fold_truth(order),
    )
    return row
