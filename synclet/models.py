"""SQLAlchemy 2.x declarative classes over synclet's tables, for code that reads the stored orders
as objects: a QuickBooks export, a report, a test. ``order.items``, ``order.addresses`` and
``order.credits`` hold everything an invoice needs.

The tables themselves are declared in ``synclet.tables``; synclet's own commands never import
this module, since the ORM alone costs every run a tenth of a second or more before it starts.
"""
from __future__ import annotations

from datetime import datetime
from decimal import Decimal

from sqlalchemy.orm import DeclarativeBase, Mapped, relationship

from synclet import tables


class Base(DeclarativeBase):
    metadata = tables.metadata


class Order(Base):
    __table__ = tables.orders

    id: Mapped[int]
    source: Mapped[str]
    external_id: Mapped[str]
    order_number: Mapped[str | None]
    status: Mapped[str | None]
    order_date: Mapped[datetime | None]
    source_updated_at: Mapped[datetime]
    currency_code: Mapped[str | None]
    customer_email: Mapped[str | None]
    customer_name: Mapped[str | None]
    customer_external_id: Mapped[str | None]
    subtotal: Mapped[Decimal | None]
    tax_amount: Mapped[Decimal | None]
    shipping_amount: Mapped[Decimal | None]
    shipping_tax_amount: Mapped[Decimal | None]
    shipping_incl_tax: Mapped[Decimal | None]
    discount_amount: Mapped[Decimal | None]
    grand_total: Mapped[Decimal | None]
    payment_method: Mapped[str | None]
    payment_amount: Mapped[Decimal | None]
    shipping_method: Mapped[str | None]
    store_name: Mapped[str | None]
    replaces_external_id: Mapped[str | None]
    replaces_order_number: Mapped[str | None]
    notes: Mapped[str | None]
    raw_json: Mapped[str]
    content_hash: Mapped[str]
    first_synced_at: Mapped[datetime]
    last_synced_at: Mapped[datetime]

    items: Mapped[list[OrderItem]] = relationship(order_by="OrderItem.line_no", passive_deletes=True)
    addresses: Mapped[list[OrderAddress]] = relationship(order_by="OrderAddress.address_type", passive_deletes=True)
    credits: Mapped[list[OrderCredit]] = relationship(order_by="OrderCredit.id", passive_deletes=True)


class OrderItem(Base):
    __table__ = tables.order_items

    id: Mapped[int]
    order_id: Mapped[int]
    line_no: Mapped[int]
    sku: Mapped[str | None]
    name: Mapped[str | None]
    product_id: Mapped[str | None]
    quantity: Mapped[Decimal | None]
    unit_price_ex_tax: Mapped[Decimal | None]
    price_incl_tax: Mapped[Decimal | None]
    tax_rate: Mapped[Decimal | None]
    tax_amount: Mapped[Decimal | None]
    tax_code: Mapped[str | None]
    discount_amount: Mapped[Decimal | None]
    line_total_incl_tax: Mapped[Decimal | None]
    error_code: Mapped[str | None]


class OrderAddress(Base):
    __table__ = tables.order_addresses

    id: Mapped[int]
    order_id: Mapped[int]
    address_type: Mapped[str]
    first_name: Mapped[str | None]
    last_name: Mapped[str | None]
    company: Mapped[str | None]
    phone: Mapped[str | None]
    email: Mapped[str | None]
    line1: Mapped[str | None]
    line2: Mapped[str | None]
    city: Mapped[str | None]
    region: Mapped[str | None]
    postcode: Mapped[str | None]
    country_code: Mapped[str | None]


class OrderCredit(Base):
    __table__ = tables.order_credits

    id: Mapped[int]
    order_id: Mapped[int]
    external_id: Mapped[str]
    credit_number: Mapped[str | None]
    state: Mapped[str | None]
    credit_date: Mapped[datetime | None]
    source_updated_at: Mapped[datetime | None]
    subtotal: Mapped[Decimal | None]
    tax_amount: Mapped[Decimal | None]
    shipping_amount: Mapped[Decimal | None]
    adjustment_positive: Mapped[Decimal | None]
    adjustment_negative: Mapped[Decimal | None]
    grand_total: Mapped[Decimal | None]
    raw_json: Mapped[str]


class SyncHistory(Base):
    __table__ = tables.sync_history

    id: Mapped[int]
    source: Mapped[str]
    sync_type: Mapped[str]
    started_at: Mapped[datetime]
    finished_at: Mapped[datetime | None]
    status: Mapped[str]
    window_start: Mapped[datetime | None]
    cursor: Mapped[datetime | None]
    pages: Mapped[int]
    orders_added: Mapped[int]
    orders_updated: Mapped[int]
    orders_unchanged: Mapped[int]
    orders_rejected: Mapped[int]
    orders_skipped: Mapped[int]
    error_message: Mapped[str | None]
    host: Mapped[str | None]
    pid: Mapped[int | None]


class RejectedOrder(Base):
    __table__ = tables.rejected_orders

    id: Mapped[int]
    source: Mapped[str]
    reject_key: Mapped[str]
    external_id: Mapped[str | None]
    order_number: Mapped[str | None]
    raw_json: Mapped[str]
    error_message: Mapped[str]
    first_seen_at: Mapped[datetime]
    last_seen_at: Mapped[datetime]
    times_seen: Mapped[int]
    sync_history_id: Mapped[int | None]


class BigBlockPush(Base):
    __table__ = tables.bigblock_pushes

    id: Mapped[int]
    order_id: Mapped[int | None]  # None: its order was cleared
    source: Mapped[str]
    bigblock_url: Mapped[str]
    order_number: Mapped[str]
    bigblock_id: Mapped[str | None]
    state: Mapped[str]
    content_hash: Mapped[str | None]
    order_hash: Mapped[str | None]
    basis_hash: Mapped[str | None]
    message: Mapped[str | None]
    pushed_at: Mapped[datetime | None]
    checked_at: Mapped[datetime]
