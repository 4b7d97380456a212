"""Erased accounts kept times and settings that are not billing records: the last login,
the objection to optional processing, the inactivity notice, the email-change undo
window, the signup and activation times, the accepted policy, the renewal plan and coin,
the paid time and billing state, and when renewal reminders were mailed. An erasure
clears them now (SqlAccounts.erase_personal_data, Account.erase); this clears the
tombstones erased before. The signup time cannot be empty: it becomes the erasure time.

Revision ID: 0017r_erased_tombstones
Revises: 0016l_legal_notice_mail
Create Date: 2026-12-07 12:10:00.000000
"""
from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = '0017r_erased_tombstones'
down_revision: str | None = '0016l_legal_notice_mail'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

# Spelled out: a migration must not change when the code does.
CLEARED = ('last_login_at', 'inactivity_notice_at', 'optional_processing_objected_at',
           'email_undo_until', 'activated_at', 'policy_version', 'plan', 'renewal_coin',
           'paid_until', 'paid_since', 'billing_state', 'deletion_due_at')


def upgrade() -> None:
    accounts = sa.table('accounts', sa.column('id', sa.String),
                        sa.column('created_at', sa.DateTime),
                        sa.column('deleted_at', sa.DateTime),
                        *(sa.column(name) for name in CLEARED))
    renewals = sa.table('renewals', sa.column('account_id', sa.String),
                        sa.column('first_reminder_at', sa.DateTime),
                        sa.column('second_reminder_at', sa.DateTime))
    op.execute(accounts.update().where(accounts.c.deleted_at.is_not(None)).values(
        created_at=accounts.c.deleted_at, **{name: None for name in CLEARED}))
    erased = sa.select(accounts.c.id).where(accounts.c.deleted_at.is_not(None))
    op.execute(renewals.update().where(renewals.c.account_id.in_(erased)).values(
        first_reminder_at=None, second_reminder_at=None))


def downgrade() -> None:
    # What was cleared is gone on purpose; nothing to restore.
    pass
