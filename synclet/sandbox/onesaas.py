"""The OneSaas Connect endpoint (``/onesaas_connect/index/index``) over the sandbox's truth orders.

Follows /work/shared/reference/onesaas-magento.md: HTTP 200 errors, strtotime-ish time parameters,
strict ``>`` filters at one-second resolution, 0-based offset pages in entity order with no sort, a
bare ``""`` past the last page, ``""`` entries for orders without any address, database values as
strings and computed values (``Discounts``, ``TaxRate``) as numbers.
"""
from __future__ import annotations

import json
import re
import threading
from datetime import datetime, timezone
from decimal import Decimal
from typing import Any

from synclet.sandbox.data import Store
from synclet.sandbox.model import TAX_RULES, CreditMemo, Customer, Line, Order, fmt_money, fmt_time, money
from synclet.sandbox.model import Address as TruthAddress

PATH = "/onesaas_connect/index/index"
VERSION = "4.2.0.6"
DEFAULT_PAGE_SIZE = 50
#: what the extension falls back to when OrderCreatedTime is missing or unparsable
DEFAULT_CREATED_AFTER = datetime(2010, 1, 19)
INVALID_KEY = {"Error": "Invalid API key"}
INVALID_ACTION = {"Error": "Invalid Action"}
_OFFSET_WITHOUT_PLUS = re.compile(r"(\d\d:\d\d(?::\d\d(?:\.\d+)?)?) (\d\d:?\d\d)$")  # "+" decoded as " "


def parse_time(text: str | None) -> datetime | None:
    """A strtotime-like reading of a time parameter, as naive UTC; None when it cannot be read.

    Accepts ``YYYY-MM-DD``, ``YYYY-MM-DD HH:MM[:SS]``, a ``T`` separator, fractions (dropped) and a
    ``Z`` or ``±HH:MM`` offset, which is converted to UTC.
    """
    if not text or not text.strip():
        return None
    text = _OFFSET_WITHOUT_PLUS.sub(r"\1+\2", text.strip())
    if text.endswith(("Z", "z")):
        text = text[:-1] + "+00:00"
    try:
        value = datetime.fromisoformat(text)
    except ValueError:
        return None
    if value.tzinfo is not None:
        value = value.astimezone(timezone.utc).replace(tzinfo=None)
    return value.replace(microsecond=0)


def _int(text: str | None, default: int) -> int:
    try:
        return int(text) if text is not None else default
    except ValueError:
        return default


def _number(value: Decimal) -> float:
    """A computed amount: PHP emits these as JSON numbers, not strings."""
    return float(value)


def render_address(address: TruthAddress) -> dict[str, Any]:
    return {
        "Salutation": None,
        "FirstName": address.first_name,
        "LastName": address.last_name,
        "OrganizationName": address.company,
        "WorkPhone": address.phone,
        "Line1": address.line1,
        "Line2": address.line2,
        "City": address.city,
        "PostCode": address.postcode,
        "State": address.region,
        "CountryCode": address.country_code,
    }


def render_addresses(order: Order) -> dict[str, Any]:
    addresses: dict[str, Any] = {}
    if order.billing:
        addresses["BillingAddress"] = render_address(order.billing)
    if order.shipping_address:
        addresses["ShippingAddress"] = render_address(order.shipping_address)
    return addresses


def render_contact(customer: Customer, order: Order) -> dict[str, Any]:
    return {
        "Id": customer.contact_id,
        "Salutation": None,
        "FirstName": customer.first_name,
        "LastName": customer.last_name,
        "WorkPhone": customer.phone,
        "Email": customer.email,
        "OrganizationName": customer.organization,
        "OrganizationBusinessNumber": customer.business_number,
        "Addresses": render_addresses(order),
    }


