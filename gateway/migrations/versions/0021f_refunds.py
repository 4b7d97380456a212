"""refunds and refund_approvals: credit asked back (docs/refunds.md)

Revision ID: 0021f_refunds
Revises: 0020c_credit_ledger
Create Date: 2026-12-07 18:30:00.000000
"""
from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

import gateway.adapters.db.types

revision: str = '0021f_refunds'
down_revision: str | None = '0020c_credit_ledger'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

_Time = gateway.adapters.db.types.UTCDateTime
_Units = gateway.adapters.db.types.BaseUnits


def upgrade() -> None:
    op.create_table(
        'refunds',
        sa.Column('id', sa.String(length=40), nullable=False),
        sa.Column('account_id', sa.String(length=40), nullable=False),
        sa.Column('status', sa.String(length=20), nullable=False),
        sa.Column('amount_minor', sa.BigInteger(), nullable=False),
        sa.Column('currency', sa.String(length=3), nullable=False),
        sa.Column('coin', sa.String(length=10), nullable=False),
        sa.Column('address_ct', sa.LargeBinary(), nullable=True),
        sa.Column('approvals_needed', sa.SmallInteger(), nullable=False),
        sa.Column('refusal_reason', sa.Text(), nullable=True),
        sa.Column('refused_by', sa.String(length=40), nullable=True),
        sa.Column('crypto_amount', _Units(), nullable=True),
        sa.Column('rate', sa.String(length=50), nullable=True),
        sa.Column('uri_ct', sa.LargeBinary(), nullable=True),
        sa.Column('psbt_ct', sa.LargeBinary(), nullable=True),
        sa.Column('fee', _Units(), nullable=True),
        sa.Column('spends', sa.JSON(), nullable=True),
        sa.Column('change_index', sa.Integer(), nullable=True),
        sa.Column('txid', sa.String(length=100), nullable=True),
        sa.Column('tx_key_ct', sa.LargeBinary(), nullable=True),
        sa.Column('requested_at', _Time(timezone=True), nullable=False),
        sa.Column('decided_at', _Time(timezone=True), nullable=True),
        sa.Column('sent_at', _Time(timezone=True), nullable=True),
        sa.Column('completed_at', _Time(timezone=True), nullable=True),
        sa.Column('erased_at', _Time(timezone=True), nullable=True),
        sa.ForeignKeyConstraint(['account_id'], ['accounts.id'],
                                name='fk_refunds_account_id_accounts'),
        sa.PrimaryKeyConstraint('id', name='pk_refunds'),
    )
    op.create_index('ix_refunds_account_id', 'refunds', ['account_id'], unique=False)
    op.create_index('ix_refunds_status', 'refunds', ['status'], unique=False)
    op.create_table(
        'refund_approvals',
        sa.Column('refund_id', sa.String(length=40), nullable=False),
        sa.Column('staff_id', sa.String(length=40), nullable=False),
        sa.Column('reason', sa.Text(), nullable=False),
        sa.Column('at', _Time(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(['refund_id'], ['refunds.id'],
                                name='fk_refund_approvals_refund_id_refunds'),
        sa.PrimaryKeyConstraint('refund_id', 'staff_id', name='pk_refund_approvals'),
    )


def downgrade() -> None:
    op.drop_table('refund_approvals')
    op.drop_index('ix_refunds_status', table_name='refunds')
    op.drop_index('ix_refunds_account_id', table_name='refunds')
    op.drop_table('refunds')
