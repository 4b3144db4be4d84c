"""sync_history indexes for the lookups every run makes: the newest cursor, the initial scope

A `sync --watch` every 10 s adds 8,640 rows a day per source; without these, each run's plan
scanned every row of its source (0.2–0.3 s a lookup at 500,000 rows).

Revision ID: 0005
Revises: 0004
Create Date: 2026-12-04 21:30:00.000000
"""
from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = '0005'
down_revision = '0004'
branch_labels = None
depends_on = None

INDEXES = {
    'ix_sync_history_source_cursor': ['source', 'cursor'],
    'ix_sync_history_source_sync_type_status_window_start': ['source', 'sync_type', 'status', 'window_start'],
}


def upgrade() -> None:
    # MariaDB commits each DDL statement: a run killed between the two left one index made.
    made = {index['name'] for index in sa.inspect(op.get_bind()).get_indexes('sync_history')}
    with op.batch_alter_table('sync_history', schema=None) as batch_op:
        for name, columns in INDEXES.items():
            if name not in made:
                batch_op.create_index(name, columns, unique=False)


def downgrade() -> None:
    with op.batch_alter_table('sync_history', schema=None) as batch_op:
        for name in INDEXES:
            batch_op.drop_index(name)
