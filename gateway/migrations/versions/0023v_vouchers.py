"""Vouchers (docs/vouchers.md): `voucher_batches` (value or plan time, expiry, revocation)
and `vouchers` (one row per code, kept only as a keyed hash, redeemed once)

Revision ID: 0023v_vouchers
Revises: 0022w_refund_watches
Create Date: 2026-12-07 21:00:00.000000
"""
from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

import gateway.adapters.db.types

revision: str = '0023v_vouchers'
down_revision: str | None = '0022w_refund_watches'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

_Time = gateway.adapters.db.types.UTCDateTime


def upgrade() -> None:
    op.create_table(
        'voucher_batches',
        sa.Column('id', sa.String(length=40), nullable=False),
        sa.Column('created_at', _Time(timezone=True), nullable=False),
        sa.Column('created_by', sa.String(length=40), nullable=True),
        sa.Column('count', sa.Integer(), nullable=False),
        sa.Column('value_minor', sa.BigInteger(), nullable=False),
        sa.Column('currency', sa.String(length=3), nullable=False),
        sa.Column('plan', sa.String(length=100), nullable=True),
        sa.Column('periods', sa.SmallInteger(), nullable=False),
        sa.Column('expires_at', _Time(timezone=True), nullable=True),
        sa.Column('revoked_at', _Time(timezone=True), nullable=True),
        sa.Column('label', sa.String(length=200), nullable=False),
        sa.PrimaryKeyConstraint('id', name=op.f('pk_voucher_batches')),
    )
    op.create_table(
        'vouchers',
        sa.Column('id', sa.String(length=40), nullable=False),
        sa.Column('batch_id', sa.String(length=40), nullable=False),
        sa.Column('code_hash', sa.String(length=64), nullable=False),
        sa.Column('redeemed_at', _Time(timezone=True), nullable=True),
        sa.Column('redeemed_by', sa.String(length=40), nullable=True),
        sa.ForeignKeyConstraint(['batch_id'], ['voucher_batches.id'],
                                name=op.f('fk_vouchers_batch_id_voucher_batches')),
        sa.PrimaryKeyConstraint('id', name=op.f('pk_vouchers')),
        sa.UniqueConstraint('code_hash', name=op.f('uq_vouchers_code_hash')),
    )
    with op.batch_alter_table('vouchers', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_vouchers_batch_id'), ['batch_id'], unique=False)


def downgrade() -> None:
    op.drop_table('vouchers')
    op.drop_table('voucher_batches')
