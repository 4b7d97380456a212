"""legal_requests.notice_queued_at: when the mail telling the customers concerned was
queued (once per request; NULL: not yet, e.g. still held, or recorded before this version
or while no [smtp] was configured; `gateway legal notify-pending` sends those)

Revision ID: 0016l_legal_notice_mail
Revises: 0015p_staff_log_typed_names
Create Date: 2026-12-07 12:10:00.000000
"""
from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

import gateway.adapters.db.types

revision: str = '0016l_legal_notice_mail'
down_revision: str | None = '0015p_staff_log_typed_names'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


# A plain ADD COLUMN, as 0014y: a batch operation would copy the table on SQLite, and
# legal_request_accounts refers to it.
def upgrade() -> None:
    op.add_column('legal_requests', sa.Column(
        'notice_queued_at', gateway.adapters.db.types.UTCDateTime(timezone=True),
        nullable=True))


def downgrade() -> None:
    op.drop_column('legal_requests', 'notice_queued_at')
