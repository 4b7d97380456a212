"""Issue 32: the language the customer last chose (`accounts.language`, one of
gateway.i18n.LOCALES), so that their mails are written in it. Empty: English.

Revision ID: 0025l_account_language
Revises: 0024c_cash_tokens
Create Date: 2026-12-08 00:00:00.000000
"""
from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = '0025l_account_language'
down_revision: str | None = '0024c_cash_tokens'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


# A plain ADD COLUMN, as 0014y: a batch operation would copy the table on SQLite.
def upgrade() -> None:
    op.add_column('accounts', sa.Column('language', sa.String(16), nullable=True))


def downgrade() -> None:
    op.drop_column('accounts', 'language')