def render_item(line: Line) -> dict[str, Any]:
    if line.deleted_product:
        return {"ErrorCode": "Product.ProductNotFound", "Message": "Ordered product could not be found!"}
    item: dict[str, Any] = {
        "ProductId": str(line.product_id),
        "ProductCode": line.sku,
        "ProductName": line.name,
        "Quantity": fmt_money(line.qty),
        "Price": fmt_money(line.price_incl_tax),
        "UnitPriceExTax": fmt_money(line.unit_price_ex_tax),
    }
    if line.unit_discount > 0:
        item["Discount"] = fmt_money(line.unit_discount)
    tax = line.tax_amount
    if tax > 0 and line.tax_rule:
        tax_id, code, name = line.tax_rule
        item["Taxes"] = {"TaxId": tax_id, "TaxCode": code, "TaxName": name,
                         "TaxRate": _number(line.tax_rate), "TaxAmount": fmt_money(tax)}
    item["LineTotalIncTax"] = fmt_money(line.total_incl_tax)
    return item


def render_shipping(order: Order) -> dict[str, Any]:
    """A virtual order has no method and a zero amount; ``Amount`` includes tax."""
    if order.shipping is None:
        return {"ShippingMethod": None, "Amount": fmt_money(Decimal(0))}
    shipping = {"ShippingMethod": order.shipping.method, "Amount": fmt_money(order.shipping.amount_incl_tax)}
    rule = TAX_RULES.get(money(order.shipping.tax_rate))
    if order.shipping.tax_amount > 0 and rule:
        shipping["Taxes"] = {"TaxId": rule[0], "TaxCode": rule[1], "TaxName": rule[2],
                             "TaxAmount": fmt_money(order.shipping.tax_amount),
                             "TaxRate": _number(order.shipping.tax_rate)}
    return shipping


def render_credit(memo: CreditMemo, order: Order) -> dict[str, Any]:
    """The whole ``sales_creditmemo`` row, every column a string, plus its refunded items."""
    items = []
    for item in memo.items:
        row: dict[str, Any] = {
            "ProductId": str(item.product_id), "ProductCode": item.sku, "ProductName": item.name,
            "Quantity": fmt_money(item.qty), "Price": fmt_money(item.price_incl_tax),
            "UnitPriceExTax": fmt_money(item.unit_price_ex_tax), "TaxAmount": fmt_money(item.tax_amount),
        }
        if item.unit_discount > 0:
            row["Discount"] = fmt_money(item.unit_discount)
        items.append(row)
    total = fmt_money(memo.grand_total)
    return {
        "entity_id": str(memo.entity_id), "store_id": "1", "order_id": str(order.entity_id),
        "increment_id": memo.increment_id, "state": str(memo.state),
        "created_at": fmt_time(memo.created_at), "updated_at": fmt_time(memo.updated_at),
        "grand_total": total, "base_grand_total": total,
        "subtotal": fmt_money(memo.subtotal + memo.discount_amount),
        "base_subtotal": fmt_money(memo.subtotal + memo.discount_amount),
        "discount_amount": fmt_money(-memo.discount_amount), "base_discount_amount": fmt_money(-memo.discount_amount),
        "tax_amount": fmt_money(memo.tax_amount), "base_tax_amount": fmt_money(memo.tax_amount),
        "shipping_amount": fmt_money(memo.shipping_amount),
        "adjustment_positive": fmt_money(memo.adjustment_positive),
        "adjustment_negative": fmt_money(memo.adjustment_negative),
        "order_currency_code": order.currency, "base_currency_code": order.currency,
        "email_sent": None, "creditmemo_status": None,
        "Items": items,
    }


