"""initial schema

Revision ID: 0001
Revises:
Create Date: 2026-11-25 04:37:37.159630
"""
from __future__ import annotations

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import mysql

revision = '0001'
down_revision = None
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table('orders',
    sa.Column('id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), autoincrement=True, nullable=False),
    sa.Column('source', sa.String(length=32), nullable=False),
    sa.Column('external_id', sa.String(length=64).with_variant(mysql.VARCHAR(length=64, collation='utf8mb4_bin'), 'mariadb').with_variant(mysql.VARCHAR(length=64, collation='utf8mb4_bin'), 'mysql'), nullable=False),
    sa.Column('order_number', sa.String(length=64), nullable=True),
    sa.Column('status', sa.String(length=64), nullable=True),
    sa.Column('order_date', sa.DateTime(), nullable=True),
    sa.Column('source_updated_at', sa.DateTime(), nullable=False),
    sa.Column('currency_code', sa.String(length=8), nullable=True),
    sa.Column('customer_email', sa.String(length=255), nullable=True),
    sa.Column('customer_name', sa.String(length=255), nullable=True),
    sa.Column('customer_external_id', sa.String(length=64), nullable=True),
    sa.Column('subtotal', sa.Numeric(precision=18, scale=4), nullable=True),
    sa.Column('tax_amount', sa.Numeric(precision=18, scale=4), nullable=True),
    sa.Column('shipping_amount', sa.Numeric(precision=18, scale=4), nullable=True),
    sa.Column('shipping_tax_amount', sa.Numeric(precision=18, scale=4), nullable=True),
    sa.Column('shipping_incl_tax', sa.Numeric(precision=18, scale=4), nullable=True),
    sa.Column('discount_amount', sa.Numeric(precision=18, scale=4), nullable=True),
    sa.Column('grand_total', sa.Numeric(precision=18, scale=4), nullable=True),
    sa.Column('payment_method', sa.String(length=255), nullable=True),
    sa.Column('payment_amount', sa.Numeric(precision=18, scale=4), nullable=True),
    sa.Column('shipping_method', sa.String(length=255), nullable=True),
    sa.Column('store_name', sa.String(length=255), nullable=True),
    sa.Column('replaces_external_id', sa.String(length=64), nullable=True),
    sa.Column('replaces_order_number', sa.String(length=64), nullable=True),
    sa.Column('notes', sa.Text().with_variant(mysql.LONGTEXT(), 'mariadb').with_variant(mysql.LONGTEXT(), 'mysql'), nullable=True),
    sa.Column('raw_json', sa.Text().with_variant(mysql.LONGTEXT(), 'mariadb').with_variant(mysql.LONGTEXT(), 'mysql'), nullable=False),
    sa.Column('content_hash', sa.String(length=64), nullable=False),
    sa.Column('first_synced_at', sa.DateTime(), nullable=False),
    sa.Column('last_synced_at', sa.DateTime(), nullable=False),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_orders')),
    sa.UniqueConstraint('source', 'external_id', name=op.f('uq_orders_source_external_id')),
    mysql_charset='utf8mb4',
    mysql_collate='utf8mb4_unicode_ci',
    mysql_engine='InnoDB'
    )
    with op.batch_alter_table('orders', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_orders_order_number'), ['order_number'], unique=False)
        batch_op.create_index(batch_op.f('ix_orders_source_order_date'), ['source', 'order_date'], unique=False)
        batch_op.create_index(batch_op.f('ix_orders_source_source_updated_at'), ['source', 'source_updated_at'], unique=False)

    op.create_table('sync_history',
    sa.Column('id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), autoincrement=True, nullable=False),
    sa.Column('source', sa.String(length=32), nullable=False),
    sa.Column('sync_type', sa.String(length=16), nullable=False),
    sa.Column('started_at', sa.DateTime(), nullable=False),
    sa.Column('finished_at', sa.DateTime(), nullable=True),
    sa.Column('status', sa.String(length=16), nullable=False),
    sa.Column('window_start', sa.DateTime(), nullable=True),
    sa.Column('cursor', sa.DateTime(), nullable=True),
    sa.Column('pages', sa.Integer(), nullable=False),
    sa.Column('orders_added', sa.Integer(), nullable=False),
    sa.Column('orders_updated', sa.Integer(), nullable=False),
    sa.Column('orders_unchanged', sa.Integer(), nullable=False),
    sa.Column('orders_rejected', sa.Integer(), nullable=False),
    sa.Column('orders_skipped', sa.Integer(), nullable=False),
    sa.Column('error_message', sa.Text().with_variant(mysql.LONGTEXT(), 'mariadb').with_variant(mysql.LONGTEXT(), 'mysql'), nullable=True),
    sa.Column('host', sa.String(length=255), nullable=True),
    sa.Column('pid', sa.Integer(), nullable=True),
    sa.CheckConstraint("status IN ('running', 'success', 'failed')", name=op.f('ck_sync_history_status')),
    sa.CheckConstraint("sync_type IN ('initial', 'incremental')", name=op.f('ck_sync_history_sync_type')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_sync_history')),
    mysql_charset='utf8mb4',
    mysql_collate='utf8mb4_unicode_ci',
    mysql_engine='InnoDB'
    )
    with op.batch_alter_table('sync_history', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_sync_history_source_started_at'), ['source', 'started_at'], unique=False)
        batch_op.create_index(batch_op.f('ix_sync_history_source_status'), ['source', 'status'], unique=False)

    op.create_table('order_addresses',
    sa.Column('id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), autoincrement=True, nullable=False),
    sa.Column('order_id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), nullable=False),
    sa.Column('address_type', sa.String(length=16), nullable=False),
    sa.Column('first_name', sa.String(length=255), nullable=True),
    sa.Column('last_name', sa.String(length=255), nullable=True),
    sa.Column('company', sa.String(length=255), nullable=True),
    sa.Column('phone', sa.String(length=64), nullable=True),
    sa.Column('email', sa.String(length=255), nullable=True),
    sa.Column('line1', sa.String(length=255), nullable=True),
    sa.Column('line2', sa.String(length=255), nullable=True),
    sa.Column('city', sa.String(length=255), nullable=True),
    sa.Column('region', sa.String(length=255), nullable=True),
    sa.Column('postcode', sa.String(length=32), nullable=True),
    sa.Column('country_code', sa.String(length=8), nullable=True),
    sa.CheckConstraint("address_type IN ('billing', 'shipping')", name=op.f('ck_order_addresses_address_type')),
    sa.ForeignKeyConstraint(['order_id'], ['orders.id'], name=op.f('fk_order_addresses_order_id_orders'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_order_addresses')),
    mysql_charset='utf8mb4',
    mysql_collate='utf8mb4_unicode_ci',
    mysql_engine='InnoDB'
    )
    with op.batch_alter_table('order_addresses', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_order_addresses_order_id_address_type'), ['order_id', 'address_type'], unique=False)

    op.create_table('order_credits',
    sa.Column('id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), autoincrement=True, nullable=False),
    sa.Column('order_id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), nullable=False),
    sa.Column('external_id', sa.String(length=64), nullable=False),
    sa.Column('credit_number', sa.String(length=64), nullable=True),
    sa.Column('state', sa.String(length=32), nullable=True),
    sa.Column('credit_date', sa.DateTime(), nullable=True),
    sa.Column('source_updated_at', sa.DateTime(), nullable=True),
    sa.Column('subtotal', sa.Numeric(precision=18, scale=4), nullable=True),
    sa.Column('tax_amount', sa.Numeric(precision=18, scale=4), nullable=True),
    sa.Column('shipping_amount', sa.Numeric(precision=18, scale=4), nullable=True),
    sa.Column('adjustment_positive', sa.Numeric(precision=18, scale=4), nullable=True),
    sa.Column('adjustment_negative', sa.Numeric(precision=18, scale=4), nullable=True),
    sa.Column('grand_total', sa.Numeric(precision=18, scale=4), nullable=True),
    sa.Column('raw_json', sa.Text().with_variant(mysql.LONGTEXT(), 'mariadb').with_variant(mysql.LONGTEXT(), 'mysql'), nullable=False),
    sa.ForeignKeyConstraint(['order_id'], ['orders.id'], name=op.f('fk_order_credits_order_id_orders'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_order_credits')),
    mysql_charset='utf8mb4',
    mysql_collate='utf8mb4_unicode_ci',
    mysql_engine='InnoDB'
    )
    with op.batch_alter_table('order_credits', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_order_credits_order_id'), ['order_id'], unique=False)

    op.create_table('order_items',
    sa.Column('id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), autoincrement=True, nullable=False),
    sa.Column('order_id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), nullable=False),
    sa.Column('line_no', sa.Integer(), nullable=False),
    sa.Column('sku', sa.String(length=255), nullable=True),
    sa.Column('name', sa.String(length=255), nullable=True),
    sa.Column('product_id', sa.String(length=64), nullable=True),
    sa.Column('quantity', sa.Numeric(precision=18, scale=4), nullable=True),
    sa.Column('unit_price_ex_tax', sa.Numeric(precision=18, scale=4), nullable=True),
    sa.Column('price_incl_tax', sa.Numeric(precision=18, scale=4), nullable=True),
    sa.Column('tax_rate', sa.Numeric(precision=10, scale=6), nullable=True),
    sa.Column('tax_amount', sa.Numeric(precision=18, scale=4), nullable=True),
    sa.Column('tax_code', sa.String(length=64), nullable=True),
    sa.Column('discount_amount', sa.Numeric(precision=18, scale=4), nullable=True),
    sa.Column('line_total_incl_tax', sa.Numeric(precision=18, scale=4), nullable=True),
    sa.Column('error_code', sa.String(length=64), nullable=True),
    sa.ForeignKeyConstraint(['order_id'], ['orders.id'], name=op.f('fk_order_items_order_id_orders'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_order_items')),
    mysql_charset='utf8mb4',
    mysql_collate='utf8mb4_unicode_ci',
    mysql_engine='InnoDB'
    )
    with op.batch_alter_table('order_items', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_order_items_order_id_line_no'), ['order_id', 'line_no'], unique=False)
        batch_op.create_index(batch_op.f('ix_order_items_sku'), ['sku'], unique=False)

    op.create_table('rejected_orders',
    sa.Column('id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), autoincrement=True, nullable=False),
    sa.Column('source', sa.String(length=32), nullable=False),
    sa.Column('reject_key', sa.String(length=80).with_variant(mysql.VARCHAR(length=80, collation='utf8mb4_bin'), 'mariadb').with_variant(mysql.VARCHAR(length=80, collation='utf8mb4_bin'), 'mysql'), nullable=False),
    sa.Column('external_id', sa.String(length=64), nullable=True),
    sa.Column('order_number', sa.String(length=64), nullable=True),
    sa.Column('raw_json', sa.Text().with_variant(mysql.LONGTEXT(), 'mariadb').with_variant(mysql.LONGTEXT(), 'mysql'), nullable=False),
    sa.Column('error_message', sa.Text().with_variant(mysql.LONGTEXT(), 'mariadb').with_variant(mysql.LONGTEXT(), 'mysql'), nullable=False),
    sa.Column('first_seen_at', sa.DateTime(), nullable=False),
    sa.Column('last_seen_at', sa.DateTime(), nullable=False),
    sa.Column('times_seen', sa.Integer(), nullable=False),
    sa.Column('sync_history_id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), nullable=True),
    sa.ForeignKeyConstraint(['sync_history_id'], ['sync_history.id'], name=op.f('fk_rejected_orders_sync_history_id_sync_history'), ondelete='SET NULL'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_rejected_orders')),
    sa.UniqueConstraint('source', 'reject_key', name=op.f('uq_rejected_orders_source_reject_key')),
    mysql_charset='utf8mb4',
    mysql_collate='utf8mb4_unicode_ci',
    mysql_engine='InnoDB'
    )


def downgrade() -> None:
    op.drop_table('rejected_orders')
    with op.batch_alter_table('order_items', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_order_items_sku'))
        batch_op.drop_index(batch_op.f('ix_order_items_order_id_line_no'))

    op.drop_table('order_items')
    with op.batch_alter_table('order_credits', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_order_credits_order_id'))

    op.drop_table('order_credits')
    with op.batch_alter_table('order_addresses', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_order_addresses_order_id_address_type'))

    op.drop_table('order_addresses')
    with op.batch_alter_table('sync_history', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_sync_history_source_status'))
        batch_op.drop_index(batch_op.f('ix_sync_history_source_started_at'))

    op.drop_table('sync_history')
    with op.batch_alter_table('orders', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_orders_source_source_updated_at'))
        batch_op.drop_index(batch_op.f('ix_orders_source_order_date'))
        batch_op.drop_index(batch_op.f('ix_orders_order_number'))

    op.drop_table('orders')
