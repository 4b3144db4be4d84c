"""Store orders as Valerdat purchase orders, and the truth a Valerdat client keeps.

Follows /work/shared/reference/valerdat.md. Every order is a purchase order; the mapping is a pure
function of the order and the store's seed, so a seed serves the same JSON every run:

* ``uuid`` is ``uuid5(NAMESPACE, "<seed>:<entity_id>")``; ``number`` is ``PO-<year>-<entity_id:06d>``;
* the customer is the supplier (``S-<contact_id>``, ``S-0`` for a guest), the shipping address the
  delivery address; an address's ``name`` is "first last", else its company; ``line2`` is ``""``
  when absent (the truth says None);
* amounts are decimal strings at 4 places (``quantity`` at 3), ``tax_rate`` a percent at 2;
  ``subtotal`` is net of line discounts over every line, ``tax_total`` includes shipping tax and
  ``shipping_total`` excludes it, so ``subtotal + tax_total + shipping_total = total``;
* times are Spanish local time (``+01:00``/``+02:00``) for even entity ids' ``created_at`` and for
  ``updated_at`` of ids not divisible by 3, else UTC with ``Z``: the same instant either way.
"""
from __future__ import annotations

import uuid
from datetime import datetime, timedelta
from decimal import Decimal
from typing import Any

from synclet.sandbox.model import ZERO, Address, Order, fmt_money, fmt_time

NAMESPACE = uuid.UUID("5b0c1d2e-8f3a-4c6b-9d7e-0a1b2c3d4e5f")
STATUSES = {"holded": "draft", "pending": "sent", "processing": "confirmed", "closed": "partially_received",
            "complete": "received", "canceled": "cancelled"}
QUANTITY = Decimal("0.001")
PERCENT = Decimal("0.01")


def order_uuid(seed: int, entity_id: int) -> str:
    return str(uuid.uuid5(NAMESPACE, f"{seed}:{entity_id}"))


def po_number(order: Order) -> str:
    return f"PO-{order.created_at.year}-{order.entity_id:06d}"


def _last_sunday(year: int, month: int) -> datetime:
    """01:00 UTC on the last Sunday of a 31-day month: when EU clocks change."""
    last = datetime(year, month, 31, 1)
    return last - timedelta(days=(last.weekday() + 1) % 7)


def madrid_offset(at: datetime) -> timedelta:
    """Central European Time's offset at the naive UTC instant ``at`` (EU summer-time rules)."""
    summer = _last_sunday(at.year, 3) <= at < _last_sunday(at.year, 10)
    return timedelta(hours=2 if summer else 1)


def iso_time(at: datetime, local: bool) -> str:
    """``at`` (naive UTC) as ISO 8601: Madrid local time with its offset, or UTC with ``Z``."""
    if not local:
        return at.strftime("%Y-%m-%dT%H:%M:%SZ")
    offset = madrid_offset(at)
    return (at + offset).strftime("%Y-%m-%dT%H:%M:%S") + f"+{offset.seconds // 3600:02d}:00"


def created_time(order: Order) -> str:
    return iso_time(order.created_at, order.entity_id % 2 == 0)


def updated_time(order: Order) -> str:
    return iso_time(order.updated_at, order.entity_id % 3 != 0)


def _address_name(address: Address) -> str | None:
    named = " ".join(part for part in (address.first_name, address.last_name) if part)
    return named or address.company


def render_address(address: Address | None) -> dict[str, Any] | None:
    if address is None:
        return None
    return {"name": _address_name(address), "line1": address.line1, "line2": address.line2 or "",
            "city": address.city, "postal_code": address.postcode, "region": address.region,
            "country": address.country_code}


def _subtotal(order: Order) -> Decimal:
    return sum((line.total_ex_tax for line in order.lines), ZERO)


def render_order(order: Order, seed: int) -> dict[str, Any]:
    """One purchase order as ``GET /api/purchase-orders/<uuid>/`` returns it."""
    customer = order.customer
    lines = [{"id": f"L{n}", "sku": line.sku, "description": line.name, "quantity": str(line.qty.quantize(QUANTITY)),
              "unit_price": fmt_money(line.unit_price_ex_tax), "tax_rate": str((line.tax_rate * 100).quantize(PERCENT)),
              "discount": fmt_money(line.discount_amount), "total": fmt_money(line.total_incl_tax)}
             for n, line in enumerate(order.lines, start=1)]
    return {
        "uuid": order_uuid(seed, order.entity_id), "number": po_number(order), "status": STATUSES.get(order.status, "sent"),
        "created_at": created_time(order), "updated_at": updated_time(order), "currency": order.currency,
        "supplier": {"id": f"S-{customer.contact_id}", "name": customer.display_name, "email": customer.email,
                     "phone": customer.phone, "tax_id": customer.business_number},
        "billing_address": render_address(order.billing),
        "delivery_address": render_address(order.shipping_address),
        "lines": lines,
        "subtotal": fmt_money(_subtotal(order)), "tax_total": fmt_money(order.tax_amount),
        "shipping_total": fmt_money(order.shipping_ex_tax), "total": fmt_money(order.grand_total),
        "expected_delivery_date": (order.created_at.date() + timedelta(days=3 + order.entity_id % 12)).isoformat(),
        "notes": order.notes,
    }


def _address_truth(address: Address, address_type: str) -> dict[str, Any]:
    """All a client can know: the one ``name`` lands in first_name; no company, no phone."""
    return {"address_type": address_type, "first_name": _address_name(address), "last_name": None,
            "company": None, "phone": None, "line1": address.line1, "line2": address.line2 or None,
            "city": address.city, "region": address.region, "postcode": address.postcode,
            "country_code": address.country_code}


def valerdat_truth(order: Order, seed: int) -> dict[str, Any]:
    """What a correct Valerdat client stores, in ``Order.truth()``'s shape: external_id the uuid,
    order_number the PO number, the mapped status, times in UTC, the supplier as the customer,
    ``tax_rate`` a fraction, amounts as served; what Valerdat does not serve (payment, shipping
    method and tax, store, credits, edit links) is None or empty."""
    customer = order.customer
    addresses = [_address_truth(address, kind) for address, kind in
                 ((order.billing, "billing"), (order.shipping_address, "shipping")) if address is not None]
    items = [{**line.truth(n), "deleted_product": False} for n, line in enumerate(order.lines, start=1)]
    return {
        "external_id": order_uuid(seed, order.entity_id), "order_number": po_number(order),
        "status": STATUSES.get(order.status, "sent"),
        "order_date": fmt_time(order.created_at), "source_updated_at": fmt_time(order.updated_at),
        "currency_code": order.currency, "customer_external_id": f"S-{customer.contact_id}",
        "customer_email": customer.email, "customer_name": customer.display_name,
        "subtotal": fmt_money(_subtotal(order)), "tax_amount": fmt_money(order.tax_amount),
        "shipping_amount": fmt_money(order.shipping_ex_tax), "shipping_tax_amount": None, "shipping_incl_tax": None,
        "discount_amount": fmt_money(order.discount_amount), "grand_total": fmt_money(order.grand_total),
        "payment_method": None, "payment_amount": None, "shipping_method": None, "notes": order.notes,
        "store_name": None, "replaces_external_id": None, "replaces_order_number": None, "has_identity": True,
        "items": items, "addresses": addresses, "credits": [],
    }
