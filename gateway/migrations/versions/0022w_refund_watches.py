"""Refunds on the chain: the approved refunds whose payment the watcher looks for at the
customer's address (`refund_watches`), and the outputs it saw paying them
(`refund_outputs`). A watch keeps the bytes a payment is matched on, which are the
customer's address in another form: encrypted like the address, found by a keyed hash,
erased with it.

Revision ID: 0022w_refund_watches
Revises: 0021f_refunds
Create Date: 2026-12-07 18:20:00.000000
"""
from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

import gateway.adapters.db.types

revision: str = '0022w_refund_watches'
down_revision: str | None = '0021f_refunds'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        'refund_watches',
        sa.Column('id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'),
                  autoincrement=True, nullable=False),
        sa.Column('refund_id', sa.String(length=40), nullable=False),
        sa.Column('account_id', sa.String(length=40), nullable=False),
        sa.Column('coin', sa.String(length=10), nullable=False),
        sa.Column('address_space', sa.String(length=100), nullable=False),
        sa.Column('match_key_ct', sa.LargeBinary(), nullable=True),
        sa.Column('match_index', sa.String(length=64), nullable=True),
        sa.Column('amount', gateway.adapters.db.types.BaseUnits(length=78), nullable=False),
        sa.Column('confirmations_required', sa.Integer(), nullable=False),
        sa.Column('state', sa.String(length=20), nullable=False),
        sa.Column('txid', sa.String(length=100), nullable=True),
        sa.Column('created_at', gateway.adapters.db.types.UTCDateTime(timezone=True),
                  nullable=False),
        sa.Column('sent_at', gateway.adapters.db.types.UTCDateTime(timezone=True),
                  nullable=True),
        sa.Column('completed_at', gateway.adapters.db.types.UTCDateTime(timezone=True),
                  nullable=True),
        sa.PrimaryKeyConstraint('id', name=op.f('pk_refund_watches')),
        sa.UniqueConstraint('refund_id', name=op.f('uq_refund_watches_refund_id')),
    )
    with op.batch_alter_table('refund_watches', schema=None) as batch_op:
        batch_op.create_index('ix_refund_watches_coin_match_index', ['coin', 'match_index'],
                              unique=False)
        batch_op.create_index('ix_refund_watches_space_state', ['address_space', 'state'],
                              unique=False)
        batch_op.create_index(batch_op.f('ix_refund_watches_account_id'), ['account_id'],
                              unique=False)
    op.create_table(
        'refund_outputs',
        sa.Column('id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'),
                  autoincrement=True, nullable=False),
        sa.Column('refund_id', sa.String(length=40), nullable=False),
        sa.Column('coin', sa.String(length=10), nullable=False),
        sa.Column('txid', sa.String(length=100), nullable=False),
        sa.Column('output_index', sa.Integer(), nullable=False),
        sa.Column('amount', gateway.adapters.db.types.BaseUnits(length=78), nullable=False),
        sa.Column('block_hash', sa.String(length=100), nullable=True),
        sa.Column('block_height', sa.Integer(), nullable=True),
        sa.Column('status', sa.String(length=20), nullable=False),
        sa.Column('seen_at', gateway.adapters.db.types.UTCDateTime(timezone=True),
                  nullable=False),
        sa.PrimaryKeyConstraint('id', name=op.f('pk_refund_outputs')),
        sa.UniqueConstraint('coin', 'txid', 'output_index',
                            name='uq_refund_outputs_coin_txid_output'),
    )
    with op.batch_alter_table('refund_outputs', schema=None) as batch_op:
        batch_op.create_index('ix_refund_outputs_coin_block_hash', ['coin', 'block_hash'],
                              unique=False)
        batch_op.create_index(batch_op.f('ix_refund_outputs_refund_id'), ['refund_id'],
                              unique=False)


def downgrade() -> None:
    op.drop_table('refund_outputs')
    op.drop_table('refund_watches')