def render_order(order: Order) -> dict[str, Any] | str:
    """One order as the extension emits it; ``""`` for an order with no address at all."""
    if not order.has_identity:
        return ""
    body: dict[str, Any] = {"Id": str(order.entity_id), "OrderNumber": order.increment_id}
    if order.edited_from:
        body[f'ReplaceOrderNumber Id="{order.edited_from.entity_id}"'] = order.edited_from.increment_id
    else:
        body["ReplaceOrderNumber"] = ""
    custom: dict[str, Any] = {"CreditPoints": None, "OrderProcessingFeeExTax": None,
                              "OrderProcessingFee": None, "LastTransactionId": order.last_transaction_id}
    if order.invoices:
        custom["Invoices"] = [{"InvNumber": inv.increment_id, "Date": fmt_time(inv.created_at)}
                              for inv in order.invoices]
    body.update({
        "Date": fmt_time(order.created_at),
        "LastUpdatedDate": fmt_time(order.updated_at),
        "Type": "Order",
        "Status": order.status,
        "CurrencyCode": order.currency,
        "Notes": order.notes,
        "Tags": f"StoreName:{order.store_name}",
        "Discounts": _number(order.discount_amount),
        "Total": fmt_money(order.grand_total),
        "Contact": render_contact(order.customer, order),
        "Addresses": render_addresses(order),
        "Items": [render_item(line) for line in order.lines],
        "Shipping": render_shipping(order),
        "Payments": {"PaymentMethod": {"MethodName": order.payment_method,
                                       "Amount": fmt_money(order.amount_paid)}},
        "Credits": [render_credit(memo, order) for memo in order.credit_memos],
        "CustomFields": custom,
    })
    body.update(order.overrides)
    return body


class OneSaasApi:
    """Answers the endpoint's queries. Caches the matching ids per filter and store version, so
    paging through 100,000 orders scans them once per query rather than once per page.

    After ``prerender`` (the benchmark's), orders are served as JSON made before the clock started,
    until the store changes: a real store renders on its own server, not on the two cores the
    benchmark measures synclet on."""

    def __init__(self, store: Store, access_key: str) -> None:
        self.store = store
        self.access_key = access_key
        self._cache: dict[tuple[datetime, datetime], tuple[int, list[int]]] = {}
        self._cache_lock = threading.Lock()
        self._rendered: dict[int, str] = {}
        self._rendered_version = -1

    def prerender(self) -> None:
        with self.store.lock:
            self._rendered = {order.entity_id: json.dumps(render_order(order)) for order in self.store.orders}
            self._rendered_version = self.store.version

    def answer(self, params: dict[str, str]) -> bytes:
        """The JSON body for one request's query parameters (always served with HTTP 200)."""
        with self.store.lock:
            chosen = self._chosen(params)
            if not isinstance(chosen, list):
                return json.dumps(chosen).encode("utf-8")
            if self._rendered_version == self.store.version:
                orders = ", ".join(self._rendered.get(entity_id) or json.dumps(render_order(self.store.by_id[entity_id]))
                                   for entity_id in chosen)
                return f'{{"OneSaas Version": {json.dumps(VERSION)}, "Orders": [{orders}]}}'.encode("utf-8")
            body = {"OneSaas Version": VERSION, "Orders": [render_order(self.store.by_id[entity_id]) for entity_id in chosen]}
        return json.dumps(body).encode("utf-8")

    def _chosen(self, params: dict[str, str]) -> list[int] | Any:
        """The entity ids of the page asked for, or the whole answer when it holds no orders."""
        if params.get("AccessKey") != self.access_key:
            return INVALID_KEY
        if params.get("Action") != "Orders":
            return INVALID_ACTION
        created_after = parse_time(params.get("OrderCreatedTime")) or DEFAULT_CREATED_AFTER
        updated_after = max(parse_time(params.get("LastUpdatedTime")) or created_after, created_after)
        page_size = _int(params.get("PageSize"), DEFAULT_PAGE_SIZE)
        page_size = page_size if page_size > 0 else DEFAULT_PAGE_SIZE
        page = max(_int(params.get("Page"), 0), 0)
        chosen = self._matching(created_after, updated_after)[page * page_size:(page + 1) * page_size]
        return chosen or ""

    def _matching(self, created_after: datetime, updated_after: datetime) -> list[int]:
        """Entity ids with ``created_at > created_after`` and ``updated_at > updated_after``, natural order."""
        key, version = (created_after, updated_after), self.store.version
        with self._cache_lock:
            cached = self._cache.get(key)
            if cached and cached[0] == version:
                return cached[1]
        ids = [o.entity_id for o in self.store.orders
               if o.created_at > created_after and o.updated_at > updated_after]
        with self._cache_lock:
            if len(self._cache) > 64:
                self._cache.clear()
            self._cache[key] = (version, ids)
        return ids
