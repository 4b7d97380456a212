"""credit_entries: the account credit ledger (docs/credit.md), append-only, one entry per
account and cause

Revision ID: 0020c_credit_ledger
Revises: 0019s_staff_log_ip
Create Date: 2026-12-07 18:00:00.000000
"""
from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

import gateway.adapters.db.types

revision: str = '0020c_credit_ledger'
down_revision: str | None = '0019s_staff_log_ip'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

_Time = gateway.adapters.db.types.UTCDateTime
_BigId = sa.BigInteger().with_variant(sa.Integer(), 'sqlite')


def upgrade() -> None:
    op.create_table(
        'credit_entries',
        sa.Column('id', _BigId, autoincrement=True, nullable=False),
        sa.Column('account_id', sa.String(length=40), nullable=False),
        sa.Column('kind', sa.String(length=20), nullable=False),
        sa.Column('amount', sa.BigInteger(), nullable=False),
        sa.Column('currency', sa.String(length=3), nullable=False),
        sa.Column('cause', sa.String(length=200), nullable=False),
        sa.Column('created_at', _Time(timezone=True), nullable=False),
        sa.Column('invoice_id', sa.String(length=40), nullable=True),
        sa.Column('refund_id', sa.String(length=40), nullable=True),
        sa.Column('coin', sa.String(length=10), nullable=True),
        sa.Column('txid', sa.String(length=100), nullable=True),
        sa.Column('output_index', sa.Integer(), nullable=True),
        sa.Column('crypto_amount', gateway.adapters.db.types.BaseUnits(), nullable=True),
        sa.Column('decimals', sa.SmallInteger(), nullable=True),
        sa.Column('rate', sa.String(length=50), nullable=True),
        sa.Column('rate_source', sa.String(length=200), nullable=True),
        sa.Column('reason', sa.String(length=20), nullable=True),
        sa.Column('note', sa.Text(), nullable=True),
        sa.Column('staff_id', sa.String(length=40), nullable=True),
        sa.ForeignKeyConstraint(['account_id'], ['accounts.id'],
                                name='fk_credit_entries_account_id_accounts'),
        sa.PrimaryKeyConstraint('id', name='pk_credit_entries'),
        sa.UniqueConstraint('account_id', 'cause',
                            name='uq_credit_entries_account_id_cause'),
    )
    op.create_index('ix_credit_entries_created_at', 'credit_entries', ['created_at'],
                    unique=False)
    op.create_index('ix_credit_entries_invoice_id', 'credit_entries', ['invoice_id'],
                    unique=False)
    op.create_index('ix_credit_entries_refund_id', 'credit_entries', ['refund_id'],
                    unique=False)


def downgrade() -> None:
    op.drop_index('ix_credit_entries_refund_id', table_name='credit_entries')
    op.drop_index('ix_credit_entries_invoice_id', table_name='credit_entries')
    op.drop_index('ix_credit_entries_created_at', table_name='credit_entries')
    op.drop_table('credit_entries')
