"""payment block time: when the block a payment was first seen in was mined

Lateness is judged by the earliest evidence of a payment: our own mempool sighting, or,
when the gateway first saw the payment in a block (it was down), that block's time.

Revision ID: 0010a
Revises: 0009
Create Date: 2026-11-27 07:30:00.000000
"""
from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

import gateway.adapters.db.types

revision: str = '0010a'
down_revision: str | None = '0009'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    # Existing payments keep NULL: judged by their first-seen time, as before.
    with op.batch_alter_table('payments', schema=None) as batch_op:
        batch_op.add_column(sa.Column('block_time', gateway.adapters.db.types.UTCDateTime(timezone=True), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table('payments', schema=None) as batch_op:
        batch_op.drop_column('block_time')
