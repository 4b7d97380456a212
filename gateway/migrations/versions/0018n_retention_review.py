"""Issue 28 review of the retention run: a queued inactivity notice names its account
(`mail_queue.notice_account_id`: dropped undelivered, it clears the account's notice
mark), a flush of erased data that failed is remembered across restarts
(`retention_owed`), and tombstones erased before get `renewal_reminders` back to its
default (a customer's setting, not a billing record).

Revision ID: 0018n_retention_review
Revises: 0017r_erased_tombstones
Create Date: 2026-12-07 13:00:00.000000
"""
from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

import gateway.adapters.db.types

revision: str = '0018n_retention_review'
down_revision: str | None = '0017r_erased_tombstones'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


# A plain ADD COLUMN, as 0014y: a batch operation would copy the table on SQLite.
def upgrade() -> None:
    op.add_column('mail_queue', sa.Column('notice_account_id', sa.String(40), nullable=True))
    op.create_index('ix_mail_queue_notice_account_id', 'mail_queue', ['notice_account_id'])
    op.create_table(
        'retention_owed',
        sa.Column('work', sa.String(40), nullable=False),
        sa.Column('since', gateway.adapters.db.types.UTCDateTime(timezone=True),
                  nullable=False),
        sa.PrimaryKeyConstraint('work', name='pk_retention_owed'))
    accounts = sa.table('accounts', sa.column('deleted_at', sa.DateTime),
                        sa.column('renewal_reminders', sa.Boolean))
    op.execute(accounts.update().where(accounts.c.deleted_at.is_not(None)).values(
        renewal_reminders=True))


def downgrade() -> None:
    op.drop_table('retention_owed')
    op.drop_index('ix_mail_queue_notice_account_id', 'mail_queue')
    op.drop_column('mail_queue', 'notice_account_id')
