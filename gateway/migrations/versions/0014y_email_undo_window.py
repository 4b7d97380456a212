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


# A plain ADD COLUMN: a batch operation would copy `accounts` on SQLite, and dropping the
# old table fails with rows that other tables refer to (foreign keys are on).
def upgrade() -> None:
    op.add_column('accounts', sa.Column(
        'email_undo_until', gateway.adapters.db.types.UTCDateTime(timezone=True),
        nullable=True))


def downgrade() -> None:
    op.drop_column('accounts', 'email_undo_until')
