"""The tables synclet writes, declared in SQLAlchemy Core. Column names are part of the contract.

Every command works with these Table objects alone: importing SQLAlchemy's ORM and mapping the
classes cost every run 0.1-0.18 s on a 2-core machine before it had done anything. The declarative
classes over the same tables, for code that wants ORM objects, are in ``synclet.models``.

Every timestamp is naive UTC; money and quantities are DECIMAL; ids are BIGINT (INTEGER on SQLite,
where only that type auto-increments).
"""
from __future__ import annotations

from typing import Any

from sqlalchemy import (
    BigInteger,
    CheckConstraint,
    Column,
    DateTime,
    ForeignKey,
    Index,
    Integer,
    MetaData,
    Numeric,
    String,
    Table,
    Text,
    UniqueConstraint,
)
from sqlalchemy.dialects import mysql
from sqlalchemy.types import TypeEngine

NAMING_CONVENTION = {
    "ix": "ix_%(table_name)s_%(column_0_N_name)s",
    "uq": "uq_%(table_name)s_%(column_0_N_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}
metadata = MetaData(naming_convention=NAMING_CONVENTION)

Id = BigInteger().with_variant(Integer(), "sqlite")
Money = Numeric(18, 4)
Quantity = Numeric(18, 4)
Rate = Numeric(10, 6)
LongText = Text().with_variant(mysql.LONGTEXT(), "mysql", "mariadb")
# A source's identifiers compare byte for byte: under MariaDB's default collation "a7" and "A7"
# would be one order.
Identity = String(64).with_variant(mysql.VARCHAR(64, collation="utf8mb4_bin"), "mysql", "mariadb")
RejectKey = String(80).with_variant(mysql.VARCHAR(80, collation="utf8mb4_bin"), "mysql", "mariadb")
Name = String(255)  # names, emails, methods: what a person typed
# utf8mb4 whatever the server default: names and notes carry emoji; InnoDB for transactions and FKs.
TABLE_OPTIONS = {"mysql_engine": "InnoDB", "mysql_charset": "utf8mb4", "mysql_collate": "utf8mb4_unicode_ci"}


def _id() -> Column[Any]:
    return Column("id", Id, primary_key=True, autoincrement=True)


def _required(name: str, type_: TypeEngine[Any] | type[TypeEngine[Any]], *args: Any, **kwargs: Any) -> Column[Any]:
    return Column(name, type_, *args, nullable=False, **kwargs)


def _optional(name: str, type_: TypeEngine[Any] | type[TypeEngine[Any]], *args: Any) -> Column[Any]:
    return Column(name, type_, *args, nullable=True)


def _order_id() -> Column[Any]:
    """The owning order: its children go with it."""
    return _required("order_id", Id, ForeignKey("orders.id", ondelete="CASCADE"))


orders = Table(
    "orders", metadata,
    _id(),
    _required("source", String(32)),
    _required("external_id", Identity),
    _optional("order_number", String(64)),
    _optional("status", String(64)),
    _optional("order_date", DateTime),
    _required("source_updated_at", DateTime),
    _optional("currency_code", String(8)),
    _optional("customer_email", Name),
    _optional("customer_name", Name),
    _optional("customer_external_id", String(64)),
    _optional("subtotal", Money),
    _optional("tax_amount", Money),
    _optional("shipping_amount", Money),
    _optional("shipping_tax_amount", Money),
    _optional("shipping_incl_tax", Money),
    _optional("discount_amount", Money),
    _optional("grand_total", Money),
    _optional("payment_method", Name),
    _optional("payment_amount", Money),
    _optional("shipping_method", Name),
    _optional("store_name", Name),
    _optional("replaces_external_id", String(64)),
    _optional("replaces_order_number", String(64)),
    _optional("notes", LongText),
    _required("raw_json", LongText),
    _required("content_hash", String(64)),
    _required("first_synced_at", DateTime),
    _required("last_synced_at", DateTime),
    UniqueConstraint("source", "external_id"),
    Index(None, "source", "source_updated_at"),
    Index(None, "source", "order_date"),
    Index(None, "order_number"),
    **TABLE_OPTIONS,
)

order_items = Table(
    "order_items", metadata,
    _id(),
    _order_id(),
    _required("line_no", Integer),
    _optional("sku", Name),
    _optional("name", Name),
    _optional("product_id", String(64)),
    _optional("quantity", Quantity),
    _optional("unit_price_ex_tax", Money),
    _optional("price_incl_tax", Money),
    _optional("tax_rate", Rate),
    _optional("tax_amount", Money),
    _optional("tax_code", String(64)),
    _optional("discount_amount", Money),
    _optional("line_total_incl_tax", Money),
    _optional("error_code", String(64)),
    Index(None, "order_id", "line_no"),
    Index(None, "sku"),
    **TABLE_OPTIONS,
)

order_addresses = Table(
    "order_addresses", metadata,
    _id(),
    _order_id(),
    _required("address_type", String(16)),
    _optional("first_name", Name),
    _optional("last_name", Name),
    _optional("company", Name),
    _optional("phone", String(64)),
    _optional("email", Name),
    _optional("line1", Name),
    _optional("line2", Name),
    _optional("city", Name),
    _optional("region", Name),
    _optional("postcode", String(32)),
    _optional("country_code", String(8)),
    Index(None, "order_id", "address_type"),
    CheckConstraint("address_type IN ('billing', 'shipping')", name="address_type"),
    **TABLE_OPTIONS,
)

order_credits = Table(
    "order_credits", metadata,
    _id(),
    _order_id(),
    _required("external_id", String(64)),
    _optional("credit_number", String(64)),
    _optional("state", String(32)),
    _optional("credit_date", DateTime),
    _optional("source_updated_at", DateTime),
    _optional("subtotal", Money),
    _optional("tax_amount", Money),
    _optional("shipping_amount", Money),
    _optional("adjustment_positive", Money),
    _optional("adjustment_negative", Money),
    _optional("grand_total", Money),
    _required("raw_json", LongText),
    Index(None, "order_id"),
    Index(None, "external_id"),  # a run reads the stored version of each credit memo it meets by it (0003)
    **TABLE_OPTIONS,
)

#: One row per run and source; updated in the same transaction as each page it commits.
sync_history = Table(
    "sync_history", metadata,
    _id(),
    _required("source", String(32)),
    _required("sync_type", String(16)),
    _required("started_at", DateTime),
    _optional("finished_at", DateTime),
    _required("status", String(16)),
    _optional("window_start", DateTime),
    _optional("cursor", DateTime),
    _required("pages", Integer, default=0),
    _required("orders_added", Integer, default=0),
    _required("orders_updated", Integer, default=0),
    _required("orders_unchanged", Integer, default=0),
    _required("orders_rejected", Integer, default=0),
    _required("orders_skipped", Integer, default=0),
    _optional("error_message", LongText),
    _optional("host", Name),
    _optional("pid", Integer),
    Index(None, "source", "started_at"),
    Index(None, "source", "status"),
    Index(None, "source", "cursor"),  # newest_cursor (0005)
    Index(None, "source", "sync_type", "status", "window_start"),  # initial_scope and the initial runs' lookups (0005)
    CheckConstraint("sync_type IN ('initial', 'incremental')", name="sync_type"),
    CheckConstraint("status IN ('running', 'success', 'failed')", name="status"),
    **TABLE_OPTIONS,
)

#: A payload that could not be mapped, kept whole until a later run maps or supersedes it.
rejected_orders = Table(
    "rejected_orders", metadata,
    _id(),
    _required("source", String(32)),
    _required("reject_key", RejectKey),  # external id, or a hash when it has none
    _optional("external_id", String(64)),
    _optional("order_number", String(64)),
    _required("raw_json", LongText),
    _required("error_message", LongText),
    _required("first_seen_at", DateTime),
    _required("last_seen_at", DateTime),
    _required("times_seen", Integer, default=1),
    _optional("sync_history_id", Id, ForeignKey("sync_history.id", ondelete="SET NULL")),
    UniqueConstraint("source", "reject_key"),
    **TABLE_OPTIONS,
)

#: What a Big Block holds of one stored order, so a rerun pushes nothing twice. One row per order
#: and Big Block (test and production servers are kept apart): ``state`` is ``sending`` from just
#: before a create until its answer is recorded, so an interrupted push is found again rather than
#: duplicated; ``picked`` once the order left the statuses to pick after picking had started
#: (nothing more to do); ``blocked`` while a change or cancellation waits for a person.
#: A record outlives its order (``order_id`` NULL after a ``clear``: Big Block still holds what it
#: says) and is attached again to the order of its source and number when a sync brings it back.
#: Unique on (order_id, bigblock_url): NULLs are distinct there, so any number of detached records.
bigblock_pushes = Table(
    "bigblock_pushes", metadata,
    _id(),
    _optional("order_id", Id, ForeignKey("orders.id", ondelete="SET NULL")),  # 0004: was CASCADE, NOT NULL
    _required("source", String(32)),
    _required("bigblock_url", String(255)),  # which Big Block: a record says nothing of another
    _required("order_number", String(128)),  # as Big Block knows it, prefix included
    _optional("bigblock_id", String(64)),  # None: Big Block holds no copy we know of
    _required("state", String(16)),
    _optional("content_hash", String(64)),  # of the body Big Block holds
    _optional("order_hash", String(64)),  # orders.content_hash it was built from
    _optional("basis_hash", String(64)),  # locations file and settings it was built with
    _optional("message", LongText),  # why held back, failed or blocked
    _optional("pushed_at", DateTime),  # when Big Block last took a change
    _required("checked_at", DateTime),
    UniqueConstraint("order_id", "bigblock_url"),
    Index(None, "state"),
    Index(None, "order_number"),
    CheckConstraint("state IN ('sending', 'pushed', 'held', 'failed', 'deleted', 'blocked', 'skipped', 'picked')", name="state"),
    **TABLE_OPTIONS,
)
