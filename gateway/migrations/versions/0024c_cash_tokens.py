"""Cash by mail (docs/cash.md): one-time payment tokens (`cash_tokens`), stored only as a
keyed hash, with the envelope recorded against each; deleted by retention after use or
once unused past their validity, and with their account.

Revision ID: 0024c_cash_tokens
Revises: 0023v_vouchers
Create Date: 2026-12-07 21:00:00.000000
"""
from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

import gateway.adapters.db.types

revision: str = '0024c_cash_tokens'
# Re-chained after 0023v_vouchers when both branches are merged.
down_revision: str | None = '0023v_vouchers'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        'cash_tokens',
        sa.Column('id', sa.String(length=40), nullable=False),
        sa.Column('account_id', sa.String(length=40), nullable=False),
        sa.Column('token_hash', sa.String(length=64), nullable=False),
        sa.Column('created_at', gateway.adapters.db.types.UTCDateTime(timezone=True),
                  nullable=False),
        sa.Column('expires_at', gateway.adapters.db.types.UTCDateTime(timezone=True),
                  nullable=False),
        sa.Column('used_at', gateway.adapters.db.types.UTCDateTime(timezone=True),
                  nullable=True),
        sa.Column('amount_minor', sa.BigInteger(), nullable=True),
        sa.Column('currency', sa.String(length=3), nullable=True),
        sa.Column('staff_id', sa.String(length=40), nullable=True),
        sa.Column('note_ct', sa.LargeBinary(), nullable=True),
        sa.ForeignKeyConstraint(['account_id'], ['accounts.id'],
                                name=op.f('fk_cash_tokens_account_id_accounts')),
        sa.PrimaryKeyConstraint('id', name=op.f('pk_cash_tokens')),
        sa.UniqueConstraint('token_hash', name=op.f('uq_cash_tokens_token_hash')),
    )
    with op.batch_alter_table('cash_tokens', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_cash_tokens_account_id'), ['account_id'],
                              unique=False)
        batch_op.create_index(batch_op.f('ix_cash_tokens_expires_at'), ['expires_at'],
                              unique=False)
        batch_op.create_index(batch_op.f('ix_cash_tokens_used_at'), ['used_at'],
                              unique=False)


def downgrade() -> None:
    op.drop_table('cash_tokens')
