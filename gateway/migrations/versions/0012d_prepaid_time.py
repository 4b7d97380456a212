"""prepaid time: paid_until and billing state per account, renewal invoices once per
period, the period each settled plan invoice paid for

Revision ID: 0012d_prepaid_time
Revises: 0011_address_spaces
Create Date: 2026-11-27 11:00:00
"""
from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

import gateway.adapters.db.types

revision: str = '0012d_prepaid_time'
down_revision: str | None = '0012b_staff_console'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

_Time = gateway.adapters.db.types.UTCDateTime
_BigId = sa.BigInteger().with_variant(sa.Integer(), 'sqlite')


def upgrade() -> None:
    # Not a batch, which would copy and drop `accounts` (refused on SQLite while other
    # tables refer to its rows): SQLite adds (and, >= 3.35, drops) columns in place.
    op.add_column('accounts', sa.Column('plan', sa.String(length=100), nullable=True))
    op.add_column('accounts', sa.Column('renewal_coin', sa.String(length=10), nullable=True))
    op.add_column('accounts', sa.Column('paid_until', _Time(timezone=True), nullable=True))
    op.add_column('accounts', sa.Column('paid_since', _Time(timezone=True), nullable=True))
    op.add_column('accounts', sa.Column('billing_state', sa.String(length=20), nullable=True))
    op.add_column('accounts', sa.Column('renewal_reminders', sa.Boolean(), nullable=False,
                                        server_default=sa.true()))
    op.create_index('ix_accounts_paid_until', 'accounts', ['paid_until'], unique=False)
    op.create_table(
        'renewals',
        sa.Column('id', _BigId, autoincrement=True, nullable=False),
        sa.Column('account_id', sa.String(length=40), nullable=False),
        sa.Column('period_end', _Time(timezone=True), nullable=False),
        sa.Column('invoice_id', sa.String(length=40), nullable=False),
        sa.Column('created_at', _Time(timezone=True), nullable=False),
        sa.Column('first_reminder_at', _Time(timezone=True), nullable=True),
        sa.Column('second_reminder_at', _Time(timezone=True), nullable=True),
        sa.ForeignKeyConstraint(['account_id'], ['accounts.id'],
                                name='fk_renewals_account_id_accounts'),
        sa.ForeignKeyConstraint(['invoice_id'], ['invoices.id'],
                                name='fk_renewals_invoice_id_invoices'),
        sa.PrimaryKeyConstraint('id', name='pk_renewals'),
        sa.UniqueConstraint('account_id', 'period_end',
                            name='uq_renewals_account_id_period_end'),
    )
    op.create_index('ix_renewals_invoice_id', 'renewals', ['invoice_id'], unique=False)
    op.create_table(
        'paid_periods',
        sa.Column('invoice_id', sa.String(length=40), nullable=False),
        sa.Column('account_id', sa.String(length=40), nullable=False),
        sa.Column('plan', sa.String(length=100), nullable=False),
        sa.Column('periods', sa.Integer(), nullable=False),
        sa.Column('starts_at', _Time(timezone=True), nullable=False),
        sa.Column('ends_at', _Time(timezone=True), nullable=False),
        sa.Column('created_at', _Time(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(['invoice_id'], ['invoices.id'],
                                name='fk_paid_periods_invoice_id_invoices'),
        sa.ForeignKeyConstraint(['account_id'], ['accounts.id'],
                                name='fk_paid_periods_account_id_accounts'),
        sa.PrimaryKeyConstraint('invoice_id', name='pk_paid_periods'),
    )
    op.create_index('ix_paid_periods_account_id', 'paid_periods', ['account_id'],
                    unique=False)


def downgrade() -> None:
    op.drop_index('ix_paid_periods_account_id', table_name='paid_periods')
    op.drop_table('paid_periods')
    op.drop_index('ix_renewals_invoice_id', table_name='renewals')
    op.drop_table('renewals')
    op.drop_index('ix_accounts_paid_until', table_name='accounts')
    for column in ('renewal_reminders', 'billing_state', 'paid_since', 'paid_until',
                   'renewal_coin', 'plan'):
        op.drop_column('accounts', column)
