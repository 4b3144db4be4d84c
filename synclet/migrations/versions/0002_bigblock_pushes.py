"""bigblock pushes: what Big Block holds of each stored order

Revision ID: 0002
Revises: 0001
Create Date: 2026-12-02 14:33:55.000892
"""
from __future__ import annotations

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import mysql

revision = '0002'
down_revision = '0001'
branch_labels = None
depends_on = None


def upgrade() -> None:
    # MariaDB commits each DDL statement: a run killed after the CREATE TABLE left the table (empty,
    # as nothing writes it before the revision is recorded) without recording 0002.
    if sa.inspect(op.get_bind()).has_table('bigblock_pushes'):
        op.drop_table('bigblock_pushes')
    op.create_table('bigblock_pushes',
    sa.Column('id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), autoincrement=True, nullable=False),
    sa.Column('order_id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), nullable=False),
    sa.Column('source', sa.String(length=32), nullable=False),
    sa.Column('bigblock_url', sa.String(length=255), nullable=False),
    sa.Column('order_number', sa.String(length=128), nullable=False),
    sa.Column('bigblock_id', sa.String(length=64), nullable=True),
    sa.Column('state', sa.String(length=16), nullable=False),
    sa.Column('content_hash', sa.String(length=64), nullable=True),
    sa.Column('order_hash', sa.String(length=64), nullable=True),
    sa.Column('basis_hash', sa.String(length=64), nullable=True),
    sa.Column('message', sa.Text().with_variant(mysql.LONGTEXT(), 'mariadb').with_variant(mysql.LONGTEXT(), 'mysql'), nullable=True),
    sa.Column('pushed_at', sa.DateTime(), nullable=True),
    sa.Column('checked_at', sa.DateTime(), nullable=False),
    sa.CheckConstraint("state IN ('sending', 'pushed', 'held', 'failed', 'deleted', 'blocked', 'skipped', 'picked')", name=op.f('ck_bigblock_pushes_state')),
    sa.ForeignKeyConstraint(['order_id'], ['orders.id'], name=op.f('fk_bigblock_pushes_order_id_orders'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_bigblock_pushes')),
    sa.UniqueConstraint('order_id', 'bigblock_url', name=op.f('uq_bigblock_pushes_order_id_bigblock_url')),
    mysql_charset='utf8mb4',
    mysql_collate='utf8mb4_unicode_ci',
    mysql_engine='InnoDB'
    )
    with op.batch_alter_table('bigblock_pushes', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_bigblock_pushes_order_number'), ['order_number'], unique=False)
        batch_op.create_index(batch_op.f('ix_bigblock_pushes_state'), ['state'], unique=False)


def downgrade() -> None:
    with op.batch_alter_table('bigblock_pushes', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_bigblock_pushes_state'))
        batch_op.drop_index(batch_op.f('ix_bigblock_pushes_order_number'))

    op.drop_table('bigblock_pushes')