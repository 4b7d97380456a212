"""webhook lanes: each event's delivery lane (its invoice, or its account) and the lane
it follows, and an urgent priority for the events provisioning acts on

Events written before this version keep their account as their lane (the order they were
promised: one account's events one at a time).

Revision ID: 0013b_webhook_lanes
Revises: 0013_chain_catch_up
Create Date: 2026-11-28 09:00:00
"""
from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = '0013b_webhook_lanes'
down_revision: str | None = '0013_chain_catch_up'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    # Added in place (SQLite adds columns without copying the table).
    op.add_column('events', sa.Column('lane', sa.String(length=40), nullable=True))
    op.add_column('events', sa.Column('after_lane', sa.String(length=40), nullable=True))
    op.execute("UPDATE events SET lane = account_id")
    op.create_index('ix_events_lane_seq', 'events', ['lane', 'seq'], unique=False)
    op.add_column('deliveries', sa.Column('priority', sa.SmallInteger(), nullable=False,
                                          server_default='1'))
    op.drop_index('ix_deliveries_status_next_attempt_at', table_name='deliveries')
    op.create_index('ix_deliveries_status_priority_next_attempt_at', 'deliveries',
                    ['status', 'priority', 'next_attempt_at'], unique=False)


def downgrade() -> None:
    op.drop_index('ix_deliveries_status_priority_next_attempt_at', table_name='deliveries')
    op.create_index('ix_deliveries_status_next_attempt_at', 'deliveries',
                    ['status', 'next_attempt_at'], unique=False)
    op.drop_column('deliveries', 'priority')  # in place (SQLite >= 3.35)
    op.drop_index('ix_events_lane_seq', table_name='events')
    op.drop_column('events', 'after_lane')
    op.drop_column('events', 'lane')
