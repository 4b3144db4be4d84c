"""order_credits.external_id index: runs look up stored credit memo versions by it

Revision ID: 0003
Revises: 0002
Create Date: 2026-12-03 08:30:00.000000
"""
from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = '0003'
down_revision = '0002'
branch_labels = None
depends_on = None

INDEX = 'ix_order_credits_external_id'


def upgrade() -> None:
    # MariaDB commits each DDL statement: a run killed after the CREATE INDEX left the index
    # without recording 0003.
    if INDEX in {index['name'] for index in sa.inspect(op.get_bind()).get_indexes('order_credits')}:
        return
    with op.batch_alter_table('order_credits', schema=None) as batch_op:
        batch_op.create_index(INDEX, ['external_id'], unique=False)


def downgrade() -> None:
    with op.batch_alter_table('order_credits', schema=None) as batch_op:
        batch_op.drop_index(INDEX)
