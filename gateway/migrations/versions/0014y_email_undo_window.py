"""accounts.email_undo_until: while the link that undoes the last email change works, no
further change is accepted (a second change would kill that link)

Revision ID: 0014y_email_undo_window
Revises: 0013b_webhook_lanes
Create Date: 2026-12-07 03:45:00.000000
"""
from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

import gateway.adapters.db.types

revision: str = '0014y_email_undo_window'
down_revision: str | None = '0013b_webhook_lanes'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table('accounts', schema=None) as batch_op:
        batch_op.add_column(sa.Column(
            'email_undo_until', gateway.adapters.db.types.UTCDateTime(timezone=True),
            nullable=True))


def downgrade() -> None:
    with op.batch_alter_table('accounts', schema=None) as batch_op:
        batch_op.drop_column('email_undo_until')
