"""The tables synclet writes (SQLAlchemy 2.x declarative). Column names are part of the contract.

Every timestamp is naive UTC; money and quantities are DECIMAL; ids are BIGINT (INTEGER on SQLite,
where only that type auto-increments). The store writes these tables with Core statements built
from ``Model.__table__`` so the hot path never creates ORM objects.
"""
from __future__ import annotations

from datetime import datetime
from decimal import Decimal

from sqlalchemy import (
    BigInteger,
    CheckConstraint,
    DateTime,
    ForeignKey,
    Index,
    Integer,
    MetaData,
    Numeric,
    String,
    Text,
    UniqueConstraint,
)
from sqlalchemy.dialects import mysql
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column

NAMING_CONVENTION = {
    "ix": "ix_%(table_name)s_%(column_0_N_name)s",
    "uq": "uq_%(table_name)s_%(column_0_N_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}

Id = BigInteger().with_variant(Integer(), "sqlite")
Money = Numeric(18, 4)
Quantity = Numeric(18, 4)
Rate = Numeric(10, 6)
LongText = Text().with_variant(mysql.LONGTEXT(), "mysql", "mariadb")
# A source's identifiers compare byte for byte: under MariaDB's default collation "a7" and "A7"
# would be one order.
Identity = String(64).with_variant(mysql.VARCHAR(64, collation="utf8mb4_bin"), "mysql", "mariadb")
RejectKey = String(80).with_variant(mysql.VARCHAR(80, collation="utf8mb4_bin"), "mysql", "mariadb")

NAME_LENGTH = 255
# utf8mb4 whatever the server default: names and notes carry emoji; InnoDB for transactions and FKs.
TABLE_OPTIONS = {"mysql_engine": "InnoDB", "mysql_charset": "utf8mb4", "mysql_collate": "utf8mb4_unicode_ci"}


class Base(DeclarativeBase):
    metadata = MetaData(naming_convention=NAMING_CONVENTION)


class Order(Base):
    __tablename__ = "orders"
    __table_args__ = (
        UniqueConstraint("source", "external_id"),
        Index(None, "source", "source_updated_at"),
        Index(None, "source", "order_date"),
        Index(None, "order_number"),
        TABLE_OPTIONS,
    )

    id: Mapped[int] = mapped_column(Id, primary_key=True, autoincrement=True)
    source: Mapped[str] = mapped_column(String(32))
    external_id: Mapped[str] = mapped_column(Identity)
    order_number: Mapped[str | None] = mapped_column(String(64))
    status: Mapped[str | None] = mapped_column(String(64))
    order_date: Mapped[datetime | None] = mapped_column(DateTime)
    source_updated_at: Mapped[datetime] = mapped_column(DateTime)
    currency_code: Mapped[str | None] = mapped_column(String(8))
    customer_email: Mapped[str | None] = mapped_column(String(NAME_LENGTH))
    customer_name: Mapped[str | None] = mapped_column(String(NAME_LENGTH))
    customer_external_id: Mapped[str | None] = mapped_column(String(64))
    subtotal: Mapped[Decimal | None] = mapped_column(Money)
    tax_amount: Mapped[Decimal | None] = mapped_column(Money)
    shipping_amount: Mapped[Decimal | None] = mapped_column(Money)
    shipping_tax_amount: Mapped[Decimal | None] = mapped_column(Money)
    shipping_incl_tax: Mapped[Decimal | None] = mapped_column(Money)
    discount_amount: Mapped[Decimal | None] = mapped_column(Money)
    grand_total: Mapped[Decimal | None] = mapped_column(Money)
    payment_method: Mapped[str | None] = mapped_column(String(NAME_LENGTH))
    payment_amount: Mapped[Decimal | None] = mapped_column(Money)
    shipping_method: Mapped[str | None] = mapped_column(String(NAME_LENGTH))
    store_name: Mapped[str | None] = mapped_column(String(NAME_LENGTH))
    replaces_external_id: Mapped[str | None] = mapped_column(String(64))
    replaces_order_number: Mapped[str | None] = mapped_column(String(64))
    notes: Mapped[str | None] = mapped_column(LongText)
    raw_json: Mapped[str] = mapped_column(LongText)
    content_hash: Mapped[str] = mapped_column(String(64))
    first_synced_at: Mapped[datetime] = mapped_column(DateTime)
    last_synced_at: Mapped[datetime] = mapped_column(DateTime)


class OrderItem(Base):
    __tablename__ = "order_items"
    __table_args__ = (Index(None, "order_id", "line_no"), Index(None, "sku"), TABLE_OPTIONS)

    id: Mapped[int] = mapped_column(Id, primary_key=True, autoincrement=True)
    order_id: Mapped[int] = mapped_column(Id, ForeignKey("orders.id", ondelete="CASCADE"))
    line_no: Mapped[int] = mapped_column(Integer)
    sku: Mapped[str | None] = mapped_column(String(NAME_LENGTH))
    name: Mapped[str | None] = mapped_column(String(NAME_LENGTH))
    product_id: Mapped[str | None] = mapped_column(String(64))
    quantity: Mapped[Decimal | None] = mapped_column(Quantity)
    unit_price_ex_tax: Mapped[Decimal | None] = mapped_column(Money)
    price_incl_tax: Mapped[Decimal | None] = mapped_column(Money)
    tax_rate: Mapped[Decimal | None] = mapped_column(Rate)
    tax_amount: Mapped[Decimal | None] = mapped_column(Money)
    tax_code: Mapped[str | None] = mapped_column(String(64))
    discount_amount: Mapped[Decimal | None] = mapped_column(Money)
    line_total_incl_tax: Mapped[Decimal | None] = mapped_column(Money)
    error_code: Mapped[str | None] = mapped_column(String(64))


class OrderAddress(Base):
    __tablename__ = "order_addresses"
    __table_args__ = (
        Index(None, "order_id", "address_type"),
        CheckConstraint("address_type IN ('billing', 'shipping')", name="address_type"),
        TABLE_OPTIONS,
    )

    id: Mapped[int] = mapped_column(Id, primary_key=True, autoincrement=True)
    order_id: Mapped[int] = mapped_column(Id, ForeignKey("orders.id", ondelete="CASCADE"))
    address_type: Mapped[str] = mapped_column(String(16))
    first_name: Mapped[str | None] = mapped_column(String(NAME_LENGTH))
    last_name: Mapped[str | None] = mapped_column(String(NAME_LENGTH))
    company: Mapped[str | None] = mapped_column(String(NAME_LENGTH))
    phone: Mapped[str | None] = mapped_column(String(64))
    email: Mapped[str | None] = mapped_column(String(NAME_LENGTH))
    line1: Mapped[str | None] = mapped_column(String(NAME_LENGTH))
    line2: Mapped[str | None] = mapped_column(String(NAME_LENGTH))
    city: Mapped[str | None] = mapped_column(String(NAME_LENGTH))
    region: Mapped[str | None] = mapped_column(String(NAME_LENGTH))
    postcode: Mapped[str | None] = mapped_column(String(32))
    country_code: Mapped[str | None] = mapped_column(String(8))


class OrderCredit(Base):
    __tablename__ = "order_credits"
    # external_id: a run reads the stored version of each credit memo it meets by it (0003)
    __table_args__ = (Index(None, "order_id"), Index(None, "external_id"), TABLE_OPTIONS)

    id: Mapped[int] = mapped_column(Id, primary_key=True, autoincrement=True)
    order_id: Mapped[int] = mapped_column(Id, ForeignKey("orders.id", ondelete="CASCADE"))
    external_id: Mapped[str] = mapped_column(String(64))
    credit_number: Mapped[str | None] = mapped_column(String(64))
    state: Mapped[str | None] = mapped_column(String(32))
    credit_date: Mapped[datetime | None] = mapped_column(DateTime)
    source_updated_at: Mapped[datetime | None] = mapped_column(DateTime)
    subtotal: Mapped[Decimal | None] = mapped_column(Money)
    tax_amount: Mapped[Decimal | None] = mapped_column(Money)
    shipping_amount: Mapped[Decimal | None] = mapped_column(Money)
    adjustment_positive: Mapped[Decimal | None] = mapped_column(Money)
    adjustment_negative: Mapped[Decimal | None] = mapped_column(Money)
    grand_total: Mapped[Decimal | None] = mapped_column(Money)
    raw_json: Mapped[str] = mapped_column(LongText)


class SyncHistory(Base):
    """One row per run and source; updated in the same transaction as each page it commits."""

    __tablename__ = "sync_history"
    __table_args__ = (
        Index(None, "source", "started_at"),
        Index(None, "source", "status"),
        CheckConstraint("sync_type IN ('initial', 'incremental')", name="sync_type"),
        CheckConstraint("status IN ('running', 'success', 'failed')", name="status"),
        TABLE_OPTIONS,
    )

    id: Mapped[int] = mapped_column(Id, primary_key=True, autoincrement=True)
    source: Mapped[str] = mapped_column(String(32))
    sync_type: Mapped[str] = mapped_column(String(16))
    started_at: Mapped[datetime] = mapped_column(DateTime)
    finished_at: Mapped[datetime | None] = mapped_column(DateTime)
    status: Mapped[str] = mapped_column(String(16))
    window_start: Mapped[datetime | None] = mapped_column(DateTime)
    cursor: Mapped[datetime | None] = mapped_column(DateTime)
    pages: Mapped[int] = mapped_column(Integer, default=0)
    orders_added: Mapped[int] = mapped_column(Integer, default=0)
    orders_updated: Mapped[int] = mapped_column(Integer, default=0)
    orders_unchanged: Mapped[int] = mapped_column(Integer, default=0)
    orders_rejected: Mapped[int] = mapped_column(Integer, default=0)
    orders_skipped: Mapped[int] = mapped_column(Integer, default=0)
    error_message: Mapped[str | None] = mapped_column(LongText)
    host: Mapped[str | None] = mapped_column(String(NAME_LENGTH))
    pid: Mapped[int | None] = mapped_column(Integer)


class RejectedOrder(Base):
    """A payload that could not be mapped, kept whole until a later run maps or supersedes it."""

    __tablename__ = "rejected_orders"
    __table_args__ = (UniqueConstraint("source", "reject_key"), TABLE_OPTIONS)

    id: Mapped[int] = mapped_column(Id, primary_key=True, autoincrement=True)
    source: Mapped[str] = mapped_column(String(32))
    reject_key: Mapped[str] = mapped_column(RejectKey)  # external id, or a hash when it has none
    external_id: Mapped[str | None] = mapped_column(String(64))
    order_number: Mapped[str | None] = mapped_column(String(64))
    raw_json: Mapped[str] = mapped_column(LongText)
    error_message: Mapped[str] = mapped_column(LongText)
    first_seen_at: Mapped[datetime] = mapped_column(DateTime)
    last_seen_at: Mapped[datetime] = mapped_column(DateTime)
    times_seen: Mapped[int] = mapped_column(Integer, default=1)
    sync_history_id: Mapped[int | None] = mapped_column(Id, ForeignKey("sync_history.id", ondelete="SET NULL"))


class BigBlockPush(Base):
    """What a Big Block holds of one stored order, so a rerun pushes nothing twice.

    One row per order and Big Block (test and production servers are kept apart): ``state`` is ``sending`` from just before a create
    until its answer is recorded, so an interrupted push is found again rather than duplicated;
    ``picked`` once the order left the statuses to pick after picking had started (nothing more
    to do); ``blocked`` while a change or cancellation waits for a person.
    """

    __tablename__ = "bigblock_pushes"
    __table_args__ = (
        UniqueConstraint("order_id", "bigblock_url"),
        Index(None, "state"),
        Index(None, "order_number"),
        CheckConstraint("state IN ('sending', 'pushed', 'held', 'failed', 'deleted', 'blocked', 'skipped', 'picked')", name="state"),
        TABLE_OPTIONS,
    )

    id: Mapped[int] = mapped_column(Id, primary_key=True, autoincrement=True)
    order_id: Mapped[int] = mapped_column(Id, ForeignKey("orders.id", ondelete="CASCADE"))
    source: Mapped[str] = mapped_column(String(32))
    bigblock_url: Mapped[str] = mapped_column(String(255))  # which Big Block: a record says nothing of another
    order_number: Mapped[str] = mapped_column(String(128))  # as Big Block knows it, prefix included
    bigblock_id: Mapped[str | None] = mapped_column(String(64))  # None: Big Block holds no copy we know of
    state: Mapped[str] = mapped_column(String(16))
    content_hash: Mapped[str | None] = mapped_column(String(64))  # of the body Big Block holds
    order_hash: Mapped[str | None] = mapped_column(String(64))  # orders.content_hash it was built from
    basis_hash: Mapped[str | None] = mapped_column(String(64))  # locations file and settings it was built with
    message: Mapped[str | None] = mapped_column(LongText)  # why held back, failed or blocked
    pushed_at: Mapped[datetime | None] = mapped_column(DateTime)  # when Big Block last took a change
    checked_at: Mapped[datetime] = mapped_column(DateTime)
