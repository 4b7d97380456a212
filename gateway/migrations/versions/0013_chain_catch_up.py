"""chain cursors record a follower's catch-up: a Monero wallet recreated from its keys
being given its subaddresses and rescanning, shown by /readyz, the console and `gateway
doctor` of every instance while it lasts

Revision ID: 0013_chain_catch_up
Revises: 0012a_privacy_second_pass
Create Date: 2026-12-02 09:00:00.000000
"""
from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

import gateway.adapters.db.types

revision: str = '0013_chain_catch_up'
down_revision: str | None = '0012a_privacy_second_pass'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table('chain_cursors', schema=None) as batch_op:
        batch_op.add_column(sa.Column('catch_up', sa.String(length=300), nullable=True))
        batch_op.add_column(sa.Column(
            'catch_up_since', gateway.adapters.db.types.UTCDateTime(timezone=True),
            nullable=True))


def downgrade() -> None:
    with op.batch_alter_table('chain_cursors', schema=None) as batch_op:
        batch_op.drop_column('catch_up_since')
        batch_op.drop_column('catch_up')
