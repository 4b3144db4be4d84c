"""bigblock_pushes outlive their orders: order_id nullable, ON DELETE SET NULL

A ``clear`` deleted the push records with their orders (ON DELETE CASCADE), so synclet forgot what
Big Block holds; a record now stays, detached, and a push attaches it again to the order synced back.

Revision ID: 0004
Revises: 0003
Create Date: 2026-12-04 19:00:00.000000
"""
from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = '0004'
down_revision = '0003'
branch_labels = None
depends_on = None

TABLE = 'bigblock_pushes'
FOREIGN_KEY = 'fk_bigblock_pushes_order_id_orders'
ORDER_ID = sa.BigInteger().with_variant(sa.Integer(), 'sqlite')


def upgrade() -> None:
    _make(nullable=True, ondelete='SET NULL')


def downgrade() -> None:
    # The older schema cannot hold a record without its order: detached ones go, as its cascade
    # would have taken them.
    op.execute(sa.text(f'DELETE FROM {TABLE} WHERE order_id IS NULL'))
    _make(nullable=False, ondelete='CASCADE')


def _make(nullable: bool, ondelete: str) -> None:
    """Bring order_id and its foreign key to this shape, doing only what is left to do: MariaDB
    commits each ALTER, so a run killed between them left part of it done without the revision
    recorded. SQLite recreates the table in one transaction; a kill can leave only the empty copy
    alembic makes first, dropped here."""
    bind = op.get_bind()
    inspector = sa.inspect(bind)
    if inspector.has_table(f'_alembic_tmp_{TABLE}'):
        op.drop_table(f'_alembic_tmp_{TABLE}')
    column = next(column for column in inspector.get_columns(TABLE) if column['name'] == 'order_id')
    key = next((fk for fk in inspector.get_foreign_keys(TABLE) if fk['name'] == FOREIGN_KEY), None)
    key_right = key is not None and (key['options'].get('ondelete') or '').upper() == ondelete
    if bool(column['nullable']) == nullable and key_right:
        return
    with op.batch_alter_table(TABLE, schema=None) as batch_op:
        if key is not None and not key_right:
            batch_op.drop_constraint(FOREIGN_KEY, type_='foreignkey')
        if bool(column['nullable']) != nullable:
            batch_op.alter_column('order_id', existing_type=ORDER_ID, nullable=nullable)
        if not key_right:
            batch_op.create_foreign_key(FOREIGN_KEY, 'orders', ['order_id'], ['id'], ondelete=ondelete)
