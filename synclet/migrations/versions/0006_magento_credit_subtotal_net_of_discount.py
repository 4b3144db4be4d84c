"""magento credit memos: subtotal net of the memo's discount, as magento-rest stores the same row

Before, a discounted memo of the `magento` source kept Magento's subtotal before its discount, so
its amounts did not add up to its grand total. A stored order is rewritten only when its payload
changes, so the memos stored before the fix are corrected here from their own raw_json.

Revision ID: 0006
Revises: 0005
Create Date: 2026-12-04 21:40:00.000000
"""
from __future__ import annotations

import json
from decimal import Decimal, InvalidOperation

import sqlalchemy as sa
from alembic import op

revision = '0006'
down_revision = '0005'
branch_labels = None
depends_on = None

ORDERS = sa.table('orders', sa.column('id'), sa.column('source'))
CREDITS = sa.table('order_credits', sa.column('id'), sa.column('order_id'), sa.column('subtotal', sa.Numeric(18, 4)),
                   sa.column('raw_json'))


def _discount(raw_json: str) -> Decimal | None:
    """The memo row's ``discount_amount`` (negative in Magento), or None when absent or unreadable."""
    try:
        value = json.loads(raw_json).get('discount_amount')
        return Decimal(str(value)) if value not in (None, '') else None
    except (ValueError, AttributeError, InvalidOperation):
        return None


def _netted(net: bool) -> None:
    connection = op.get_bind()
    rows = connection.execute(
        sa.select(CREDITS.c.id, CREDITS.c.subtotal, CREDITS.c.raw_json)
        .join(ORDERS, ORDERS.c.id == CREDITS.c.order_id)
        .where(ORDERS.c.source == 'magento', CREDITS.c.subtotal.is_not(None))
    ).all()
    changes = [{'credit_id': credit_id, 'new_subtotal': subtotal + discount if net else subtotal - discount}
               for credit_id, subtotal, raw_json in rows
               if (discount := _discount(raw_json)) and discount.is_finite()]
    if changes:  # rows and the revision commit together: this migration makes no DDL
        connection.execute(CREDITS.update().where(CREDITS.c.id == sa.bindparam('credit_id'))
                           .values(subtotal=sa.bindparam('new_subtotal')), changes)


def upgrade() -> None:
    _netted(True)


def downgrade() -> None:
    _netted(False)
